/* AWE — ambiguity-aware weights (AML-KD, Jiang et al., TNNLS 2023; METHODS §1 awe):
 * class centres, cosines to them, the three weightings (net, cosine, margin) and the
 * term that trains the weight network with the student. Every array is indexed by
 * dataset row (or by batch row with the batch's dataset rows at hand), never by the
 * order some loader happened to produce. */
#include "config.h"

#include "nn-private.h"

#include <math.h>
#include <string.h>

static gboolean
check_label (const int32_t *labels, int64_t i, int64_t c, GError **error)
{
  if (labels[i] < 0 || labels[i] >= c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "awe: label %d of row %" G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ")",
                 labels[i], (gint64) i, (gint64) c);
    return FALSE;
  }
  return TRUE;
}

gboolean
kdf_class_centers (float *centers, int64_t *counts, const float *features, const int32_t *labels,
                   int64_t n, int64_t f, int64_t c, GError **error)
{
  g_return_val_if_fail (centers && features && labels && n >= 0 && f > 0 && c > 0, FALSE);
  g_autofree double *sum = g_new0 (double, c * f);
  g_autofree int64_t *cnt = g_new0 (int64_t, c);
  for (int64_t i = 0; i < n; i++) {
    if (!check_label (labels, i, c, error))
      return FALSE;
    const float *x = features + i * f;
    double *s = sum + (int64_t) labels[i] * f;
    for (int64_t j = 0; j < f; j++)
      s[j] += x[j];
    cnt[labels[i]]++;
  }
  for (int64_t k = 0; k < c; k++) {
    for (int64_t j = 0; j < f; j++)
      centers[k * f + j] = cnt[k] ? (float) (sum[k * f + j] / (double) cnt[k]) : 0.0f;
    if (counts)
      counts[k] = cnt[k];
  }
  return TRUE;
}

void
kdf_awe_cosines (float *cos, const float *features, const float *centers, int64_t n, int64_t f,
                 int64_t c)
{
  g_autofree double *cn = g_new (double, c);
  for (int64_t k = 0; k < c; k++) {
    double s = 0.0;
    for (int64_t j = 0; j < f; j++)
      s += (double) centers[k * f + j] * centers[k * f + j];
    cn[k] = sqrt (s);
  }
  for (int64_t i = 0; i < n; i++) {
    const float *x = features + i * f;
    double xn = 0.0;
    for (int64_t j = 0; j < f; j++)
      xn += (double) x[j] * x[j];
    xn = sqrt (xn);
    for (int64_t k = 0; k < c; k++) {
      double dot = 0.0;
      const float *mu = centers + k * f;
      for (int64_t j = 0; j < f; j++)
        dot += (double) x[j] * mu[j];
      cos[i * c + k] = xn > 0.0 && cn[k] > 0.0 ? (float) (dot / (xn * cn[k])) : 0.0f;
    }
  }
}

static double
sigmoid (double z)
{
  return z >= 0.0 ? 1.0 / (1.0 + exp (-z)) : exp (z) / (1.0 + exp (z));
}

gboolean
kdf_awe_weights (float *w, const float *cos, const int32_t *labels, int64_t n, int64_t c,
                 KdfAweMode mode, GError **error)
{
  if (mode != KDF_AWE_COSINE && mode != KDF_AWE_MARGIN) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "awe: kdf_awe_weights computes the cosine and margin modes (net: kdf_awe_net_weights)");
    return FALSE;
  }
  if (mode == KDF_AWE_MARGIN && c < 2) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "awe: the margin mode needs 2 classes or more");
    return FALSE;
  }
  for (int64_t i = 0; i < n; i++) {
    if (!check_label (labels, i, c, error))
      return FALSE;
    const float *ci = cos + i * c;
    const int32_t y = labels[i];
    if (mode == KDF_AWE_COSINE) {
      w[i] = (float) sigmoid (ci[y]);
      continue;
    }
    double other = -INFINITY;
    for (int64_t k = 0; k < c; k++)
      if (k != y && ci[k] > other)
        other = ci[k];
    double m = ((double) ci[y] - other + 2.0) / 4.0;
    w[i] = (float) CLAMP (m, 0.0, 1.0);
  }
  return TRUE;
}

void
kdf_awe_net_input (float *in, const float *cos, const int32_t *labels, int64_t n, int64_t c)
{
  for (int64_t i = 0; i < n; i++) {
    float *row = in + i * 2 * c;
    memcpy (row, cos + i * c, (size_t) c * sizeof (float));
    memset (row + c, 0, (size_t) c * sizeof (float));
    row[c + labels[i]] = 1.0f;
  }
}

KdfModel *
kdf_awe_net_new (int64_t c, guint64 seed, GError **error)
{
  if (c < 1 || c > (1 << 20)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "awe: the weight network needs 1 to 2^20 classes, got %" G_GINT64_FORMAT, (gint64) c);
    return NULL;
  }
  g_autofree char *arch = g_strdup_printf ("seq:%" G_GINT64_FORMAT "-linear%" G_GINT64_FORMAT
                                           "-prelu-linear1", (gint64) (2 * c), (gint64) c);
  return kdf_model_new_from_arch (arch, seed, error);
}

static gboolean
check_net (KdfModel *net, int64_t c, GError **error)
{
  if (net->in_size != 2 * c || net->n_classes != 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "awe: the weight network '%s' must take 2C = %" G_GINT64_FORMAT
                 " inputs and give one output",
                 net->arch, (gint64) (2 * c));
    return FALSE;
  }
  return TRUE;
}

