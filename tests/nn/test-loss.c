/* Loss terms: values against hand computations, gradients against central
 * differences, per-sample losses, pairs of networks, and bad inputs. */
#include "config.h"

#include "nn-test-util.h"

#include "loss-test-batch.h"

static void
check_grads (LossCtx *c)
{
  double v;
  g_autoptr (GError) err = NULL;
  for (int k = 0; k < c->b.n_nets; k++)
    memset (c->b.out[k][0].grad_logits, 0, sizeof (float) * N * C);
  g_assert_true (kdf_loss_compute (c->loss, &c->b, &v, &err));
  g_assert_no_error (err);
  for (int k = 0; k < c->b.n_nets; k++)
    g_assert_cmpfloat (grad_error (loss_value, c, c->logits[k], c->b.out[k][0].grad_logits, N * C,
                                   1e-3, 1000),
                       <, 1e-3);
  /* control: the gradient of the wrong rows fails */
  g_autofree float *wrong = g_new0 (float, N * C);
  memcpy (wrong, c->b.out[0][0].grad_logits + C, sizeof (float) * (N - 1) * C);
  g_assert_cmpfloat (grad_error (loss_value, c, c->logits[0], wrong, N * C, 1e-3, 1000), >, 0.1);
}

/* CE_i = logsumexp(z_i) − Σ_c t_c z_ic for a distribution t (double). */
static double
ce_ref (const float *z, const double *t)
{
  double mx = z[0], s = 0, dot = 0, st = 0;
  for (int j = 1; j < C; j++)
    mx = fmax (mx, z[j]);
  for (int j = 0; j < C; j++) {
    s += exp (z[j] - mx);
    dot += t[j] * z[j];
    st += t[j];
  }
  return st * (mx + log (s)) - dot;
}

static const int32_t labels6[6] = { 0, 1, 2, 3, 1, 2 };
static const float weights6[6] = { 1.0f, 0.0f, 0.5f, 0.25f, 1.0f, 0.75f };

static void
test_ce_hard (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, labels6);
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (y, NULL, 0.7, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (l->name, ==, "ce");
  LossCtx c;
  ctx_init (&c, l, 1, 1);
  double ref = 0;
  for (int i = 0; i < N; i++) {
    double t[C] = { 0 };
    t[labels6[c.b.rows[i]]] = 1;
    ref += ce_ref (c.logits[0] + i * C, t) / N;
  }
  double v;
  float sl[N] = { 0 };
  c.b.sample_loss = sl;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  /* per-sample: weight × CE_i, in batch order */
  double s = 0;
  for (int i = 0; i < N; i++)
    s += sl[i];
  g_assert_cmpfloat_with_epsilon (s / N, 0.7 * ref, 1e-5);
  c.b.sample_loss = NULL;
  check_grads (&c);
  ctx_clear (&c);
}

static void
test_ce_weighted (void)
{
  /* mean_i w_i·CE_i, not mean(w)·mean(CE) */
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, labels6);
  g_autoptr (KdfTensor) w = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]){ 6 }, weights6);
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (y, w, 1.0, &err);
  g_assert_no_error (err);
  LossCtx c;
  ctx_init (&c, l, 1, 2);
  double ref = 0, mw = 0, mce = 0;
  float sl[N] = { 0 };
  for (int i = 0; i < N; i++) {
    int32_t r = c.b.rows[i];
    double t[C] = { 0 };
    t[labels6[r]] = 1;
    double ce = ce_ref (c.logits[0] + i * C, t);
    ref += weights6[r] * ce / N;
    mw += weights6[r] / N;
    mce += ce / N;
  }
  double v;
  c.b.sample_loss = sl;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  g_assert_cmpfloat (fabs (v - mw * mce), >, 1e-3); /* the two formulas differ here */
  /* per-sample losses ignore the per-sample weights (ranking sees every sample) */
  double t1[C] = { 0 };
  t1[labels6[c.b.rows[1]]] = 1;
  g_assert_cmpfloat_with_epsilon (sl[1], ce_ref (c.logits[0] + C, t1), 1e-5);
  c.b.sample_loss = NULL;
  check_grads (&c);
  ctx_clear (&c);
}

static void
test_ce_soft (void)
{
  g_autoptr (GError) err = NULL;
  GRand *r = g_rand_new_with_seed (4);
  g_autoptr (KdfTensor) t = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  for (int i = 0; i < 6; i++) {
    double s = 0;
    for (int j = 0; j < C; j++)
      s += kdf_tensor_f32 (t)[i * C + j] = (float) g_rand_double (r);
    for (int j = 0; j < C; j++)
      kdf_tensor_f32 (t)[i * C + j] /= (float) s;
  }
  g_autoptr (KdfTensor) w = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]){ 6 }, weights6);
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (t, w, 1.0, &err);
  g_assert_no_error (err);
  LossCtx c;
  ctx_init (&c, l, 1, 5);
  double ref = 0;
  for (int i = 0; i < N; i++) {
    int32_t row = c.b.rows[i];
    double tt[C];
    for (int j = 0; j < C; j++)
      tt[j] = kdf_tensor_f32 (t)[row * C + j];
    ref += weights6[row] * ce_ref (c.logits[0] + i * C, tt) / N;
  }
  double v;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-6);
  check_grads (&c);
  /* soft targets fix the class count: a 3-class network is refused */
  c.b.out[0][0].n_classes = 3;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "'ce'"));
  c.b.out[0][0].n_classes = C;
  ctx_clear (&c);
  g_rand_free (r);
}

