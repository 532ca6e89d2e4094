/* Training: optimizers against PyTorch's numbers, schedules, augmentation, the
 * trainer on a separable set (100 %) and on real Fashion-MNIST images (the loss
 * falls), determinism at one thread, pairs of networks, bad inputs. */
#include "config.h"

#include "nn-test-util.h"

/* ---- optimizers: torch.optim on the same gradients ----------------------------------- */

/* p0 = (0.5, −1, 2); four steps with g_t = (0.1 t, −0.2, 0.3 (−1)^t). The expected
 * values were printed by PyTorch 1.13 (torch.optim.SGD / Adam / AdamW). */
static void
run_optimizer (KdfOptimizer *opt, const double expect[3])
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("linear:1-3:nobias", 1, &err);
  g_assert_no_error (err);
  g_assert_true (kdf_optimizer_add_model (opt, m, &err));
  const KdfParam *p = kdf_model_get_param (m, 0);
  p->data[0] = 0.5f;
  p->data[1] = -1.0f;
  p->data[2] = 2.0f;
  for (int t = 1; t <= 4; t++) {
    kdf_optimizer_zero_grad (opt);
    p = kdf_model_get_param (m, 0);
    p->grad[0] = (float) (0.1 * t);
    p->grad[1] = -0.2f;
    p->grad[2] = (float) (0.3 * (t % 2 ? -1 : 1));
    kdf_optimizer_step (opt, 1);
  }
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat_with_epsilon (p->data[j], expect[j], 2e-6);
  g_assert_cmpuint (kdf_optimizer_get_steps (opt), ==, 4);
}

static void
test_optimizers (void)
{
  g_autoptr (GError) err = NULL;
  {
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new_sgd (0.1, 0.9, 0.01, FALSE);
    run_optimizer (o, (double[]){ 0.310088605, -0.81026125, 2.03061295 });
  }
  {
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new_sgd (0.1, 0.9, 0.01, TRUE);
    run_optimizer (o, (double[]){ 0.227432027, -0.745693803, 2.01935244 });
  }
  {
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new_sgd (0.1, 0.0, 0.0, FALSE);
    run_optimizer (o, (double[]){ 0.400000006, -0.920000076, 2.0 });
  }
  {
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new_adam (0.01, 0.01);
    run_optimizer (o, (double[]){ 0.461090088, -0.960001051, 2.01035976 });
  }
  {
    KdfOptimConfig c = { .kind = KDF_OPTIM_ADAM, .lr = 0.01, .weight_decay = 0.1, .decoupled = TRUE };
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new (&c, &err);
    g_assert_no_error (err);
    run_optimizer (o, (double[]){ 0.459225953, -0.956066072, 2.0042851 });
  }
  KdfOptimConfig bad = { .kind = KDF_OPTIM_SGD, .lr = 0.1, .momentum = 1.5 };
  g_assert_null (kdf_optimizer_new (&bad, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  bad = (KdfOptimConfig){ .kind = KDF_OPTIM_SGD, .lr = 0.1, .nesterov = TRUE };
  g_assert_null (kdf_optimizer_new (&bad, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
}

static void
test_schedules (void)
{
  KdfSchedule st = { .kind = KDF_SCHEDULE_STEP, .step_size = 3, .gamma = 0.1 };
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&st, 1.0, 2), 1.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&st, 1.0, 3), 0.1, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&st, 1.0, 7), 0.01, 1e-12);
  /* torch CosineAnnealingLR(T_max = 10, eta_min = 0.001) from 0.1 */
  KdfSchedule co = { .kind = KDF_SCHEDULE_COSINE, .t_max = 10, .min_lr = 0.001 };
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&co, 0.1, 0), 0.1, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&co, 0.1, 5), 0.0505, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&co, 0.1, 3),
                                  0.001 + 0.099 * (1 + cos (0.3 * G_PI)) / 2, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&co, 0.1, 10), 0.001, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&co, 0.1, 50), 0.001, 1e-12);
  /* warm-up 4 steps from 0 then cosine over 10 */
  KdfSchedule wc = co;
  wc.warmup = 4;
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&wc, 0.1, 0), 0.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&wc, 0.1, 2), 0.05, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&wc, 0.1, 4), 0.1, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&wc, 0.1, 9), 0.0505, 1e-12);
  KdfSchedule ws = { .kind = KDF_SCHEDULE_CONSTANT, .warmup = 5, .warmup_start = 0.5 };
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&ws, 0.2, 0), 0.1, 1e-12);
  g_assert_cmpfloat_with_epsilon (kdf_schedule_lr (&ws, 0.2, 100), 0.2, 1e-12);
}

