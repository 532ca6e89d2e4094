/* AWE (ambiguity-aware weights): centres, cosines and the cosine / margin / net
 * weightings against hand-computed vectors; the weight network's term on a shuffled
 * batch (each row with its own dataset row's label — the released code applies
 * weights computed in one order to samples in another); its gradients zeroed every
 * step of the trainer (the released code never zeroes them); its place after a
 * selecting term; and, trained with a student under label noise, lower weights on the
 * flipped samples than on the clean ones. */
#include "config.h"

#include "nn-test-util.h"

/* six 2-d features, labels 0 0 1 1 1 0 (row 4 sits with class 0, row 5 between) */
static const float F6[6][2] = { { 1, 0 }, { .8f, .6f }, { 0, 1 }, { .6f, .8f }, { .9f, .1f }, { .5f, .5f } };
static const int32_t Y6[6] = { 0, 0, 1, 1, 1, 0 };

/* A weight network 4 → 2 → PReLU (slope 0.25, its init) → 1 with weights set by hand. */
static const float w1[8] = { 2, -1, 0.5f, 0, -1, 1, -1, 0.5f }, b1[2] = { 0.1f, -0.2f };
static const float w2[2] = { 1.5f, -2 }, b2[1] = { 0.25f };

static KdfModel *
hand_net (void)
{
  g_autoptr (GError) err = NULL;
  KdfModel *g = kdf_awe_net_new (2, 1, &err);
  g_assert_no_error (err);
  memcpy (kdf_model_find_param (g, "0.weight")->data, w1, sizeof w1);
  memcpy (kdf_model_find_param (g, "0.bias")->data, b1, sizeof b1);
  memcpy (kdf_model_find_param (g, "2.weight")->data, w2, sizeof w2);
  memcpy (kdf_model_find_param (g, "2.bias")->data, b2, sizeof b2);
  return g;
}

