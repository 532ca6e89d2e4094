/* loss_ranking: small-loss selection (Co-teaching, Han et al., NeurIPS 2018;
 * AML-KD, Jiang et al., TNNLS 2023, per mini-batch), its threshold and Otsu forms,
 * the per-sample cross entropy it usually ranks, and Co-teaching's keep schedule. */
#include "config.h"

#include "detect-private.h"

#include <kdflow/dist.h>

#include <math.h>
#include <string.h>

void
kdf_rank_options_init (KdfRankOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->keep = 1.0;
  opt->scope = KDF_RANK_SCOPE_GLOBAL;
  opt->batch = 128;
}

/* Co-teaching's forget-rate schedule: keep(t) = 1 − τ·min(t/T_k, 1). */
double
kdf_coteaching_keep (int64_t t, double tau, int64_t t_k)
{
  double frac = t_k <= 0 ? 1.0 : MIN ((double) t / (double) t_k, 1.0);
  if (frac < 0)
    frac = 0;
  return 1.0 - tau * frac;
}

/* How many of M samples a fraction KEEP keeps: ⌊keep·m⌋ as Co-teaching's
 * int(remember_rate · m), with a 1e-9 guard so that 0.29·100 = 28.999… keeps 29. */
static int64_t
kept_of (double keep, int64_t m)
{
  double k = floor (keep * (double) m + 1e-9);
  if (k < 0)
    return 0;
  if (k > (double) m)
    return m;
  return (int64_t) k;
}

/* OPT's params; with per_class, the labels FROM..TO too (LABELS_TOO). */
static gboolean
check_options_rows (const KdfRankOptions *opt, int64_t from, int64_t to, gboolean need_keep,
                    gboolean labels_too, GError **error)
{
  if (need_keep && !(opt->keep >= 0.0 && opt->keep <= 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "loss_ranking: expected keep in [0,1], found %g", opt->keep);
    return FALSE;
  }
  switch (opt->scope) {
  case KDF_RANK_SCOPE_GLOBAL:
    return TRUE;
  case KDF_RANK_SCOPE_PER_CLASS:
    if (opt->labels == NULL || opt->n_classes < 1) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss_ranking: scope per_class needs the given labels and n_classes ≥ 1");
      return FALSE;
    }
    if (!labels_too || kdf_check_labels (opt->labels + from, to - from, opt->n_classes,
                                         "loss_ranking: labels", error))
      return TRUE;
    if (from > 0)
      g_prefix_error (error, "rows from %" G_GINT64_FORMAT ": ", (gint64) from);
    return FALSE;
  case KDF_RANK_SCOPE_BATCH:
    if (opt->batch < 1) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss_ranking: expected batch ≥ 1, found %" G_GINT64_FORMAT, opt->batch);
      return FALSE;
    }
    return TRUE;
  default:
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "loss_ranking: unknown scope %d",
                 (int) opt->scope);
    return FALSE;
  }
}

static gboolean
check_options (const KdfRankOptions *opt, int64_t n, gboolean need_keep, GError **error)
{
  return check_options_rows (opt, 0, n, need_keep, TRUE, error);
}

/* One global stable sort by loss, then a stable counting sort by group (class or
 * block): inside each group the samples end up ordered by (loss, index), so the
 * position in the group is the rank. O(N). *GROUP_OUT[i] is the sample's group and
 * *SIZES_OUT[g] the size of group g (both g_free'd by the caller). */
static void
rank_groups (int32_t *rank, int32_t *order, int64_t **sizes_out, int64_t *n_groups_out,
             int32_t **group_out, const float *loss, int64_t n, const KdfRankOptions *opt)
{
  int32_t *sorted = g_new (int32_t, n);
  kdf_argsort_f32 (sorted, loss, n);

  int64_t n_groups = 1;
  int32_t *group = g_new0 (int32_t, n);
  if (opt->scope == KDF_RANK_SCOPE_PER_CLASS) {
    n_groups = opt->n_classes;
    memcpy (group, opt->labels, (size_t) n * sizeof *group);
  } else if (opt->scope == KDF_RANK_SCOPE_BATCH) {
    n_groups = (n + opt->batch - 1) / opt->batch;
    for (int64_t i = 0; i < n; i++)
      group[i] = (int32_t) (i / opt->batch);
  }
  int64_t *size = g_new0 (int64_t, n_groups);
  int64_t *next = g_new0 (int64_t, n_groups);
  for (int64_t i = 0; i < n; i++)
    size[group[i]]++;
  for (int64_t g = 1; g < n_groups; g++)
    next[g] = next[g - 1] + size[g - 1];
  for (int64_t p = 0; p < n; p++) {
    int32_t i = sorted[p];
    order[next[group[i]]++] = i;
  }
  int64_t start = 0;
  for (int64_t g = 0; g < n_groups; g++) {
    for (int64_t p = start; p < start + size[g]; p++)
      rank[order[p]] = (int32_t) (p - start);
    start += size[g];
  }
  g_free (next);
  g_free (sorted);
  *sizes_out = size;
  *n_groups_out = n_groups;
  *group_out = group;
}

