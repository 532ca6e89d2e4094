/* Loss terms of the noisy-label methods (METHODS §1): Blind KD's masked-logit
 * distillation ("blind") and robust cross-entropy, and the generalised cross-entropy
 * over candidate sets of the SD/PLL student. Written as loss.c writes ce and kd: the
 * bound per-sample inputs are read at the batch's dataset rows, sums run in double,
 * each term ADDS weight × its gradient, and mixup mixes targets with the batch's λ.
 *
 * Shapes: a batch of n rows, C classes; z (n×C) the trained network's logits, z^P
 * (n×C) its partner's on the same batch (pair training). */
#include "config.h"

#include "nn-private.h"

#include <math.h>
#include <string.h>

/* ---- shared ----------------------------------------------------------------------- */

/* p (C) = softmax(z) and logp (C) = log_softmax(z), in double (either may be NULL). */
static void
row_softmax (double *p, double *logp, const float *z, int64_t c)
{
  double mx = z[0];
  for (int64_t j = 1; j < c; j++)
    mx = z[j] > mx ? z[j] : mx;
  double s = 0.0;
  for (int64_t j = 0; j < c; j++)
    s += exp (z[j] - mx);
  const double ls = log (s);
  for (int64_t j = 0; j < c; j++) {
    const double lj = z[j] - mx - ls;
    if (logp)
      logp[j] = lj;
    if (p)
      p[j] = exp (lj);
  }
}

static gboolean
check_vector (const char *term, const char *what, KdfTensor *t, KdfDType dtype, int64_t n,
              GError **error)
{
  if (t->dtype != dtype || t->rank != 1 || (n >= 0 && t->shape[0] != n)) {
    g_autofree char *d = kdf_tensor_describe (t);
    if (n >= 0)
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: %s must be %s[%" G_GINT64_FORMAT "], got %s",
                   term, what, kdf_dtype_name (dtype), (gint64) n, d);
    else
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: %s must be %s[N], got %s", term, what,
                   kdf_dtype_name (dtype), d);
    return FALSE;
  }
  return TRUE;
}

/* N×C f32 with N rows and at least C_MIN columns. */
static gboolean
check_matrix (const char *term, const char *what, KdfTensor *t, int64_t n, int64_t c_min,
              GError **error)
{
  if (t->dtype != KDF_DTYPE_F32 || t->rank != 2 || t->shape[0] != n || t->shape[1] < c_min) {
    g_autofree char *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: %s must be f32[%" G_GINT64_FORMAT ",C] with C ≥ %" G_GINT64_FORMAT ", got %s",
                 term, what, (gint64) n, (gint64) c_min, d);
    return FALSE;
  }
  return TRUE;
}

/* Labels ≥ 0, and < C when C is known (c > 0). */
static gboolean
check_labels (const char *term, const int32_t *y, int64_t n, int64_t c, GError **error)
{
  for (int64_t i = 0; i < n; i++)
    if (y[i] < 0 || (c > 0 && y[i] >= c)) {
      if (c > 0)
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "%s: label %d of row %" G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ")",
                     term, y[i], (gint64) i, (gint64) c);
      else
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "%s: label %d of row %" G_GINT64_FORMAT " is negative", term, y[i], (gint64) i);
      return FALSE;
    }
  return TRUE;
}

/* In partner mode the other network must be there and have as many classes. */
static gboolean
check_partner (KdfLoss *l, const KdfLossBatch *b, int k, GError **error)
{
  if (b->n_nets < 2) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "loss '%s' reads the partner network, but the batch has one network (train a pair: "
                 "set arch2)",
                 l->name);
    return FALSE;
  }
  if (b->out[1 - k][0].n_classes != b->out[k][0].n_classes) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "loss '%s': network %d has %" G_GINT64_FORMAT " classes, its partner %" G_GINT64_FORMAT,
                 l->name, k, (gint64) b->out[k][0].n_classes, (gint64) b->out[1 - k][0].n_classes);
    return FALSE;
  }
  return TRUE;
}

