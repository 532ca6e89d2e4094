/* evaluate, agreement, tipping_point, topk_refine on small vectors worked by hand. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>

static void
test_confusion (void)
{
  const int32_t pred[6] = { 0, 1, 1, 2, 2, 0 };
  const int32_t truth[6] = { 0, 1, 2, 2, 1, 0 };
  int64_t conf[16];
  double per[4], acc;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_eval_confusion (conf, per, &acc, pred, truth, 6, 4, &error));
  g_assert_no_error (error);
  /* [true][pred]: t0 → p0 twice; t1 → p1, p2; t2 → p1, p2 */
  const int64_t want[16] = { 2, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0 };
  for (int e = 0; e < 16; e++)
    g_assert_cmpint (conf[e], ==, want[e]);
  g_assert_cmpfloat_with_epsilon (acc, 4.0 / 6.0, 1e-15);
  g_assert_cmpfloat_with_epsilon (per[0], 1.0, 1e-15);
  g_assert_cmpfloat_with_epsilon (per[1], 0.5, 1e-15);
  g_assert_cmpfloat_with_epsilon (per[2], 0.5, 1e-15);
  g_assert_true (isnan (per[3]));

  const float probs[6] = { 0.2f, 0.5f, 0.3f, 0.4f, 0.4f, 0.2f };
  int32_t am[2];
  g_assert_true (kdf_probs_argmax (am, probs, 2, 3, &error));
  g_assert_cmpint (am[0], ==, 1);
  g_assert_cmpint (am[1], ==, 0); /* tie → first */

  const int32_t bad[6] = { 0, 1, 1, 2, 4, 0 };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_eval_confusion (conf, NULL, NULL, bad, truth, 6, 4, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
}

static void
test_detection (void)
{
  const uint8_t flagged[6] = { 1, 1, 0, 0, 1, 0 };
  const uint8_t truth[6] = { 1, 0, 1, 0, 1, 0 };
  KdfDetectionMetrics d;
  kdf_eval_detection (&d, flagged, truth, 6);
  g_assert_cmpint (d.tp, ==, 2);
  g_assert_cmpint (d.fp, ==, 1);
  g_assert_cmpint (d.fn, ==, 1);
  g_assert_cmpint (d.tn, ==, 2);
  g_assert_cmpfloat_with_epsilon (d.precision, 2.0 / 3.0, 1e-15);
  g_assert_cmpfloat_with_epsilon (d.recall, 2.0 / 3.0, 1e-15);
  g_assert_cmpfloat_with_epsilon (d.f1, 2.0 / 3.0, 1e-15);

  const uint8_t nothing[6] = { 0 };
  kdf_eval_detection (&d, nothing, truth, 6);
  g_assert_cmpfloat (d.precision, ==, 0.0);
  g_assert_cmpfloat (d.recall, ==, 0.0);
  g_assert_cmpfloat (d.f1, ==, 0.0);
}

/* scores 0.1 0.4 0.35 0.8 0.4 0.1, noisy = rows 2, 3, 4.
 * Ascending: 0.1 (rows 0, 5: ranks 1, 2 → 1.5 each), 0.35 (row 2: 3), 0.4 (rows 1, 4:
 * ranks 4, 5 → 4.5 each), 0.8 (row 3: 6). R₊ = 3 + 4.5 + 6 = 13.5,
 * AUROC = (13.5 − 3·4/2)/(3·3) = 7.5/9 = 0.833333. Pairwise check: 0.35 beats both
 * 0.1s (2), 0.8 beats all (3), 0.4 beats both 0.1s and ties 0.4 (2.5): 7.5/9. */