gboolean
kdf_awe_net_weights (float *w, KdfModel *net, const float *cos, const int32_t *labels, int64_t n,
                     int64_t c, int threads, GError **error)
{
  if (!check_net (net, c, error))
    return FALSE;
  for (int64_t i = 0; i < n; i++)
    if (!check_label (labels, i, c, error))
      return FALSE;
  g_autoptr (KdfTensor) in = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 2 * c);
  kdf_awe_net_input (kdf_tensor_f32 (in), cos, labels, n, c);
  KdfTensor *z = NULL;
  if (!kdf_model_predict (net, in, 256, threads, &z, NULL, error))
    return FALSE;
  for (int64_t i = 0; i < n; i++)
    w[i] = (float) sigmoid (kdf_tensor_f32 (z)[i]);
  kdf_tensor_unref (z);
  return TRUE;
}

/* ---- the term that trains the weight network --------------------------------------- */

typedef struct {
  KdfTensor *labels;  /* N i32 contiguous */
  KdfTensor *centers; /* C×F f32 contiguous */
  int64_t c;
  float *cos, *in;    /* batch buffers: n×C cosines, n×2C inputs (kept until backward) */
  int64_t cap;
} AweData;

static void
awe_data_free (gpointer p)
{
  AweData *d = p;
  kdf_tensor_unref (d->labels);
  kdf_tensor_unref (d->centers);
  g_free (d->cos);
  g_free (d->in);
  g_free (d);
}

/* s = sigmoid(z), BCE(s, t) = −t log s − (1−t) log(1−s) = softplus(z) − t·z,
 * ∂/∂z = s − t; value = mean over the batch, gradient scaled by weight/n. */
static gboolean
awe_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  AweData *d = l->data;
  const KdfLossView *v = &b->out[0][0];
  const int64_t n = b->n, c = d->c, f = d->centers->shape[1];
  if (v->n_features != f) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "loss '%s': the class centres have %" G_GINT64_FORMAT " features, the student's "
                 "feature tap %" G_GINT64_FORMAT " (give centres of the student's features)",
                 l->name, (gint64) f, (gint64) v->n_features);
    return FALSE;
  }
  if (!b->selected) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "loss '%s': the batch carries no selection to learn from", l->name);
    return FALSE;
  }
  if (n > d->cap) {
    d->cos = g_renew (float, d->cos, n * c);
    d->in = g_renew (float, d->in, n * 2 * c);
    d->cap = n;
  }
  kdf_awe_cosines (d->cos, v->features, kdf_tensor_f32 (d->centers), n, f, c);
  const int32_t *y = kdf_tensor_i32 (d->labels);
  for (int64_t i = 0; i < n; i++) {
    int32_t ya, yb = -1;
    if (!kdf_loss_label_at (&ya, l->name, y, b->rows[i], c, error))
      return FALSE;
    if (b->mix && !kdf_loss_label_at (&yb, l->name, y, b->rows[b->mix[i]], c, error))
      return FALSE;
    float *row = d->in + i * 2 * c;
    memcpy (row, d->cos + i * c, (size_t) c * sizeof (float));
    memset (row + c, 0, (size_t) c * sizeof (float));
    const double la = b->mix ? b->lambda : 1.0;
    row[c + ya] += (float) la;
    if (yb >= 0)
      row[c + yb] += (float) (1.0 - la);
  }
  KdfModel *net = l->model;
  const float *z = kdf_model_forward (net, d->in, n, TRUE, NULL, b->threads);
  float *gz = kdf_model_get_grad_logits (net);
  const double gscale = l->weight / (double) n;
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double zi = z[i], t = b->selected[i] ? 1.0 : 0.0;
    const double softplus = zi > 0.0 ? zi + log1p (exp (-zi)) : log1p (exp (zi));
    sum += softplus - t * zi;
    gz[i] += (float) (gscale * (sigmoid (zi) - t));
  }
  *value = sum / (double) n;
  return TRUE;
}

KdfLoss *
kdf_loss_awe_new (KdfModel *net, KdfTensor *labels, KdfTensor *centers, double weight,
                  GError **error)
{
  g_return_val_if_fail (net != NULL && labels != NULL && centers != NULL, NULL);
  if (labels->dtype != KDF_DTYPE_I32 || labels->rank != 1) {
    g_autofree char *s = kdf_tensor_describe (labels);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "awe: labels must be N i32, got %s", s);
    return NULL;
  }
  if (centers->dtype != KDF_DTYPE_F32 || centers->rank != 2 || centers->shape[0] < 1 ||
      centers->shape[1] < 1) {
    g_autofree char *s = kdf_tensor_describe (centers);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "awe: centres must be C×F f32, got %s", s);
    return NULL;
  }
  const int64_t c = centers->shape[0];
  if (!check_net (net, c, error))
    return NULL;
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "awe: the term weight must be finite");
    return NULL;
  }
  AweData *d = g_new0 (AweData, 1);
  d->labels = kdf_tensor_contiguous (labels);
  d->centers = kdf_tensor_contiguous (centers);
  d->c = c;
  if (!kdf_loss_check_finite ("awe", "centres", d->centers, FALSE, error)) {
    awe_data_free (d);
    return NULL;
  }
  KdfLoss *l = kdf_loss_new ("awe", weight, KDF_LOSS_NEEDS_FEATURES | KDF_LOSS_NEEDS_SELECTION,
                             awe_compute, d, awe_data_free);
  l->n_samples = labels->shape[0];
  kdf_loss_set_model (l, net);
  return l;
}