gboolean
kdf_loss_rank (const float *loss, int64_t n, const KdfRankOptions *opt, uint8_t *clean,
               int32_t *rank, int64_t *n_clean, GError **error)
{
  g_return_val_if_fail (loss != NULL && opt != NULL, FALSE);
  if (!kdf_check_size (n, 1, "loss_ranking", error) || !check_options (opt, n, TRUE, error) ||
      !kdf_check_finite_f32 (loss, n, "loss_ranking: losses", error))
    return FALSE;

  int32_t *r = rank ? rank : g_new (int32_t, n);
  int32_t *order = g_new (int32_t, n);
  int64_t *size, n_groups;
  int32_t *group;
  rank_groups (r, order, &size, &n_groups, &group, loss, n, opt);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    gboolean c = r[i] < kept_of (opt->keep, size[group[i]]);
    if (clean)
      clean[i] = c ? 1 : 0;
    kept += c;
  }
  if (n_clean)
    *n_clean = kept;
  g_free (size);
  g_free (group);
  g_free (order);
  if (r != rank)
    g_free (r);
  return TRUE;
}

gboolean
kdf_loss_rank_threshold (const float *loss, int64_t n, double threshold,
                         const KdfRankOptions *opt, uint8_t *clean, int32_t *rank,
                         int64_t *n_clean, GError **error)
{
  g_return_val_if_fail (loss != NULL, FALSE);
  KdfRankOptions defaults;
  if (opt == NULL) {
    kdf_rank_options_init (&defaults);
    opt = &defaults;
  }
  if (!kdf_check_size (n, 1, "loss_ranking", error) || !check_options (opt, n, FALSE, error) ||
      !kdf_check_finite_f32 (loss, n, "loss_ranking: losses", error))
    return FALSE;
  if (isnan (threshold)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "loss_ranking: the threshold is NaN");
    return FALSE;
  }
  if (rank) {
    int32_t *order = g_new (int32_t, n);
    int64_t *size, n_groups;
    int32_t *group;
    rank_groups (rank, order, &size, &n_groups, &group, loss, n, opt);
    g_free (size);
    g_free (group);
    g_free (order);
  }
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    gboolean c = (double) loss[i] < threshold;
    if (clean)
      clean[i] = c ? 1 : 0;
    kept += c;
  }
  if (n_clean)
    *n_clean = kept;
  return TRUE;
}

/* Otsu's split of the losses and the ranks; SHARDED: each rank's part computed on its
 * block and gathered, the mask and ranks whole on every rank. */
static gboolean
loss_rank_otsu (const float *loss, int64_t n, const KdfOtsuOptions *otsu,
                const KdfRankOptions *opt, uint8_t *clean, int32_t *rank, int64_t *n_clean,
                KdfOtsuResult *result, gboolean sharded, GError **error)
{
  KdfOtsuOptions o;
  if (otsu)
    o = *otsu;
  else {
    kdf_otsu_options_init (&o);
    o.normalize = TRUE;
  }
  KdfOtsuResult res;
  uint8_t *upper = g_new (uint8_t, MAX (n, 1));
  /* Clean is the lower side of the split, taken from the Otsu mask itself so that
   * no rounding of θ back to loss units can move a sample across it. */
  const gboolean ok =
    sharded ? kdf_otsu_threshold_sharded (loss, n, &o, &res, upper, NULL, error) &&
                kdf_loss_rank_threshold_sharded (loss, n, res.threshold_raw, opt, NULL, rank,
                                                 NULL, error)
            : kdf_otsu_threshold (loss, n, &o, &res, upper, NULL, error) &&
                kdf_loss_rank_threshold (loss, n, res.threshold_raw, opt, NULL, rank, NULL,
                                         error);
  if (!ok) {
    g_free (upper);
    return FALSE;
  }
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    if (clean)
      clean[i] = upper[i] ? 0 : 1;
    kept += !upper[i];
  }
  if (n_clean)
    *n_clean = kept;
  if (result)
    *result = res;
  g_free (upper);
  return TRUE;
}