/* The (at most two) mixup sources of batch row I: dataset rows and their weights. */
static int
mix_sources (const KdfLossBatch *b, int64_t i, int32_t rows[2], double lam[2])
{
  rows[0] = b->rows[i];
  if (!b->mix) {
    lam[0] = 1.0;
    return 1;
  }
  rows[1] = b->rows[b->mix[i]];
  lam[0] = b->lambda;
  lam[1] = 1.0 - b->lambda;
  return 2;
}

/* ---- blind: masked-logit distillation (Blind KD) ---------------------------------- */

typedef struct {
  KdfTensor *labels;  /* N i32 contiguous */
  KdfTensor *teacher; /* N×C f32 contiguous, or NULL: the partner network */
} BlindData;

static void
blind_data_free (gpointer p)
{
  BlindData *d = p;
  kdf_tensor_unref (d->labels);
  kdf_tensor_unref (d->teacher);
  g_free (d);
}

/* One sweep over the batch: student logits ZS (n×C) against the teacher, which is
 * either the partner's logits ZT (n×C, same batch) or the bound rows. Per sample, over
 * its mixup sources s with weight λ_s, label y_s and target t_s:
 *   ℓ_i = Σ_s λ_s Σ_{c≠y_s} (t_sc − z_c)² / (C−1),
 *   ∂ℓ_i/∂z_c = 2 Σ_s λ_s [c≠y_s] (z_c − t_sc) / (C−1),  ∂ℓ_i/∂t_sc = −the s-th part.
 * Writes weight/n × the gradients into GS and (when non-NULL, partner mode only) GT.
 * Returns the batch mean in *VALUE; adds weight × ℓ_i to SL when non-NULL. */
static gboolean
blind_sweep (KdfLoss *l, const KdfLossBatch *b, const float *zs, float *gs, const float *zt,
             float *gt, int64_t c, float *sl, double *value, GError **error)
{
  const BlindData *d = l->data;
  const int32_t *y = kdf_tensor_i32 (d->labels);
  const int64_t n = b->n;
  const double inv = 1.0 / (double) (c - 1), gscale = l->weight / (double) n;
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    int32_t rows[2], lab[2];
    double lam[2];
    const int ns = mix_sources (b, i, rows, lam);
    for (int s = 0; s < ns; s++)
      if (!kdf_loss_label_at (&lab[s], l->name, y, rows[s], c, error))
        return FALSE;
    const float *z = zs + i * c;
    double li = 0.0;
    for (int s = 0; s < ns; s++) {
      const float *t = zt ? zt + i * c : kdf_tensor_f32 (d->teacher) + (int64_t) rows[s] * c;
      for (int64_t j = 0; j < c; j++) {
        if (j == lab[s])
          continue;
        const double e = (double) z[j] - (double) t[j];
        li += lam[s] * e * e * inv;
        const double g = gscale * lam[s] * 2.0 * e * inv;
        if (gs)
          gs[i * c + j] += (float) g;
        if (gt)
          gt[i * c + j] -= (float) g;
      }
    }
    sum += li;
    if (sl)
      sl[i] += (float) (l->weight * li);
  }
  *value = sum / (double) n;
  return TRUE;
}