/* ---- augmentation ------------------------------------------------------------------ */

static void
test_augment (void)
{
  /* one 1×5×5 image with pixel value 10y + x + 1 */
  float img[25], out[25];
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 5; x++)
      img[y * 5 + x] = (float) (10 * y + x + 1);
  GRand *r = g_rand_new_with_seed (1);
  int seen_shift = 0, seen_flip = 0;
  for (int trial = 0; trial < 200; trial++) {
    kdf_augment (out, img, 1, 1, 5, 5, KDF_AUGMENT_SHIFT | KDF_AUGMENT_FLIP, 2, r);
    /* recover the transform from a nonzero pixel; every pixel must agree with it,
     * and pixels from outside the image must be 0 */
    int found = 0;
    for (int dy = -2; dy <= 2 && !found; dy++)
      for (int dx = -2; dx <= 2 && !found; dx++)
        for (int fl = 0; fl < 2 && !found; fl++) {
          gboolean ok = TRUE;
          for (int y = 0; y < 5 && ok; y++)
            for (int x = 0; x < 5 && ok; x++) {
              int sy = y + dy, sx = (fl ? 4 - x : x) + dx;
              float want = (sy >= 0 && sy < 5 && sx >= 0 && sx < 5) ? img[sy * 5 + sx] : 0.0f;
              ok = out[y * 5 + x] == want;
            }
          if (ok) {
            found = 1;
            seen_shift |= (dy != 0 || dx != 0);
            seen_flip |= fl;
          }
        }
    g_assert_true (found);
  }
  g_assert_true (seen_shift && seen_flip);
  /* none: a copy */
  kdf_augment (out, img, 1, 1, 5, 5, KDF_AUGMENT_NONE, 2, r);
  g_assert_cmpmem (out, sizeof out, img, sizeof img);
  g_rand_free (r);
}

static void
test_beta (void)
{
  GRand *r = g_rand_new_with_seed (2);
  for (int a = 0; a < 2; a++) {
    double alpha = a ? 8.0 : 0.4, s = 0, s2 = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
      double v = kdf_rand_beta (r, alpha);
      g_assert_true (v >= 0.0 && v <= 1.0);
      s += v;
      s2 += v * v;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    double want_var = 1.0 / (4.0 * (2 * alpha + 1)); /* Beta(α,α) */
    g_assert_cmpfloat (fabs (mean - 0.5), <, 0.02);
    g_assert_cmpfloat (fabs (var - want_var), <, 0.15 * want_var);
  }
  g_rand_free (r);
}

/* ---- the trainer ---------------------------------------------------------------------- */

/* Four well-separated Gaussian blobs in 20-D. */
static void
make_blobs (KdfTensor **x, KdfTensor **y, int n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  float centers[4][20];
  fill_uniform (&centers[0][0], 80, r, -2, 2);
  *x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 20);
  *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int i = 0; i < n; i++) {
    int c = i % 4;
    kdf_tensor_i32 (*y)[i] = c;
    for (int j = 0; j < 20; j++)
      kdf_tensor_f32 (*x)[i * 20 + j] = centers[c][j] + (float) g_rand_double_range (r, -0.5, 0.5);
  }
  g_rand_free (r);
}

static double
accuracy (KdfModel *m, KdfTensor *x, KdfTensor *y)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *lo = NULL;
  g_assert_true (kdf_model_predict (m, x, 64, 1, &lo, NULL, &err));
  int64_t n = x->shape[0], c = m->n_classes, ok = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *z = kdf_tensor_f32 (lo) + i * c;
    int best = 0;
    for (int j = 1; j < c; j++)
      if (z[j] > z[best])
        best = j;
    ok += best == kdf_tensor_i32 (y)[i];
  }
  kdf_tensor_unref (lo);
  return (double) ok / n;
}

