/* In-batch small-loss selection (the CE term's keep / Otsu, AML-KD's per-batch rule):
 * the kernel on hand vectors; a term on a shuffled batch against a hand computation
 * (only the kept rows count, each with the weight of its own dataset row); and the
 * trainer's real shuffled mini-batches, where the kept samples must be exactly the
 * smallest losses of each batch — not of fixed blocks in dataset order. */
#include "config.h"

#include <kdflow/detect.h>

#include "nn-test-util.h"

static void
test_kernel (void)
{
  g_autoptr (GError) err = NULL;
  const double loss[8] = { 0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4 };
  uint8_t k[8];
  /* ⌊0.5·8⌋ = 4 smallest: rows 1 (.1), 5 (.2), 3 (.3), 7 (.4) */
  g_assert_cmpint (kdf_batch_select (k, loss, 8, KDF_SELECT_SMALL_LOSS, 0.5, 0, &err), ==, 4);
  const uint8_t want50[8] = { 0, 1, 0, 1, 0, 1, 0, 1 };
  g_assert_cmpmem (k, 8, want50, 8);
  /* ⌊0.8·8⌋ = 6: add .5 (row 0) and .7 (row 4) */
  g_assert_cmpint (kdf_batch_select (k, loss, 8, KDF_SELECT_SMALL_LOSS, 0.8, 0, &err), ==, 6);
  const uint8_t want80[8] = { 1, 1, 0, 1, 1, 1, 0, 1 };
  g_assert_cmpmem (k, 8, want80, 8);
  /* ties go to the earlier batch row: (.2 .2 .1), ⌊(2/3)·3⌋ = 2 keeps rows 2 and 0 */
  const double tie[3] = { 0.2, 0.2, 0.1 };
  g_assert_cmpint (kdf_batch_select (k, tie, 3, KDF_SELECT_SMALL_LOSS, 2.0 / 3.0, 0, &err), ==, 2);
  g_assert_cmpint (k[0], ==, 1);
  g_assert_cmpint (k[1], ==, 0);
  g_assert_cmpint (k[2], ==, 1);
  /* Otsu: two clusters, the small one kept, whatever their count */
  const double two[7] = { 0.10, 2.3, 0.12, 0.11, 2.1, 0.13, 2.2 };
  g_assert_cmpint (kdf_batch_select (k, two, 7, KDF_SELECT_OTSU, 1.0, 0, &err), ==, 4);
  const uint8_t want_otsu[7] = { 1, 0, 1, 1, 0, 1, 0 };
  g_assert_cmpmem (k, 7, want_otsu, 7);
  /* one value: nothing to split, all kept; no selection keeps all */
  const double same[3] = { 0.4, 0.4, 0.4 };
  g_assert_cmpint (kdf_batch_select (k, same, 3, KDF_SELECT_OTSU, 1.0, 0, &err), ==, 3);
  g_assert_cmpint (kdf_batch_select (k, loss, 8, KDF_SELECT_ALL, 0.1, 0, &err), ==, 8);
  g_assert_no_error (err);
  /* NaN and a bad fraction are errors */
  const double bad[2] = { 0.1, NAN };
  g_assert_cmpint (kdf_batch_select (k, bad, 2, KDF_SELECT_SMALL_LOSS, 0.5, 0, &err), ==, -1);
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  g_assert_cmpint (kdf_batch_select (k, loss, 8, KDF_SELECT_SMALL_LOSS, 1.5, 0, &err), ==, -1);
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
}

/* One CE term with selection on a batch whose rows are a permutation of the dataset:
 * value and gradient against the hand formula
 *   K = the ⌊keep·n⌋ rows of the smallest CE_i,
 *   value = Σ_{i∈K} w[rows[i]]·CE_i / |K|,  g_i = w[rows[i]]·(p_i − e_y)/|K| on K, 0 off K. */