gboolean
kdf_loss_rank_otsu (const float *loss, int64_t n, const KdfOtsuOptions *otsu,
                    const KdfRankOptions *opt, uint8_t *clean, int32_t *rank, int64_t *n_clean,
                    KdfOtsuResult *result, GError **error)
{
  return loss_rank_otsu (loss, n, otsu, opt, clean, rank, n_clean, result, FALSE, error);
}

/* ---- sharded forms (kdflow/dist.h) ------------------------------------------------
 * A rank's position in its group by (loss, index) is a count of the rows before it,
 * and the rows of the other ranks' blocks are either all before it in index (lower
 * ranks: they count when their loss is ≤ its loss) or all after it (higher ranks:
 * when < it). Each rank sorts its block by (group, loss, index), the sorted blocks
 * are gathered (8 bytes a row), and each rank counts, for its own rows, the rows of
 * every other block by one linear merge per block. Float comparisons order losses as
 * kdf_argsort_f32 does (−0 = +0, no NaN), so the ranks are the one-process ranks. */
typedef struct {
  int32_t group;
  float loss;
} RankRec;

static inline int32_t
group_of (const KdfRankOptions *opt, int64_t i)
{
  return opt->scope == KDF_RANK_SCOPE_PER_CLASS ? opt->labels[i]
         : opt->scope == KDF_RANK_SCOPE_BATCH   ? (int32_t) (i / opt->batch)
                                                : 0;
}

/* RANK[FROM..TO) and the global group sizes (*SIZES_OUT, g_free'd by the caller). */
static gboolean
rank_groups_sharded (int32_t *rank, int64_t **sizes_out, const float *loss, int64_t n,
                     int64_t from, int64_t to, const KdfRankOptions *opt, GError **error)
{
  const int64_t m = to - from;
  int64_t n_groups = 1;
  if (opt->scope == KDF_RANK_SCOPE_PER_CLASS)
    n_groups = opt->n_classes;
  else if (opt->scope == KDF_RANK_SCOPE_BATCH)
    n_groups = (n + opt->batch - 1) / opt->batch;
  int64_t *size = g_new0 (int64_t, MAX (n_groups, 1));
  for (int64_t i = from; i < to; i++)
    size[group_of (opt, i)]++;
  int64_t *local_size = g_memdup2 (size, (gsize) MAX (n_groups, 1) * sizeof *size);
  if (opt->scope == KDF_RANK_SCOPE_GLOBAL)
    size[0] = n;
  else if (opt->scope == KDF_RANK_SCOPE_BATCH)
    for (int64_t g = 0; g < n_groups; g++)
      size[g] = MIN (opt->batch, n - g * opt->batch);
  else if (!kdf_dist_allreduce_i64 (size, n_groups, KDF_DIST_SUM, error)) {
    g_free (size);
    g_free (local_size);
    return FALSE;
  }

  /* this block by (group, loss, index): a stable sort by loss, then by group */
  int32_t *sorted = g_new (int32_t, MAX (m, 1)), *order = g_new (int32_t, MAX (m, 1));
  kdf_argsort_f32 (sorted, loss + from, m);
  int64_t *next = g_new0 (int64_t, MAX (n_groups, 1));
  for (int64_t g = 1; g < n_groups; g++)
    next[g] = next[g - 1] + local_size[g - 1];
  for (int64_t t = 0; t < m; t++) {
    int32_t i = sorted[t];
    order[next[group_of (opt, from + i)]++] = i;
  }
  g_free (next);
  g_free (sorted);
  RankRec *all = g_new (RankRec, MAX (n, 1));
  for (int64_t t = 0; t < m; t++) {
    all[from + t].group = group_of (opt, from + order[t]);
    all[from + t].loss = loss[from + order[t]];
  }
  gboolean ok = kdf_dist_allgather_rows (all, n, sizeof *all, error);
  if (ok) {
    /* the position inside this block's group, then the rows of the other blocks */
    int64_t *count = g_new (int64_t, MAX (m, 1));
    for (int64_t t = 0, start = 0; t < m; t++) {
      if (t > 0 && all[from + t].group != all[from + t - 1].group)
        start = t;
      count[t] = t - start;
    }
    const int me = kdf_dist_rank ();
    for (int r = 0; r < kdf_dist_size (); r++) {
      if (r == me)
        continue;
      int64_t lo, hi;
      kdf_dist_shard_of (n, r, &lo, &hi);
      int64_t a = lo, b = lo; /* first of the group; first after the counted rows */
      for (int64_t t = 0; t < m; t++) {
        const RankRec *x = all + from + t;
        while (a < hi && all[a].group < x->group)
          a++;
        if (b < a)
          b = a;
        if (r < me)
          while (b < hi && all[b].group == x->group && all[b].loss <= x->loss)
            b++;
        else
          while (b < hi && all[b].group == x->group && all[b].loss < x->loss)
            b++;
        count[t] += b - a;
      }
    }
    for (int64_t t = 0; t < m; t++)
      rank[from + order[t]] = (int32_t) count[t];
    g_free (count);
  }
  g_free (all);
  g_free (order);
  g_free (local_size);
  if (!ok) {
    g_free (size);
    return FALSE;
  }
  *sizes_out = size;
  return TRUE;
}