static void
test_mlp_separable (void)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  make_blobs (&x, &y, 400, 3);
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-32-4", 7, &err);
  g_assert_no_error (err);
  g_assert_cmpfloat (accuracy (m, x, y), <, 0.9); /* not solved by the initial weights */
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.05, 0.9, 5e-4, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt, m, &err));
  KdfTrainConfig cfg = { .batch = 32 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_assert_no_error (err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (5);
  KdfEpochResult res = { 0 };
  double first = 0;
  for (int e = 0; e < 10; e++) {
    g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, &res, NULL, &err));
    g_assert_no_error (err);
    if (e == 0)
      first = res.loss;
    g_assert_cmpint (res.batches, ==, 13);
  }
  g_assert_cmpfloat (res.loss, <, 0.1 * first);
  g_assert_cmpfloat (accuracy (m, x, y), ==, 1.0);
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

static void
test_sample_loss_order (void)
{
  /* with lr 0 the weights stay, so the epoch's per-sample losses and logits (in
   * dataset order, after shuffling) must equal those of a plain forward */
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  make_blobs (&x, &y, 50, 4);
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-8-4", 2, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.0, 0.0, 0.0, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  KdfTrainConfig cfg = { .batch = 16 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 2.0, &err);
  g_autofree float *sl = g_new0 (float, 50), *lo = g_new0 (float, 200), *fe = g_new0 (float, 400);
  KdfEpochResult res = { .sample_loss = sl, .logits = lo, .features = fe };
  GRand *r = g_rand_new_with_seed (6);
  g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, &res, NULL, &err));
  g_assert_no_error (err);
  KdfTensor *plo = NULL, *pfe = NULL;
  g_assert_true (kdf_model_predict (m, x, 64, 1, &plo, &pfe, &err));
  float ref[50];
  kdf_cross_entropy (ref, kdf_tensor_f32 (plo), kdf_tensor_i32 (y), 50, 4);
  for (int i = 0; i < 50; i++)
    g_assert_cmpfloat_with_epsilon (sl[i], 2.0 * ref[i], 1e-5);
  for (int j = 0; j < 200; j++)
    g_assert_cmpfloat_with_epsilon (lo[j], kdf_tensor_f32 (plo)[j], 1e-5);
  for (int j = 0; j < 400; j++)
    g_assert_cmpfloat_with_epsilon (fe[j], kdf_tensor_f32 (pfe)[j], 1e-5);
  kdf_tensor_unref (plo);
  kdf_tensor_unref (pfe);
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

/* A short CNN training on the Fashion-MNIST fixture; returns the model. */
static KdfModel *
train_cnn (KdfTensor *x, KdfTensor *y, int epochs, double mixup, double *first, double *last)
{
  g_autoptr (GError) err = NULL;
  KdfModel *m = kdf_model_new_from_arch ("cnn:1x28x28-c8-p2-c16-p2-f32-d0.1-10", 11, &err);
  g_assert_no_error (err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.05, 0.9, 5e-4, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  KdfTrainConfig cfg = { .batch = 64, .augment = KDF_AUGMENT_SHIFT | KDF_AUGMENT_FLIP,
                         .mixup_alpha = mixup };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_assert_no_error (err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (12);
  KdfEpochResult res = { 0 };
  for (int e = 0; e < epochs; e++) {
    g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, &res, NULL, &err));
    g_assert_no_error (err);
    if (e == 0)
      *first = res.loss;
  }
  *last = res.loss;
  g_rand_free (r);
  return m;
}

