/* The representation terms of universal-noise KD (contrastive.h): supervised,
 * prototype, instance and SimCLR contrastive losses, rotation prediction and the
 * feature hint. Kernels compute in double on L2-normalised rows; the terms gather the
 * rows a batch's mask keeps from the head a term trains on the student, run a kernel
 * and scatter its gradient back into the head's gradient. */
#include "config.h"

#include "nn-private.h"

#include <kdflow/contrastive.h>
#include <math.h>
#include <string.h>

/* ---- kernels ----------------------------------------------------------------------- */

/* u (m×d) = z/‖z‖ per row, nrm (m) = max(‖z‖, 1e-12). */
static void
l2n (double *u, double *nrm, const float *z, int64_t m, int64_t d)
{
  for (int64_t a = 0; a < m; a++) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++)
      s += (double) z[a * d + j] * z[a * d + j];
    const double r = fmax (sqrt (s), 1e-12);
    nrm[a] = r;
    for (int64_t j = 0; j < d; j++)
      u[a * d + j] = z[a * d + j] / r;
  }
}

/* gz (m×d) += scale · (gu − u⟨u, gu⟩)/nrm: the gradient through u = z/‖z‖. */
static void
l2n_back (float *gz, const double *gu, const double *u, const double *nrm, int64_t m, int64_t d,
          double scale)
{
  for (int64_t a = 0; a < m; a++) {
    const double *g = gu + a * d, *ua = u + a * d;
    double dot = 0.0;
    for (int64_t j = 0; j < d; j++)
      dot += ua[j] * g[j];
    for (int64_t j = 0; j < d; j++)
      gz[a * d + j] += (float) (scale * (g[j] - ua[j] * dot) / nrm[a]);
  }
}

static double
dotd (const double *a, const double *b, int64_t d)
{
  double s = 0.0;
  for (int64_t j = 0; j < d; j++)
    s += a[j] * b[j];
  return s;
}

double
kdf_supcon (float *gz, double *row_loss, const float *z, const int32_t *y, int64_t m, int64_t d,
            double tau, double scale)
{
  g_return_val_if_fail (z != NULL && y != NULL && m >= 0 && d > 0 && tau > 0.0, NAN);
  if (row_loss)
    memset (row_loss, 0, (size_t) m * sizeof (double));
  if (m < 2)
    return 0.0;
  g_autofree double *u = g_new (double, m * d), *nrm = g_new (double, m);
  g_autofree double *s = g_new (double, m * m), *g = g_new0 (double, m * m);
  l2n (u, nrm, z, m, d);
  kdf_dgemm_rm (FALSE, TRUE, m, m, d, 1.0 / tau, u, d, u, d, 0.0, s, m, 1); /* S = U·Uᵀ/τ */
  int64_t anchors = 0;
  double total = 0.0;
  for (int64_t a = 0; a < m; a++) {
    int64_t np = 0;
    double mx = -INFINITY, pos = 0.0;
    for (int64_t k = 0; k < m; k++) {
      if (k == a)
        continue;
      mx = fmax (mx, s[a * m + k]);
      if (y[k] == y[a]) {
        np++;
        pos += s[a * m + k];
      }
    }
    if (np == 0)
      continue;
    double se = 0.0;
    for (int64_t k = 0; k < m; k++)
      if (k != a)
        se += exp (s[a * m + k] - mx);
    const double lse = mx + log (se);
    const double la = lse - pos / (double) np;
    total += la;
    if (row_loss)
      row_loss[a] = la;
    anchors++;
    /* ∂ℓ_a/∂s_ak = softmax_k − [y_k = y_a]/|P(a)| */
    for (int64_t k = 0; k < m; k++)
      if (k != a)
        g[a * m + k] = exp (s[a * m + k] - lse) - (y[k] == y[a] ? 1.0 / (double) np : 0.0);
  }
  if (anchors == 0)
    return 0.0;
  if (gz) {
    g_autofree double *gu = g_new0 (double, m * d);
    const double f = 1.0 / (tau * (double) anchors);
    /* s_ak = u_a·u_k/τ: both ends move, GU = f·(G·U + Gᵀ·U) */
    kdf_dgemm_rm (FALSE, FALSE, m, d, m, f, g, m, u, d, 0.0, gu, d, 1);
    kdf_dgemm_rm (TRUE, FALSE, m, d, m, f, g, m, u, d, 1.0, gu, d, 1);
    l2n_back (gz, gu, u, nrm, m, d, scale);
  }
  return total / (double) anchors;
}

