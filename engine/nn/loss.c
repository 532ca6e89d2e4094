/* Loss terms: the KdfLoss base and the two built-in terms, cross-entropy (hard or
 * soft targets, per-sample weights, mixup) and Hinton distillation. A term reads its
 * bound per-sample inputs at the batch's dataset rows, so it never needs a copy of
 * the data in batch order. Sums run in double: a batch mean of 128 float terms
 * otherwise depends on the summation order more than a gradient check tolerates. */
#include "config.h"

#include "nn-private.h"

#include <kdflow/detect.h>
#include <math.h>
#include <string.h>

static void
loss_free (KdfObject *obj)
{
  KdfLoss *l = (KdfLoss *) obj;
  if (l->data_free && l->data)
    l->data_free (l->data);
  if (l->model)
    kdf_model_unref (l->model);
  g_free (l->name);
  g_free (l);
}

static char *
loss_describe (const KdfObject *obj)
{
  const KdfLoss *l = (const KdfLoss *) obj;
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup_printf ("%s ×%s", l->name, g_ascii_formatd (buf, sizeof buf, "%g", l->weight));
}

KdfLoss *
kdf_loss_new (const char *name, double weight, guint needs, KdfLossComputeFunc compute,
              gpointer data, GDestroyNotify data_free)
{
  g_return_val_if_fail (name != NULL && compute != NULL, NULL);
  KdfLoss *l = g_new0 (KdfLoss, 1);
  kdf_object_init (&l->parent, KDF_VALUE_LOSS, loss_free, loss_describe);
  l->name = g_strdup (name);
  l->weight = weight;
  l->needs = needs;
  l->nets = KDF_LOSS_NET0;
  l->n_samples = -1;
  l->n_classes = -1;
  l->compute = compute;
  l->data = data;
  l->data_free = data_free;
  return l;
}

void
kdf_loss_set_nets (KdfLoss *l, guint nets)
{
  g_return_if_fail (l != NULL && (nets & KDF_LOSS_BOTH) != 0);
  l->nets = nets & KDF_LOSS_BOTH;
}

void
kdf_loss_set_model (KdfLoss *l, KdfModel *m)
{
  g_return_if_fail (l != NULL);
  if (m)
    kdf_model_ref (m);
  if (l->model)
    kdf_model_unref (l->model);
  l->model = m;
}

/* ---- in-batch selection ------------------------------------------------------------ */

int64_t
kdf_batch_select (uint8_t *kept, const double *loss, int64_t n, KdfSelectKind kind, double keep,
                  int bins, GError **error)
{
  g_return_val_if_fail (n >= 0 && (n == 0 || (kept && loss)), -1);
  for (int64_t i = 0; i < n; i++)
    if (isnan (loss[i])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "selection: the loss of batch row %" G_GINT64_FORMAT " is NaN", (gint64) i);
      return -1;
    }
  if (kind == KDF_SELECT_ALL || n == 0) {
    memset (kept, 1, (size_t) n);
    return n;
  }
  g_autofree float *lf = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    lf[i] = (float) loss[i];
  int64_t n_kept = 0;
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  if (kind == KDF_SELECT_SMALL_LOSS) {
    if (!(keep >= 0.0 && keep <= 1.0)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "selection: keep must lie in [0,1], found %g", keep);
      return -1;
    }
    /* the ⌊keep·n⌋ smallest (ties to the earlier row): loss_ranking's kernel, global
     * scope over this batch */
    opt.keep = keep;
    if (!kdf_loss_rank (lf, n, &opt, kept, NULL, &n_kept, error))
      return -1;
    return n_kept;
  }
  if (kind != KDF_SELECT_OTSU) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "selection: unknown kind %d", (int) kind);
    return -1;
  }
  float lo = lf[0], hi = lf[0];
  for (int64_t i = 1; i < n; i++) {
    lo = MIN (lo, lf[i]);
    hi = MAX (hi, lf[i]);
  }
  if (!(hi > lo)) { /* one value: nothing to split */
    memset (kept, 1, (size_t) n);
    return n;
  }
  KdfOtsuOptions o;
  kdf_otsu_options_init (&o);
  o.normalize = TRUE;
  o.bins = bins > 0 ? bins : 1000;
  if (!kdf_loss_rank_otsu (lf, n, &o, &opt, kept, NULL, &n_kept, NULL, error))
    return -1;
  return n_kept;
}

