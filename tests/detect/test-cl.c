/* confident_learning: a case worked by hand through every step, the confident
 * joint's argmax and diagonal rules, the filters, the issue order, invariants on
 * synthetic data, bad input. (The check against cleanlab on the label-errors
 * probabilities needs the .npy reader; see cl.c.) */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

/* Eleven samples, three classes; rows 2 and 6 look mislabelled, row 10 is an
 * unconfident sample whose argmax differs from its label.
 *
 * 1. thresholds (mean self-confidence per given class):
 *      t0 = (.9 + .8 + .1 + .7)/4 = 0.625       (rows 0–3)
 *      t1 = (.8 + .7 + .05)/3   = 0.516667      (rows 4–6)
 *      t2 = (.8 + .9 + .7 + .2)/4 = 0.65        (rows 7–10)
 * 2. confident classes (p ≥ t − 1e-6): rows 0,1,3 → 0; row 2 → 1 (p1 = .8);
 *    rows 4,5 → 1; row 6 → 2 (p2 = .8); rows 7,8,9 → 2; row 10: none
 *    (.5 < .625, .3 < .517, .2 < .65). Confident joint [given][true]:
 *      [3 1 0]
 *      [0 2 1]     10 confident (all but row 10), 2 off the diagonal (rows 2, 6)
 *      [0 0 3]
 * 3. calibration to the given counts (4, 3, 4): row 2 scales by 4/3 → [0 0 4];
 *    the total is then 11 = N, so nothing else moves:
 *      [3 1 0] [0 2 1] [0 0 4]
 * 4. prune counts = transpose [true][given]: [3 0 0] [1 2 0] [0 1 4].
 * 5. prune_by_noise_rate: given 0, true 1: take 1 with the largest p1 − p0 among
 *    rows 0–3 (−.85, −.7, .7, −.5) → row 2. Given 1, true 2: 1 with the largest
 *    p2 − p1 among rows 4–6 (−.7, −.6, .75) → row 6. Nothing else is > 0.
 *    prune_by_class: class 0 drops 4 − 3 = 1 with the smallest p0 → row 2; class 1
 *    drops 3 − 2 = 1 → row 6 (p1 = .05); class 2 drops 4 − 4 = 0.
 *    predicted_neq_given: rows 2, 6 and 10 (argmax 0 ≠ 2).
 * 6. none of these has its label as argmax (+1e-6), so none is unflagged.
 * Order by self-confidence: row 6 (.05) before row 2 (.1); by normalised margin
 * (p_y − max other + 1)/2: row 6 (.125) before row 2 (.15). */
static const double hand_p[11 * 3] = {
  0.9, 0.05, 0.05, 0.8, 0.1, 0.1, 0.1, 0.8, 0.1,  0.7,  0.2,  0.1,
  0.1, 0.8,  0.1,  0.2, 0.7, 0.1, 0.15, 0.05, 0.8, 0.1, 0.1, 0.8,
  0.05, 0.05, 0.9, 0.1, 0.2, 0.7, 0.5, 0.3, 0.2,
};
static const int32_t hand_y[11] = { 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2 };

static void
assert_flags (const uint8_t *issues, int64_t n, const int *rows, int n_rows)
{
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++)
    count += issues[i];
  g_assert_cmpint (count, ==, n_rows);
  for (int r = 0; r < n_rows; r++)
    g_assert_cmpint (issues[rows[r]], ==, 1);
}

