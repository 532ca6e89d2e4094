/* loss_ranking: counts per scope, tie handling, threshold and Otsu forms, the
 * cross-entropy helper and Co-teaching's schedule. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>

/* Eight losses. Ascending with ties by index:
 *   0.0(5) 0.1(1) 0.3(2) 0.3(3) 0.3(6) 0.5(0) 0.7(7) 0.9(4)          */
static const float losses[8] = { 0.5f, 0.1f, 0.3f, 0.3f, 0.9f, 0.0f, 0.3f, 0.7f };
static const int32_t labels[8] = { 0, 1, 0, 1, 0, 1, 0, 1 };

static void
run (const KdfRankOptions *opt, uint8_t *clean, int32_t *rank, int64_t *kept)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_loss_rank (losses, 8, opt, clean, rank, kept, &error));
  g_assert_no_error (error);
}

static void
test_global (void)
{
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.keep = 0.5;
  uint8_t clean[8];
  int32_t rank[8];
  int64_t kept;
  run (&opt, clean, rank, &kept);
  /* ⌊0.5·8⌋ = 4 kept: indices 5, 1, 2, 3 — of the three 0.3s, 6 loses the tie. */
  const int32_t want_rank[8] = { 5, 1, 2, 3, 7, 0, 4, 6 };
  const uint8_t want_clean[8] = { 0, 1, 1, 1, 0, 1, 0, 0 };
  for (int i = 0; i < 8; i++) {
    g_assert_cmpint (rank[i], ==, want_rank[i]);
    g_assert_cmpint (clean[i], ==, want_clean[i]);
  }
  g_assert_cmpint (kept, ==, 4);

  opt.keep = 1.0;
  run (&opt, clean, NULL, &kept);
  g_assert_cmpint (kept, ==, 8);
  opt.keep = 0.0;
  run (&opt, clean, NULL, &kept);
  g_assert_cmpint (kept, ==, 0);
}