static void
test_cnn_fashion (void)
{
  KdfTensor *x, *y;
  load_fashion_fixture (&x, &y);
  g_assert_cmpint (x->shape[0], ==, 512);
  double first = 0.0, last = 0.0;
  g_autoptr (KdfModel) m = train_cnn (x, y, 10, 0.0, &first, &last);
  g_test_message ("cnn loss: epoch 1 %.4f, epoch 10 %.4f", first, last);
  g_assert_cmpfloat (first, >, 1.5);  /* starts near ln 10 */
  g_assert_cmpfloat (last, <, 0.6 * first);
  g_assert_cmpfloat (accuracy (m, x, y), >, 0.5);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

static void
test_determinism (void)
{
  /* two runs with the same seeds at one thread: bitwise the same weights (with
   * shuffling, shift+flip, dropout and mixup all drawing from the RNG) */
  KdfTensor *x, *y;
  load_fashion_fixture (&x, &y);
  g_autoptr (KdfTensor) xs = kdf_tensor_slice (x, 0, 0, 192);
  g_autoptr (KdfTensor) ys = kdf_tensor_slice (y, 0, 0, 192); /* a term covers x's rows */
  double f1, l1, f2, l2;
  g_autoptr (KdfModel) a = train_cnn (xs, ys, 1, 0.2, &f1, &l1);
  g_autoptr (KdfModel) b = train_cnn (xs, ys, 1, 0.2, &f2, &l2);
  g_assert_cmpfloat (l1, ==, l2);
  for (guint i = 0; i < a->params->len; i++) {
    const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
    g_assert_cmpmem (pa->data, pa->numel * 4, pb->data, pb->numel * 4);
  }
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

static void
test_pair_training (void)
{
  /* one optimizer over two networks; a term on net 1 moves only net 1; a term on
   * both moves both */
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  make_blobs (&x, &y, 64, 8);
  g_autoptr (KdfModel) a = kdf_model_new_from_arch ("mlp:20-8-4", 1, &err);
  g_autoptr (KdfModel) b = kdf_model_new_from_arch ("mlp:20-6-4", 2, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0.9, 0.0, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt, a, &err));
  g_assert_true (kdf_optimizer_add_model (opt, b, &err));
  g_assert_false (kdf_optimizer_add_model (opt, b, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_assert_cmpuint (kdf_optimizer_n_models (opt), ==, 2);
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (a, b, opt, NULL, &err);
  g_assert_no_error (err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  kdf_loss_set_nets (ce, KDF_LOSS_NET1);
  g_autoptr (KdfModel) a0 = kdf_model_copy (a);
  g_autoptr (KdfModel) b0 = kdf_model_copy (b);
  GRand *r = g_rand_new_with_seed (1);
  g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  const KdfParam *pa = kdf_model_get_param (a, 0), *pa0 = kdf_model_get_param (a0, 0);
  const KdfParam *pb = kdf_model_get_param (b, 0), *pb0 = kdf_model_get_param (b0, 0);
  g_assert_cmpmem (pa->data, pa->numel * 4, pa0->data, pa0->numel * 4);
  g_assert_true (memcmp (pb->data, pb0->data, pb->numel * 4) != 0);
  kdf_loss_set_nets (ce, KDF_LOSS_BOTH);
  g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, NULL, NULL, &err));
  pa = kdf_model_get_param (a, 0);
  g_assert_true (memcmp (pa->data, pa0->data, pa->numel * 4) != 0);
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

/* A term that asks for two views and a partner: checks the views differ (they are
 * independent augmentations) and both nets' logits are there. */
static gboolean
views_term (KdfLoss *self, const KdfLossBatch *b, double *value, GError **error)
{
  g_assert_cmpint (b->n_views, ==, 2);
  g_assert_cmpint (b->n_nets, ==, 2);
  const KdfLossView *v0 = &b->out[0][0], *v1 = &b->out[0][1], *p = &b->out[1][0];
  g_assert_nonnull (p->logits);
  g_assert_true (memcmp (v0->features, v1->features, sizeof (float) * b->n * v0->n_features) != 0);
  *(int *) self->data += 1;
  /* pull the views' logits together: Σ ½(z0 − z1)² / n */
  double s = 0;
  for (int64_t j = 0; j < b->n * v0->n_classes; j++) {
    double d = v0->logits[j] - v1->logits[j];
    s += 0.5 * d * d;
    v0->grad_logits[j] += (float) (self->weight * d / b->n);
    v1->grad_logits[j] -= (float) (self->weight * d / b->n);
  }
  *value = s / b->n;
  return TRUE;
}

static void
test_two_views (void)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  load_fashion_fixture (&x, &y);
  g_autoptr (KdfTensor) xs = kdf_tensor_slice (x, 0, 0, 64);
  g_autoptr (KdfModel) a = kdf_model_new_from_arch ("mlp:784-16-10", 1, &err);
  g_autoptr (KdfModel) b = kdf_model_new_from_arch ("mlp:784-16-10", 2, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_adam (1e-3, 0.0);
  kdf_optimizer_add_model (opt, a, &err);
  kdf_optimizer_add_model (opt, b, &err);
  KdfTrainConfig cfg = { .batch = 32, .augment = KDF_AUGMENT_SHIFT };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (a, b, opt, &cfg, &err);
  g_assert_no_error (err);
  int calls = 0;
  g_autoptr (KdfLoss) t = kdf_loss_new ("views", 1.0, KDF_LOSS_NEEDS_TWO_VIEWS |
                                        KDF_LOSS_NEEDS_PARTNER | KDF_LOSS_NEEDS_LOGITS,
                                        views_term, &calls, NULL);
  g_autoptr (KdfTensor) ys = kdf_tensor_slice (y, 0, 0, 64);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (ys, NULL, 1.0, &err);
  KdfLoss *terms[] = { ce, t };
  GRand *r = g_rand_new_with_seed (1);
  g_assert_true (kdf_trainer_epoch (tr, xs, terms, 2, r, 1, NULL, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpint (calls, ==, 2);
  g_rand_free (r);
  /* a partner term with one network is refused */
  g_autoptr (KdfOptimizer) o1 = kdf_optimizer_new_sgd (0.1, 0, 0, FALSE);
  kdf_optimizer_add_model (o1, a, &err);
  g_autoptr (KdfTrainer) t1 = kdf_trainer_new (a, NULL, o1, &cfg, &err);
  r = g_rand_new_with_seed (1);
  g_assert_false (kdf_trainer_epoch (t1, xs, terms, 2, r, 1, NULL, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

/* The trainer updates each layer right after its backward; that must equal the
 * plain sequence forward, loss, backward, optimizer step, bit for bit. */
static void
check_fused_step (KdfOptimizer *o1, KdfOptimizer *o2)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  make_blobs (&x, &y, 48, 9);
  g_autoptr (KdfModel) a = kdf_model_new_from_arch ("mlp:20-16-8-4", 3, &err);
  kdf_model_add_head (a, "proj", "5", 4, &err); /* a head that never runs forward */
  g_autoptr (KdfModel) b = kdf_model_copy (a);
  kdf_optimizer_add_model (o1, a, &err);
  kdf_optimizer_add_model (o2, b, &err);
  KdfTrainConfig cfg = { .batch = 16 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (a, NULL, o1, &cfg, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (1);
  g_autofree float *xb = g_new (float, 16 * 20);
  for (int s = 0; s < 3; s++) {
    int32_t rows[16];
    for (int i = 0; i < 16; i++)
      rows[i] = (int32_t) ((s * 16 + i * 7) % 48);
    double la;
    g_assert_true (kdf_trainer_step (tr, x, rows, 16, &ce, 1, r, 1, &la, NULL, &err));
    g_assert_no_error (err);
    /* the same by hand */
    kdf_gather_rows (xb, x, rows, 16, &err);
    kdf_optimizer_zero_grad (o2);
    kdf_model_forward (b, xb, 16, TRUE, NULL, 1);
    KdfLossBatch lb = { .n = 16, .rows = rows, .n_nets = 1, .n_views = 1, .threads = 1 };
    lb.out[0][0] = (KdfLossView){ .logits = kdf_model_get_logits (b),
                                  .grad_logits = kdf_model_get_grad_logits (b),
                                  .n_classes = 4, .model = b };
    double lv;
    g_assert_true (kdf_loss_compute (ce, &lb, &lv, &err));
    g_assert_cmpfloat (lv, ==, la);
    kdf_model_backward (b, 1);
    kdf_optimizer_step (o2, 1);
    for (guint i = 0; i < a->params->len; i++) {
      const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
      g_assert_cmpmem (pa->data, pa->numel * 4, pb->data, pb->numel * 4);
    }
  }
  g_rand_free (r);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

static void
test_fused_step (void)
{
  {
    g_autoptr (KdfOptimizer) o1 = kdf_optimizer_new_sgd (0.1, 0.9, 0.01, TRUE);
    g_autoptr (KdfOptimizer) o2 = kdf_optimizer_new_sgd (0.1, 0.9, 0.01, TRUE);
    check_fused_step (o1, o2);
  }
  {
    g_autoptr (KdfOptimizer) o1 = kdf_optimizer_new_adam (0.01, 0.01);
    g_autoptr (KdfOptimizer) o2 = kdf_optimizer_new_adam (0.01, 0.01);
    check_fused_step (o1, o2);
  }
}

static void
test_trainer_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-8-4", 1, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0, 0, FALSE);
  /* the optimizer must hold the network */
  g_assert_null (kdf_trainer_new (m, NULL, opt, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  kdf_optimizer_add_model (opt, m, &err);
  /* 20 is not a square: no image shape for augmentation */
  KdfTrainConfig cfg = { .augment = KDF_AUGMENT_FLIP };
  g_assert_null (kdf_trainer_new (m, NULL, opt, &cfg, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, NULL, &err);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, 10, 21);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 10);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (1);
  g_assert_false (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, NULL, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  /* labels for 10 rows, data with 12 */
  g_autoptr (KdfTensor) x12 = kdf_tensor_new_2d (KDF_DTYPE_F32, 12, 20);
  g_assert_false (kdf_trainer_epoch (tr, x12, &ce, 1, r, 1, NULL, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  /* cancelled */
  g_autoptr (GCancellable) c = g_cancellable_new ();
  g_cancellable_cancel (c);
  g_autoptr (KdfTensor) x10 = kdf_tensor_new_2d (KDF_DTYPE_F32, 10, 20);
  g_assert_false (kdf_trainer_epoch (tr, x10, &ce, 1, r, 1, NULL, c, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_CANCELLED);
  g_rand_free (r);
}


static gboolean
nan_term (KdfLoss *self, const KdfLossBatch *b, double *value, GError **error)
{
  int *calls = self->data;
  *value = ++*calls == 3 ? NAN : 0.0;
  return TRUE;
}

static void
count_progress (double fraction, gpointer data)
{
  double *p = data;
  g_assert_cmpfloat (fraction, >, p[1]); /* increasing */
  p[0] += 1;
  p[1] = fraction;
}

/* The one epoch loop: the partner's logits and the features come back in dataset
 * order, progress is reported per batch, no_shuffle walks the rows in order (two
 * different RNGs give the same weights), and a diverging loss names epoch, batch and
 * learning rate. */
static void
test_epoch_outputs (void)
{
  g_autoptr (GError) err = NULL;
  KdfTensor *x, *y;
  load_fashion_fixture (&x, &y);
  g_autoptr (KdfModel) a = kdf_model_new_from_arch ("mlp:784-16-10", 1, &err);
  g_autoptr (KdfModel) b = kdf_model_new_from_arch ("mlp:784-8-10", 2, &err);
  /* a learning rate so small that the weights a row saw are the final ones */
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (1e-7, 0, 0, FALSE);
  kdf_optimizer_add_model (opt, a, &err);
  kdf_optimizer_add_model (opt, b, &err);
  KdfTrainConfig cfg = { .batch = 100 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (a, b, opt, &cfg, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  g_autoptr (KdfLoss) ce2 = kdf_loss_ce_new (y, NULL, 1.0, &err);
  kdf_loss_set_nets (ce2, KDF_LOSS_NET1);
  KdfLoss *terms[] = { ce, ce2 };
  const int64_t n = x->shape[0];
  g_autofree float *lo2 = g_new (float, n * 10);
  g_autofree float *fe = g_new (float, n * 16);
  for (int64_t i = 0; i < n * 10; i++)
    lo2[i] = NAN;
  for (int64_t i = 0; i < n * 16; i++)
    fe[i] = NAN;
  double prog[2] = { 0, 0 };
  KdfEpochResult res = { .logits2 = lo2, .features = fe, .progress = count_progress,
                         .progress_data = prog };
  GRand *r = g_rand_new_with_seed (3);
  g_assert_true (kdf_trainer_epoch (tr, x, terms, 2, r, 1, &res, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (prog[0], ==, (double) ((n + 99) / 100)); /* 512 rows: 6 batches */
  g_assert_cmpfloat (prog[1], ==, 1.0);
  g_assert_cmpint (res.batches, ==, 6);
  for (int64_t i = 0; i < n * 10; i++)
    g_assert_false (isnan (lo2[i]));
  for (int64_t i = 0; i < n * 16; i++)
    g_assert_false (isnan (fe[i]));
  /* a row's partner logits are the partner's on that row, not another row's */
  KdfTensor *plo = NULL;
  g_assert_true (kdf_model_predict (b, x, 256, 1, &plo, NULL, &err));
  double near = 0, far = 0;
  for (int64_t i = 0; i < n; i++)
    for (int c = 0; c < 10; c++) {
      near += fabs (lo2[i * 10 + c] - kdf_tensor_f32 (plo)[i * 10 + c]);
      far += fabs (lo2[i * 10 + c] - kdf_tensor_f32 (plo)[((i + 1) % n) * 10 + c]);
    }
  g_assert_cmpfloat (near, <, 1e-3 * far);
  kdf_tensor_unref (plo);
  /* logits2 of a single network is refused */
  g_autoptr (KdfOptimizer) o1 = kdf_optimizer_new_sgd (0.01, 0, 0, FALSE);
  g_autoptr (KdfModel) c1 = kdf_model_new_from_arch ("mlp:784-8-10", 4, &err);
  kdf_optimizer_add_model (o1, c1, &err);
  g_autoptr (KdfTrainer) t1 = kdf_trainer_new (c1, NULL, o1, &cfg, &err);
  KdfEpochResult r1 = { .logits2 = lo2 };
  g_assert_false (kdf_trainer_epoch (t1, x, &ce, 1, r, 1, &r1, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_rand_free (r);

  /* no_shuffle: the rows in order, whatever the RNG */
  KdfModel *m[2];
  for (int k = 0; k < 2; k++) {
    m[k] = kdf_model_new_from_arch ("mlp:784-8-10", 9, &err);
    g_autoptr (KdfOptimizer) o = kdf_optimizer_new_sgd (0.05, 0.9, 0, FALSE);
    kdf_optimizer_add_model (o, m[k], &err);
    KdfTrainConfig ns = { .batch = 50, .no_shuffle = TRUE };
    g_autoptr (KdfTrainer) t = kdf_trainer_new (m[k], NULL, o, &ns, &err);
    GRand *rk = g_rand_new_with_seed (100 + k);
    g_assert_true (kdf_trainer_epoch (t, x, &ce, 1, rk, 1, NULL, NULL, &err));
    g_rand_free (rk);
  }
  for (guint i = 0; i < m[0]->params->len; i++) {
    const KdfParam *pa = kdf_model_get_param (m[0], i), *pb = kdf_model_get_param (m[1], i);
    g_assert_cmpmem (pa->data, pa->numel * 4, pb->data, pb->numel * 4);
  }
  kdf_model_unref (m[0]);
  kdf_model_unref (m[1]);

  /* a loss that is not finite, on the third batch of epoch 3 */
  int calls = 0;
  g_autoptr (KdfLoss) bad = kdf_loss_new ("nan_on_3", 1.0, KDF_LOSS_NEEDS_LOGITS, nan_term, &calls,
                                          NULL);
  GRand *rd = g_rand_new_with_seed (1);
  KdfEpochResult rdres = { .epoch = 2 };
  g_assert_false (kdf_trainer_epoch (tr, x, &bad, 1, rd, 1, &rdres, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_NODE);
  g_assert_nonnull (strstr (err->message, "epoch 3, batch 3: the loss is nan"));
  g_assert_nonnull (strstr (err->message, "learning rate 1e-07 too high"));
  g_rand_free (rd);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/train/optimizers", test_optimizers);
  g_test_add_func ("/nn/train/schedules", test_schedules);
  g_test_add_func ("/nn/train/augment", test_augment);
  g_test_add_func ("/nn/train/beta", test_beta);
  g_test_add_func ("/nn/train/epoch-outputs", test_epoch_outputs);
  g_test_add_func ("/nn/train/mlp-separable", test_mlp_separable);
  g_test_add_func ("/nn/train/sample-loss-order", test_sample_loss_order);
  g_test_add_func ("/nn/train/cnn-fashion", test_cnn_fashion);
  g_test_add_func ("/nn/train/determinism", test_determinism);
  g_test_add_func ("/nn/train/pair", test_pair_training);
  g_test_add_func ("/nn/train/two-views", test_two_views);
  g_test_add_func ("/nn/train/fused-step", test_fused_step);
  g_test_add_func ("/nn/train/errors", test_trainer_errors);
  int rc = g_test_run ();
  kdf_blas_finalize ();
  return rc;
}