static void
test_auroc (void)
{
  const float score[6] = { 0.1f, 0.4f, 0.35f, 0.8f, 0.4f, 0.1f };
  const uint8_t truth[6] = { 0, 0, 1, 1, 1, 0 };
  double auc;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_eval_auroc (&auc, score, truth, 6, &error));
  g_assert_cmpfloat_with_epsilon (auc, 7.5 / 9.0, 1e-15);

  /* perfect, inverted, all tied */
  const float s2[4] = { 0.1f, 0.2f, 0.3f, 0.4f };
  const uint8_t t2[4] = { 0, 0, 1, 1 }, t3[4] = { 1, 1, 0, 0 };
  g_assert_true (kdf_eval_auroc (&auc, s2, t2, 4, &error));
  g_assert_cmpfloat (auc, ==, 1.0);
  g_assert_true (kdf_eval_auroc (&auc, s2, t3, 4, &error));
  g_assert_cmpfloat (auc, ==, 0.0);
  const float s4[4] = { 0.5f, 0.5f, 0.5f, 0.5f };
  g_assert_true (kdf_eval_auroc (&auc, s4, t2, 4, &error));
  g_assert_cmpfloat (auc, ==, 0.5);
  /* one class only: undefined, not an error */
  const uint8_t all[4] = { 1, 1, 1, 1 };
  g_assert_true (kdf_eval_auroc (&auc, s2, all, 4, &error));
  g_assert_true (isnan (auc));

  const float bad[3] = { 0.1f, NAN, 0.3f };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_eval_auroc (&auc, bad, t2, 3, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
}

/* O(N log N) against the O(N²) pair count on a larger random case with many ties. */
static void
test_auroc_pairs (void)
{
  enum { N = 500 };
  float score[N];
  uint8_t truth[N];
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  for (int i = 0; i < N; i++) {
    truth[i] = g_rand_boolean (rng);
    score[i] = (float) g_rand_int_range (rng, 0, 20) / 10.0f + (truth[i] ? 0.3f : 0.0f);
  }
  double wins = 0, pos = 0, neg = 0;
  for (int i = 0; i < N; i++) {
    pos += truth[i];
    neg += !truth[i];
    if (!truth[i])
      continue;
    for (int j = 0; j < N; j++)
      if (!truth[j])
        wins += score[i] > score[j] ? 1.0 : (score[i] == score[j] ? 0.5 : 0.0);
  }
  double auc;
  g_assert_true (kdf_eval_auroc (&auc, score, truth, N, NULL));
  g_assert_cmpfloat_with_epsilon (auc, wins / (pos * neg), 1e-12);
}

static void
test_refined (void)
{
  const int32_t refined[4] = { 0, 1, 2, 2 }, clean[4] = { 0, 1, 1, 2 };
  const uint8_t noisy[4] = { 0, 1, 1, 0 };
  double all, on_noisy, on_clean;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_eval_refined_accuracy (&all, &on_noisy, &on_clean, refined, clean, noisy, 4,
                                            &error));
  g_assert_cmpfloat_with_epsilon (all, 0.75, 1e-15);
  g_assert_cmpfloat_with_epsilon (on_noisy, 0.5, 1e-15);
  g_assert_cmpfloat_with_epsilon (on_clean, 1.0, 1e-15);
  g_assert_true (kdf_eval_refined_accuracy (&all, &on_noisy, NULL, refined, clean, NULL, 4,
                                            &error));
  g_assert_true (isnan (on_noisy));
}

/* p^T = (.7 .2 .1), p^S = (.5 .3 .2): product (.35 .06 .02), sum .43,
 * p_A = (.813953 .139535 .046512); label 1 → a = .139535.
 * Disjoint rows (1 0 0)·(0 1 0) give the uniform 1/3. */