static void
test_per_class (void)
{
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.keep = 0.5;
  opt.scope = KDF_RANK_SCOPE_PER_CLASS;
  opt.labels = labels;
  opt.n_classes = 2;
  uint8_t clean[8];
  int32_t rank[8];
  int64_t kept;
  run (&opt, clean, rank, &kept);
  /* class 0 = {0:.5, 2:.3, 4:.9, 6:.3} → order 2, 6, 0, 4; keep 2: {2, 6}
   * class 1 = {1:.1, 3:.3, 5:.0, 7:.7} → order 5, 1, 3, 7; keep 2: {5, 1}
   * (globally 6 was dropped; per class it is kept). */
  const int32_t want_rank[8] = { 2, 1, 0, 2, 3, 0, 1, 3 };
  const uint8_t want_clean[8] = { 0, 1, 1, 0, 0, 1, 1, 0 };
  for (int i = 0; i < 8; i++) {
    g_assert_cmpint (rank[i], ==, want_rank[i]);
    g_assert_cmpint (clean[i], ==, want_clean[i]);
  }
  g_assert_cmpint (kept, ==, 4);

  /* A class with no sample is fine; labels out of range are not. */
  opt.n_classes = 3;
  run (&opt, clean, rank, &kept);
  g_assert_cmpint (kept, ==, 4);
  opt.n_classes = 1;
  g_autoptr (GError) error = NULL;
  g_assert_false (kdf_loss_rank (losses, 8, &opt, clean, rank, NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
}

static void
test_batch (void)
{
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.keep = 0.5;
  opt.scope = KDF_RANK_SCOPE_BATCH;
  opt.batch = 3;
  uint8_t clean[8];
  int32_t rank[8];
  int64_t kept;
  run (&opt, clean, rank, &kept);
  /* blocks {0,1,2} {3,4,5} {6,7}: ⌊1.5⌋ = 1, 1 and ⌊1.0⌋ = 1 kept:
   * block 0 (.5 .1 .3) → 1; block 1 (.3 .9 .0) → 5; block 2 (.3 .7) → 6. */
  const int32_t want_rank[8] = { 2, 0, 1, 1, 2, 0, 0, 1 };
  const uint8_t want_clean[8] = { 0, 1, 0, 0, 0, 1, 1, 0 };
  for (int i = 0; i < 8; i++) {
    g_assert_cmpint (rank[i], ==, want_rank[i]);
    g_assert_cmpint (clean[i], ==, want_clean[i]);
  }
  g_assert_cmpint (kept, ==, 3);
}

static void
test_counts_and_ties (void)
{
  /* 0.29·100 is 28.999… in double: still 29 kept. */
  float loss[100];
  for (int i = 0; i < 100; i++)
    loss[i] = (float) ((i * 37) % 100);
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.keep = 0.29;
  int64_t kept;
  uint8_t clean[100];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_loss_rank (loss, 100, &opt, clean, NULL, &kept, &error));
  g_assert_cmpint (kept, ==, 29);
  for (int i = 0; i < 100; i++)
    g_assert_cmpint (clean[i], ==, loss[i] < 29.0f);

  /* All equal (and −0.0 equal to +0.0): ranks follow the index. */
  float zeros[6] = { 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, 0.0f };
  int32_t rank[6];
  opt.keep = 0.5;
  g_assert_true (kdf_loss_rank (zeros, 6, &opt, clean, rank, &kept, &error));
  for (int i = 0; i < 6; i++) {
    g_assert_cmpint (rank[i], ==, i);
    g_assert_cmpint (clean[i], ==, i < 3);
  }

  /* Negative losses sort below positive ones. */
  float mixed[4] = { 1.0f, -2.0f, 0.5f, -0.5f };
  g_assert_true (kdf_loss_rank (mixed, 4, &opt, clean, rank, &kept, &error));
  const int32_t want[4] = { 3, 0, 2, 1 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (rank[i], ==, want[i]);

  float bad[3] = { 0.1f, NAN, 0.2f };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_loss_rank (bad, 3, &opt, clean, rank, &kept, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
  opt.keep = 1.5;
  g_autoptr (GError) e3 = NULL;
  g_assert_false (kdf_loss_rank (mixed, 4, &opt, clean, rank, &kept, &e3));
  g_assert_error (e3, KDF_ERROR, KDF_ERROR_PARAM);
}

static void
test_threshold_and_otsu (void)
{
  uint8_t clean[8];
  int32_t rank[8];
  int64_t kept;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_loss_rank_threshold (losses, 8, 0.3, NULL, clean, rank, &kept, &error));
  /* strictly below 0.3: indices 1 and 5 */
  g_assert_cmpint (kept, ==, 2);
  g_assert_cmpint (clean[1], ==, 1);
  g_assert_cmpint (clean[5], ==, 1);
  g_assert_cmpint (clean[2], ==, 0);
  g_assert_cmpint (rank[5], ==, 0);

  /* Two loss clusters, 60 small (0.10..0.27) and 40 large (2.03..2.39): Otsu on
   * the min-max normalised losses keeps exactly the small ones. */
  float loss[100];
  for (int i = 0; i < 100; i++)
    loss[i] = i % 5 < 3 ? 0.10f + 0.01f * (float) (i % 20) : 2.0f + 0.01f * (float) (i % 40);
  uint8_t c2[100];
  KdfOtsuResult r;
  g_assert_true (kdf_loss_rank_otsu (loss, 100, NULL, NULL, c2, NULL, &kept, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpint (kept, ==, 60);
  for (int i = 0; i < 100; i++)
    g_assert_cmpint (c2[i], ==, loss[i] < 1.0f);
  g_assert_cmpfloat (r.threshold_raw, >, 0.27);
  g_assert_cmpfloat (r.threshold_raw, <=, 2.0);
}

static void
test_cross_entropy (void)
{
  /* z = (2, 1, 0): logsumexp = log(e² + e + 1) = log 11.107338 = 2.407606. */
  const float logits[6] = { 2, 1, 0, 0, 0, 0 };
  const int32_t y[2] = { 0, 2 };
  float loss[2];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_sample_cross_entropy (loss, logits, 2, 3, 3, y, &error));
  g_assert_cmpfloat_with_epsilon (loss[0], 0.407606, 1e-6);
  g_assert_cmpfloat_with_epsilon (loss[1], log (3.0), 1e-6);
  const int32_t bad[2] = { 0, 3 };
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_sample_cross_entropy (loss, logits, 2, 3, 3, bad, &e2));

  /* Tensor form, and large logits stay finite. */
  const float big[3] = { 1000, 0, -1000 };
  g_autoptr (KdfTensor) z = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]) { 1, 3 }, big);
  g_autoptr (KdfTensor) l = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]) { 1 },
                                                      (int32_t[]) { 1 });
  g_autoptr (KdfTensor) ce = kdf_sample_cross_entropy_tensor (z, l, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (ce)[0], 1000.0, 1e-3);

  g_autoptr (KdfTensor) lt = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]) { 8 }, losses);
  g_autoptr (KdfTensor) clean = NULL, rank = NULL;
  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.keep = 0.5;
  g_assert_true (kdf_loss_rank_tensor (lt, &opt, &clean, &rank, &error));
  g_assert_cmpint (kdf_tensor_u8 (clean)[6], ==, 0);
  g_assert_cmpint (kdf_tensor_i32 (rank)[6], ==, 4);
}

static void
test_schedule (void)
{
  /* keep(t) = 1 − τ·min(t/T_k, 1), τ = 0.4, T_k = 10 */
  g_assert_cmpfloat_with_epsilon (kdf_coteaching_keep (0, 0.4, 10), 1.0, 1e-15);
  g_assert_cmpfloat_with_epsilon (kdf_coteaching_keep (5, 0.4, 10), 0.8, 1e-15);
  g_assert_cmpfloat_with_epsilon (kdf_coteaching_keep (10, 0.4, 10), 0.6, 1e-15);
  g_assert_cmpfloat_with_epsilon (kdf_coteaching_keep (30, 0.4, 10), 0.6, 1e-15);
  g_assert_cmpfloat_with_epsilon (kdf_coteaching_keep (3, 0.4, 0), 0.6, 1e-15);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/rank/global", test_global);
  g_test_add_func ("/detect/rank/per-class", test_per_class);
  g_test_add_func ("/detect/rank/batch", test_batch);
  g_test_add_func ("/detect/rank/counts-and-ties", test_counts_and_ties);
  g_test_add_func ("/detect/rank/threshold-and-otsu", test_threshold_and_otsu);
  g_test_add_func ("/detect/rank/cross-entropy", test_cross_entropy);
  g_test_add_func ("/detect/rank/schedule", test_schedule);
  return g_test_run ();
}