gboolean
kdf_loss_rank_sharded (const float *loss, int64_t n, const KdfRankOptions *opt, uint8_t *clean,
                       int32_t *rank, int64_t *n_clean, GError **error)
{
  if (!kdf_dist_active ())
    return kdf_loss_rank (loss, n, opt, clean, rank, n_clean, error);
  g_return_val_if_fail (loss != NULL && opt != NULL, FALSE);
  if (!kdf_check_size (n, 1, "loss_ranking", error) ||
      !check_options_rows (opt, 0, n, TRUE, FALSE, error))
    return FALSE;
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  if (!kdf_dist_agree (check_options_rows (opt, from, to, TRUE, TRUE, error) &&
                         kdf_check_finite_f32 (loss + from, to - from, "loss_ranking: losses",
                                               error),
                       "loss_ranking", error))
    return FALSE;
  int32_t *r = rank ? rank : g_new (int32_t, MAX (n, 1));
  int64_t *size;
  if (!rank_groups_sharded (r, &size, loss, n, from, to, opt, error)) {
    if (r != rank)
      g_free (r);
    return FALSE;
  }
  int64_t kept = 0;
  for (int64_t i = from; i < to; i++) {
    gboolean c = r[i] < kept_of (opt->keep, size[group_of (opt, i)]);
    if (clean)
      clean[i] = c ? 1 : 0;
    kept += c;
  }
  g_free (size);
  gboolean ok = kdf_dist_allreduce_i64 (&kept, 1, KDF_DIST_SUM, error) &&
                (!clean || kdf_dist_allgather_rows (clean, n, 1, error)) &&
                (!rank || kdf_dist_allgather_rows (rank, n, sizeof *rank, error));
  if (r != rank)
    g_free (r);
  if (ok && n_clean)
    *n_clean = kept;
  return ok;
}

gboolean
kdf_loss_rank_threshold_sharded (const float *loss, int64_t n, double threshold,
                                 const KdfRankOptions *opt, uint8_t *clean, int32_t *rank,
                                 int64_t *n_clean, GError **error)
{
  if (!kdf_dist_active ())
    return kdf_loss_rank_threshold (loss, n, threshold, opt, clean, rank, n_clean, error);
  g_return_val_if_fail (loss != NULL, FALSE);
  KdfRankOptions defaults;
  if (opt == NULL) {
    kdf_rank_options_init (&defaults);
    opt = &defaults;
  }
  if (!kdf_check_size (n, 1, "loss_ranking", error) ||
      !check_options_rows (opt, 0, n, FALSE, FALSE, error))
    return FALSE;
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  if (!kdf_dist_agree (check_options_rows (opt, from, to, FALSE, TRUE, error) &&
                         kdf_check_finite_f32 (loss + from, to - from, "loss_ranking: losses",
                                               error),
                       "loss_ranking", error))
    return FALSE;
  if (isnan (threshold)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "loss_ranking: the threshold is NaN");
    return FALSE;
  }
  if (rank) {
    int64_t *size;
    if (!rank_groups_sharded (rank, &size, loss, n, from, to, opt, error))
      return FALSE;
    g_free (size);
  }
  int64_t kept = 0;
  for (int64_t i = from; i < to; i++) {
    gboolean c = (double) loss[i] < threshold;
    if (clean)
      clean[i] = c ? 1 : 0;
    kept += c;
  }
  if (!kdf_dist_allreduce_i64 (&kept, 1, KDF_DIST_SUM, error) ||
      (clean && !kdf_dist_allgather_rows (clean, n, 1, error)) ||
      (rank && !kdf_dist_allgather_rows (rank, n, sizeof *rank, error)))
    return FALSE;
  if (n_clean)
    *n_clean = kept;
  return TRUE;
}