double
kdf_instance_nce (float *gz, double *row_loss, const float *z, const float *t, int64_t n,
                  int64_t d, double tau, double scale)
{
  g_return_val_if_fail (z != NULL && t != NULL && n >= 0 && d > 0 && tau > 0.0, NAN);
  if (n == 0)
    return 0.0;
  g_autofree double *u = g_new (double, n * d), *nu = g_new (double, n);
  g_autofree double *v = g_new (double, n * d), *nv = g_new (double, n);
  /* SV = U·Vᵀ/τ, SU = U·Uᵀ/τ (its diagonal is not a candidate), then in place the
   * coefficients ∂ℓ_i/∂s (softmax − [the positive]) scaled by 1/(τn) */
  g_autofree double *sv = g_new (double, n * n), *su = g_new (double, n * n);
  l2n (u, nu, z, n, d);
  l2n (v, nv, t, n, d);
  kdf_dgemm_rm (FALSE, TRUE, n, n, d, 1.0 / tau, u, d, v, d, 0.0, sv, n, 1);
  kdf_dgemm_rm (FALSE, TRUE, n, n, d, 1.0 / tau, u, d, u, d, 0.0, su, n, 1);
  double total = 0.0;
  const double f = 1.0 / (tau * (double) n);
  for (int64_t i = 0; i < n; i++) {
    double *svi = sv + i * n, *sui = su + i * n;
    sui[i] = -INFINITY;
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++)
      mx = fmax (mx, fmax (svi[j], sui[j]));
    double se = 0.0;
    for (int64_t j = 0; j < n; j++)
      se += exp (svi[j] - mx) + (j == i ? 0.0 : exp (sui[j] - mx));
    const double lse = mx + log (se);
    const double li = lse - svi[i];
    total += li;
    if (row_loss)
      row_loss[i] = li;
    for (int64_t j = 0; j < n; j++) {
      svi[j] = (exp (svi[j] - lse) - (j == i ? 1.0 : 0.0)) * f;
      sui[j] = j == i ? 0.0 : exp (sui[j] - lse) * f;
    }
  }
  if (gz) {
    /* s = u_i·v_j/τ moves u_i; s = u_i·u_j/τ moves both: GU = CV·V + CU·U + CUᵀ·U */
    g_autofree double *gu = g_new (double, n * d);
    kdf_dgemm_rm (FALSE, FALSE, n, d, n, 1.0, sv, n, v, d, 0.0, gu, d, 1);
    kdf_dgemm_rm (FALSE, FALSE, n, d, n, 1.0, su, n, u, d, 1.0, gu, d, 1);
    kdf_dgemm_rm (TRUE, FALSE, n, d, n, 1.0, su, n, u, d, 1.0, gu, d, 1);
    l2n_back (gz, gu, u, nu, n, d, scale);
  }
  return total / (double) n;
}