static void
test_ce_mixup (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, labels6);
  g_autoptr (KdfTensor) w = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]){ 6 }, weights6);
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (y, w, 1.0, &err);
  static const int32_t mix[N] = { 2, 0, 1, 5, 3, 4 };
  LossCtx c;
  ctx_init (&c, l, 1, 6);
  c.b.mix = mix;
  c.b.lambda = 0.3;
  double ref = 0;
  for (int i = 0; i < N; i++) {
    int32_t a = c.b.rows[i], b = c.b.rows[mix[i]];
    double ta[C] = { 0 }, tb[C] = { 0 };
    ta[labels6[a]] = 1;
    tb[labels6[b]] = 1;
    ref += (0.3 * weights6[a] * ce_ref (c.logits[0] + i * C, ta) +
            0.7 * weights6[b] * ce_ref (c.logits[0] + i * C, tb)) / N;
  }
  double v;
  float sl[N] = { 0 };
  c.b.sample_loss = sl;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  /* per-sample losses: λ·CE_a + (1−λ)·CE_b, without the per-sample weights; and the
   * same mix is the value of an unweighted term */
  g_autoptr (KdfLoss) lu = kdf_loss_ce_new (y, NULL, 1.0, &err);
  double refu = 0;
  for (int i = 0; i < N; i++) {
    int32_t a = c.b.rows[i], b = c.b.rows[mix[i]];
    double ta[C] = { 0 }, tb[C] = { 0 };
    ta[labels6[a]] = 1;
    tb[labels6[b]] = 1;
    const double li = 0.3 * ce_ref (c.logits[0] + i * C, ta) + 0.7 * ce_ref (c.logits[0] + i * C, tb);
    g_assert_cmpfloat_with_epsilon (sl[i], li, 1e-5);
    refu += li / N;
  }
  g_assert_true (kdf_loss_compute (lu, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, refu, 1e-9);
  c.b.sample_loss = NULL;
  check_grads (&c);
  ctx_clear (&c);
}

static void
test_kd (void)
{
  g_autoptr (GError) err = NULL;
  GRand *r = g_rand_new_with_seed (8);
  g_autoptr (KdfTensor) zt = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  fill_uniform (kdf_tensor_f32 (zt), 6 * C, r, -4, 4);
  g_autoptr (KdfLoss) l = kdf_loss_kd_new (zt, 4.0, 0.9, &err);
  g_assert_no_error (err);
  g_assert_true (l->needs & KDF_LOSS_NEEDS_TEACHER);
  LossCtx c;
  ctx_init (&c, l, 1, 9);
  double ref = 0;
  for (int i = 0; i < N; i++) {
    float q[C], p[C];
    kdf_softmax (q, kdf_tensor_f32 (zt) + c.b.rows[i] * C, 1, C, 4.0);
    kdf_softmax (p, c.logits[0] + i * C, 1, C, 4.0);
    double kl = 0;
    for (int j = 0; j < C; j++)
      kl += q[j] * (log (q[j]) - log (p[j]));
    ref += 16.0 * kl / N;
  }
  double v;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-5);
  check_grads (&c);
  /* identical logits: zero loss, zero gradient */
  for (int i = 0; i < N; i++)
    memcpy (c.logits[0] + i * C, kdf_tensor_f32 (zt) + c.b.rows[i] * C, sizeof (float) * C);
  memset (c.b.out[0][0].grad_logits, 0, sizeof (float) * N * C);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat (fabs (v), <, 1e-9);
  for (int j = 0; j < N * C; j++)
    g_assert_cmpfloat (fabsf (c.b.out[0][0].grad_logits[j]), <, 1e-7);
  /* mixup */
  static const int32_t mix[N] = { 1, 2, 3, 4, 5, 0 };
  fill_uniform (c.logits[0], N * C, r, -3, 3);
  c.b.mix = mix;
  c.b.lambda = 0.6;
  check_grads (&c);
  ctx_clear (&c);
  g_rand_free (r);
}