static void
check_ce_selection (KdfSelectKind kind, double keep, int expect_kept)
{
  enum { NB = 10, NC = 3 };
  static const int32_t rows[NB] = { 7, 2, 9, 0, 4, 1, 8, 3, 6, 5 };
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, NB);
  g_autoptr (KdfTensor) w = kdf_tensor_new_1d (KDF_DTYPE_F32, NB);
  GRand *r = g_rand_new_with_seed (17);
  for (int i = 0; i < NB; i++) {
    kdf_tensor_i32 (y)[i] = i % NC;
    kdf_tensor_f32 (w)[i] = 0.1f + 0.09f * (float) i; /* a distinct weight per dataset row */
  }
  float logits[NB * NC], grad[NB * NC] = { 0 }, sl[NB] = { 0 };
  fill_uniform (logits, NB * NC, r, -3, 3);
  if (kind == KDF_SELECT_OTSU) /* two clear groups of losses: rows 0-5 fit, 6-9 do not */
    for (int i = 0; i < NB; i++) {
      const int32_t lab = kdf_tensor_i32 (y)[rows[i]];
      for (int j = 0; j < NC; j++)
        logits[i * NC + j] = (j == lab) == (i < 6) ? 4.0f + 0.1f * i : 0.0f;
    }
  g_rand_free (r);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, w, 1.5, &err);
  g_assert_no_error (err);
  g_assert_true (kdf_loss_ce_set_selection (ce, kind, keep, 0, &err));
  g_assert_cmpint (!!(ce->needs & KDF_LOSS_SELECTS), ==, kind != KDF_SELECT_ALL);
  uint8_t sel[NB];
  memset (sel, 1, NB);
  KdfLossBatch b = { .n = NB, .rows = rows, .n_nets = 1, .n_views = 1, .threads = 1,
                     .sample_loss = sl, .selected = sel };
  b.out[0][0] = (KdfLossView){ .logits = logits, .grad_logits = grad, .n_classes = NC };
  double v = 0;
  g_assert_true (kdf_loss_compute (ce, &b, &v, &err));
  g_assert_no_error (err);

  /* by hand */
  double cei[NB], p[NB][NC];
  for (int i = 0; i < NB; i++) {
    double mx = -1e30, s = 0;
    for (int j = 0; j < NC; j++)
      mx = fmax (mx, logits[i * NC + j]);
    for (int j = 0; j < NC; j++)
      s += exp (logits[i * NC + j] - mx);
    for (int j = 0; j < NC; j++)
      p[i][j] = exp (logits[i * NC + j] - mx) / s;
    cei[i] = -log (p[i][kdf_tensor_i32 (y)[rows[i]]]);
  }
  int kept = 0;
  for (int i = 0; i < NB; i++) {
    int smaller = 0; /* rank inside the batch */
    for (int j = 0; j < NB; j++)
      smaller += cei[j] < cei[i] || (cei[j] == cei[i] && j < i);
    const gboolean in = smaller < expect_kept;
    g_assert_cmpint (sel[i], ==, in);
    kept += in;
    /* sample_loss keeps every row's unweighted loss (× the term weight) */
    g_assert_cmpfloat_with_epsilon (sl[i], 1.5 * cei[i], 1e-5);
  }
  g_assert_cmpint (kept, ==, expect_kept);
  double want = 0;
  for (int i = 0; i < NB; i++)
    if (sel[i])
      want += kdf_tensor_f32 (w)[rows[i]] * cei[i];
  want /= expect_kept;
  g_assert_cmpfloat_with_epsilon (v, want, 1e-6);
  for (int i = 0; i < NB; i++) {
    const int32_t lab = kdf_tensor_i32 (y)[rows[i]];
    const double wi = kdf_tensor_f32 (w)[rows[i]];
    for (int j = 0; j < NC; j++) {
      double g = sel[i] ? 1.5 * wi * (p[i][j] - (j == lab)) / expect_kept : 0.0;
      g_assert_cmpfloat_with_epsilon (grad[i * NC + j], g, 1e-6);
    }
  }
}

static void
test_ce_selection (void)
{
  check_ce_selection (KDF_SELECT_SMALL_LOSS, 0.6, 6);
  check_ce_selection (KDF_SELECT_SMALL_LOSS, 0.35, 3);
  check_ce_selection (KDF_SELECT_OTSU, 1.0, 6);
  check_ce_selection (KDF_SELECT_ALL, 1.0, 10);
}

/* A probe term that records each batch's dataset rows (and adds nothing). */
typedef struct {
  GArray *rows;   /* int32, all batches one after the other */
  GArray *starts; /* int64, where each batch begins */
} Probe;