double
kdf_proto_nce (float *gz1, float *gz2, double *row_loss, const float *z1, const float *z2,
               const int32_t *y, const int32_t *perm, double lambda, const float *protos,
               int64_t n, int64_t d, int64_t c, double tau, double scale)
{
  g_return_val_if_fail (z1 != NULL && z2 != NULL && y != NULL && perm != NULL && protos != NULL,
                        NAN);
  g_return_val_if_fail (n >= 0 && d > 0 && c > 0 && tau > 0.0, NAN);
  g_return_val_if_fail ((gz1 == NULL) == (gz2 == NULL) && (z1 != z2 || gz1 == gz2), NAN);
  if (n == 0)
    return 0.0;
  g_autofree double *u1 = g_new (double, n * d), *n1 = g_new (double, n);
  g_autofree double *u2 = g_new (double, n * d), *n2 = g_new (double, n);
  g_autofree double *pr = g_new (double, c * d), *npr = g_new (double, c);
  g_autofree double *w = g_new (double, d), *lg = g_new (double, c), *gm = g_new (double, d);
  g_autofree double *gu1 = gz1 ? g_new0 (double, n * d) : NULL;
  g_autofree double *gu2 = gz1 ? g_new0 (double, n * d) : NULL;
  l2n (u1, n1, z1, n, d);
  l2n (u2, n2, z2, n, d);
  l2n (pr, npr, protos, c, d);
  const double la = lambda, lb = 1.0 - lambda;
  double total = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const int64_t j = perm[i];
    for (int64_t k = 0; k < d; k++)
      w[k] = la * u1[i * d + k] + lb * u2[j * d + k];
    const double wn = fmax (sqrt (dotd (w, w, d)), 1e-12);
    for (int64_t k = 0; k < d; k++)
      w[k] /= wn; /* now m_i */
    double mx = -INFINITY;
    for (int64_t q = 0; q < c; q++) {
      lg[q] = dotd (w, pr + q * d, d) / tau;
      mx = fmax (mx, lg[q]);
    }
    double se = 0.0;
    for (int64_t q = 0; q < c; q++)
      se += exp (lg[q] - mx);
    const double lse = mx + log (se);
    /* H(Y, p) = lse − Σ_q Y_q logit_q, Σ Y = 1 */
    const double li = lse - la * lg[y[i]] - lb * lg[y[j]];
    total += li;
    if (row_loss)
      row_loss[i] = li;
    if (!gu1)
      continue;
    memset (gm, 0, (size_t) d * sizeof (double));
    for (int64_t q = 0; q < c; q++) {
      double cq = exp (lg[q] - lse) - (q == y[i] ? la : 0.0) - (q == y[j] ? lb : 0.0);
      cq /= tau * (double) n;
      for (int64_t k = 0; k < d; k++)
        gm[k] += cq * pr[q * d + k];
    }
    /* through m = w/‖w‖, then w = λ·u1_i + (1−λ)·u2_j */
    const double dot = dotd (w, gm, d);
    for (int64_t k = 0; k < d; k++) {
      const double gw = (gm[k] - w[k] * dot) / wn;
      gu1[i * d + k] += la * gw;
      gu2[j * d + k] += lb * gw;
    }
  }
  if (gu1) {
    l2n_back (gz1, gu1, u1, n1, n, d, scale);
    l2n_back (gz2, gu2, u2, n2, n, d, scale);
  }
  return total / (double) n;
}

gboolean
kdf_class_prototypes (float *protos, const float *emb, const int32_t *labels, const uint8_t *mask,
                      int64_t n, int64_t d, int64_t c, GError **error)
{
  g_return_val_if_fail (protos != NULL && emb != NULL && labels != NULL && c > 0 && d > 0, FALSE);
  g_autofree double *sum = g_new0 (double, c * d);
  g_autofree int64_t *cnt = g_new0 (int64_t, c);
  for (int64_t i = 0; i < n; i++) {
    if (mask && !mask[i])
      continue;
    const int32_t y = labels[i];
    if (y < 0 || y >= c) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "prototypes: label %d of row %" G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ")",
                   y, (gint64) i, (gint64) c);
      return FALSE;
    }
    cnt[y]++;
    for (int64_t j = 0; j < d; j++)
      sum[y * d + j] += emb[i * d + j];
  }
  for (int64_t q = 0; q < c; q++) {
    if (cnt[q] == 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "prototypes: class %" G_GINT64_FORMAT " has no row%s to average", (gint64) q,
                   mask ? " in the clean set" : "");
      return FALSE;
    }
    for (int64_t j = 0; j < d; j++)
      protos[q * d + j] = (float) (sum[q * d + j] / (double) cnt[q]);
  }
  return TRUE;
}

/* ---- the terms ------------------------------------------------------------------- */

typedef struct {
  KdfContrastOptions o;
  char *head, *spec;
  KdfTensor *labels, *teacher, *protos, *mask; /* contiguous, or NULL */
  int64_t c;                                   /* proto: prototypes */
} TermData;

static void
term_data_free (gpointer p)
{
  TermData *d = p;
  g_free (d->head);
  g_free (d->spec);
  if (d->labels)
    kdf_tensor_unref (d->labels);
  if (d->teacher)
    kdf_tensor_unref (d->teacher);
  if (d->protos)
    kdf_tensor_unref (d->protos);
  if (d->mask)
    kdf_tensor_unref (d->mask);
  g_free (d);
}