static void
test_agreement (void)
{
  const float pt[6] = { 0.7f, 0.2f, 0.1f, 1, 0, 0 };
  const float ps[6] = { 0.5f, 0.3f, 0.2f, 0, 1, 0 };
  const int32_t y[2] = { 1, 0 };
  float score[2], agree[6];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_agreement (score, agree, pt, ps, y, 2, 3, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (agree[0], 0.35 / 0.43, 1e-6);
  g_assert_cmpfloat_with_epsilon (agree[1], 0.06 / 0.43, 1e-6);
  g_assert_cmpfloat_with_epsilon (agree[2], 0.02 / 0.43, 1e-6);
  g_assert_cmpfloat_with_epsilon (score[0], 0.139535, 1e-6);
  g_assert_cmpfloat_with_epsilon (score[1], 1.0 / 3.0, 1e-7);
  g_assert_cmpfloat_with_epsilon (agree[4], 1.0 / 3.0, 1e-7);

  const float bad[6] = { 0.7f, NAN, 0.1f, 1, 0, 0 };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_agreement (score, NULL, bad, ps, y, 2, 3, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
  g_autoptr (GError) e3 = NULL;
  g_assert_false (kdf_agreement (score, NULL, pt, ps, NULL, 2, 3, &e3));

  double m;
  const float probs[6] = { 0.7f, 0.2f, 0.1f, 0.3f, 0.3f, 0.4f };
  g_assert_true (kdf_mean_max_prob (&m, probs, 2, 3, &error));
  g_assert_cmpfloat_with_epsilon (m, 0.55, 1e-7);
}

static void
test_tipping_point (void)
{
  const double rise[7] = { .30, .45, .52, .55, .54, .53, .56 };
  const double climb[7] = { .30, .45, .52, .55, .54, .56, .60 };
  int64_t epoch;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_tipping_point (&epoch, rise, 7, &error));
  g_assert_cmpint (epoch, ==, 3);
  g_assert_true (kdf_tipping_point (&epoch, climb, 7, &error));
  g_assert_cmpint (epoch, ==, -1);
  /* fewer than 6 ticks: never, even with a peak at 2 */
  g_assert_true (kdf_tipping_point (&epoch, rise, 5, &error));
  g_assert_cmpint (epoch, ==, -1);
  g_assert_true (kdf_tipping_point (&epoch, rise, 6, &error));
  g_assert_cmpint (epoch, ==, 3);
  /* a 10-tick history with no peak stays "none" (the authors' code says 8) */
  const double flat[10] = { .1, .2, .3, .4, .5, .6, .7, .8, .9, 1 };
  g_assert_true (kdf_tipping_point (&epoch, flat, 10, &error));
  g_assert_cmpint (epoch, ==, -1);
  /* equal neighbours are not a peak (strictly greater) */
  const double plateau[7] = { .3, .4, .5, .5, .4, .3, .2 };
  g_assert_true (kdf_tipping_point (&epoch, plateau, 7, &error));
  g_assert_cmpint (epoch, ==, -1);
  const double bad[7] = { .30, .45, NAN, .55, .54, .53, .56 };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_tipping_point (&epoch, bad, 7, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
}

static void
test_topk (void)
{
  const float probs[8] = { 0.1f, 0.5f, 0.3f, 0.1f, 0.25f, 0.25f, 0.25f, 0.25f };
  float soft[8];
  uint8_t mask[8];
  int32_t top[4];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_topk_refine (soft, mask, top, probs, 2, 4, 2, &error));
  const float want_soft[8] = { 0, 0.5f, 0.5f, 0, 0.5f, 0.5f, 0, 0 };
  const int32_t want_top[4] = { 1, 2, 0, 1 };
  for (int e = 0; e < 8; e++) {
    g_assert_cmpfloat (soft[e], ==, want_soft[e]);
    g_assert_cmpint (mask[e], ==, want_soft[e] > 0);
  }
  for (int e = 0; e < 4; e++)
    g_assert_cmpint (top[e], ==, want_top[e]);
  int32_t top3[3];
  g_assert_true (kdf_topk_refine (NULL, NULL, top3, probs, 1, 4, 3, &error));
  g_assert_cmpint (top3[0], ==, 1);
  g_assert_cmpint (top3[1], ==, 2);
  g_assert_cmpint (top3[2], ==, 0); /* 0.1 at classes 0 and 3: the lower wins */
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_topk_refine (soft, NULL, NULL, probs, 2, 4, 5, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_PARAM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/eval/confusion", test_confusion);
  g_test_add_func ("/detect/eval/detection", test_detection);
  g_test_add_func ("/detect/eval/auroc", test_auroc);
  g_test_add_func ("/detect/eval/auroc-pairs", test_auroc_pairs);
  g_test_add_func ("/detect/eval/refined", test_refined);
  g_test_add_func ("/detect/agreement/score", test_agreement);
  g_test_add_func ("/detect/agreement/tipping-point", test_tipping_point);
  g_test_add_func ("/detect/agreement/topk", test_topk);
  return g_test_run ();
}