/* Checks what every term relies on: rows inside the bound data, class counts that
 * agree, the networks it applies to present. */
static gboolean
check_batch (KdfLoss *l, const KdfLossBatch *b, GError **error)
{
  if ((l->nets & KDF_LOSS_NET1) && b->n_nets < 2 && !(l->nets & KDF_LOSS_NET0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "loss '%s' applies to network 1 but the batch has one network", l->name);
    return FALSE;
  }
  if (l->n_samples >= 0)
    for (int64_t i = 0; i < b->n; i++)
      if (b->rows[i] < 0 || b->rows[i] >= l->n_samples) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "loss '%s': batch row %" G_GINT64_FORMAT " is dataset row %d, but its "
                     "inputs have %" G_GINT64_FORMAT " rows",
                     l->name, (gint64) i, b->rows[i], (gint64) l->n_samples);
        return FALSE;
      }
  for (int k = 0; k < b->n_nets; k++)
    if (l->n_classes >= 0 && b->out[k][0].n_classes != l->n_classes &&
        (l->nets & (1u << k))) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "loss '%s': network %d has %" G_GINT64_FORMAT " classes, its inputs %" G_GINT64_FORMAT,
                   l->name, k, (gint64) b->out[k][0].n_classes, (gint64) l->n_classes);
      return FALSE;
    }
  return TRUE;
}

gboolean
kdf_loss_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  g_return_val_if_fail (l != NULL && b != NULL && value != NULL, FALSE);
  g_return_val_if_fail (b->n >= 0 && (b->n == 0 || b->rows != NULL), FALSE);
  *value = 0.0;
  if (b->n == 0)
    return TRUE;
  if (!check_batch (l, b, error))
    return FALSE;
  return l->compute (l, b, value, error);
}

/* ---- shared: softmax of one row in double ---------------------------------------- */

/* logp (C) = log_softmax(z / t), in double. */
static void
row_log_softmax (double *logp, const float *z, int64_t c, double t)
{
  double mx = z[0];
  for (int64_t j = 1; j < c; j++)
    mx = z[j] > mx ? z[j] : mx;
  double s = 0.0;
  for (int64_t j = 0; j < c; j++)
    s += exp ((z[j] - mx) / t);
  const double ls = log (s);
  for (int64_t j = 0; j < c; j++)
    logp[j] = (z[j] - mx) / t - ls;
}

/* ---- cross-entropy ----------------------------------------------------------------- */

typedef struct {
  KdfTensor *targets; /* N i32 or N×C f32, contiguous */
  KdfTensor *weights; /* N f32 contiguous, or NULL */
  KdfSelectKind select;
  double keep;
  int bins;
} CeData;

static void
ce_data_free (gpointer p)
{
  CeData *d = p;
  kdf_tensor_unref (d->targets);
  kdf_tensor_unref (d->weights);
  g_free (d);
}

gboolean
kdf_loss_check_finite (const char *term, const char *what, KdfTensor *t, gboolean nonneg,
                       GError **error)
{
  const float *v = kdf_tensor_f32 (t);
  const int64_t n = kdf_tensor_numel (t), c = t->rank == 2 ? t->shape[1] : 1;
  for (int64_t e = 0; e < n; e++)
    if (!isfinite (v[e]) || (nonneg && v[e] < 0.0f)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s: %s has %g at row %" G_GINT64_FORMAT ", column %" G_GINT64_FORMAT
                   " (expected %s)",
                   term, what, (double) v[e], (gint64) (e / c), (gint64) (e % c),
                   nonneg ? "finite values ≥ 0" : "finite values");
      return FALSE;
    }
  return TRUE;
}