static const char *const mode_names[] = { "supcon", "proto", "instance", "simclr" };

/* The batch rows the mask keeps: KEEP (n) gets their batch indices; returns how many. */
static int64_t
kept_rows (int32_t *keep, const TermData *d, const KdfLossBatch *b)
{
  int64_t nk = 0;
  for (int64_t i = 0; i < b->n; i++)
    if (!d->mask || kdf_tensor_u8 (d->mask)[b->rows[i]])
      keep[nk++] = (int32_t) i;
  return nk;
}

static gboolean
refuse_mixup (KdfLoss *l, const KdfLossBatch *b, GError **error)
{
  if (b->mix) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "loss '%s': the trainer's mixup is not supported by this term (set "
                 "student_update's mixup = 0%s)",
                 l->name, strcmp (l->name, "contrastive:proto") == 0 ? "; proto mixes its two views itself" : "");
    return FALSE;
  }
  return TRUE;
}

static gboolean
contrastive_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  TermData *d = l->data;
  if (!refuse_mixup (l, b, error))
    return FALSE;
  const int64_t n = b->n, dim = d->o.dim;
  const int nv = b->n_views;
  g_autofree int32_t *keep = g_new (int32_t, n);
  const int64_t nk = kept_rows (keep, d, b);
  *value = 0.0;
  if (nk < 2)
    return TRUE;
  g_autofree int32_t *y = g_new (int32_t, 2 * nk);
  if (d->labels)
    for (int64_t i = 0; i < nk; i++) {
      const int64_t c = d->o.mode == KDF_CONTRAST_PROTO ? d->c : G_MAXINT32;
      if (!kdf_loss_label_at (&y[i], l->name, kdf_tensor_i32 (d->labels), b->rows[keep[i]], c,
                              error))
        return FALSE;
    }
  /* proto's draws, once per batch (shared by both nets of a pair) */
  g_autofree int32_t *perm = NULL;
  double lambda = 1.0;
  if (d->o.mode == KDF_CONTRAST_PROTO) {
    GRand *rng = b->ext ? b->ext->rng : NULL;
    if (!rng) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss '%s': the batch carries no RNG for the mixup draws", l->name);
      return FALSE;
    }
    lambda = kdf_rand_beta (rng, d->o.beta);
    perm = g_new (int32_t, nk);
    for (int64_t i = 0; i < nk; i++)
      perm[i] = (int32_t) i;
    for (int64_t i = nk - 1; i > 0; i--) {
      int64_t j = g_rand_int_range (rng, 0, (gint32) (i + 1));
      int32_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  }
  g_autofree float *z = g_new (float, nv * nk * dim), *gz = g_new (float, nv * nk * dim);
  g_autofree float *t = d->teacher ? g_new (float, nk * dim) : NULL;
  g_autofree double *rl = g_new (double, nv * nk);
  if (t)
    for (int64_t i = 0; i < nk; i++)
      memcpy (t + i * dim, kdf_tensor_f32 (d->teacher) + (int64_t) b->rows[keep[i]] * dim,
              (size_t) dim * sizeof (float));
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    KdfModel *m = b->out[k][0].model;
    if (!m) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "loss '%s': the batch has no model to "
                   "put the projection head on", l->name);
      return FALSE;
    }
    float *gh = NULL;
    const float *h = kdf_model_head_train (m, d->head, d->spec, d->o.seed, b->threads, &gh, error);
    if (!h) {
      g_prefix_error (error, "loss '%s': ", l->name);
      return FALSE;
    }
    for (int v = 0; v < nv; v++)
      for (int64_t i = 0; i < nk; i++)
        memcpy (z + (v * nk + i) * dim, h + (v * n + keep[i]) * dim, (size_t) dim * sizeof (float));
    memset (gz, 0, (size_t) (nv * nk * dim) * sizeof (float));
    double val = 0.0;
    switch (d->o.mode) {
    case KDF_CONTRAST_SUPCON:
    case KDF_CONTRAST_SIMCLR:
      for (int v = 0; v < nv; v++)
        for (int64_t i = 0; i < nk; i++)
          y[v * nk + i] = d->o.mode == KDF_CONTRAST_SIMCLR ? (int32_t) i : y[i];
      val = kdf_supcon (gz, rl, z, y, nv * nk, dim, d->o.tau, l->weight);
      break;
    case KDF_CONTRAST_INSTANCE:
      for (int v = 0; v < nv; v++)
        val += kdf_instance_nce (gz + v * nk * dim, rl + v * nk, z + v * nk * dim, t, nk, dim,
                                 d->o.tau, l->weight / nv) / nv;
      break;
    case KDF_CONTRAST_PROTO: {
      const float *z2 = nv == 2 ? z + nk * dim : z;
      float *gz2 = nv == 2 ? gz + nk * dim : gz;
      val = kdf_proto_nce (gz, gz2, rl, z, z2, y, perm, lambda, kdf_tensor_f32 (d->protos), nk,
                           dim, d->c, d->o.tau, l->weight);
      if (nv == 2)
        memcpy (rl + nk, rl, (size_t) nk * sizeof (double)); /* one loss per pair of views */
      break;
    }
    }
    for (int v = 0; v < nv; v++)
      for (int64_t i = 0; i < nk; i++) {
        float *g = gh + (v * n + keep[i]) * dim;
        const float *s = gz + (v * nk + i) * dim;
        for (int64_t j = 0; j < dim; j++)
          g[j] += s[j];
      }
    if (k == 0 && b->sample_loss)
      for (int64_t i = 0; i < nk; i++) {
        double s = 0.0;
        for (int v = 0; v < nv; v++)
          s += rl[v * nk + i];
        b->sample_loss[keep[i]] += (float) (l->weight * s / nv);
      }
    total += val;
  }
  *value = total;
  return TRUE;
}

