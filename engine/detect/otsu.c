/* otsu_threshold: a histogram threshold on scores in [0,1], with the classic Otsu
 * criterion or Blind KD's variant, and Blind KD's four groups.
 *
 * Definitions (METHODS §1 otsu_threshold; Kaiser et al., arXiv 2211.11355, the
 * authors' otsu() in train.py):
 *   histogram  b_i = min(⌊bins·a_i⌋, bins−1), bin b at position x_b = b/bins,
 *              h_b = #{i : b_i = b}; a split s puts bins [0,s) on side 1, [s,bins)
 *              on side 2; θ = s/bins.
 *   side stats n_k = Σ h_b, μ_k = Σ h_b x_b / n_k, var_k = Σ h_b (x_b − μ_k)² / n_k
 *              over the bins of side k — means of histogram positions, not of the
 *              raw scores; μ = Σ_b h_b x_b / N likewise.
 *   blind      q(s) = [n1(μ1−μ)² + n2(μ2−μ)²] / (n1σ1 + n2σ2), σ_k = sqrt(max(var_k, 1e-5)),
 *              s ∈ [2, bins−3] (the authors' range(2, 998) for 1000 bins).
 *   otsu       q(s) = [n1(μ1−μ)² + n2(μ2−μ)²] / N, the between-class variance, s ∈ [1, bins−1].
 *   Both: q = −1e7 when a side is empty; s* = the first maximum (argmax).
 *   Groups     G1 a ≥ μ_hi; G2 θ ≤ a < μ_hi; G3 μ_lo ≤ a < θ; G4 a < μ_lo, with
 *              μ_lo = μ1(s*), μ_hi = μ2(s*).
 *
 * Why the reference evaluation order. The METHODS test vector has two clusters
 * (a ∈ [0.05, 0.25] and [0.75, 0.95]) with empty bins 251..749 between them. On
 * that gap every statistic above is the same for every s in [251, 750], so q is
 * *mathematically* flat there and "the" maximum is decided by rounding: evaluated
 * in float64 with numpy's pairwise sums (a direct numpy port of the authors' code)
 * the first maximum is s* = 515; the authors' own float32 torch code lands on 257;
 * exact arithmetic ties all 500 splits. Every per-sample output (mask, groups,
 * μ_lo = 0.149847, μ_hi = 0.849572) is the same for any s in the gap — only the
 * reported θ differs. The default mode reproduces the numpy evaluation exactly
 * (kdf_pairwise_sum), so the normative vector (s* = 515) holds bit for bit; the
 * `exact` mode is O(bins), has exactly flat plateaus, and reports the middle of
 * the tied run (θ = 0.500 on the vector) — the robust choice for new pipelines. */
#include "config.h"

#include "detect-private.h"

#include <kdflow/dist.h>

#include <math.h>
#include <string.h>

#define KDF_OTSU_EMPTY (-1e7)

void
kdf_otsu_options_init (KdfOtsuOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->bins = 1000;
  opt->criterion = KDF_OTSU_CRITERION_OTSU;
  opt->normalize = FALSE;
  opt->exact = FALSE;
}

typedef struct {
  double n1, n2, mu1, mu2, q;
} Split;

static double
criterion (KdfOtsuCriterion crit, double n1, double n2, double mu1, double mu2,
           double var1, double var2, double mu, double total)
{
  double d1 = mu1 - mu, d2 = mu2 - mu;
  double between = n1 * (d1 * d1) + n2 * (d2 * d2);
  if (crit == KDF_OTSU_CRITERION_BLIND) {
    double s1 = sqrt (var1 > 1e-5 ? var1 : 1e-5);
    double s2 = sqrt (var2 > 1e-5 ? var2 : 1e-5);
    return between / (n1 * s1 + n2 * s2);
  }
  return between / total;
}

/* q(s) in numpy's float64 evaluation order (see the top of the file). TMP holds
 * ≥ bins doubles. */
static void
split_reference (Split *out, const double *h, const double *hx, const double *x, int bins,
                 int s, double mu, double total, KdfOtsuCriterion crit, double *tmp)
{
  double n1 = kdf_pairwise_sum (h, s);
  double n2 = kdf_pairwise_sum (h + s, bins - s);
  out->n1 = n1;
  out->n2 = n2;
  if (n1 == 0 || n2 == 0) {
    out->q = KDF_OTSU_EMPTY;
    return;
  }
  double mu1 = kdf_pairwise_sum (hx, s) / n1;
  double mu2 = kdf_pairwise_sum (hx + s, bins - s) / n2;
  for (int b = 0; b < s; b++) {
    double d = x[b] - mu1;
    tmp[b] = h[b] * (d * d);
  }
  double var1 = kdf_pairwise_sum (tmp, s) / n1;
  for (int b = s; b < bins; b++) {
    double d = x[b] - mu2;
    tmp[b] = h[b] * (d * d);
  }
  double var2 = kdf_pairwise_sum (tmp + s, bins - s) / n2;
  out->mu1 = mu1;
  out->mu2 = mu2;
  out->q = criterion (crit, n1, n2, mu1, mu2, var1, var2, mu, total);
}