static void
test_hand_case (void)
{
  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  KdfClResult r = { 0 };
  uint8_t issues[11];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_confident_learning_f64 (issues, hand_p, hand_y, 11, 3, &opt, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (r.thresholds[0], 0.625, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.thresholds[1], 1.55 / 3, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.thresholds[2], 0.65, 1e-12);
  const int64_t cj[9] = { 3, 1, 0, 0, 2, 1, 0, 0, 3 };
  const int64_t cal[9] = { 3, 1, 0, 0, 2, 1, 0, 0, 4 };
  const int64_t pcm[9] = { 3, 0, 0, 1, 2, 0, 0, 1, 4 };
  for (int e = 0; e < 9; e++) {
    g_assert_cmpint (r.confident_joint[e], ==, cj[e]);
    g_assert_cmpint (r.calibrated_joint[e], ==, cal[e]);
    g_assert_cmpint (r.prune_counts[e], ==, pcm[e]);
  }
  g_assert_cmpint (r.n_confident, ==, 10);
  g_assert_cmpint (r.n_off_diagonal, ==, 2);
  g_assert_cmpint (r.n_flagged, ==, 2);
  assert_flags (issues, 11, (int[]) { 2, 6 }, 2);

  for (int f = KDF_CL_PRUNE_BY_CLASS; f <= KDF_CL_CONFIDENT_LEARNING; f++) {
    opt.filter = f;
    g_assert_true (kdf_confident_learning_f64 (issues, hand_p, hand_y, 11, 3, &opt, NULL, &error));
    assert_flags (issues, 11, (int[]) { 2, 6 }, 2);
  }
  opt.filter = KDF_CL_PREDICTED_NEQ_GIVEN;
  g_assert_true (kdf_confident_learning_f64 (issues, hand_p, hand_y, 11, 3, &opt, NULL, &error));
  assert_flags (issues, 11, (int[]) { 2, 6, 10 }, 3);

  int64_t order[3], n_order;
  g_assert_true (kdf_cl_order_issues_f64 (order, &n_order, issues, hand_p, hand_y, 11, 3,
                                          KDF_CL_RANK_SELF_CONFIDENCE, &error));
  g_assert_cmpint (n_order, ==, 3);
  /* self-confidence: row 6 .05, row 2 .1, row 10 .2 */
  g_assert_cmpint (order[0], ==, 6);
  g_assert_cmpint (order[1], ==, 2);
  g_assert_cmpint (order[2], ==, 10);
  g_assert_true (kdf_cl_order_issues_f64 (order, &n_order, issues, hand_p, hand_y, 11, 3,
                                          KDF_CL_RANK_NORMALIZED_MARGIN, &error));
  /* margins: row 6 .125, row 2 .15, row 10 (.2 − .5 + 1)/2 = .35 */
  g_assert_cmpint (order[0], ==, 6);
  g_assert_cmpint (order[1], ==, 2);
  g_assert_cmpint (order[2], ==, 10);
  kdf_cl_result_clear (&r);
  kdf_cl_result_clear (&r); /* idempotent */
}

/* Two rules of step 2 the hand case does not reach, worked by hand (and by a numpy
 * port of step 2). Nine samples, three classes, three of each given label:
 *   t0 = (.45 + .40 + .35)/3 = .4,  t1 = (.6 + .5 + .4)/3 = .5,  t2 = (.4 + .2 + .2)/3 = .266667
 *   row 0 (label 0) .45 .50 .05: confident in 0 and 1 → the argmax, 1 (not the first, 0)
 *   row 1 (label 0) .40 .30 .30: 0 and 2 → 0;   row 2 (label 0) .35 .30 .35: 2 only
 *   row 3 (label 1) .10 .60 .30: 1 and 2 → 1;   row 4 (label 1) .20 .50 .30: 1 and 2 → 1
 *   row 5 (label 1) .30 .40 .30: 2 only
 *   row 6 (label 2) .50 .10 .40: 0 and 2 → 0;   row 7 (label 2) .60 .20 .20: 0 only
 *   row 8 (label 2) .20 .60 .20: 1 only
 * Joint [given][true]: [1 1 1] [0 2 1] [2 1 0], and class 2's empty diagonal is raised
 * to 1 (every class is assumed to have one correctly labelled sample): [2 1 1]. */
static void
test_joint_rules (void)
{
  static const double p[9 * 3] = {
    0.45, 0.50, 0.05, 0.40, 0.30, 0.30, 0.35, 0.30, 0.35,
    0.10, 0.60, 0.30, 0.20, 0.50, 0.30, 0.30, 0.40, 0.30,
    0.50, 0.10, 0.40, 0.60, 0.20, 0.20, 0.20, 0.60, 0.20,
  };
  static const int32_t y[9] = { 0, 0, 0, 1, 1, 1, 2, 2, 2 };
  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  KdfClResult r = { 0 };
  uint8_t issues[9];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_confident_learning_f64 (issues, p, y, 9, 3, &opt, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (r.thresholds[0], 0.4, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.thresholds[1], 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.thresholds[2], 0.8 / 3, 1e-12);
  const int64_t cj[9] = { 1, 1, 1, 0, 2, 1, 2, 1, 1 };
  for (int e = 0; e < 9; e++)
    g_assert_cmpint (r.confident_joint[e], ==, cj[e]);
  g_assert_cmpint (r.n_confident, ==, 9);
  g_assert_cmpint (r.n_off_diagonal, ==, 6); /* rows 0, 2, 5, 6, 7, 8 */
  kdf_cl_result_clear (&r);
}

/* Calibration that needs round_preserving_sum. Class 0 has four samples: rows 0–2
 * each confident in a different class and row 3 first confident in class 0, then
 * (second half) in no class. Classes 1 and 2 have one confident sample each.
 *  first:  t0 = (.9 + .05 + .05 + .34)/4 = .335, row 3 (.34 ≥ .335) → class 0:
 *          joint row 0 = [2 1 1], already summing to the count 4.
 *  second: row 3 = (.30 .35 .35), t0 = .325: row 3 is confident nowhere, joint
 *          row 0 = [1 1 1] → calibrated 4/3 each (the total stays 6 = N); rounding
 *          gives [1 1 1] = 3 ≠ 4, so +1 goes to the largest residue. All three tie
 *          at 1/3; numpy's (stable, small-array) argsort reversed for a +1 puts the
 *          last index first: [1 1 2]. */
static void
test_rounding (void)
{
  /* classes 1 and 2 get one confident sample each so their thresholds are set. */
  static const double p[6 * 3] = {
    0.9, 0.05, 0.05, 0.05, 0.9, 0.05, 0.05, 0.05, 0.9, 0.34, 0.33, 0.33,
    0.05, 0.9, 0.05, 0.05, 0.05, 0.9,
  };
  static const int32_t y[6] = { 0, 0, 0, 0, 1, 2 };
  KdfClResult r = { 0 };
  uint8_t issues[6];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_confident_learning_f64 (issues, p, y, 6, 3, NULL, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.confident_joint[0], ==, 2);
  g_assert_cmpint (r.confident_joint[1], ==, 1);
  g_assert_cmpint (r.confident_joint[2], ==, 1);
  kdf_cl_result_clear (&r);

  double q[6 * 3];
  memcpy (q, p, sizeof q);
  q[9] = 0.30;
  q[10] = 0.35;
  q[11] = 0.35;
  g_assert_true (kdf_confident_learning_f64 (issues, q, y, 6, 3, NULL, &r, &error));
  g_assert_cmpfloat_with_epsilon (r.thresholds[0], 0.325, 1e-12);
  g_assert_cmpint (r.confident_joint[0], ==, 1);
  g_assert_cmpint (r.confident_joint[1], ==, 1);
  g_assert_cmpint (r.confident_joint[2], ==, 1);
  g_assert_cmpint (r.calibrated_joint[0], ==, 1);
  g_assert_cmpint (r.calibrated_joint[1], ==, 1);
  g_assert_cmpint (r.calibrated_joint[2], ==, 2);
  kdf_cl_result_clear (&r);
}

/* Softmax of Gaussian logits with the true class boosted, 20 % of labels flipped. */
static void
synthetic (double *p, int32_t *y, uint8_t *flipped, int64_t n, int c, guint32 seed)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  for (int64_t i = 0; i < n; i++) {
    int truth = g_rand_int_range (rng, 0, c);
    double z[16], m = -INFINITY, s = 0;
    for (int j = 0; j < c; j++) {
      double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
      z[j] = sqrt (-2 * log (1 - u1)) * cos (2 * G_PI * u2) + (j == truth ? 2.5 : 0);
      m = MAX (m, z[j]);
    }
    for (int j = 0; j < c; j++)
      s += exp (z[j] - m);
    for (int j = 0; j < c; j++)
      p[i * c + j] = exp (z[j] - m) / s;
    flipped[i] = g_rand_double (rng) < 0.2;
    y[i] = flipped[i] ? (truth + g_rand_int_range (rng, 1, c)) % c : truth;
  }
}

static void
test_synthetic_invariants (void)
{
  const int64_t n = 4000;
  const int c = 5;
  g_autofree double *p = g_new (double, n * c);
  g_autofree float *pf = g_new (float, n * c);
  g_autofree int32_t *y = g_new (int32_t, n);
  g_autofree uint8_t *flipped = g_new (uint8_t, n);
  synthetic (p, y, flipped, n, c, 7);
  for (int64_t e = 0; e < n * c; e++)
    pf[e] = (float) p[e];
  g_autofree uint8_t *full = g_new (uint8_t, n), *half = g_new (uint8_t, n),
                     *f32 = g_new (uint8_t, n), *none = g_new (uint8_t, n);
  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  KdfClResult r = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_confident_learning_f64 (full, p, y, n, c, &opt, &r, &error));
  /* Calibration keeps each row's total at its given count, and the whole at N. */
  int64_t total = 0;
  for (int k = 0; k < c; k++) {
    int64_t row = 0, count = 0;
    for (int j = 0; j < c; j++)
      row += r.calibrated_joint[k * c + j];
    for (int64_t i = 0; i < n; i++)
      count += y[i] == k;
    g_assert_cmpint (row, ==, count);
    total += row;
  }
  g_assert_cmpint (total, ==, n);
  /* Detection on this easy noise is far better than chance (20 % flipped). */
  KdfDetectionMetrics d;
  kdf_eval_detection (&d, full, flipped, n);
  g_assert_cmpfloat (d.precision, >, 0.8);
  g_assert_cmpfloat (d.recall, >, 0.5);
  kdf_cl_result_clear (&r);

  /* frac_noise scales each cell's count down, so its flags are a subset. */
  opt.frac_noise = 0.5;
  g_assert_true (kdf_confident_learning_f64 (half, p, y, n, c, &opt, NULL, &error));
  int64_t nf = 0, nh = 0;
  for (int64_t i = 0; i < n; i++) {
    g_assert_true (!half[i] || full[i]);
    nf += full[i];
    nh += half[i];
  }
  g_assert_cmpint (nh, <, nf);
  g_assert_cmpint (nh, >, nf / 3);

  /* Threads do not change the flags. */
  g_autofree uint8_t *threaded = g_new (uint8_t, n);
  opt.frac_noise = 1.0;
  opt.threads = 3;
  g_assert_true (kdf_confident_learning_f64 (threaded, p, y, n, c, &opt, NULL, &error));
  g_assert_cmpmem (threaded, n, full, n);
  opt.threads = 1;

  /* f32 input gives the same flags here. */
  opt.frac_noise = 1.0;
  g_assert_true (kdf_confident_learning_f32 (f32, pf, y, n, c, &opt, NULL, &error));
  g_assert_cmpmem (f32, n, full, n);

  /* A class needs more than min_examples_per_class samples to be pruned. */
  opt.min_examples_per_class = n;
  g_assert_true (kdf_confident_learning_f64 (none, p, y, n, c, &opt, NULL, &error));
  for (int64_t i = 0; i < n; i++)
    g_assert_cmpint (none[i], ==, 0);

  /* num_to_remove_per_class: cleanlab warns the count may be off by one. */
  opt.min_examples_per_class = 1;
  int64_t remove[5] = { 10, 10, 10, 10, 10 };
  opt.num_to_remove_per_class = remove;
  g_assert_true (kdf_confident_learning_f64 (none, p, y, n, c, &opt, &r, &error));
  g_assert_no_error (error);
  for (int k = 0; k < c; k++) {
    int64_t off = 0;
    for (int j = 0; j < c; j++)
      if (j != k)
        off += r.prune_counts[k * c + j];
    g_assert_cmpint (off, >=, 9);
    g_assert_cmpint (off, <=, 11);
  }
  kdf_cl_result_clear (&r);
}