static gboolean
check_mask (const char *term, KdfTensor *mask, int64_t n, GError **error)
{
  if (!mask)
    return TRUE;
  if (mask->dtype != KDF_DTYPE_U8 || mask->rank != 1 || (n >= 0 && mask->shape[0] != n)) {
    g_autofree char *s = kdf_tensor_describe (mask);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: the mask must be u8[%" G_GINT64_FORMAT "], got %s",
                 term, (gint64) n, s);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_f32_2d (const char *term, const char *what, KdfTensor *t, int64_t rows, int64_t cols,
              GError **error)
{
  if (t->dtype != KDF_DTYPE_F32 || t->rank != 2 || t->shape[0] < 1 ||
      (rows >= 0 && t->shape[0] != rows) || (cols >= 0 && t->shape[1] != cols)) {
    g_autofree char *s = kdf_tensor_describe (t);
    char r[32] = "N", c[32] = "D";
    if (rows >= 0)
      g_snprintf (r, sizeof r, "%" G_GINT64_FORMAT, (gint64) rows);
    if (cols >= 0)
      g_snprintf (c, sizeof c, "%" G_GINT64_FORMAT, (gint64) cols);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: %s must be f32[%s,%s], got %s", term,
                 what, r, c, s);
    return FALSE;
  }
  return TRUE;
}