gboolean
kdf_loss_label_at (int32_t *out, const char *term, const int32_t *y, int32_t row, int64_t c,
                   GError **error)
{
  const int32_t v = y[row];
  if (v < 0 || v >= c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "loss '%s': label %d of row %d is outside [0, %" G_GINT64_FORMAT ")", term, v, row,
                 (gint64) c);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

/* u (C) += s · target of dataset row R (one-hot or soft), unweighted. */
static gboolean
ce_add_target (double *u, const CeData *d, int32_t r, double s, int64_t c, const char *name,
               GError **error)
{
  if (d->targets->dtype == KDF_DTYPE_I32) {
    int32_t y;
    if (!kdf_loss_label_at (&y, name, kdf_tensor_i32 (d->targets), r, c, error))
      return FALSE;
    u[y] += s;
  } else {
    const float *t = kdf_tensor_f32 (d->targets) + (int64_t) r * c;
    for (int64_t j = 0; j < c; j++)
      u[j] += s * t[j];
  }
  return TRUE;
}

/* u (C) = the unweighted target of batch row I: its row's, mixed with its mixup
 * partner's under mixup. */
static gboolean
ce_unweighted_target (double *u, const CeData *d, const KdfLossBatch *b, int64_t i, int64_t c,
                      const char *name, GError **error)
{
  const int32_t ra = b->rows[i];
  const int32_t rb = b->mix ? b->rows[b->mix[i]] : -1;
  const double la = b->mix ? b->lambda : 1.0;
  memset (u, 0, (size_t) c * sizeof (double));
  if (!ce_add_target (u, d, ra, la, c, name, error))
    return FALSE;
  if (rb >= 0 && !ce_add_target (u, d, rb, 1.0 - la, c, name, error))
    return FALSE;
  return TRUE;
}

/* Per sample i with target t (mixed: λ·t_a + (1−λ)·t_b) and weight w:
 *   ℓ_i = −Σ_c w·t_c log p_c,  ∂ℓ_i/∂z_c = (Σ_c w·t_c)·p_c − w·t_c,
 * value = (1/n) Σ_i ℓ_i. Because the loss is linear in the target, the per-sample
 * weight and the mixup both fold into one unnormalised target vector u. */
static gboolean
ce_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  const CeData *d = l->data;
  const float *w = d->weights ? kdf_tensor_f32 (d->weights) : NULL;
  const int64_t n = b->n;
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    const KdfLossView *v = &b->out[k][0];
    const int64_t c = v->n_classes;
    g_autofree double *u = g_new (double, c), *logp = g_new (double, c), *u1 = g_new (double, c);
    /* In-batch selection: rank this batch's unweighted CEs first, then count the kept
     * rows only (the mean over K). Without selection K is the whole batch. */
    g_autofree uint8_t *kept = NULL;
    int64_t n_kept = n;
    if (d->select != KDF_SELECT_ALL) {
      g_autofree double *ce = g_new (double, n);
      for (int64_t i = 0; i < n; i++) {
        if (!ce_unweighted_target (u1, d, b, i, c, l->name, error))
          return FALSE;
        row_log_softmax (logp, v->logits + i * c, c, 1.0);
        double li1 = 0.0;
        for (int64_t j = 0; j < c; j++)
          li1 -= u1[j] * logp[j];
        ce[i] = li1;
      }
      kept = g_new (uint8_t, n);
      n_kept = kdf_batch_select (kept, ce, n, d->select, d->keep, d->bins, error);
      if (n_kept < 0) {
        g_prefix_error (error, "loss '%s': ", l->name);
        return FALSE;
      }
      if (k == 0 && b->selected)
        for (int64_t i = 0; i < n; i++)
          b->selected[i] &= kept[i];
    }
    const double gscale = n_kept > 0 ? l->weight / (double) n_kept : 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      const int32_t ra = b->rows[i];
      const int32_t rb = b->mix ? b->rows[b->mix[i]] : -1;
      const double la = b->mix ? b->lambda : 1.0;
      memset (u, 0, (size_t) c * sizeof (double));
      /* u1: the unweighted target (per-sample loss), u: the weighted one */
      if (!ce_unweighted_target (u1, d, b, i, c, l->name, error))
        return FALSE;
      if (w) {
        ce_add_target (u, d, ra, la * w[ra], c, l->name, NULL);
        if (rb >= 0)
          ce_add_target (u, d, rb, (1.0 - la) * w[rb], c, l->name, NULL);
      } else
        memcpy (u, u1, (size_t) c * sizeof (double));
      row_log_softmax (logp, v->logits + i * c, c, 1.0);
      double li = 0.0, li1 = 0.0, su = 0.0;
      for (int64_t j = 0; j < c; j++) {
        li -= u[j] * logp[j];
        li1 -= u1[j] * logp[j];
        su += u[j];
      }
      if (b->sample_loss && k == 0)
        b->sample_loss[i] += (float) (l->weight * li1);
      if (kept && !kept[i])
        continue;
      sum += li;
      if (v->grad_logits) {
        float *g = v->grad_logits + i * c;
        for (int64_t j = 0; j < c; j++)
          g[j] += (float) (gscale * (su * exp (logp[j]) - u[j]));
      }
    }
    total += n_kept > 0 ? sum / (double) n_kept : 0.0;
  }
  *value = total;
  return TRUE;
}