/* q(s) from prefix sums of the integer moments Σh, Σh·b, Σh·b² (exact in double
 * up to 2^53). Across a run of empty bins the prefix sums do not change, so tied
 * splits tie bit for bit. */
static void
split_exact (Split *out, const double *c0, const double *c1, const double *c2, int bins,
             int s, double mu, double total, KdfOtsuCriterion crit)
{
  double n1 = c0[s], n2 = c0[bins] - c0[s];
  out->n1 = n1;
  out->n2 = n2;
  if (n1 == 0 || n2 == 0) {
    out->q = KDF_OTSU_EMPTY;
    return;
  }
  double s1 = c1[s], s2 = c1[bins] - c1[s];
  double q1 = c2[s], q2 = c2[bins] - c2[s];
  double m1b = s1 / n1, m2b = s2 / n2; /* in bin units */
  double bb = (double) bins * bins;
  double var1 = (q1 / n1 - m1b * m1b) / bb;
  double var2 = (q2 / n2 - m2b * m2b) / bb;
  if (var1 < 0)
    var1 = 0;
  if (var2 < 0)
    var2 = 0;
  out->mu1 = m1b / bins;
  out->mu2 = m2b / bins;
  out->q = criterion (crit, n1, n2, out->mu1, out->mu2, var1, var2, mu, total);
}

static gboolean
otsu_check_options (const KdfOtsuOptions *opt, GError **error)
{
  if (opt->bins < 8 || opt->bins > (1 << 24)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "otsu_threshold: expected 8 ≤ bins ≤ 2^24, found %d", opt->bins);
    return FALSE;
  }
  if (opt->criterion != KDF_OTSU_CRITERION_OTSU && opt->criterion != KDF_OTSU_CRITERION_BLIND) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "otsu_threshold: unknown criterion %d",
                 (int) opt->criterion);
    return FALSE;
  }
  return TRUE;
}

/* The scores FROM..TO (of N) are finite, and in [0,1] without normalize. */
static gboolean
otsu_check_scores (const float *scores, int64_t from, int64_t to, const KdfOtsuOptions *opt,
                   GError **error)
{
  if (!kdf_check_finite_f32 (scores + from, to - from, "otsu_threshold: scores", error)) {
    if (from > 0)
      g_prefix_error (error, "rows from %" G_GINT64_FORMAT ": ", (gint64) from);
    return FALSE;
  }
  if (!opt->normalize)
    for (int64_t i = from; i < to; i++)
      if (scores[i] < 0.0f || scores[i] > 1.0f) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "otsu_threshold: expected scores in [0,1] (or normalize = true), found %.9g "
                     "at element %" G_GINT64_FORMAT, (double) scores[i], i);
        return FALSE;
      }
  return TRUE;
}

static gboolean
otsu_check_range (double lo, double hi, int64_t n, GError **error)
{
  if (!(hi > lo)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "otsu_threshold: all %" G_GINT64_FORMAT " scores equal %g; no threshold "
                 "separates them", n, lo);
    return FALSE;
  }
  return TRUE;
}

/* a_i·bins is exact in double for f32 a_i without normalisation, so ⌊bins·a⌋ is
 * the true floor (a float32 product could round up across a bin edge). */
static inline double
otsu_norm (const KdfOtsuOptions *opt, float v, double lo, double range)
{
  return opt->normalize ? ((double) v - lo) / range : (double) v;
}

static inline int64_t
otsu_bin (double a, int bins)
{
  int64_t b = (int64_t) floor (a * bins);
  if (b > bins - 1)
    b = bins - 1;
  if (b < 0)
    b = 0;
  return b;
}

/* The split of the histogram H (BINS counts of N scores) into RESULT (split, θ, μ, q;
 * the group counts are left for otsu_assign). LO, HI: the normalisation. */