static void
test_pair (void)
{
  /* a term on both networks sums them; one on net 1 reads only net 1 */
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, labels6);
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (y, NULL, 1.0, &err);
  LossCtx c;
  ctx_init (&c, l, 2, 10);
  double v0, v1, vb;
  kdf_loss_set_nets (l, KDF_LOSS_NET0);
  g_assert_true (kdf_loss_compute (l, &c.b, &v0, &err));
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  for (int j = 0; j < N * C; j++)
    c.b.out[0][0].grad_logits[j] = 0;
  g_assert_true (kdf_loss_compute (l, &c.b, &v1, &err));
  for (int j = 0; j < N * C; j++)
    g_assert_cmpfloat (c.b.out[0][0].grad_logits[j], ==, 0.0f);
  kdf_loss_set_nets (l, KDF_LOSS_BOTH);
  g_assert_true (kdf_loss_compute (l, &c.b, &vb, &err));
  g_assert_cmpfloat (fabs (v0 - v1), >, 1e-6);
  g_assert_cmpfloat_with_epsilon (vb, v0 + v1, 1e-12);
  check_grads (&c);
  /* on a single network, a net-1 term is an error */
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  c.b.n_nets = 1;
  g_assert_false (kdf_loss_compute (l, &c.b, &v0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  c.b.n_nets = 2;
  ctx_clear (&c);
}

/* A term written outside loss.c through kdf_loss_new: ½‖f‖² on the tap features. */
static gboolean
feature_l2 (KdfLoss *self, const KdfLossBatch *b, double *value, GError **error)
{
  const KdfLossView *v = &b->out[0][0];
  double s = 0;
  for (int64_t j = 0; j < b->n * v->n_features; j++) {
    s += 0.5 * v->features[j] * v->features[j];
    if (v->grad_features)
      v->grad_features[j] += (float) (self->weight * v->features[j] / b->n);
  }
  *value = s / b->n;
  return TRUE;
}

static void
test_custom_term (void)
{
  g_autoptr (KdfLoss) l = kdf_loss_new ("feature_l2", 2.0, KDF_LOSS_NEEDS_FEATURES, feature_l2,
                                        NULL, NULL);
  g_autofree char *d = kdf_object_describe (l);
  g_assert_cmpstr (d, ==, "feature_l2 ×2");
  g_assert_cmpint (l->parent.kind, ==, KDF_VALUE_LOSS);
  float f[6] = { 1, 2, 3, 4, 5, 6 }, g[6] = { 0 };
  int32_t rows[2] = { 0, 1 };
  KdfLossBatch b = { .n = 2, .rows = rows, .n_nets = 1, .n_views = 1 };
  b.out[0][0] = (KdfLossView){ .features = f, .grad_features = g, .n_features = 3 };
  double v;
  g_autoptr (GError) err = NULL;
  g_assert_true (kdf_loss_compute (l, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 91.0 / 4.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (g[5], 6.0, 1e-6);
}

static void
test_bad_inputs (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, labels6);
  g_autoptr (KdfTensor) w5 = kdf_tensor_new_1d (KDF_DTYPE_F32, 5);
  g_autoptr (KdfTensor) yf = kdf_tensor_new_1d (KDF_DTYPE_F32, 6);
  g_assert_null (kdf_loss_ce_new (y, w5, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_null (kdf_loss_ce_new (yf, NULL, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) zt = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  g_assert_null (kdf_loss_kd_new (zt, 0.0, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);

  /* rows beyond the bound data, labels beyond the classes */
  g_autoptr (KdfLoss) l = kdf_loss_ce_new (y, NULL, 1.0, &err);
  LossCtx c;
  ctx_init (&c, l, 1, 11);
  int32_t rows[N] = { 0, 1, 2, 3, 4, 6 };
  c.b.rows = rows;
  double v;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "dataset row 6"));
  g_clear_error (&err);
  rows[5] = 3;
  c.b.out[0][0].n_classes = 3; /* label 3 is out of range for 3 classes */
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "label 3"));
  g_clear_error (&err);
  c.b.out[0][0].n_classes = C;
  g_autoptr (KdfLoss) kd = kdf_loss_kd_new (zt, 4.0, 1.0, &err);
  c.b.out[0][0].n_classes = 5;
  g_assert_false (kdf_loss_compute (kd, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  c.b.out[0][0].n_classes = C;
  ctx_clear (&c);
}

static void
test_cross_entropy_kernel (void)
{
  const float z[] = { 1, 2, 3, 100, 0, -100 };
  const int32_t y[] = { 2, 0 };
  float out[2];
  kdf_cross_entropy (out, z, y, 2, 3);
  g_assert_cmpfloat_with_epsilon (out[0], log (exp (1.0) + exp (2.0) + exp (3.0)) - 3.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (out[1], 0.0, 1e-6);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/loss/ce-hard", test_ce_hard);
  g_test_add_func ("/nn/loss/ce-weighted", test_ce_weighted);
  g_test_add_func ("/nn/loss/ce-soft", test_ce_soft);
  g_test_add_func ("/nn/loss/ce-mixup", test_ce_mixup);
  g_test_add_func ("/nn/loss/kd", test_kd);
  g_test_add_func ("/nn/loss/pair", test_pair);
  g_test_add_func ("/nn/loss/custom-term", test_custom_term);
  g_test_add_func ("/nn/loss/bad-inputs", test_bad_inputs);
  g_test_add_func ("/nn/loss/cross-entropy", test_cross_entropy_kernel);
  return g_test_run ();
}