KdfLoss *
kdf_loss_contrastive_new (const KdfContrastOptions *o, KdfTensor *labels, KdfTensor *teacher,
                          KdfTensor *protos, KdfTensor *mask, double weight, GError **error)
{
  g_return_val_if_fail (o != NULL, NULL);
  if ((guint) o->mode > KDF_CONTRAST_SIMCLR) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "contrastive: unknown mode %d", (int) o->mode);
    return NULL;
  }
  g_autofree char *name = g_strdup_printf ("contrastive:%s", mode_names[o->mode]);
  if (!(o->tau > 0.0) || !isfinite (o->tau) || !isfinite (weight) || o->dim <= 0 ||
      o->hidden < 0 || (o->mode == KDF_CONTRAST_PROTO && !(o->beta > 0.0 && isfinite (o->beta)))) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s: need tau > 0, dim > 0, hidden >= 0, a finite weight and (proto) beta > 0",
                 name);
    return NULL;
  }
  const gboolean need_labels = o->mode == KDF_CONTRAST_SUPCON || o->mode == KDF_CONTRAST_PROTO;
  if (need_labels && !labels) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s needs labels", name);
    return NULL;
  }
  if (o->mode == KDF_CONTRAST_INSTANCE && !teacher) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s needs the teacher's embeddings", name);
    return NULL;
  }
  if (o->mode == KDF_CONTRAST_PROTO && !protos) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s needs prototypes", name);
    return NULL;
  }
  int64_t n = -1;
  if (labels && need_labels) {
    if (labels->dtype != KDF_DTYPE_I32 || labels->rank != 1) {
      g_autofree char *s = kdf_tensor_describe (labels);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: labels must be i32[N], got %s", name, s);
      return NULL;
    }
    n = labels->shape[0];
  }
  if (teacher && o->mode == KDF_CONTRAST_INSTANCE) {
    if (!check_f32_2d (name, "the teacher's embeddings", teacher, n, o->dim, error))
      return NULL;
    n = teacher->shape[0];
  }
  if (protos && o->mode == KDF_CONTRAST_PROTO &&
      !check_f32_2d (name, "the prototypes", protos, -1, o->dim, error))
    return NULL;
  if (!check_mask (name, mask, n, error))
    return NULL;
  if (mask)
    n = mask->shape[0];
  TermData *d = g_new0 (TermData, 1);
  d->o = *o;
  d->head = g_strdup (o->head && *o->head ? o->head : "proj");
  d->o.head = d->head;
  d->spec = o->hidden > 0 ? g_strdup_printf ("%d-%d", o->hidden, o->dim) : g_strdup_printf ("%d", o->dim);
  if (need_labels)
    d->labels = kdf_tensor_contiguous (labels);
  if (o->mode == KDF_CONTRAST_INSTANCE)
    d->teacher = kdf_tensor_contiguous (teacher);
  if (o->mode == KDF_CONTRAST_PROTO) {
    d->protos = kdf_tensor_contiguous (protos);
    d->c = protos->shape[0];
  }
  d->mask = mask ? kdf_tensor_contiguous (mask) : NULL;
  if ((d->teacher && !kdf_loss_check_finite (name, "the teacher's embeddings", d->teacher, FALSE, error)) ||
      (d->protos && !kdf_loss_check_finite (name, "the prototypes", d->protos, FALSE, error))) {
    term_data_free (d);
    return NULL;
  }
  guint needs = KDF_LOSS_NEEDS_FEATURES;
  if (o->mode != KDF_CONTRAST_INSTANCE)
    needs |= KDF_LOSS_NEEDS_TWO_VIEWS;
  KdfLoss *l = kdf_loss_new (name, weight, needs, contrastive_compute, d, term_data_free);
  l->n_samples = n;
  return l;
}

/* ---- rotation ------------------------------------------------------------------- */

static gboolean
rotation_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  TermData *d = l->data;
  *value = 0.0;
  if (!b->ext || !b->ext->rot) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "loss '%s': the batch has no rotated view (the trainer makes one for a term "
                 "that needs rotations)", l->name);
    return FALSE;
  }
  const int64_t n = b->n, off = (int64_t) b->n_views * n;
  g_autofree int32_t *keep = g_new (int32_t, n);
  const int64_t nk = kept_rows (keep, d, b);
  if (nk == 0)
    return TRUE;
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    KdfModel *m = b->ext->rot_out[k].model;
    float *gh = NULL;
    const float *h = m ? kdf_model_head_train (m, d->head, "4", d->o.seed, b->threads, &gh, error)
                       : NULL;
    if (!h) {
      if (!m)
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "no model");
      g_prefix_error (error, "loss '%s': ", l->name);
      return FALSE;
    }
    double sum = 0.0;
    const double gs = l->weight / (double) nk;
    for (int64_t ii = 0; ii < nk; ii++) {
      const int64_t i = keep[ii];
      const float *q = h + (off + i) * 4;
      const int r = b->ext->rot[i];
      double mx = q[0];
      for (int j = 1; j < 4; j++)
        mx = fmax (mx, q[j]);
      double se = 0.0;
      for (int j = 0; j < 4; j++)
        se += exp (q[j] - mx);
      const double lse = mx + log (se), li = lse - q[r];
      sum += li;
      if (k == 0 && b->sample_loss)
        b->sample_loss[i] += (float) (l->weight * li);
      float *g = gh + (off + i) * 4;
      for (int j = 0; j < 4; j++)
        g[j] += (float) (gs * (exp (q[j] - lse) - (j == r ? 1.0 : 0.0)));
    }
    total += sum / (double) nk;
  }
  *value = total;
  return TRUE;
}

