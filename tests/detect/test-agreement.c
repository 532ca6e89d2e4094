/* Blind KD's kernels called directly: the agreement score, the mean max probability
 * and the tipping-point rule on whole histories — including those the node never
 * hands over at once (it looks after every new entry, so it cannot tell the first
 * peak of a history from the last). */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

static int64_t
tipping (const double *h, int64_t n)
{
  int64_t e = -2;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_tipping_point (&e, h, n, &error));
  g_assert_no_error (error);
  return e;
}

static void
test_tipping (void)
{
  /* METHODS §1: .55 at index 3 beats .45 .52 | .54 .53 → 3; the climb has no peak */
  const double peak[7] = { 0.30, 0.45, 0.52, 0.55, 0.54, 0.53, 0.56 };
  const double climb[7] = { 0.30, 0.45, 0.52, 0.55, 0.54, 0.56, 0.60 };
  g_assert_cmpint (tipping (peak, 7), ==, 3);
  g_assert_cmpint (tipping (climb, 7), ==, -1);
  /* fewer than 6 entries: nothing, though index 2 is a peak of the first five */
  g_assert_cmpint (tipping (peak, 5), ==, -1);
  g_assert_cmpint (tipping (peak, 6), ==, 3);
  /* two peaks (index 2: .50 > .10 .20 | .40 .30; index 6: .90 > .30 .20 | .10 .10):
   * the first, not the higher or the later */
  const double two[9] = { 0.10, 0.20, 0.50, 0.40, 0.30, 0.20, 0.90, 0.10, 0.10 };
  g_assert_cmpint (tipping (two, 9), ==, 2);
  /* index 2 (.40) is above .30 | .35 .30 but not above m_{i−2} = .50; index 3 (.35)
   * is not above .40: no peak anywhere */
  const double behind[7] = { 0.50, 0.30, 0.40, 0.35, 0.30, 0.20, 0.10 };
  g_assert_cmpint (tipping (behind, 7), ==, -1);
  /* index 2 (.40) above .10 .20 | .30 but not above m_{i+2} = .45, which then is the
   * peak at index 4 (.45 > .40 .30 | .20 .10) */
  const double ahead[7] = { 0.10, 0.20, 0.40, 0.30, 0.45, 0.20, 0.10 };
  g_assert_cmpint (tipping (ahead, 7), ==, 4);
  /* strictly greater: a tie with a neighbour is no peak */
  const double tied[7] = { 0.10, 0.20, 0.50, 0.50, 0.30, 0.20, 0.10 };
  g_assert_cmpint (tipping (tied, 7), ==, -1);
  /* the first and last two entries are never candidates */
  const double edges[6] = { 0.90, 0.10, 0.20, 0.30, 0.20, 0.95 };
  g_assert_cmpint (tipping (edges, 6), ==, -1);
  const double at3[6] = { 0.10, 0.20, 0.25, 0.40, 0.30, 0.35 };
  g_assert_cmpint (tipping (at3, 6), ==, 3);
  /* NaN in the history is refused */
  const double bad[6] = { 0.1, 0.2, NAN, 0.3, 0.2, 0.1 };
  int64_t e;
  g_autoptr (GError) error = NULL;
  g_assert_false (kdf_tipping_point (&e, bad, 6, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
}

static void
test_mean_max (void)
{
  /* maxima .7 (class 0), .6 (class 1), .5 (tie) → .6; not the first column's mean .533 */
  const float p[6] = { 0.7f, 0.3f, 0.4f, 0.6f, 0.5f, 0.5f };
  double m = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_mean_max_prob (&m, p, 3, 2, &error));
  g_assert_cmpfloat_with_epsilon (m, 0.6, 1e-7);
}

static void
test_agreement (void)
{
  /* row 0: T (.6 .3 .1) ⊙ S (.2 .5 .3) = (.12 .15 .03), sum .30 → (.4 .5 .1)
   * row 1: T (1 0 0) ⊙ S (0 .5 .5) = 0 → uniform 1/3
   * row 2: T (.5 .45 .05) ⊙ S (.05 .45 .5) = (.025 .2025 .025) → .2025/.2525 for class 1 */
  const float t[9] = { 0.6f, 0.3f, 0.1f, 1, 0, 0, 0.5f, 0.45f, 0.05f };
  const float s[9] = { 0.2f, 0.5f, 0.3f, 0, 0.5f, 0.5f, 0.05f, 0.45f, 0.5f };
  const int32_t y[3] = { 0, 1, 1 };
  float score[3], agree[9];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_agreement (score, agree, t, s, y, 3, 3, &error));
  g_assert_no_error (error);
  const double want_a[9] = { 0.4, 0.5, 0.1, 1.0 / 3, 1.0 / 3, 1.0 / 3,
                             0.025 / 0.2525, 0.2025 / 0.2525, 0.025 / 0.2525 };
  for (int e = 0; e < 9; e++)
    g_assert_cmpfloat_with_epsilon (agree[e], want_a[e], 1e-6);
  g_assert_cmpfloat_with_epsilon (score[0], 0.4, 1e-6);
  g_assert_cmpfloat_with_epsilon (score[1], 1.0 / 3, 1e-6);
  g_assert_cmpfloat_with_epsilon (score[2], 0.2025 / 0.2525, 1e-6);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/blind/tipping-point", test_tipping);
  g_test_add_func ("/detect/blind/mean-max", test_mean_max);
  g_test_add_func ("/detect/blind/agreement", test_agreement);
  return g_test_run ();
}