static gboolean
check_rows (const char *what, KdfTensor *t, int64_t n, GError **error)
{
  if (t->shape[0] != n) {
    g_autofree char *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: %s has %" G_GINT64_FORMAT " rows, expected %" G_GINT64_FORMAT, what, d,
                 (gint64) t->shape[0], (gint64) n);
    return FALSE;
  }
  return TRUE;
}

KdfLoss *
kdf_loss_ce_new (KdfTensor *targets, KdfTensor *weights, double weight, GError **error)
{
  g_return_val_if_fail (targets != NULL, NULL);
  const gboolean hard = targets->dtype == KDF_DTYPE_I32 && targets->rank == 1;
  const gboolean soft = targets->dtype == KDF_DTYPE_F32 && targets->rank == 2;
  if (!hard && !soft) {
    g_autofree char *d = kdf_tensor_describe (targets);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "ce: targets must be N i32 labels or N×C f32 soft targets, got %s", d);
    return NULL;
  }
  const int64_t n = targets->shape[0];
  if (weights && (weights->dtype != KDF_DTYPE_F32 || weights->rank != 1)) {
    g_autofree char *d = kdf_tensor_describe (weights);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "ce: weights must be N f32, got %s", d);
    return NULL;
  }
  if (weights && !check_rows ("ce: weights", weights, n, error))
    return NULL;
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "ce: the term weight must be finite");
    return NULL;
  }
  CeData *d = g_new0 (CeData, 1);
  d->targets = kdf_tensor_contiguous (targets);
  d->weights = weights ? kdf_tensor_contiguous (weights) : NULL;
  if ((soft && !kdf_loss_check_finite ("ce", "soft targets", d->targets, TRUE, error)) ||
      (d->weights && !kdf_loss_check_finite ("ce", "weights", d->weights, TRUE, error))) {
    ce_data_free (d);
    return NULL;
  }
  KdfLoss *l = kdf_loss_new ("ce", weight, KDF_LOSS_NEEDS_LOGITS, ce_compute, d, ce_data_free);
  l->n_samples = n;
  l->n_classes = soft ? targets->shape[1] : -1;
  return l;
}

gboolean
kdf_loss_ce_set_selection (KdfLoss *l, KdfSelectKind kind, double keep, int bins, GError **error)
{
  g_return_val_if_fail (l != NULL && l->compute == ce_compute, FALSE);
  if (kind != KDF_SELECT_ALL && kind != KDF_SELECT_SMALL_LOSS && kind != KDF_SELECT_OTSU) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "ce: unknown selection %d", (int) kind);
    return FALSE;
  }
  if (kind == KDF_SELECT_SMALL_LOSS && !(keep >= 0.0 && keep <= 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "ce: the kept fraction of each batch must lie in [0,1], found %g", keep);
    return FALSE;
  }
  if (kind == KDF_SELECT_OTSU && bins != 0 && bins < 8) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "ce: Otsu needs at least 8 bins, found %d",
                 bins);
    return FALSE;
  }
  CeData *d = l->data;
  d->select = kind;
  d->keep = keep;
  d->bins = bins;
  if (kind == KDF_SELECT_ALL)
    l->needs &= ~(guint) KDF_LOSS_SELECTS;
  else
    l->needs |= KDF_LOSS_SELECTS;
  return TRUE;
}

