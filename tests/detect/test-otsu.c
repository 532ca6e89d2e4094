/* otsu_threshold: the METHODS test vector, a case worked by hand, a skewed sample on
 * which the blind and the classic criterion split differently, the blind criterion's
 * variance floor and split range, both evaluation modes, normalisation and bad input. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

/* METHODS §1: a_i = 0.85 + 0.1·sin(i) for i < 1400 else 0.15 + 0.1·cos(i), f32. */
static float *
methods_vector (int64_t *n)
{
  *n = 2000;
  float *a = g_new (float, *n);
  for (int i = 0; i < 2000; i++)
    a[i] = (float) (i < 1400 ? 0.85 + 0.1 * sin ((double) i) : 0.15 + 0.1 * cos ((double) i));
  return a;
}

static void
test_methods_vector (void)
{
  int64_t n;
  g_autofree float *a = methods_vector (&n);
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  opt.criterion = KDF_OTSU_CRITERION_BLIND;
  KdfOtsuResult r;
  g_autofree uint8_t *mask = g_new (uint8_t, n);
  g_autofree int32_t *groups = g_new (int32_t, n);
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_otsu_threshold (a, n, &opt, &r, mask, groups, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.split, ==, 515);
  g_assert_cmpfloat_with_epsilon (r.threshold, 0.515, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.mean_lo, 0.149847, 5e-7);
  g_assert_cmpfloat_with_epsilon (r.mean_hi, 0.849572, 5e-7);
  g_assert_cmpint (r.group_count[0], ==, 703);
  g_assert_cmpint (r.group_count[1], ==, 697);
  g_assert_cmpint (r.group_count[2], ==, 302);
  g_assert_cmpint (r.group_count[3], ==, 298);
  int64_t counts[4] = { 0 }, upper = 0;
  for (int64_t i = 0; i < n; i++) {
    g_assert_cmpint (groups[i], >=, 1);
    g_assert_cmpint (groups[i], <=, 4);
    counts[groups[i] - 1]++;
    g_assert_cmpint (mask[i], ==, groups[i] <= 2);
    g_assert_cmpint (mask[i], ==, a[i] >= 0.515f);
    upper += mask[i];
  }
  g_assert_cmpint (counts[0], ==, 703);
  g_assert_cmpint (upper, ==, 1400);

  /* Exact mode: q is exactly flat on s ∈ [251, 750] (the bins between the clusters
   * are empty), so it reports the middle split, 500; every per-sample output is the
   * same as at 515. */
  opt.exact = TRUE;
  KdfOtsuResult e;
  g_autofree int32_t *groups_exact = g_new (int32_t, n);
  g_assert_true (kdf_otsu_threshold (a, n, &opt, &e, NULL, groups_exact, &error));
  g_assert_cmpint (e.split, ==, 500);
  g_assert_cmpfloat_with_epsilon (e.mean_lo, r.mean_lo, 1e-12);
  g_assert_cmpfloat_with_epsilon (e.mean_hi, r.mean_hi, 1e-12);
  g_assert_cmpfloat_with_epsilon (e.q, r.q, 1e-12);
  for (int64_t i = 0; i < n; i++)
    g_assert_cmpint (groups_exact[i], ==, groups[i]);
}

/* Worked by hand. bins = 8, 14 scores, one per line below with its bin ⌊8a⌋:
 *   bin 0: .00 .05 .10   bin 1: .13 .24   bin 2: .30   bin 3: .40
 *   bin 4: .55           bin 5: .70       bin 6: .76 .80   bin 7: .90 .95 1.0 (clamped)
 * h = (3,2,1,1,1,1,2,3), N = 14, Σh·b = 49, μ = 49/14/8 = 0.4375.
 * Classic criterion q(s) = [n1(μ1−μ)² + n2(μ2−μ)²]/N, μ_k in positions b/8:
 *   s=2: n1=5, Σb=2  → μ1=0.05;      n2=9, Σb=47 → μ2=0.652778; q = 1.168316/14 = 0.083451
 *   s=3: n1=6, Σb=4  → μ1=0.083333;  n2=8, Σb=45 → μ2=0.703125; q = 1.317057/14 = 0.094075
 *   s=4: n1=7, Σb=7  → μ1=0.125;     n2=7, Σb=42 → μ2=0.75;     q = 14·0.3125²/14 = 0.097656
 *   s=5 mirrors s=3, s=6 mirrors s=2 (h is symmetric), s=1, 7 are lower still.
 * So s* = 4, θ = 0.5, μ_lo = 0.125, μ_hi = 0.75, and the groups are
 *   G1 (a ≥ .75): .76 .80 .90 .95 1.0 = 5;  G2 (.5 ≤ a < .75): .55 .70 = 2;
 *   G3 (.125 ≤ a < .5): .13 .24 .30 .40 = 4; G4 (a < .125): .00 .05 .10 = 3. */