static gboolean
blind_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  const BlindData *d = l->data;
  double total = 0.0, v = 0.0;
  if (d->teacher) {
    /* a frozen teacher: each trained net against the bound logits */
    for (int k = 0; k < b->n_nets; k++) {
      if (!(l->nets & (1u << k)))
        continue;
      const KdfLossView *o = &b->out[k][0];
      if (!blind_sweep (l, b, o->logits, o->grad_logits, NULL, NULL, o->n_classes,
                        k == 0 ? b->sample_loss : NULL, &v, error))
        return FALSE;
      total += v;
    }
    *value = total;
    return TRUE;
  }
  /* partner mode: the student is the net the term is set to, the teacher the other */
  const int k = (l->nets & KDF_LOSS_NET0) ? 0 : 1;
  if (!check_partner (l, b, k, error))
    return FALSE;
  const int64_t c = b->out[k][0].n_classes;
  if (c < 2) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "loss '%s' needs at least 2 classes", l->name);
    return FALSE;
  }
  const KdfLossView *s = &b->out[k][0], *t = &b->out[1 - k][0];
  const gboolean both = (l->nets & KDF_LOSS_BOTH) == KDF_LOSS_BOTH;
  if (!blind_sweep (l, b, s->logits, s->grad_logits, t->logits, both ? t->grad_logits : NULL, c,
                    k == 0 || both ? b->sample_loss : NULL, value, error))
    return FALSE;
  return TRUE;
}

KdfLoss *
kdf_loss_blind_new (KdfTensor *labels, KdfTensor *teacher_logits, double weight, GError **error)
{
  g_return_val_if_fail (labels != NULL, NULL);
  if (!check_vector ("blind", "labels", labels, KDF_DTYPE_I32, -1, error))
    return NULL;
  const int64_t n = labels->shape[0];
  if (teacher_logits && !check_matrix ("blind", "teacher logits", teacher_logits, n, 2, error))
    return NULL;
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "blind: the term weight must be finite");
    return NULL;
  }
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (labels);
  g_autoptr (KdfTensor) zt = teacher_logits ? kdf_tensor_contiguous (teacher_logits) : NULL;
  const int64_t c = zt ? zt->shape[1] : -1;
  if (!check_labels ("blind", kdf_tensor_i32 (y), n, c, error))
    return NULL;
  if (zt && !kdf_loss_check_finite ("blind", "teacher logits", zt, FALSE, error))
    return NULL;
  BlindData *d = g_new0 (BlindData, 1);
  d->labels = g_steal_pointer (&y);
  d->teacher = g_steal_pointer (&zt);
  guint needs = KDF_LOSS_NEEDS_LOGITS | (d->teacher ? KDF_LOSS_NEEDS_TEACHER : KDF_LOSS_NEEDS_PARTNER);
  KdfLoss *l = kdf_loss_new ("blind", weight, needs, blind_compute, d, blind_data_free);
  l->n_samples = n;
  l->n_classes = c;
  return l;
}

/* ---- robust_ce (Blind KD after the split) ------------------------------------------ */

/* Kaiser et al., arXiv 2211.11355: the released code's robust_target, per sample. */
gboolean
kdf_robust_target (double *t, const double *p, int64_t c, int32_t label, double beta,
                   GError **error)
{
  g_return_val_if_fail (t != NULL && p != NULL && c > 0, FALSE);
  if (label < 0 || label >= c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "robust target: label %d is outside [0, %" G_GINT64_FORMAT ")", label, (gint64) c);
    return FALSE;
  }
  if (!(beta >= 0.0 && beta <= 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "robust target: β = %g is outside [0, 1]",
                 beta);
    return FALSE;
  }
  double s = 0.0;
  for (int64_t j = 0; j < c; j++) {
    const double base = (j == label ? 1.0 - beta : 0.0) + beta * p[j];
    t[j] = base > 0.0 ? pow (base, 1.0 + beta) : 0.0;
    s += t[j];
  }
  if (!(s > 0.0) || !isfinite (s)) {
    for (int64_t j = 0; j < c; j++)
      t[j] = j == label;
    return TRUE;
  }
  for (int64_t j = 0; j < c; j++)
    t[j] /= s;
  return TRUE;
}

typedef struct {
  KdfTensor *labels; /* N i32 */
  KdfTensor *groups; /* N i32 in 1..4, or NULL (β = 0) */
  KdfTensor *probs;  /* N×C f32, or NULL: the partner network */
  double alphas[4];
} RobustData;