gboolean
kdf_loss_rank_otsu_sharded (const float *loss, int64_t n, const KdfOtsuOptions *otsu,
                            const KdfRankOptions *opt, uint8_t *clean, int32_t *rank,
                            int64_t *n_clean, KdfOtsuResult *result, GError **error)
{
  return loss_rank_otsu (loss, n, otsu, opt, clean, rank, n_clean, result, kdf_dist_active (),
                         error);
}

/* CE_i = −log softmax(z_i)[y_i] = logsumexp(z_i) − z_i[y_i], max-shifted, in double. */
gboolean
kdf_sample_cross_entropy (float *loss, const float *logits, int64_t n, int c, int64_t ldz,
                          const int32_t *labels, GError **error)
{
  g_return_val_if_fail (loss != NULL && logits != NULL && labels != NULL, FALSE);
  if (!kdf_check_size (n, c, "sample_cross_entropy", error) ||
      !kdf_check_labels (labels, n, c, "sample_cross_entropy: labels", error))
    return FALSE;
  if (ldz < c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "sample_cross_entropy: row stride %" G_GINT64_FORMAT " < C = %d", ldz, c);
    return FALSE;
  }
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * ldz;
    double m = z[0];
    for (int j = 1; j < c; j++)
      m = MAX (m, (double) z[j]);
    double s = 0;
    for (int j = 0; j < c; j++)
      s += exp ((double) z[j] - m);
    double v = m + log (s) - (double) z[labels[i]];
    if (!isfinite (v)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "sample_cross_entropy: non-finite logits in row %" G_GINT64_FORMAT, i);
      return FALSE;
    }
    loss[i] = (float) v;
  }
  return TRUE;
}

gboolean
kdf_loss_rank_tensor (KdfTensor *loss, const KdfRankOptions *opt, KdfTensor **clean,
                      KdfTensor **rank, GError **error)
{
  g_autoptr (KdfTensor) l = kdf_detect_contiguous (loss, KDF_DTYPE_F32, 1,
                                                   "loss_ranking: losses", error);
  if (l == NULL)
    return FALSE;
  int64_t n = l->shape[0];
  g_autoptr (KdfTensor) c = clean ? kdf_tensor_new_1d (KDF_DTYPE_U8, n) : NULL;
  g_autoptr (KdfTensor) r = rank ? kdf_tensor_new_1d (KDF_DTYPE_I32, n) : NULL;
  if (!kdf_loss_rank (kdf_tensor_f32 (l), n, opt, c ? kdf_tensor_u8 (c) : NULL,
                      r ? kdf_tensor_i32 (r) : NULL, NULL, error))
    return FALSE;
  if (clean)
    *clean = g_steal_pointer (&c);
  if (rank)
    *rank = g_steal_pointer (&r);
  return TRUE;
}

KdfTensor *
kdf_sample_cross_entropy_tensor (KdfTensor *logits, KdfTensor *labels, GError **error)
{
  g_autoptr (KdfTensor) z = kdf_detect_contiguous (logits, KDF_DTYPE_F32, 2,
                                                   "sample_cross_entropy: logits", error);
  if (z == NULL)
    return NULL;
  g_autoptr (KdfTensor) y = kdf_detect_contiguous (labels, KDF_DTYPE_I32, 1,
                                                   "sample_cross_entropy: labels", error);
  if (y == NULL)
    return NULL;
  if (y->shape[0] != z->shape[0]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "sample_cross_entropy: %" G_GINT64_FORMAT " logit rows but %" G_GINT64_FORMAT
                 " labels", z->shape[0], y->shape[0]);
    return NULL;
  }
  if (z->shape[1] > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "sample_cross_entropy: too many classes");
    return NULL;
  }
  g_autoptr (KdfTensor) out = kdf_tensor_new_1d (KDF_DTYPE_F32, z->shape[0]);
  if (!kdf_sample_cross_entropy (kdf_tensor_f32 (out), kdf_tensor_f32 (z), z->shape[0],
                                 (int) z->shape[1], z->shape[1], kdf_tensor_i32 (y), error))
    return NULL;
  return g_steal_pointer (&out);
}