static gboolean
otsu_solve (const double *h, int64_t n, const KdfOtsuOptions *opt, double lo, double hi,
            KdfOtsuResult *result, GError **error)
{
  const int bins = opt->bins;
  const double range = hi - lo;
  double *x = g_new (double, bins), *hx = g_new (double, bins);
  for (int b = 0; b < bins; b++) {
    x[b] = (double) b / bins;
    hx[b] = h[b] * x[b];
  }
  const double total = (double) n;
  const int s_lo = opt->criterion == KDF_OTSU_CRITERION_BLIND ? 2 : 1;
  const int s_hi = opt->criterion == KDF_OTSU_CRITERION_BLIND ? bins - 3 : bins - 1;

  double *qs = g_new (double, bins + 1);
  Split best = { 0 };
  int best_s = -1;
  if (!opt->exact) {
    double mu = kdf_pairwise_sum (hx, bins) / kdf_pairwise_sum (h, bins);
    double *tmp = g_new (double, bins);
    for (int s = s_lo; s <= s_hi; s++) {
      Split sp;
      split_reference (&sp, h, hx, x, bins, s, mu, total, opt->criterion, tmp);
      qs[s] = sp.q;
      if (best_s < 0 || sp.q > best.q) {
        best = sp;
        best_s = s;
      }
    }
    g_free (tmp);
  } else {
    double *c0 = g_new0 (double, bins + 1), *c1 = g_new0 (double, bins + 1),
           *c2 = g_new0 (double, bins + 1);
    for (int b = 0; b < bins; b++) {
      c0[b + 1] = c0[b] + h[b];
      c1[b + 1] = c1[b] + h[b] * b;
      c2[b + 1] = c2[b] + h[b] * ((double) b * b);
    }
    double mu = c1[bins] / (c0[bins] * bins);
    for (int s = s_lo; s <= s_hi; s++) {
      Split sp;
      split_exact (&sp, c0, c1, c2, bins, s, mu, total, opt->criterion);
      qs[s] = sp.q;
      if (best_s < 0 || sp.q > best.q) {
        best = sp;
        best_s = s;
      }
    }
    /* Middle of the run of splits tied with the first maximum. */
    int end = best_s;
    while (end + 1 <= s_hi && qs[end + 1] == best.q)
      end++;
    int mid = best_s + (end - best_s) / 2;
    if (mid != best_s) {
      split_exact (&best, c0, c1, c2, bins, mid, mu, total, opt->criterion);
      best_s = mid;
    }
    g_free (c0);
    g_free (c1);
    g_free (c2);
  }
  g_free (qs);
  g_free (x);
  g_free (hx);

  if (best_s < 0 || best.q == KDF_OTSU_EMPTY) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "otsu_threshold: every split of the %d-bin histogram leaves one side empty "
                 "(all %" G_GINT64_FORMAT " scores fall in one bin)", bins, n);
    return FALSE;
  }

  memset (result, 0, sizeof *result);
  result->split = best_s;
  result->threshold = (double) best_s / bins;
  result->threshold_raw = opt->normalize ? lo + result->threshold * range : result->threshold;
  result->mean_lo = best.mu1;
  result->mean_hi = best.mu2;
  result->q = best.q;
  result->score_min = lo;
  result->score_max = hi;
  return TRUE;
}

/* Mask, groups and group counts of the scores FROM..TO under RESULT's split. */
static void
otsu_assign (const float *scores, int64_t from, int64_t to, const KdfOtsuOptions *opt,
             KdfOtsuResult *result, uint8_t *mask, int32_t *groups)
{
  const double lo = result->score_min, range = result->score_max - result->score_min;
  for (int64_t i = from; i < to; i++) {
    double a = otsu_norm (opt, scores[i], lo, range);
    gboolean upper = otsu_bin (a, opt->bins) >= result->split;
    int g;
    if (a >= result->mean_hi)
      g = 1;
    else if (upper)
      g = 2;
    else if (a >= result->mean_lo)
      g = 3;
    else
      g = 4;
    result->group_count[g - 1]++;
    if (mask)
      mask[i] = upper ? 1 : 0;
    if (groups)
      groups[i] = g;
  }
}

gboolean
kdf_otsu_threshold (const float *scores, int64_t n, const KdfOtsuOptions *opt,
                    KdfOtsuResult *result, uint8_t *mask, int32_t *groups, GError **error)
{
  g_return_val_if_fail (scores != NULL && result != NULL, FALSE);
  KdfOtsuOptions defaults;
  if (opt == NULL) {
    kdf_otsu_options_init (&defaults);
    opt = &defaults;
  }
  if (!otsu_check_options (opt, error) || !kdf_check_size (n, 1, "otsu_threshold", error) ||
      !otsu_check_scores (scores, 0, n, opt, error))
    return FALSE;
  const int bins = opt->bins;

  double lo = 0.0, hi = 1.0;
  if (opt->normalize) {
    lo = hi = scores[0];
    for (int64_t i = 1; i < n; i++) {
      lo = MIN (lo, (double) scores[i]);
      hi = MAX (hi, (double) scores[i]);
    }
    if (!otsu_check_range (lo, hi, n, error))
      return FALSE;
  }
  const double range = hi - lo;

  /* ten arrays of BINS doubles at most below (a param: up to 10^7) */
  if (!kdf_memory_check_elements ((guint64) bins, 10 * sizeof (double), "otsu_threshold: histogram bins",
                                  error))
    return FALSE;
  double *h = g_new0 (double, bins);
  for (int64_t i = 0; i < n; i++)
    h[otsu_bin (otsu_norm (opt, scores[i], lo, range), bins)] += 1.0;
  gboolean ok = otsu_solve (h, n, opt, lo, hi, result, error);
  g_free (h);
  if (ok)
    otsu_assign (scores, 0, n, opt, result, mask, groups);
  return ok;
}