KdfLoss *
kdf_loss_rotation_new (KdfTensor *mask, const char *head, guint64 seed, double weight,
                       GError **error)
{
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "rotation: the weight must be finite");
    return NULL;
  }
  if (!check_mask ("rotation", mask, mask ? mask->shape[0] : -1, error))
    return NULL;
  TermData *d = g_new0 (TermData, 1);
  d->head = g_strdup (head && *head ? head : "rot");
  d->o.seed = seed;
  d->mask = mask ? kdf_tensor_contiguous (mask) : NULL;
  KdfLoss *l = kdf_loss_new ("rotation", weight, KDF_LOSS_NEEDS_FEATURES | KDF_LOSS_NEEDS_ROTATION,
                             rotation_compute, d, term_data_free);
  l->n_samples = mask ? mask->shape[0] : -1;
  return l;
}

/* ---- feature hint ----------------------------------------------------------------- */

static gboolean
hint_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  TermData *d = l->data;
  *value = 0.0;
  const int64_t n = b->n, tw = d->teacher->shape[1];
  const int nv = b->n_views;
  g_autofree int32_t *keep = g_new (int32_t, n);
  const int64_t nk = kept_rows (keep, d, b);
  if (nk == 0)
    return TRUE;
  const float *tf = kdf_tensor_f32 (d->teacher);
  g_autofree double *t = g_new (double, tw);
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    KdfModel *m = b->out[k][0].model;
    float *gh = NULL;
    const float *h = m ? kdf_model_head_train (m, d->head, d->spec, d->o.seed, b->threads, &gh, error)
                       : NULL;
    if (!h) {
      if (!m)
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "no model");
      g_prefix_error (error, "loss '%s': ", l->name);
      return FALSE;
    }
    const double denom = (double) nk * (double) tw * nv;
    double sum = 0.0;
    for (int64_t ii = 0; ii < nk; ii++) {
      const int64_t i = keep[ii];
      const float *ta = tf + (int64_t) b->rows[i] * tw;
      const float *tb = b->mix ? tf + (int64_t) b->rows[b->mix[i]] * tw : ta;
      const double la = b->mix ? b->lambda : 1.0;
      for (int64_t j = 0; j < tw; j++)
        t[j] = la * ta[j] + (1.0 - la) * tb[j];
      double li = 0.0;
      for (int v = 0; v < nv; v++) {
        const float *a = h + (v * n + i) * tw;
        float *g = gh + (v * n + i) * tw;
        for (int64_t j = 0; j < tw; j++) {
          const double e = a[j] - t[j];
          li += e * e;
          g[j] += (float) (l->weight * 2.0 * e / denom);
        }
      }
      sum += li;
      if (k == 0 && b->sample_loss)
        b->sample_loss[i] += (float) (l->weight * li / ((double) tw * nv));
    }
    total += sum / denom;
  }
  *value = total;
  (void) error;
  return TRUE;
}

KdfLoss *
kdf_loss_hint_new (KdfTensor *teacher, KdfTensor *mask, const char *head, guint64 seed,
                   double weight, GError **error)
{
  g_return_val_if_fail (teacher != NULL, NULL);
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "hint: the weight must be finite");
    return NULL;
  }
  if (!check_f32_2d ("hint", "the teacher's features", teacher, -1, -1, error))
    return NULL;
  if (!check_mask ("hint", mask, teacher->shape[0], error))
    return NULL;
  TermData *d = g_new0 (TermData, 1);
  d->head = g_strdup (head && *head ? head : "hint");
  d->spec = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) teacher->shape[1]);
  d->o.seed = seed;
  d->teacher = kdf_tensor_contiguous (teacher);
  d->mask = mask ? kdf_tensor_contiguous (mask) : NULL;
  if (!kdf_loss_check_finite ("hint", "the teacher's features", d->teacher, FALSE, error)) {
    term_data_free (d);
    return NULL;
  }
  KdfLoss *l = kdf_loss_new ("hint", weight, KDF_LOSS_NEEDS_FEATURES, hint_compute, d,
                             term_data_free);
  l->n_samples = teacher->shape[0];
  return l;
}