static void
robust_data_free (gpointer p)
{
  RobustData *d = p;
  kdf_tensor_unref (d->labels);
  kdf_tensor_unref (d->groups);
  kdf_tensor_unref (d->probs);
  g_free (d);
}

/* Per sample: u = Σ_s λ_s t(ỹ_s, β_s, p_s) (a distribution: each t sums to 1),
 *   ℓ_i = −Σ_c u_c log softmax(z)_c,  ∂ℓ_i/∂z_c = softmax(z)_c − u_c,
 * with p_s the bound row of source s, or the partner's softmax on this batch row. */
static gboolean
robust_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  const RobustData *d = l->data;
  const int32_t *y = kdf_tensor_i32 (d->labels);
  const int32_t *grp = d->groups ? kdf_tensor_i32 (d->groups) : NULL;
  const int64_t n = b->n;
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    /* without groups every β is 0 and p does not matter: no partner needed */
    const gboolean partner = grp && !d->probs;
    if (partner && !check_partner (l, b, k, error))
      return FALSE;
    const KdfLossView *v = &b->out[k][0];
    const int64_t c = v->n_classes;
    g_autofree double *u = g_new (double, c), *t = g_new (double, c), *p = g_new (double, c),
                      *logs = g_new (double, c);
    const double gscale = l->weight / (double) n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      int32_t rows[2];
      double lam[2];
      const int ns = mix_sources (b, i, rows, lam);
      memset (u, 0, (size_t) c * sizeof (double));
      if (partner)
        row_softmax (p, NULL, b->out[1 - k][0].logits + i * c, c);
      else if (!d->probs)
        memset (p, 0, (size_t) c * sizeof (double));
      for (int s = 0; s < ns; s++) {
        int32_t lab;
        if (!kdf_loss_label_at (&lab, l->name, y, rows[s], c, error))
          return FALSE;
        const double beta = grp ? d->alphas[grp[rows[s]] - 1] : 0.0;
        if (d->probs) {
          const float *pr = kdf_tensor_f32 (d->probs) + (int64_t) rows[s] * c;
          for (int64_t j = 0; j < c; j++)
            p[j] = pr[j];
        }
        if (!kdf_robust_target (t, p, c, lab, beta, error))
          return FALSE;
        for (int64_t j = 0; j < c; j++)
          u[j] += lam[s] * t[j];
      }
      row_softmax (NULL, logs, v->logits + i * c, c);
      double li = 0.0;
      for (int64_t j = 0; j < c; j++)
        li -= u[j] * logs[j];
      sum += li;
      if (b->sample_loss && k == 0)
        b->sample_loss[i] += (float) (l->weight * li);
      if (v->grad_logits) {
        float *g = v->grad_logits + i * c;
        for (int64_t j = 0; j < c; j++)
          g[j] += (float) (gscale * (exp (logs[j]) - u[j]));
      }
    }
    total += sum / (double) n;
  }
  *value = total;
  return TRUE;
}