/* Sharded: the histogram is a sum of integer counts, so the reduced histogram is the
 * one-process histogram exactly, and so is everything otsu_solve computes from it;
 * the normalisation's min and max reduce exactly too. */
gboolean
kdf_otsu_threshold_sharded (const float *scores, int64_t n, const KdfOtsuOptions *opt,
                            KdfOtsuResult *result, uint8_t *mask, int32_t *groups,
                            GError **error)
{
  if (!kdf_dist_active ())
    return kdf_otsu_threshold (scores, n, opt, result, mask, groups, error);
  g_return_val_if_fail (scores != NULL && result != NULL, FALSE);
  KdfOtsuOptions defaults;
  if (opt == NULL) {
    kdf_otsu_options_init (&defaults);
    opt = &defaults;
  }
  if (!otsu_check_options (opt, error) || !kdf_check_size (n, 1, "otsu_threshold", error))
    return FALSE;
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  if (!kdf_dist_agree (otsu_check_scores (scores, from, to, opt, error), "otsu_threshold", error))
    return FALSE;
  const int bins = opt->bins;

  double lo = 0.0, hi = 1.0;
  if (opt->normalize) {
    double mm[2] = { INFINITY, INFINITY }; /* min, −max */
    for (int64_t i = from; i < to; i++) {
      mm[0] = MIN (mm[0], (double) scores[i]);
      mm[1] = MIN (mm[1], -(double) scores[i]);
    }
    if (!kdf_dist_allreduce_f64 (mm, 2, KDF_DIST_MIN, error))
      return FALSE;
    lo = mm[0];
    hi = -mm[1];
    if (!otsu_check_range (lo, hi, n, error))
      return FALSE;
  }
  const double range = hi - lo;
  if (!kdf_memory_check_elements ((guint64) bins, 12 * sizeof (double),
                                  "otsu_threshold: histogram bins", error))
    return FALSE;
  int64_t *count = g_new0 (int64_t, bins);
  for (int64_t i = from; i < to; i++)
    count[otsu_bin (otsu_norm (opt, scores[i], lo, range), bins)]++;
  if (!kdf_dist_allreduce_i64 (count, bins, KDF_DIST_SUM, error)) {
    g_free (count);
    return FALSE;
  }
  double *h = g_new (double, bins);
  for (int b = 0; b < bins; b++)
    h[b] = (double) count[b];
  g_free (count);
  gboolean ok = otsu_solve (h, n, opt, lo, hi, result, error);
  g_free (h);
  if (!ok)
    return FALSE;
  otsu_assign (scores, from, to, opt, result, mask, groups);
  return kdf_dist_allreduce_i64 (result->group_count, 4, KDF_DIST_SUM, error) &&
         (!mask || kdf_dist_allgather_rows (mask, n, 1, error)) &&
         (!groups || kdf_dist_allgather_rows (groups, n, sizeof *groups, error));
}

gboolean
kdf_otsu_threshold_tensor (KdfTensor *scores, const KdfOtsuOptions *opt,
                           KdfOtsuResult *result, KdfTensor **mask, KdfTensor **groups,
                           GError **error)
{
  g_autoptr (KdfTensor) s = kdf_detect_contiguous (scores, KDF_DTYPE_F32, 1,
                                                   "otsu_threshold: scores", error);
  if (s == NULL)
    return FALSE;
  int64_t n = s->shape[0];
  g_autoptr (KdfTensor) m = mask ? kdf_tensor_new_1d (KDF_DTYPE_U8, n) : NULL;
  g_autoptr (KdfTensor) g = groups ? kdf_tensor_new_1d (KDF_DTYPE_I32, n) : NULL;
  if (!kdf_otsu_threshold (kdf_tensor_f32 (s), n, opt, result, m ? kdf_tensor_u8 (m) : NULL,
                           g ? kdf_tensor_i32 (g) : NULL, error))
    return FALSE;
  if (mask)
    *mask = g_steal_pointer (&m);
  if (groups)
    *groups = g_steal_pointer (&g);
  return TRUE;
}