/* ---- knowledge distillation ------------------------------------------------------- */

typedef struct {
  KdfTensor *teacher; /* N×C f32 contiguous */
  double t;
} KdData;

static void
kd_data_free (gpointer p)
{
  KdData *d = p;
  kdf_tensor_unref (d->teacher);
  g_free (d);
}

/* Hinton et al. 2015: ℓ_i = T² Σ_c q_c (log q_c − log p_c) with q = softmax(z^T/T),
 * p = softmax(z^S/T); ∂ℓ_i/∂z^S_c = T (p_c − q_c). The T² keeps the gradient's scale
 * independent of T. Under mixup q is the same mix of the two rows' teacher softmaxes. */
static gboolean
kd_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  const KdData *d = l->data;
  const int64_t n = b->n, c = d->teacher->shape[1];
  const double t = d->t;
  double total = 0.0;
  g_autofree double *q = g_new (double, c), *lq = g_new (double, c), *lp = g_new (double, c),
                    *tmp = g_new (double, c);
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    const KdfLossView *v = &b->out[k][0];
    const double gscale = l->weight * t / (double) n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      const float *zt = kdf_tensor_f32 (d->teacher) + (int64_t) b->rows[i] * c;
      row_log_softmax (lq, zt, c, t);
      if (b->mix) {
        const float *zb = kdf_tensor_f32 (d->teacher) + (int64_t) b->rows[b->mix[i]] * c;
        row_log_softmax (tmp, zb, c, t);
        for (int64_t j = 0; j < c; j++) {
          q[j] = b->lambda * exp (lq[j]) + (1.0 - b->lambda) * exp (tmp[j]);
          lq[j] = q[j] > 0.0 ? log (q[j]) : 0.0;
        }
      } else
        for (int64_t j = 0; j < c; j++)
          q[j] = exp (lq[j]);
      row_log_softmax (lp, v->logits + i * c, c, t);
      double kl = 0.0;
      for (int64_t j = 0; j < c; j++)
        if (q[j] > 0.0)
          kl += q[j] * (lq[j] - lp[j]);
      kl *= t * t;
      sum += kl;
      if (b->sample_loss && k == 0)
        b->sample_loss[i] += (float) (l->weight * kl);
      if (v->grad_logits) {
        float *g = v->grad_logits + i * c;
        for (int64_t j = 0; j < c; j++)
          g[j] += (float) (gscale * (exp (lp[j]) - q[j]));
      }
    }
    total += sum / (double) n;
  }
  *value = total;
  (void) error;
  return TRUE;
}

KdfLoss *
kdf_loss_kd_new (KdfTensor *teacher_logits, double t, double weight, GError **error)
{
  g_return_val_if_fail (teacher_logits != NULL, NULL);
  if (teacher_logits->dtype != KDF_DTYPE_F32 || teacher_logits->rank != 2 ||
      teacher_logits->shape[1] < 1) {
    g_autofree char *d = kdf_tensor_describe (teacher_logits);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "kd: teacher logits must be N×C f32, got %s",
                 d);
    return NULL;
  }
  if (!(t > 0.0) || !isfinite (t) || !isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "kd: the temperature must be > 0 and the weight finite");
    return NULL;
  }
  KdData *d = g_new0 (KdData, 1);
  d->teacher = kdf_tensor_contiguous (teacher_logits);
  d->t = t;
  if (!kdf_loss_check_finite ("kd", "teacher logits", d->teacher, FALSE, error)) {
    kd_data_free (d);
    return NULL;
  }
  KdfLoss *l = kdf_loss_new ("kd", weight, KDF_LOSS_NEEDS_LOGITS | KDF_LOSS_NEEDS_TEACHER,
                             kd_compute, d, kd_data_free);
  l->n_samples = teacher_logits->shape[0];
  l->n_classes = teacher_logits->shape[1];
  return l;
}