KdfLoss *
kdf_loss_robust_ce_new (KdfTensor *labels, KdfTensor *groups, KdfTensor *probs,
                        const double alphas[4], double weight, GError **error)
{
  g_return_val_if_fail (labels != NULL && alphas != NULL, NULL);
  if (!check_vector ("robust_ce", "labels", labels, KDF_DTYPE_I32, -1, error))
    return NULL;
  const int64_t n = labels->shape[0];
  if (groups && !check_vector ("robust_ce", "groups", groups, KDF_DTYPE_I32, n, error))
    return NULL;
  if (probs && !check_matrix ("robust_ce", "probs", probs, n, 1, error))
    return NULL;
  for (int g = 0; g < 4; g++) {
    if (!(alphas[g] >= 0.0 && alphas[g] <= 1.0)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "robust_ce: alpha%d = %g is outside [0, 1]", g + 1, alphas[g]);
      return NULL;
    }
    if (g > 0 && alphas[g] < alphas[g - 1]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "robust_ce: the alphas must not decrease from group 1 (highest agreement) to "
                   "group 4, got alpha%d = %g > alpha%d = %g",
                   g, alphas[g - 1], g + 1, alphas[g]);
      return NULL;
    }
  }
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "robust_ce: the term weight must be finite");
    return NULL;
  }
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (labels);
  g_autoptr (KdfTensor) gr = groups ? kdf_tensor_contiguous (groups) : NULL;
  g_autoptr (KdfTensor) pr = probs ? kdf_tensor_contiguous (probs) : NULL;
  const int64_t c = pr ? pr->shape[1] : -1;
  if (!check_labels ("robust_ce", kdf_tensor_i32 (y), n, c, error))
    return NULL;
  if (gr)
    for (int64_t i = 0; i < n; i++) {
      const int32_t v = kdf_tensor_i32 (gr)[i];
      if (v < 1 || v > 4) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "robust_ce: group %d of row %" G_GINT64_FORMAT " is outside 1..4", v, (gint64) i);
        return NULL;
      }
    }
  if (pr && !kdf_loss_check_finite ("robust_ce", "probs", pr, TRUE, error))
    return NULL;
  RobustData *d = g_new0 (RobustData, 1);
  d->labels = g_steal_pointer (&y);
  d->groups = g_steal_pointer (&gr);
  d->probs = g_steal_pointer (&pr);
  memcpy (d->alphas, alphas, sizeof d->alphas);
  guint needs = KDF_LOSS_NEEDS_LOGITS | (d->groups && !d->probs ? KDF_LOSS_NEEDS_PARTNER : 0);
  KdfLoss *l = kdf_loss_new ("robust_ce", weight, needs, robust_compute, d, robust_data_free);
  l->n_samples = n;
  l->n_classes = c;
  return l;
}

/* ---- gce: generalised cross-entropy over candidate sets (PLL) ---------------------- */

typedef struct {
  KdfTensor *cand; /* N×C u8 mask, N×C f32 weights or N i32 labels */
  double q;
} GceData;

static void
gce_data_free (gpointer p)
{
  GceData *d = p;
  kdf_tensor_unref (d->cand);
  g_free (d);
}

/* w (C) += s · the normalised candidate weights of dataset row R. */
static gboolean
gce_add_weights (double *w, const GceData *d, int32_t r, double s, int64_t c, const char *name,
                 GError **error)
{
  switch (d->cand->dtype) {
  case KDF_DTYPE_I32: {
    int32_t y;
    if (!kdf_loss_label_at (&y, name, kdf_tensor_i32 (d->cand), r, c, error))
      return FALSE;
    w[y] += s;
    return TRUE;
  }
  case KDF_DTYPE_U8: {
    const uint8_t *m = kdf_tensor_u8 (d->cand) + (int64_t) r * c;
    int64_t cnt = 0;
    for (int64_t j = 0; j < c; j++)
      cnt += m[j] != 0;
    for (int64_t j = 0; j < c; j++)
      if (m[j])
        w[j] += s / (double) cnt; /* cnt ≥ 1: checked at construction */
    return TRUE;
  }
  default: {
    const float *f = kdf_tensor_f32 (d->cand) + (int64_t) r * c;
    double tot = 0.0;
    for (int64_t j = 0; j < c; j++)
      tot += f[j];
    for (int64_t j = 0; j < c; j++)
      w[j] += s * f[j] / tot;
    return TRUE;
  }
  }
}

/* Zhang & Sabuncu (NeurIPS 2018), per candidate k: (1 − p_k^q)/q, with
 * ∂p_k^q/∂z_j = q p_k^q (δ_kj − p_j). Per sample with normalised weights w (Σw = 1):
 *   ℓ_i = Σ_k w_k (1 − p_k^q)/q,  ∂ℓ_i/∂z_j = p_j Σ_k w_k p_k^q − w_j p_j^q. */