static const float hand_scores[14] = { 0.00f, 0.05f, 0.10f, 0.13f, 0.24f, 0.30f, 0.40f,
                                       0.55f, 0.70f, 0.76f, 0.80f, 0.90f, 0.95f, 1.0f };
static const int32_t hand_groups[14] = { 4, 4, 4, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1 };

static void
check_hand (const KdfOtsuResult *r, const int32_t *groups, double scale, double shift)
{
  g_assert_cmpint (r->split, ==, 4);
  g_assert_cmpfloat_with_epsilon (r->threshold, 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (r->threshold_raw, shift + scale * 0.5, 1e-6);
  g_assert_cmpfloat_with_epsilon (r->mean_lo, 0.125, 1e-12);
  g_assert_cmpfloat_with_epsilon (r->mean_hi, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (r->q, 0.09765625, 1e-12);
  g_assert_cmpint (r->group_count[0], ==, 5);
  g_assert_cmpint (r->group_count[1], ==, 2);
  g_assert_cmpint (r->group_count[2], ==, 4);
  g_assert_cmpint (r->group_count[3], ==, 3);
  for (int i = 0; i < 14; i++)
    g_assert_cmpint (groups[i], ==, hand_groups[i]);
}

static void
test_hand_case (void)
{
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  opt.bins = 8;
  KdfOtsuResult r;
  int32_t groups[14];
  g_autoptr (GError) error = NULL;
  for (int exact = 0; exact < 2; exact++) {
    opt.exact = exact;
    g_assert_true (kdf_otsu_threshold (hand_scores, 14, &opt, &r, NULL, groups, &error));
    g_assert_no_error (error);
    check_hand (&r, groups, 1.0, 0.0);
  }

  /* min-max normalisation undoes an affine map (exact in f32 for ×4 and +2). */
  float shifted[14];
  for (int i = 0; i < 14; i++)
    shifted[i] = 2.0f + 4.0f * hand_scores[i];
  opt.normalize = TRUE;
  opt.exact = FALSE;
  g_assert_true (kdf_otsu_threshold (shifted, 14, &opt, &r, NULL, groups, &error));
  g_assert_no_error (error);
  check_hand (&r, groups, 4.0, 2.0);
  g_assert_cmpfloat (r.score_min, ==, 2.0);
  g_assert_cmpfloat (r.score_max, ==, 6.0);

  /* The blind criterion on the same histogram: both modes agree (unique maximum). */
  opt.normalize = FALSE;
  opt.criterion = KDF_OTSU_CRITERION_BLIND;
  KdfOtsuResult b0, b1;
  opt.exact = FALSE;
  g_assert_true (kdf_otsu_threshold (hand_scores, 14, &opt, &b0, NULL, NULL, &error));
  opt.exact = TRUE;
  g_assert_true (kdf_otsu_threshold (hand_scores, 14, &opt, &b1, NULL, NULL, &error));
  g_assert_cmpint (b0.split, ==, b1.split);
  g_assert_cmpint (b0.split, >=, 2);
  g_assert_cmpint (b0.split, <=, 8 - 3);
  g_assert_cmpfloat_with_epsilon (b0.q, b1.q, 1e-12);
}

/* The blind criterion pinned where it differs from the classic one (METHODS §1: the
 * METHODS vector's flat optimum cannot tell them apart). A skewed two-cluster sample,
 * f32: a_i = 0.7 + 0.2·sin(i) for i < 1400 (1400 values in [0.5, 0.9]) else
 * 0.3 + 0.25·cos(i) (600 values in [0.05, 0.55]); the clusters overlap, so no run of
 * empty bins makes q flat; 100 bins.
 * Expected values from an independent numpy port of METHODS' formulas (float64,
 * np.bincount histogram, s over [2, 97] blind and [1, 99] classic, first maximum),
 * run with /usr/bin/python3 (numpy 1.24):
 *   blind:   s* = 60, q = 0.258342, μ_lo = 0.398103, μ_hi = 0.777305,
 *            groups 525 / 410 / 689 / 376, 935 at or above θ
 *   classic: s* = 44, q = 0.036559, μ_lo = 0.2,      μ_hi = 0.672771,
 *            groups 763 / 825 / 192 / 220, 1588 at or above θ
 * Each maximum is unique (the runner-up is lower by 3e-4 and 2e-4 relative), so
 * rounding cannot move it and both evaluation modes must agree. */
static float *
skewed_vector (int64_t *n)
{
  *n = 2000;
  float *a = g_new (float, *n);
  for (int i = 0; i < 2000; i++)
    a[i] = (float) (i < 1400 ? 0.7 + 0.2 * sin ((double) i) : 0.3 + 0.25 * cos ((double) i));
  return a;
}

static void
test_skewed (void)
{
  int64_t n;
  g_autofree float *a = skewed_vector (&n);
  const struct {
    KdfOtsuCriterion crit;
    int split, above, groups[4];
    double q, mu_lo, mu_hi;
  } want[2] = {
    { KDF_OTSU_CRITERION_BLIND, 60, 935, { 525, 410, 689, 376 }, 0.258342, 0.398103, 0.777305 },
    { KDF_OTSU_CRITERION_OTSU, 44, 1588, { 763, 825, 192, 220 }, 0.036559, 0.2, 0.672771 },
  };
  g_autofree uint8_t *mask = g_new (uint8_t, n);
  for (int k = 0; k < 2; k++)
    for (int exact = 0; exact < 2; exact++) {
      KdfOtsuOptions opt;
      kdf_otsu_options_init (&opt);
      opt.bins = 100;
      opt.criterion = want[k].crit;
      opt.exact = exact;
      KdfOtsuResult r;
      g_autoptr (GError) error = NULL;
      g_assert_true (kdf_otsu_threshold (a, n, &opt, &r, mask, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (r.split, ==, want[k].split);
      g_assert_cmpfloat_with_epsilon (r.threshold, want[k].split / 100.0, 1e-12);
      g_assert_cmpfloat_with_epsilon (r.q, want[k].q, 5e-7);
      g_assert_cmpfloat_with_epsilon (r.mean_lo, want[k].mu_lo, 5e-7);
      g_assert_cmpfloat_with_epsilon (r.mean_hi, want[k].mu_hi, 5e-7);
      int64_t above = 0;
      for (int64_t i = 0; i < n; i++)
        above += mask[i];
      g_assert_cmpint (above, ==, want[k].above);
      for (int gi = 0; gi < 4; gi++)
        g_assert_cmpint (r.group_count[gi], ==, want[k].groups[gi]);
    }
}

/* Where the blind criterion's guards decide, worked by hand (and checked with the
 * numpy port of test_skewed), 100 bins:
 * 1. 1000 scores 0.25 and 1000 scores 0.75: each side of any split between them is one
 *    bin, variance 0, so σ is the floor sqrt(1e-5) on both sides and
 *    q = [1000·.25² + 1000·.25²] / (2000·sqrt(1e-5)) = .0625/sqrt(1e-5) = 19.764235
 *    (finite; without the floor it would be a division by zero). Every split 26..75
 *    ties; the first is s* = 26; μ_lo = .25, μ_hi = .75, groups 1000 / 0 / 1000 / 0.
 *    The classic criterion: q = .0625, the same s*.
 * 2. 500 scores 0 and 1500 scores 0.75: every split 1..75 ties; the blind criterion
 *    looks only at s ∈ [2, bins−3] (the authors' range(2, 998)) → s* = 2, θ = .02;
 *    the classic one at s ∈ [1, bins−1] → s* = 1. */
static void
test_guards (void)
{
  float a[2000], b[2000];
  for (int i = 0; i < 2000; i++) {
    a[i] = i < 1000 ? 0.25f : 0.75f;
    b[i] = i < 500 ? 0.0f : 0.75f;
  }
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  opt.bins = 100;
  KdfOtsuResult r;
  g_autoptr (GError) error = NULL;
  opt.criterion = KDF_OTSU_CRITERION_BLIND;
  g_assert_true (kdf_otsu_threshold (a, 2000, &opt, &r, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.split, ==, 26);
  g_assert_cmpfloat_with_epsilon (r.q, 0.0625 / sqrt (1e-5), 1e-9);
  g_assert_cmpfloat_with_epsilon (r.mean_lo, 0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.mean_hi, 0.75, 1e-12);
  g_assert_cmpint (r.group_count[0], ==, 1000);
  g_assert_cmpint (r.group_count[1], ==, 0);
  g_assert_cmpint (r.group_count[2], ==, 1000);
  g_assert_cmpint (r.group_count[3], ==, 0);
  opt.exact = TRUE; /* the same q; the middle of the tied run 26..75 */
  g_assert_true (kdf_otsu_threshold (a, 2000, &opt, &r, NULL, NULL, &error));
  g_assert_cmpint (r.split, ==, 50);
  g_assert_cmpfloat_with_epsilon (r.q, 0.0625 / sqrt (1e-5), 1e-9);
  opt.exact = FALSE;
  opt.criterion = KDF_OTSU_CRITERION_OTSU;
  g_assert_true (kdf_otsu_threshold (a, 2000, &opt, &r, NULL, NULL, &error));
  g_assert_cmpint (r.split, ==, 26);
  g_assert_cmpfloat_with_epsilon (r.q, 0.0625, 1e-12);

  for (int exact = 0; exact < 2; exact++) {
    opt.exact = exact;
    opt.criterion = KDF_OTSU_CRITERION_BLIND;
    g_assert_true (kdf_otsu_threshold (b, 2000, &opt, &r, NULL, NULL, &error));
    g_assert_cmpint (r.split, ==, exact ? 38 : 2); /* exact: the middle of 2..75 */
    opt.criterion = KDF_OTSU_CRITERION_OTSU;
    g_assert_true (kdf_otsu_threshold (b, 2000, &opt, &r, NULL, NULL, &error));
    g_assert_cmpint (r.split, ==, exact ? 38 : 1); /* the middle of 1..75 */
  }
}

static void
test_tensor (void)
{
  g_autoptr (KdfTensor) t = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]) { 14 },
                                                      hand_scores);
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  opt.bins = 8;
  KdfOtsuResult r;
  g_autoptr (KdfTensor) mask = NULL, groups = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_otsu_threshold_tensor (t, &opt, &r, &mask, &groups, &error));
  g_assert_no_error (error);
  g_assert_cmpint (mask->dtype, ==, KDF_DTYPE_U8);
  g_assert_cmpint (groups->shape[0], ==, 14);
  check_hand (&r, kdf_tensor_i32 (groups), 1.0, 0.0);
  for (int i = 0; i < 14; i++)
    g_assert_cmpint (kdf_tensor_u8 (mask)[i], ==, i >= 7);

  /* A non-contiguous rank-2 view is refused with a shape error naming the input. */
  g_autoptr (KdfTensor) wide = kdf_tensor_new_2d (KDF_DTYPE_F32, 14, 2);
  g_autoptr (KdfTensor) tr = kdf_tensor_transpose (wide, 0, 1);
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_otsu_threshold_tensor (tr, &opt, &r, NULL, NULL, &e2));
  g_assert_nonnull (strstr (e2->message, "otsu_threshold: scores"));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_SHAPE);
}