static void
test_hand_vectors (void)
{
  g_autoptr (GError) err = NULL;
  float mu[4], cos[12], w[6];
  int64_t cnt[2];
  g_assert_true (kdf_class_centers (mu, cnt, &F6[0][0], Y6, 6, 2, 2, &err));
  /* μ0 = mean of rows 0 1 5 = (2.3, 1.1)/3, μ1 = mean of rows 2 3 4 = (1.5, 1.9)/3 */
  g_assert_cmpfloat_with_epsilon (mu[0], 0.766667, 1e-6);
  g_assert_cmpfloat_with_epsilon (mu[1], 0.366667, 1e-6);
  g_assert_cmpfloat_with_epsilon (mu[2], 0.5, 1e-6);
  g_assert_cmpfloat_with_epsilon (mu[3], 0.633333, 1e-6);
  g_assert_cmpint (cnt[0], ==, 3);
  g_assert_cmpint (cnt[1], ==, 3);
  kdf_awe_cosines (cos, &F6[0][0], mu, 6, 2, 2);
  static const double want_cos[12] = { 0.902134, 0.619644, 0.980581, 0.966645, 0.431455, 0.784883,
                                       0.886445, 0.999693, 0.944263, 0.702530, 0.942990, 0.993151 };
  for (int j = 0; j < 12; j++)
    g_assert_cmpfloat_with_epsilon (cos[j], want_cos[j], 1e-6);
  /* cosine: sigmoid(cos to the label's centre) */
  static const double want_c[6] = { 0.711388, 0.727223, 0.686732, 0.730998, 0.668749, 0.719703 };
  g_assert_true (kdf_awe_weights (w, cos, Y6, 6, 2, KDF_AWE_COSINE, &err));
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon (w[i], want_c[i], 1e-6);
  /* margin: (cos_y − max other + 2)/4; row 4 (mislabelled) and row 5 (between) below ½ */
  static const double want_m[6] = { 0.570622, 0.503484, 0.588357, 0.528312, 0.439567, 0.487460 };
  g_assert_true (kdf_awe_weights (w, cos, Y6, 6, 2, KDF_AWE_MARGIN, &err));
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon (w[i], want_m[i], 1e-6);
  /* net: g set by hand, 4 → 2 → PReLU → 1, input (cos0, cos1, y==0, y==1) */
  g_autoptr (KdfModel) g = hand_net ();
  g_assert_true (kdf_awe_net_weights (w, g, cos, Y6, 6, 2, 1, &err));
  g_assert_no_error (err);
  for (int i = 0; i < 6; i++) {
    double x[4] = { want_cos[2 * i], want_cos[2 * i + 1], Y6[i] == 0, Y6[i] == 1 };
    double h0 = b1[0], h1 = b1[1];
    for (int j = 0; j < 4; j++) {
      h0 += w1[j] * x[j];
      h1 += w1[4 + j] * x[j];
    }
    double z = b2[0] + w2[0] * (h0 > 0 ? h0 : 0.25 * h0) + w2[1] * (h1 > 0 ? h1 : 0.25 * h1);
    g_assert_cmpfloat_with_epsilon (w[i], 1.0 / (1.0 + exp (-z)), 1e-6);
  }
  /* row 0 by hand: h = (2·.902134 − .619644 + .5 + .1, −.902134 + .619644 − 1 − .2) =
   * (1.784624, −1.482490); z = .25 + 1.5·1.784624 − 2·(0.25·−1.482490) = 3.668181 */
  g_assert_cmpfloat_with_epsilon (w[0], 1.0 / (1.0 + exp (-3.668181)), 1e-6);
  /* a class without samples has a zero centre and cosine 0 */
  const int32_t all0[6] = { 0 };
  g_assert_true (kdf_class_centers (mu, cnt, &F6[0][0], all0, 6, 2, 2, &err));
  g_assert_cmpint (cnt[1], ==, 0);
  kdf_awe_cosines (cos, &F6[0][0], mu, 6, 2, 2);
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat (cos[2 * i + 1], ==, 0.0f);
  /* bad labels and modes */
  const int32_t bad[6] = { 0, 0, 2, 1, 1, 0 };
  g_assert_false (kdf_class_centers (mu, cnt, &F6[0][0], bad, 6, 2, 2, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  g_assert_false (kdf_awe_weights (w, cos, bad, 6, 2, KDF_AWE_COSINE, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  g_assert_false (kdf_awe_weights (w, cos, Y6, 6, 2, KDF_AWE_NET, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
}

/* The term on a shuffled batch: batch row i is dataset row rows[i], its features are
 * F6[rows[i]] (what the trainer hands over), its target the selection flag. */
static void
test_term_alignment (void)
{
  g_autoptr (GError) err = NULL;
  static const int32_t rows[6] = { 3, 5, 0, 2, 4, 1 };
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 6);
  memcpy (kdf_tensor_i32 (y), Y6, sizeof Y6);
  g_autoptr (KdfTensor) mu = kdf_tensor_new_2d (KDF_DTYPE_F32, 2, 2);
  g_assert_true (kdf_class_centers (kdf_tensor_f32 (mu), NULL, &F6[0][0], Y6, 6, 2, 2, &err));
  g_autoptr (KdfModel) g = hand_net ();
  g_autoptr (KdfLoss) l = kdf_loss_awe_new (g, y, mu, 2.0, &err);
  g_assert_no_error (err);
  g_assert_true (l->model == g);
  g_assert_true (l->needs & KDF_LOSS_NEEDS_SELECTION);
  float feat[12], dummy_logits[6] = { 0 };
  for (int i = 0; i < 6; i++) {
    feat[2 * i] = F6[rows[i]][0];
    feat[2 * i + 1] = F6[rows[i]][1];
  }
  uint8_t sel[6] = { 1, 0, 1, 1, 0, 1 };
  KdfLossBatch b = { .n = 6, .rows = rows, .n_nets = 1, .n_views = 1, .threads = 1, .selected = sel };
  b.out[0][0] = (KdfLossView){ .logits = dummy_logits, .features = feat, .n_classes = 1, .n_features = 2 };
  double v = 0;
  g_assert_true (kdf_loss_compute (l, &b, &v, &err));
  g_assert_no_error (err);
  /* by hand: the weights of the dataset rows (all six, in dataset order), then each
   * batch row's BCE against its flag */
  float cos[12], w[6];
  kdf_awe_cosines (cos, &F6[0][0], kdf_tensor_f32 (mu), 6, 2, 2);
  g_assert_true (kdf_awe_net_weights (w, g, cos, Y6, 6, 2, 1, &err));
  double want = 0, misaligned = 0;
  int32_t yb[6];
  for (int i = 0; i < 6; i++)
    yb[i] = Y6[i]; /* the labels in dataset order applied to batch positions */
  float wm[6];
  float cosb[12];
  kdf_awe_cosines (cosb, feat, kdf_tensor_f32 (mu), 6, 2, 2);
  g_assert_true (kdf_awe_net_weights (wm, g, cosb, yb, 6, 2, 1, &err));
  const float *gz = kdf_model_get_grad_logits (g);
  for (int i = 0; i < 6; i++) {
    double s = w[rows[i]], t = sel[i];
    want -= t * log (s) + (1 - t) * log (1 - s);
    misaligned -= t * log (wm[i]) + (1 - t) * log (1 - wm[i]);
    g_assert_cmpfloat_with_epsilon (gz[i], 2.0 / 6 * (s - t), 1e-6);
  }
  want /= 6;
  misaligned /= 6;
  g_assert_cmpfloat_with_epsilon (v, want, 1e-6);
  g_assert_cmpfloat (fabs (misaligned - want), >, 1e-3); /* the test tells them apart */
  /* the student gets nothing from this term: no features gradient was given, none
   * asked; a batch of another feature width is refused */
  b.out[0][0].n_features = 3;
  g_assert_false (kdf_loss_compute (l, &b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "feature tap"));
}

/* Blobs with a third of the labels flipped; a student with an 8-wide tap. */
static void
make_data (KdfTensor **x, KdfTensor **y, uint8_t **flipped, int n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  float centers[4][10];
  fill_uniform (&centers[0][0], 40, r, -1.5, 1.5);
  *x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 10);
  *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  *flipped = g_new0 (uint8_t, n);
  for (int i = 0; i < n; i++) {
    int c = g_rand_int_range (r, 0, 4);
    (*flipped)[i] = g_rand_double (r) < 0.35;
    kdf_tensor_i32 (*y)[i] = (*flipped)[i] ? (c + g_rand_int_range (r, 1, 4)) % 4 : c;
    for (int j = 0; j < 10; j++)
      kdf_tensor_f32 (*x)[i * 10 + j] = centers[c][j] + (float) g_rand_double_range (r, -0.8, 0.8);
  }
  g_rand_free (r);
}

static KdfTensor *
centers_of (KdfModel *m, KdfTensor *x, KdfTensor *y)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *fe = NULL;
  g_assert_true (kdf_model_predict (m, x, 64, 1, NULL, &fe, &err));
  KdfTensor *mu = kdf_tensor_new_2d (KDF_DTYPE_F32, 4, m->n_features);
  g_assert_true (kdf_class_centers (kdf_tensor_f32 (mu), NULL, kdf_tensor_f32 (fe),
                                    kdf_tensor_i32 (y), x->shape[0], m->n_features, 4, &err));
  kdf_tensor_unref (fe);
  return mu;
}

static void
assert_same_params (KdfModel *a, KdfModel *b, double tol)
{
  for (guint i = 0; i < a->params->len; i++) {
    const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
    for (int64_t j = 0; j < pa->numel; j++)
      g_assert_cmpfloat_with_epsilon (pa->data[j], pb->data[j], tol);
  }
}

static double
max_param_diff (KdfModel *a, KdfModel *b)
{
  double d = 0;
  for (guint i = 0; i < a->params->len; i++) {
    const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
    for (int64_t j = 0; j < pa->numel; j++)
      d = fmax (d, fabs (pa->data[j] - pb->data[j]));
  }
  return d;
}

/* Two trainer steps on one batch from (S0, G0) must leave G where one step from a copy
 * of (S1, G1) leaves it, with plain SGD (no momentum, no decay): the second step's
 * update is −lr·∇(step 2) only. Gradients that accumulate across steps (never
 * zeroed, as in the released code) add ∇(step 1) and fail this. */
static void
test_zeroed_each_step (void)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  uint8_t *flipped;
  make_data (&x, &y, &flipped, 64, 5);
  int32_t rows[32];
  for (int i = 0; i < 32; i++)
    rows[i] = (i * 7) % 64; /* a shuffled batch */
  g_autoptr (KdfModel) s = kdf_model_new_from_arch ("mlp:10-8-4", 2, &err);
  g_autoptr (KdfTensor) mu = centers_of (s, x, y);
  g_autoptr (KdfModel) g = kdf_awe_net_new (4, 3, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.5, 0.0, 0.0, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt, s, &err));
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (s, NULL, opt, NULL, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_assert_true (kdf_loss_ce_set_selection (ce, KDF_SELECT_SMALL_LOSS, 0.5, 0, &err));
  g_autoptr (KdfLoss) aw = kdf_loss_awe_new (g, y, mu, 1.0, &err);
  KdfLoss *terms[2] = { ce, aw };
  GRand *r = g_rand_new_with_seed (1);
  g_autoptr (KdfModel) g0 = kdf_model_copy (g);
  g_assert_true (kdf_trainer_step (tr, x, rows, 32, terms, 2, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (kdf_optimizer_n_models (opt), ==, 2); /* the trainer took the term's model */
  g_assert_cmpfloat (max_param_diff (g, g0), >, 1e-4); /* and trained it */
  g_autoptr (KdfModel) s1 = kdf_model_copy (s), g1 = kdf_model_copy (g);
  g_assert_true (kdf_trainer_step (tr, x, rows, 32, terms, 2, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (max_param_diff (g, g1), >, 1e-4);

  /* one step from copies of (S1, G1) */
  g_autoptr (KdfOptimizer) opt2 = kdf_optimizer_new_sgd (0.5, 0.0, 0.0, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt2, s1, &err));
  g_autoptr (KdfTrainer) tr2 = kdf_trainer_new (s1, NULL, opt2, NULL, &err);
  g_autoptr (KdfLoss) aw2 = kdf_loss_awe_new (g1, y, mu, 1.0, &err);
  KdfLoss *terms2[2] = { ce, aw2 };
  g_assert_true (kdf_trainer_step (tr2, x, rows, 32, terms2, 2, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  assert_same_params (g, g1, 1e-6);
  assert_same_params (s, s1, 1e-6);
  g_rand_free (r);
  g_free (flipped);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

static gboolean
nothing (KdfLoss *l, const KdfLossBatch *b, double *value, GError **error)
{
  *value = 0;
  return TRUE;
}

static void
test_needs_selection (void)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  uint8_t *flipped;
  make_data (&x, &y, &flipped, 40, 6);
  g_autoptr (KdfModel) s = kdf_model_new_from_arch ("mlp:10-8-4", 2, &err);
  g_autoptr (KdfTensor) mu = centers_of (s, x, y);
  g_autoptr (KdfModel) g = kdf_awe_net_new (4, 3, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0.0, 0.0, FALSE);
  kdf_optimizer_add_model (opt, s, &err);
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (s, NULL, opt, NULL, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_autoptr (KdfLoss) aw = kdf_loss_awe_new (g, y, mu, 1.0, &err);
  KdfLoss *after[2] = { aw, ce };
  GRand *r = g_rand_new_with_seed (1);
  /* no selecting term before it */
  g_assert_false (kdf_trainer_epoch (tr, x, after, 2, r, 1, NULL, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_assert_nonnull (strstr (err->message, "no term before it selects"));
  g_clear_error (&err);
  g_assert_true (kdf_loss_ce_set_selection (ce, KDF_SELECT_SMALL_LOSS, 0.7, 0, &err));
  g_assert_false (kdf_trainer_epoch (tr, x, after, 2, r, 1, NULL, NULL, &err));
  g_clear_error (&err);
  KdfLoss *before[2] = { ce, aw };
  g_assert_true (kdf_trainer_epoch (tr, x, before, 2, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  /* a term that owns one of the trained networks is refused */
  g_autoptr (KdfLoss) own = kdf_loss_new ("own", 1.0, 0, nothing, NULL, NULL);
  kdf_loss_set_model (own, s);
  g_assert_false (kdf_trainer_epoch (tr, x, &own, 1, r, 1, NULL, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_assert_nonnull (strstr (err->message, "one of the trained networks"));
  g_rand_free (r);
  g_free (flipped);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

/* Trained with a student (selection keep 0.65, the weight network on the selection),
 * the weight network ranks the flipped samples below the clean ones: mean weight and
 * AUROC, seeds 1-3 (seeds 1-8 gave differences 0.66-0.86 and AUROC 0.95-0.99). */
static void
test_learns_under_noise (void)
{
  for (guint32 seed = 1; seed <= 3; seed++) {
    g_autoptr (GError) err = NULL;
    KdfTensor *x, *y;
    uint8_t *flipped;
    const int n = 400;
    make_data (&x, &y, &flipped, n, 100 + seed);
    g_autoptr (KdfModel) s = kdf_model_new_from_arch ("mlp:10-32-16-4", seed, &err);
    g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.05, 0.9, 0.0, FALSE);
    kdf_optimizer_add_model (opt, s, &err);
    KdfTrainConfig cfg = { .batch = 32 };
    g_autoptr (KdfTrainer) tr = kdf_trainer_new (s, NULL, opt, &cfg, &err);
    g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
    g_assert_true (kdf_loss_ce_set_selection (ce, KDF_SELECT_SMALL_LOSS, 0.65, 0, &err));
    g_autoptr (KdfModel) g = kdf_awe_net_new (4, seed, &err);
    GRand *r = g_rand_new_with_seed (seed);
    KdfEpochResult res = { 0 };
    for (int e = 0; e < 5; e++) /* warm-up */
      g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, &res, NULL, &err));
    for (int e = 0; e < 40; e++) { /* centres per epoch, as the awe node per tick */
      g_autoptr (KdfTensor) mu = centers_of (s, x, y);
      g_autoptr (KdfLoss) aw = kdf_loss_awe_new (g, y, mu, 1.0, &err);
      KdfLoss *terms[2] = { ce, aw };
      g_assert_true (kdf_trainer_epoch (tr, x, terms, 2, r, 1, &res, NULL, &err));
      g_assert_no_error (err);
    }
    g_autoptr (KdfTensor) mu = centers_of (s, x, y);
    KdfTensor *fe = NULL;
    g_assert_true (kdf_model_predict (s, x, 64, 1, NULL, &fe, &err));
    g_autofree float *cos = g_new (float, n * 4), *w = g_new (float, n);
    kdf_awe_cosines (cos, kdf_tensor_f32 (fe), kdf_tensor_f32 (mu), n, s->n_features, 4);
    g_assert_true (kdf_awe_net_weights (w, g, cos, kdf_tensor_i32 (y), n, 4, 1, &err));
    double wc = 0, wn = 0, pairs = 0, above = 0;
    int nc = 0, nn = 0;
    for (int i = 0; i < n; i++) {
      if (flipped[i]) {
        wn += w[i];
        nn++;
      } else {
        wc += w[i];
        nc++;
      }
    }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        if (!flipped[i] && flipped[j]) {
          pairs++;
          above += w[i] > w[j] ? 1.0 : w[i] == w[j] ? 0.5 : 0.0;
        }
    g_test_message ("seed %u: mean weight clean %.3f, flipped %.3f, AUROC %.3f", seed, wc / nc,
                    wn / nn, above / pairs);
    g_assert_cmpfloat (wc / nc - wn / nn, >, 0.3);
    g_assert_cmpfloat (above / pairs, >, 0.8);
    kdf_tensor_unref (fe);
    g_rand_free (r);
    g_free (flipped);
    kdf_tensor_unref (x);
    kdf_tensor_unref (y);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/awe/hand-vectors", test_hand_vectors);
  g_test_add_func ("/nn/awe/term-alignment", test_term_alignment);
  g_test_add_func ("/nn/awe/zeroed-each-step", test_zeroed_each_step);
  g_test_add_func ("/nn/awe/needs-selection", test_needs_selection);
  g_test_add_func ("/nn/awe/learns-under-noise", test_learns_under_noise);
  return g_test_run ();
}