static gboolean
probe_compute (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  Probe *p = l->data;
  int64_t start = p->rows->len;
  g_array_append_val (p->starts, start);
  g_array_append_vals (p->rows, b->rows, b->n);
  *value = 0.0;
  return TRUE;
}

static void
make_noisy_blobs (KdfTensor **x, KdfTensor **y, int n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  float centers[4][12];
  fill_uniform (&centers[0][0], 48, r, -1.5, 1.5);
  *x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 12);
  *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int i = 0; i < n; i++) {
    int c = g_rand_int_range (r, 0, 4);
    kdf_tensor_i32 (*y)[i] = i % 3 == 0 ? (c + 1) % 4 : c; /* a third flipped */
    for (int j = 0; j < 12; j++)
      kdf_tensor_f32 (*x)[i * 12 + j] = centers[c][j] + (float) g_rand_double_range (r, -0.7, 0.7);
  }
  g_rand_free (r);
}

/* The trainer's real mini-batches: shuffled, of 32 rows (the last one short). With
 * lr 0 the per-sample losses the epoch reports are those the selection ranked, so in
 * each recorded batch the selected rows must be exactly its ⌊keep·B⌋ smallest — and
 * the result must differ from ranking fixed blocks of 32 in dataset order. */
static void
test_trainer_batches (void)
{
  enum { NS = 200 };
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  make_noisy_blobs (&x, &y, NS, 9);
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:12-16-4", 3, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.0, 0.0, 0.0, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt, m, &err));
  KdfTrainConfig cfg = { .batch = 32 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_assert_no_error (err);
  Probe pr = { g_array_new (FALSE, FALSE, sizeof (int32_t)), g_array_new (FALSE, FALSE, sizeof (int64_t)) };
  g_autoptr (KdfLoss) probe = kdf_loss_new ("probe", 1.0, 0, probe_compute, &pr, NULL);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_assert_true (kdf_loss_ce_set_selection (ce, KDF_SELECT_SMALL_LOSS, 0.7, 0, &err));
  KdfLoss *terms[2] = { probe, ce };
  g_autofree float *sl = g_new0 (float, NS);
  g_autofree uint8_t *sel = g_new0 (uint8_t, NS);
  KdfEpochResult res = { .sample_loss = sl, .selected = sel };
  GRand *r = g_rand_new_with_seed (21);
  g_assert_true (kdf_trainer_epoch (tr, x, terms, 2, r, 1, &res, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpint (pr.starts->len, ==, 7);
  int64_t total_kept = 0, shuffled = 0;
  for (guint bi = 0; bi < pr.starts->len; bi++) {
    int64_t s = g_array_index (pr.starts, int64_t, bi);
    int64_t e = bi + 1 < pr.starts->len ? g_array_index (pr.starts, int64_t, bi + 1) : pr.rows->len;
    const int32_t *rw = &g_array_index (pr.rows, int32_t, s);
    int64_t nb = e - s, want = (int64_t) floor (0.7 * nb + 1e-9), kept = 0;
    for (int64_t i = 0; i < nb; i++) {
      int64_t smaller = 0;
      for (int64_t j = 0; j < nb; j++)
        smaller += sl[rw[j]] < sl[rw[i]] || (sl[rw[j]] == sl[rw[i]] && j < i);
      g_assert_cmpint (sel[rw[i]], ==, smaller < want);
      kept += sel[rw[i]];
      shuffled += rw[i] != s + i;
    }
    g_assert_cmpint (kept, ==, want);
    total_kept += kept;
  }
  g_assert_cmpint (shuffled, >, NS / 2); /* the batches really were shuffled */
  /* fixed blocks of 32 in dataset order select other samples */
  KdfRankOptions ro;
  kdf_rank_options_init (&ro);
  ro.keep = 0.7;
  ro.scope = KDF_RANK_SCOPE_BATCH;
  ro.batch = 32;
  g_autofree uint8_t *blocks = g_new0 (uint8_t, NS);
  g_assert_true (kdf_loss_rank (sl, NS, &ro, blocks, NULL, NULL, &err));
  int differ = 0;
  for (int i = 0; i < NS; i++)
    differ += blocks[i] != sel[i];
  g_assert_cmpint (differ, >=, 10);
  /* the trainer's per-step view agrees with the last batch */
  const uint8_t *last = kdf_trainer_get_selected (tr);
  int64_t s = g_array_index (pr.starts, int64_t, pr.starts->len - 1);
  for (int64_t i = s; i < (int64_t) pr.rows->len; i++)
    g_assert_cmpint (last[i - s], ==, sel[g_array_index (pr.rows, int32_t, i)]);
  g_assert_cmpint (total_kept, <, NS);
  g_array_unref (pr.rows);
  g_array_unref (pr.starts);
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

/* Selection under 40 % symmetric noise: the student trained on each batch's 60 %
 * smallest losses beats the one trained on all of them, on clean test labels, for
 * every seed tried (no seed chosen: seeds 1..5, data and initial weights from the seed). */
static double
noisy_run (guint32 seed, KdfSelectKind kind, double keep)
{
  enum { NTR = 600, NTE = 400, D = 12, NCL = 4 };
  g_autoptr (GError) err = NULL;
  GRand *r = g_rand_new_with_seed (seed);
  float centers[NCL][D];
  fill_uniform (&centers[0][0], NCL * D, r, -1, 1);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, NTR, D);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, NTR);
  g_autoptr (KdfTensor) xt = kdf_tensor_new_2d (KDF_DTYPE_F32, NTE, D);
  g_autoptr (KdfTensor) yt = kdf_tensor_new_1d (KDF_DTYPE_I32, NTE);
  for (int i = 0; i < NTR + NTE; i++) {
    int c = g_rand_int_range (r, 0, NCL);
    float *row = i < NTR ? kdf_tensor_f32 (x) + i * D : kdf_tensor_f32 (xt) + (i - NTR) * D;
    for (int j = 0; j < D; j++)
      row[j] = centers[c][j] + (float) (0.9 * g_rand_double_range (r, -1, 1));
    if (i < NTR) {
      int lab = c;
      if (i < (int) (0.4 * NTR)) /* 40 % symmetric: a different class, uniformly */
        lab = (c + g_rand_int_range (r, 1, NCL)) % NCL;
      kdf_tensor_i32 (y)[i] = lab;
    } else
      kdf_tensor_i32 (yt)[i - NTR] = c;
  }
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:12-64-64-4", seed, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.05, 0.9, 0.0, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  KdfTrainConfig cfg = { .batch = 32 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_assert_true (kdf_loss_ce_set_selection (ce, kind, keep, 0, &err));
  for (int e = 0; e < 60; e++)
    g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  g_rand_free (r);
  KdfTensor *lo = NULL;
  g_assert_true (kdf_model_predict (m, xt, 128, 1, &lo, NULL, &err));
  int ok = 0;
  for (int i = 0; i < NTE; i++) {
    const float *z = kdf_tensor_f32 (lo) + i * NCL;
    int best = 0;
    for (int j = 1; j < NCL; j++)
      best = z[j] > z[best] ? j : best;
    ok += best == kdf_tensor_i32 (yt)[i];
  }
  kdf_tensor_unref (lo);
  return (double) ok / NTE;
}

static void
test_selection_helps (void)
{
  double sum_gain = 0;
  for (guint32 seed = 1; seed <= 5; seed++) {
    double all = noisy_run (seed, KDF_SELECT_ALL, 1.0);
    double small = noisy_run (seed, KDF_SELECT_SMALL_LOSS, 0.6);
    g_test_message ("seed %u: all %.3f, keep 0.6 %.3f", seed, all, small);
    g_assert_cmpfloat (small, >, all);
    sum_gain += small - all;
  }
  g_assert_cmpfloat (sum_gain / 5, >=, 0.03);
}

static void
test_selection_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 4);
  memset (kdf_tensor_i32 (y), 0, 4 * sizeof (int32_t));
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_assert_false (kdf_loss_ce_set_selection (ce, KDF_SELECT_SMALL_LOSS, -0.1, 0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_assert_false (kdf_loss_ce_set_selection (ce, KDF_SELECT_OTSU, 1, 3, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/select/kernel", test_kernel);
  g_test_add_func ("/nn/select/ce-term", test_ce_selection);
  g_test_add_func ("/nn/select/trainer-batches", test_trainer_batches);
  g_test_add_func ("/nn/select/helps-under-noise", test_selection_helps);
  g_test_add_func ("/nn/select/errors", test_selection_errors);
  return g_test_run ();
}