static void
test_bad_input (void)
{
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  KdfOtsuResult r;
  float nan_scores[3] = { 0.1f, NAN, 0.9f };
  g_autoptr (GError) e1 = NULL;
  g_assert_false (kdf_otsu_threshold (nan_scores, 3, &opt, &r, NULL, NULL, &e1));
  g_assert_error (e1, KDF_ERROR, KDF_ERROR_VALUE);

  float outside[3] = { 0.1f, 1.5f, 0.9f };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_otsu_threshold (outside, 3, &opt, &r, NULL, NULL, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);

  float same[3] = { 0.3f, 0.3f, 0.3f };
  g_autoptr (GError) e3 = NULL;
  g_assert_false (kdf_otsu_threshold (same, 3, &opt, &r, NULL, NULL, &e3));
  g_assert_error (e3, KDF_ERROR, KDF_ERROR_VALUE);
  opt.normalize = TRUE;
  g_autoptr (GError) e4 = NULL;
  g_assert_false (kdf_otsu_threshold (same, 3, &opt, &r, NULL, NULL, &e4));
  g_assert_error (e4, KDF_ERROR, KDF_ERROR_VALUE);

  opt.bins = 2;
  g_autoptr (GError) e5 = NULL;
  g_assert_false (kdf_otsu_threshold (outside, 3, &opt, &r, NULL, NULL, &e5));
  g_assert_error (e5, KDF_ERROR, KDF_ERROR_PARAM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/otsu/methods-vector", test_methods_vector);
  g_test_add_func ("/detect/otsu/hand-case", test_hand_case);
  g_test_add_func ("/detect/otsu/skewed", test_skewed);
  g_test_add_func ("/detect/otsu/guards", test_guards);
  g_test_add_func ("/detect/otsu/tensor", test_tensor);
  g_test_add_func ("/detect/otsu/bad-input", test_bad_input);
  return g_test_run ();
}