static void
test_tensor_and_bad_input (void)
{
  float pf[11 * 3];
  for (int e = 0; e < 33; e++)
    pf[e] = (float) hand_p[e];
  g_autoptr (KdfTensor) p = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]) { 11, 3 }, pf);
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]) { 11 }, hand_y);
  g_autoptr (KdfTensor) issues = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_confident_learning_tensor (p, y, NULL, &issues, NULL, &error));
  g_assert_no_error (error);
  assert_flags (kdf_tensor_u8 (issues), 11, (int[]) { 2, 6 }, 2);

  g_autoptr (KdfTensor) short_y = kdf_tensor_slice (y, 0, 0, 10);
  g_autoptr (KdfTensor) none = NULL;
  g_autoptr (GError) e1 = NULL;
  g_assert_false (kdf_confident_learning_tensor (p, short_y, NULL, &none, NULL, &e1));
  g_assert_error (e1, KDF_ERROR, KDF_ERROR_SHAPE);

  double bad[33];
  memcpy (bad, hand_p, sizeof bad);
  bad[17] = NAN;
  uint8_t out[11];
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_confident_learning_f64 (out, bad, hand_y, 11, 3, NULL, NULL, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
  int32_t bad_y[11];
  memcpy (bad_y, hand_y, sizeof bad_y);
  bad_y[4] = 3;
  g_autoptr (GError) e3 = NULL;
  g_assert_false (kdf_confident_learning_f64 (out, hand_p, bad_y, 11, 3, NULL, NULL, &e3));
  g_assert_error (e3, KDF_ERROR, KDF_ERROR_VALUE);
  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  opt.frac_noise = 0;
  g_autoptr (GError) e4 = NULL;
  g_assert_false (kdf_confident_learning_f64 (out, hand_p, hand_y, 11, 3, &opt, NULL, &e4));
  g_assert_error (e4, KDF_ERROR, KDF_ERROR_PARAM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/cl/hand-case", test_hand_case);
  g_test_add_func ("/detect/cl/joint-rules", test_joint_rules);
  g_test_add_func ("/detect/cl/rounding", test_rounding);
  g_test_add_func ("/detect/cl/synthetic-invariants", test_synthetic_invariants);
  g_test_add_func ("/detect/cl/tensor-and-bad-input", test_tensor_and_bad_input);
  return g_test_run ();
}