static gboolean
gce_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  const GceData *d = l->data;
  const int64_t n = b->n;
  const double q = d->q;
  double total = 0.0;
  for (int k = 0; k < b->n_nets; k++) {
    if (!(l->nets & (1u << k)))
      continue;
    const KdfLossView *v = &b->out[k][0];
    const int64_t c = v->n_classes;
    g_autofree double *w = g_new (double, c), *logp = g_new (double, c), *pq = g_new (double, c);
    const double gscale = l->weight / (double) n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      int32_t rows[2];
      double lam[2];
      const int ns = mix_sources (b, i, rows, lam);
      memset (w, 0, (size_t) c * sizeof (double));
      for (int s = 0; s < ns; s++)
        if (!gce_add_weights (w, d, rows[s], lam[s], c, l->name, error))
          return FALSE;
      row_softmax (NULL, logp, v->logits + i * c, c);
      double li = 0.0, wpq = 0.0;
      for (int64_t j = 0; j < c; j++) {
        pq[j] = exp (q * logp[j]);
        li += w[j] * (1.0 - pq[j]) / q;
        wpq += w[j] * pq[j];
      }
      sum += li;
      if (b->sample_loss && k == 0)
        b->sample_loss[i] += (float) (l->weight * li);
      if (v->grad_logits) {
        float *g = v->grad_logits + i * c;
        for (int64_t j = 0; j < c; j++)
          g[j] += (float) (gscale * (exp (logp[j]) * wpq - w[j] * pq[j]));
      }
    }
    total += sum / (double) n;
  }
  *value = total;
  return TRUE;
}

KdfLoss *
kdf_loss_gce_new (KdfTensor *candidates, double q, double weight, GError **error)
{
  g_return_val_if_fail (candidates != NULL, NULL);
  const KdfDType dt = candidates->dtype;
  const gboolean labels = dt == KDF_DTYPE_I32 && candidates->rank == 1;
  const gboolean sets = (dt == KDF_DTYPE_U8 || dt == KDF_DTYPE_F32) && candidates->rank == 2 &&
                        candidates->shape[1] >= 1;
  if (!labels && !sets) {
    g_autofree char *desc = kdf_tensor_describe (candidates);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "gce: candidates must be a u8[N,C] mask, f32[N,C] weights or i32[N] labels, got %s",
                 desc);
    return NULL;
  }
  if (!(q > 0.0 && q <= 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "gce: q = %g is outside (0, 1]", q);
    return NULL;
  }
  if (!isfinite (weight)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "gce: the term weight must be finite");
    return NULL;
  }
  g_autoptr (KdfTensor) cand = kdf_tensor_contiguous (candidates);
  const int64_t n = cand->shape[0], c = sets ? cand->shape[1] : -1;
  if (labels && !check_labels ("gce", kdf_tensor_i32 (cand), n, -1, error))
    return NULL;
  if (dt == KDF_DTYPE_F32 && !kdf_loss_check_finite ("gce", "candidate weights", cand, TRUE, error))
    return NULL;
  if (sets)
    for (int64_t i = 0; i < n; i++) {
      double tot = 0.0;
      for (int64_t j = 0; j < c; j++)
        tot += dt == KDF_DTYPE_U8 ? (kdf_tensor_u8 (cand)[i * c + j] != 0)
                                  : kdf_tensor_f32 (cand)[i * c + j];
      if (!(tot > 0.0)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "gce: row %" G_GINT64_FORMAT " has no candidate (an empty set)", (gint64) i);
        return NULL;
      }
    }
  GceData *d = g_new0 (GceData, 1);
  d->cand = g_steal_pointer (&cand);
  d->q = q;
  KdfLoss *l = kdf_loss_new ("gce", weight, KDF_LOSS_NEEDS_LOGITS, gce_compute, d, gce_data_free);
  l->n_samples = n;
  l->n_classes = c;
  return l;
}
