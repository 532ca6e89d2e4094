/* The loss terms of the noisy-label methods (engine/nn/loss_methods.c): the METHODS §1
 * test vectors, values against hand computations, gradients against central
 * differences (one network, a pair, a frozen teacher, mixup), per-sample losses, and
 * bad inputs. */
#include "config.h"

#include "nn-test-util.h"

#include "loss-test-batch.h"

/* Recomputes the analytic gradients; checks those of the nets in TRAINED (a bit mask)
 * against central differences and asserts the others stay exactly zero (a target
 * gets no gradient). */
static void
check_grads (LossCtx *c, guint trained)
{
  double v;
  g_autoptr (GError) err = NULL;
  for (int k = 0; k < c->b.n_nets; k++)
    memset (c->b.out[k][0].grad_logits, 0, sizeof (float) * N * C);
  g_assert_true (kdf_loss_compute (c->loss, &c->b, &v, &err));
  g_assert_no_error (err);
  for (int k = 0; k < c->b.n_nets; k++) {
    const float *g = c->b.out[k][0].grad_logits;
    if (trained & (1u << k))
      g_assert_cmpfloat (grad_error (loss_value, c, c->logits[k], (float *) g, N * C, 1e-3, 1000),
                         <, 1e-3);
    else
      for (int j = 0; j < N * C; j++)
        g_assert_cmpfloat (g[j], ==, 0.0f);
  }
  /* control: the gradient of the wrong rows fails */
  const int k0 = (trained & 1u) ? 0 : 1;
  g_autofree float *wrong = g_new0 (float, N * C);
  memcpy (wrong, c->b.out[k0][0].grad_logits + C, sizeof (float) * (N - 1) * C);
  g_assert_cmpfloat (grad_error (loss_value, c, c->logits[k0], wrong, N * C, 1e-3, 1000), >, 0.1);
}

static const int32_t labels6[6] = { 0, 1, 2, 3, 1, 2 };
static const int32_t groups6[6] = { 1, 2, 3, 4, 4, 1 };
static const double alphas[4] = { 0.30, 0.45, 0.55, 0.70 };
static const int32_t mix6[N] = { 2, 0, 1, 5, 3, 4 };

static KdfTensor *
labels_tensor (const int32_t *v)
{
  return kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, v);
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

static void
softmax_ref (double *p, const float *z, int c)
{
  double mx = z[0], s = 0;
  for (int j = 1; j < c; j++)
    mx = fmax (mx, z[j]);
  for (int j = 0; j < c; j++)
    s += p[j] = exp (z[j] - mx);
  for (int j = 0; j < c; j++)
    p[j] /= s;
}

/* ---- robust target: the METHODS vectors ---------------------------------------------- */

static void
test_robust_target (void)
{
  /* METHODS §1: p = (0.1, 0.6, 0.3), ỹ = 0 */
  const double p[3] = { 0.1, 0.6, 0.3 };
  const double want03[3] = { 0.814463, 0.131949, 0.053588 };
  const double want07[3] = { 0.381352, 0.473050, 0.145598 };
  double t[3];
  g_autoptr (GError) err = NULL;
  g_assert_true (kdf_robust_target (t, p, 3, 0, 0.30, &err));
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat_with_epsilon (t[j], want03[j], 5e-7);
  g_assert_true (kdf_robust_target (t, p, 3, 0, 0.70, &err));
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat_with_epsilon (t[j], want07[j], 5e-7);
  /* β = 0: the one-hot; β = 1: p² normalised */
  g_assert_true (kdf_robust_target (t, p, 3, 2, 0.0, &err));
  g_assert_cmpfloat (t[0], ==, 0.0);
  g_assert_cmpfloat (t[2], ==, 1.0);
  g_assert_true (kdf_robust_target (t, p, 3, 2, 1.0, &err));
  g_assert_cmpfloat_with_epsilon (t[1], 0.36 / 0.46, 1e-12);
  /* an all-zero base falls back to the one-hot */
  const double zero[3] = { 0, 0, 0 };
  g_assert_true (kdf_robust_target (t, zero, 3, 1, 1.0, &err));
  g_assert_cmpfloat (t[1], ==, 1.0);
  g_assert_false (kdf_robust_target (t, p, 3, 3, 0.3, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  g_assert_false (kdf_robust_target (t, p, 3, 0, 1.5, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
}

/* ---- gce --------------------------------------------------------------------------- */

static void
test_gce_vector (void)
{
  /* METHODS §1: z_S = (2, 1, 0, −1), candidates {1, 2}, q = 0.7 → 1.038497, in each of
   * the three candidate forms (mask, 1/k soft targets, and each label alone). */
  const float z[4] = { 2, 1, 0, -1 };
  const uint8_t mask[4] = { 0, 1, 1, 0 };
  const float soft[4] = { 0, 0.5f, 0.5f, 0 };
  const int32_t rows[1] = { 0 };
  float g[4] = { 0 }, sl[1] = { 0 };
  KdfLossBatch b = { .n = 1, .rows = rows, .n_nets = 1, .n_views = 1, .sample_loss = sl };
  b.out[0][0] = (KdfLossView){ .logits = z, .grad_logits = g, .n_classes = 4 };
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) tm = kdf_tensor_new_from_data (KDF_DTYPE_U8, 2, (int64_t[]){ 1, 4 }, mask);
  g_autoptr (KdfTensor) ts = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 1, 4 }, soft);
  g_autoptr (KdfLoss) lm = kdf_loss_gce_new (tm, 0.7, 2.0, &err);
  g_assert_no_error (err);
  g_autoptr (KdfLoss) ls = kdf_loss_gce_new (ts, 0.7, 1.0, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (lm->name, ==, "gce");
  double v;
  g_assert_true (kdf_loss_compute (lm, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 1.038497, 5e-7);
  g_assert_cmpfloat_with_epsilon (sl[0], 2.0 * 1.038497, 5e-6); /* weight × ℓ_i */
  g_assert_true (kdf_loss_compute (ls, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 1.038497, 5e-7);
  double terms = 0;
  for (int32_t k = 1; k <= 2; k++) {
    g_autoptr (KdfTensor) ty = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 1 }, &k);
    g_autoptr (KdfLoss) ly = kdf_loss_gce_new (ty, 0.7, 1.0, &err);
    g_assert_true (kdf_loss_compute (ly, &b, &v, &err));
    terms += v / 2;
  }
  g_assert_cmpfloat_with_epsilon (terms, 1.038497, 5e-7);
  /* q = 1: the mean of 1 − p_k */
  g_autoptr (KdfLoss) l1 = kdf_loss_gce_new (tm, 1.0, 1.0, &err);
  g_assert_true (kdf_loss_compute (l1, &b, &v, &err));
  double p[4];
  softmax_ref (p, z, 4);
  g_assert_cmpfloat_with_epsilon (v, 1.0 - (p[1] + p[2]) / 2, 1e-12);
}

static void
test_gce_grads (void)
{
  g_autoptr (GError) err = NULL;
  GRand *r = g_rand_new_with_seed (21);
  /* masks of 1..3 candidates; soft weights with unequal entries */
  g_autoptr (KdfTensor) mask = kdf_tensor_new_2d (KDF_DTYPE_U8, 6, C);
  g_autoptr (KdfTensor) soft = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  for (int i = 0; i < 6; i++) {
    kdf_tensor_u8 (mask)[i * C + i % C] = 1;
    kdf_tensor_u8 (mask)[i * C + (i + 1) % C] = i % 2;
    kdf_tensor_u8 (mask)[i * C + (i + 2) % C] = i % 3 == 0;
    for (int j = 0; j < C; j++)
      kdf_tensor_f32 (soft)[i * C + j] = (float) g_rand_double (r);
  }
  g_autoptr (KdfTensor) y = labels_tensor (labels6);
  KdfTensor *cands[3] = { mask, soft, y };
  for (int f = 0; f < 3; f++) {
    g_autoptr (KdfLoss) l = kdf_loss_gce_new (cands[f], 0.7, 0.8, &err);
    g_assert_no_error (err);
    LossCtx c;
    ctx_init (&c, l, 1, 22 + f);
    /* value against a direct evaluation */
    double ref = 0;
    for (int i = 0; i < N; i++) {
      const int32_t row = c.b.rows[i];
      double p[C], w[C] = { 0 }, tw = 0, li = 0;
      softmax_ref (p, c.logits[0] + i * C, C);
      for (int j = 0; j < C; j++) {
        w[j] = f == 0 ? kdf_tensor_u8 (mask)[row * C + j]
             : f == 1 ? kdf_tensor_f32 (soft)[row * C + j]
                      : (labels6[row] == j);
        tw += w[j];
      }
      for (int j = 0; j < C; j++)
        li += w[j] / tw * (1 - pow (p[j], 0.7)) / 0.7;
      ref += li / N;
    }
    double v;
    g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
    g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
    check_grads (&c, 1);
    /* mixup: λ·ℓ(S_a) + (1−λ)·ℓ(S_b), gradients still exact */
    c.b.mix = mix6;
    c.b.lambda = 0.35;
    double mixed = 0;
    for (int i = 0; i < N; i++) {
      const int32_t ra = c.b.rows[i], rb = c.b.rows[mix6[i]];
      double p[C];
      softmax_ref (p, c.logits[0] + i * C, C);
      for (int s = 0; s < 2; s++) {
        const int32_t row = s ? rb : ra;
        double w[C], tw = 0, li = 0;
        for (int j = 0; j < C; j++) {
          w[j] = f == 0 ? kdf_tensor_u8 (mask)[row * C + j]
               : f == 1 ? kdf_tensor_f32 (soft)[row * C + j]
                        : (labels6[row] == j);
          tw += w[j];
        }
        for (int j = 0; j < C; j++)
          li += w[j] / tw * (1 - pow (p[j], 0.7)) / 0.7;
        mixed += (s ? 0.65 : 0.35) * li / N;
      }
    }
    g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
    g_assert_cmpfloat_with_epsilon (v, mixed, 1e-9);
    check_grads (&c, 1);
    c.b.mix = NULL;
    /* on a pair, applied to both: the sum, each gradient exact */
    ctx_clear (&c);
    ctx_init (&c, l, 2, 30 + f);
    kdf_loss_set_nets (l, KDF_LOSS_BOTH);
    check_grads (&c, 3);
    ctx_clear (&c);
  }
  g_rand_free (r);
}

static void
test_gce_bad (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) mask = kdf_tensor_new_2d (KDF_DTYPE_U8, 6, C);
  for (int i = 0; i < 5; i++)
    kdf_tensor_u8 (mask)[i * C] = 1;
  /* row 5 is empty */
  g_assert_null (kdf_loss_gce_new (mask, 0.7, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "row 5"));
  g_clear_error (&err);
  kdf_tensor_u8 (mask)[5 * C + 3] = 1;
  g_assert_null (kdf_loss_gce_new (mask, 0.0, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_assert_null (kdf_loss_gce_new (mask, 1.5, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_autoptr (KdfTensor) i2 = kdf_tensor_new_2d (KDF_DTYPE_I32, 6, C);
  g_assert_null (kdf_loss_gce_new (i2, 0.7, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) neg = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  for (int e = 0; e < 6 * C; e++)
    kdf_tensor_f32 (neg)[e] = 1;
  kdf_tensor_f32 (neg)[7] = -0.5f;
  g_assert_null (kdf_loss_gce_new (neg, 0.7, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  /* a label beyond the network's classes, found when the batch is computed */
  const int32_t bad[6] = { 0, 1, 2, 3, 4, 0 };
  g_autoptr (KdfTensor) y = labels_tensor (bad);
  g_autoptr (KdfLoss) l = kdf_loss_gce_new (y, 0.7, 1.0, &err);
  g_assert_no_error (err);
  LossCtx c;
  ctx_init (&c, l, 1, 40);
  double v;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "label 4 of row 4"));
  g_clear_error (&err);
  /* a mask fixes the class count */
  g_autoptr (KdfLoss) lm = kdf_loss_gce_new (mask, 0.7, 1.0, &err);
  c.b.out[0][0].n_classes = 3;
  g_assert_false (kdf_loss_compute (lm, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  c.b.out[0][0].n_classes = C;
  ctx_clear (&c);
}

/* ---- blind ------------------------------------------------------------------------- */

/* Σ_{c≠y} (t_c − z_c)² / (C−1) for one row. */
static double
blind_ref (const float *t, const float *z, int y)
{
  double s = 0;
  for (int j = 0; j < C; j++)
    if (j != y)
      s += ((double) t[j] - z[j]) * ((double) t[j] - z[j]);
  return s / (C - 1);
}

static void
test_blind_hand (void)
{
  /* C = 3, B = 2, z^S = 0: z^T = (1, 2, 3) with ỹ = 1 gives 1 + 9, z^T = (2, 0, −2)
   * with ỹ = 2 gives 4 + 0: (10 + 4)/(B·(C−1)) = 3.5 — not 14/5, the released code's
   * B·C − 1 (B = 2 tells the two apart; for B = 1 they agree). */
  const float zt[6] = { 1, 2, 3, 2, 0, -2 };
  const float zs[6] = { 0 };
  const int32_t y[2] = { 1, 2 }, rows[2] = { 0, 1 };
  float gs[6] = { 0 }, gt[6] = { 0 };
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) ty = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 2 }, y);
  g_autoptr (KdfTensor) tt = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 2, 3 }, zt);
  g_autoptr (KdfLoss) frozen = kdf_loss_blind_new (ty, tt, 1.0, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (frozen->name, ==, "blind");
  g_assert_true (frozen->needs & KDF_LOSS_NEEDS_TEACHER);
  KdfLossBatch b = { .n = 2, .rows = rows, .n_nets = 1, .n_views = 1 };
  b.out[0][0] = (KdfLossView){ .logits = zs, .grad_logits = gs, .n_classes = 3 };
  double v;
  g_assert_true (kdf_loss_compute (frozen, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 3.5, 1e-12);
  /* gradient 2(z − t)/(B(C−1)) off the label, 0 on it */
  g_assert_cmpfloat_with_epsilon (gs[0], -0.5, 1e-7);
  g_assert_cmpfloat (gs[1], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (gs[2], -1.5, 1e-7);
  g_assert_cmpfloat (gs[5], ==, 0.0f);
  /* the same through the partner: student net 0, teacher net 1 */
  g_autoptr (KdfLoss) pair = kdf_loss_blind_new (ty, NULL, 1.0, &err);
  g_assert_true (pair->needs & KDF_LOSS_NEEDS_PARTNER);
  memset (gs, 0, sizeof gs);
  b.n_nets = 2;
  b.out[1][0] = (KdfLossView){ .logits = zt, .grad_logits = gt, .n_classes = 3 };
  g_assert_true (kdf_loss_compute (pair, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 3.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (gs[0], -0.5, 1e-7);
  for (int j = 0; j < 6; j++)
    g_assert_cmpfloat (gt[j], ==, 0.0f); /* the teacher's logits are a target */
  /* BOTH: one MSE, the same value, the opposite gradient into the teacher */
  kdf_loss_set_nets (pair, KDF_LOSS_BOTH);
  memset (gs, 0, sizeof gs);
  g_assert_true (kdf_loss_compute (pair, &b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, 3.5, 1e-12);
  for (int j = 0; j < 6; j++)
    g_assert_cmpfloat (gt[j], ==, -gs[j]);
  g_assert_cmpfloat_with_epsilon (gt[2], 1.5, 1e-7);
}

static void
test_blind_grads (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels_tensor (labels6);
  /* partner mode: NET0 learns from net 1 (no gradient into it), NET1 the reverse,
   * BOTH the one MSE w.r.t. both */
  g_autoptr (KdfLoss) l = kdf_loss_blind_new (y, NULL, 0.6, &err);
  g_assert_no_error (err);
  LossCtx c;
  ctx_init (&c, l, 2, 50);
  double ref = 0;
  float sl[N] = { 0 };
  for (int i = 0; i < N; i++)
    ref += blind_ref (c.logits[1] + i * C, c.logits[0] + i * C, labels6[c.b.rows[i]]) / N;
  double v;
  c.b.sample_loss = sl;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  g_assert_cmpfloat_with_epsilon (sl[2], 0.6 * blind_ref (c.logits[1] + 2 * C, c.logits[0] + 2 * C,
                                                          labels6[c.b.rows[2]]),
                                  1e-5);
  c.b.sample_loss = NULL;
  check_grads (&c, 1);
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  check_grads (&c, 2);
  kdf_loss_set_nets (l, KDF_LOSS_BOTH);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9); /* counted once */
  check_grads (&c, 3);
  /* mixup: each source masks its own label */
  c.b.mix = mix6;
  c.b.lambda = 0.7;
  ref = 0;
  for (int i = 0; i < N; i++)
    ref += (0.7 * blind_ref (c.logits[1] + i * C, c.logits[0] + i * C, labels6[c.b.rows[i]]) +
            0.3 * blind_ref (c.logits[1] + i * C, c.logits[0] + i * C,
                             labels6[c.b.rows[mix6[i]]])) / N;
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 3);
  kdf_loss_set_nets (l, KDF_LOSS_NET0);
  check_grads (&c, 1);
  ctx_clear (&c);

  /* a frozen teacher bound per sample; applied to both nets, the values add up */
  GRand *r = g_rand_new_with_seed (51);
  g_autoptr (KdfTensor) zt = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  fill_uniform (kdf_tensor_f32 (zt), 6 * C, r, -4, 4);
  g_autoptr (KdfLoss) f = kdf_loss_blind_new (y, zt, 1.3, &err);
  g_assert_no_error (err);
  ctx_init (&c, f, 1, 52);
  ref = 0;
  for (int i = 0; i < N; i++)
    ref += blind_ref (kdf_tensor_f32 (zt) + c.b.rows[i] * C, c.logits[0] + i * C,
                      labels6[c.b.rows[i]]) / N;
  g_assert_true (kdf_loss_compute (f, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 1);
  c.b.mix = mix6;
  c.b.lambda = 0.25;
  ref = 0;
  for (int i = 0; i < N; i++) {
    const int32_t a = c.b.rows[i], bb = c.b.rows[mix6[i]];
    ref += (0.25 * blind_ref (kdf_tensor_f32 (zt) + a * C, c.logits[0] + i * C, labels6[a]) +
            0.75 * blind_ref (kdf_tensor_f32 (zt) + bb * C, c.logits[0] + i * C, labels6[bb])) / N;
  }
  g_assert_true (kdf_loss_compute (f, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 1);
  ctx_clear (&c);
  ctx_init (&c, f, 2, 53);
  kdf_loss_set_nets (f, KDF_LOSS_BOTH);
  double v0 = 0;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < N; i++)
      v0 += blind_ref (kdf_tensor_f32 (zt) + c.b.rows[i] * C, c.logits[k] + i * C,
                       labels6[c.b.rows[i]]) / N;
  g_assert_true (kdf_loss_compute (f, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, v0, 1e-9);
  check_grads (&c, 3);
  ctx_clear (&c);
  g_rand_free (r);
}

static void
test_blind_bad (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels_tensor (labels6);
  g_autoptr (KdfTensor) z5 = kdf_tensor_new_2d (KDF_DTYPE_F32, 5, C);
  g_assert_null (kdf_loss_blind_new (y, z5, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) z1 = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, 1);
  g_assert_null (kdf_loss_blind_new (y, z1, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) z3 = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, 3); /* label 3 ≥ C */
  g_assert_null (kdf_loss_blind_new (y, z3, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "label 3 of row 3"));
  g_clear_error (&err);
  g_autoptr (KdfTensor) yf = kdf_tensor_new_1d (KDF_DTYPE_F32, 6);
  g_assert_null (kdf_loss_blind_new (yf, NULL, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  const int32_t neg[6] = { 0, 1, -1, 0, 0, 0 };
  g_autoptr (KdfTensor) yn = labels_tensor (neg);
  g_assert_null (kdf_loss_blind_new (yn, NULL, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);

  /* partner mode on one network; partners with different class counts; a label
   * beyond the networks' classes */
  g_autoptr (KdfLoss) l = kdf_loss_blind_new (y, NULL, 1.0, &err);
  LossCtx c;
  ctx_init (&c, l, 2, 54);
  double v;
  c.b.n_nets = 1;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_assert_nonnull (strstr (err->message, "partner"));
  g_clear_error (&err);
  c.b.n_nets = 2;
  c.b.out[1][0].n_classes = 3;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  c.b.out[0][0].n_classes = c.b.out[1][0].n_classes = 3;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "label 3 of row 3"));
  c.b.out[0][0].n_classes = c.b.out[1][0].n_classes = C;
  ctx_clear (&c);
}

/* ---- robust_ce --------------------------------------------------------------------- */

static void
test_robust_vector (void)
{
  /* METHODS §1 through the term: probs (0.1, 0.6, 0.3) bound, ỹ = 0, groups 1 and 4
   * (β = 0.30, 0.70); logits e_0, e_1, e_2 reveal the target: CE(e_j, t) =
   * log(e + 2) − t_j. */
  float probs[6 * 3], z[6 * 3] = { 0 };
  int32_t y[6] = { 0 }, grp[6], rows[6];
  for (int i = 0; i < 6; i++) {
    probs[i * 3] = 0.1f, probs[i * 3 + 1] = 0.6f, probs[i * 3 + 2] = 0.3f;
    grp[i] = i < 3 ? 1 : 4;
    z[i * 3 + i % 3] = 1;
    rows[i] = i;
  }
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) ty = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, y);
  g_autoptr (KdfTensor) tg = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 6 }, grp);
  g_autoptr (KdfTensor) tp = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 6, 3 }, probs);
  g_autoptr (KdfLoss) l = kdf_loss_robust_ce_new (ty, tg, tp, alphas, 1.0, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (l->name, ==, "robust_ce");
  g_assert_false (l->needs & KDF_LOSS_NEEDS_PARTNER);
  float sl[6] = { 0 };
  KdfLossBatch b = { .n = 6, .rows = rows, .n_nets = 1, .n_views = 1, .sample_loss = sl };
  b.out[0][0] = (KdfLossView){ .logits = z, .n_classes = 3 };
  double v;
  g_assert_true (kdf_loss_compute (l, &b, &v, &err));
  const double want[6] = { 0.814463, 0.131949, 0.053588, 0.381352, 0.473050, 0.145598 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon (log (exp (1.0) + 2) - sl[i], want[i], 2e-6);
}

static void
test_robust_grads (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels_tensor (labels6);
  g_autoptr (KdfTensor) g = labels_tensor (groups6);
  /* partner mode: p is the other net's softmax on the batch row, a target */
  g_autoptr (KdfLoss) l = kdf_loss_robust_ce_new (y, g, NULL, alphas, 0.9, &err);
  g_assert_no_error (err);
  g_assert_true (l->needs & KDF_LOSS_NEEDS_PARTNER);
  LossCtx c;
  ctx_init (&c, l, 2, 60);
  double ref = 0, v;
  for (int i = 0; i < N; i++) {
    const int32_t row = c.b.rows[i];
    double p[C], t[C];
    softmax_ref (p, c.logits[1] + i * C, C);
    g_assert_true (kdf_robust_target (t, p, C, labels6[row], alphas[groups6[row] - 1], &err));
    ref += ce_ref (c.logits[0] + i * C, t) / N;
  }
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 1);
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  check_grads (&c, 2);
  kdf_loss_set_nets (l, KDF_LOSS_BOTH);
  double v0, v1;
  kdf_loss_set_nets (l, KDF_LOSS_NET0);
  g_assert_true (kdf_loss_compute (l, &c.b, &v0, &err));
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  g_assert_true (kdf_loss_compute (l, &c.b, &v1, &err));
  kdf_loss_set_nets (l, KDF_LOSS_BOTH);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, v0 + v1, 1e-12);
  /* BOTH is each net against the other's p as a target: the gradients are those of
   * NET0 and NET1 alone (no gradient flows through a target — the released code's
   * defect, fixed — so a difference quotient of the sum w.r.t. either net would see
   * the other term's target move and is not the check here) */
  g_autofree float *g0 = g_new0 (float, N * C), *g1 = g_new0 (float, N * C);
  for (int k = 0; k < 2; k++)
    memset (c.b.out[k][0].grad_logits, 0, sizeof (float) * N * C);
  kdf_loss_set_nets (l, KDF_LOSS_NET0);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  kdf_loss_set_nets (l, KDF_LOSS_NET1);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  memcpy (g0, c.b.out[0][0].grad_logits, sizeof (float) * N * C);
  memcpy (g1, c.b.out[1][0].grad_logits, sizeof (float) * N * C);
  for (int k = 0; k < 2; k++)
    memset (c.b.out[k][0].grad_logits, 0, sizeof (float) * N * C);
  kdf_loss_set_nets (l, KDF_LOSS_BOTH);
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  for (int j = 0; j < N * C; j++) {
    g_assert_cmpfloat (c.b.out[0][0].grad_logits[j], ==, g0[j]);
    g_assert_cmpfloat (c.b.out[1][0].grad_logits[j], ==, g1[j]);
  }
  /* mixup: each source's own label and β, the partner's p on the mixed row */
  kdf_loss_set_nets (l, KDF_LOSS_NET0);
  c.b.mix = mix6;
  c.b.lambda = 0.4;
  ref = 0;
  for (int i = 0; i < N; i++) {
    double p[C], ta[C], tb[C], u[C];
    const int32_t a = c.b.rows[i], bb = c.b.rows[mix6[i]];
    softmax_ref (p, c.logits[1] + i * C, C);
    kdf_robust_target (ta, p, C, labels6[a], alphas[groups6[a] - 1], NULL);
    kdf_robust_target (tb, p, C, labels6[bb], alphas[groups6[bb] - 1], NULL);
    for (int j = 0; j < C; j++)
      u[j] = 0.4 * ta[j] + 0.6 * tb[j];
    ref += ce_ref (c.logits[0] + i * C, u) / N;
  }
  g_assert_true (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 1);
  ctx_clear (&c);

  /* bound probabilities, one network */
  GRand *r = g_rand_new_with_seed (61);
  g_autoptr (KdfTensor) pr = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  for (int i = 0; i < 6; i++) {
    double s = 0;
    for (int j = 0; j < C; j++)
      s += kdf_tensor_f32 (pr)[i * C + j] = (float) g_rand_double_range (r, 0.01, 1);
    for (int j = 0; j < C; j++)
      kdf_tensor_f32 (pr)[i * C + j] /= (float) s;
  }
  g_autoptr (KdfLoss) lb = kdf_loss_robust_ce_new (y, g, pr, alphas, 1.0, &err);
  g_assert_no_error (err);
  ctx_init (&c, lb, 1, 62);
  ref = 0;
  for (int i = 0; i < N; i++) {
    const int32_t row = c.b.rows[i];
    double p[C], t[C];
    for (int j = 0; j < C; j++)
      p[j] = kdf_tensor_f32 (pr)[row * C + j];
    kdf_robust_target (t, p, C, labels6[row], alphas[groups6[row] - 1], NULL);
    ref += ce_ref (c.logits[0] + i * C, t) / N;
  }
  g_assert_true (kdf_loss_compute (lb, &c.b, &v, &err));
  g_assert_cmpfloat_with_epsilon (v, ref, 1e-9);
  check_grads (&c, 1);
  c.b.mix = mix6;
  c.b.lambda = 0.8;
  check_grads (&c, 1);
  c.b.mix = NULL;

  /* no groups: plain CE on the labels, no partner needed, the same as the ce term */
  g_autoptr (KdfLoss) plain = kdf_loss_robust_ce_new (y, NULL, NULL, alphas, 1.0, &err);
  g_assert_false (plain->needs & KDF_LOSS_NEEDS_PARTNER);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  double vc;
  g_assert_true (kdf_loss_compute (plain, &c.b, &v, &err));
  g_assert_true (kdf_loss_compute (ce, &c.b, &vc, &err));
  g_assert_cmpfloat_with_epsilon (v, vc, 1e-12);
  check_grads (&c, 1);
  ctx_clear (&c);
  g_rand_free (r);
}

static void
test_robust_bad (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels_tensor (labels6);
  g_autoptr (KdfTensor) g = labels_tensor (groups6);
  const double unordered[4] = { 0.30, 0.55, 0.45, 0.70 };
  g_assert_null (kdf_loss_robust_ce_new (y, g, NULL, unordered, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_assert_nonnull (strstr (err->message, "alpha2 = 0.55 > alpha3 = 0.45"));
  g_clear_error (&err);
  const double big[4] = { 0.30, 0.45, 0.55, 1.70 };
  g_assert_null (kdf_loss_robust_ce_new (y, g, NULL, big, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  const int32_t g5[6] = { 1, 2, 3, 4, 5, 1 };
  g_autoptr (KdfTensor) tg5 = labels_tensor (g5);
  g_assert_null (kdf_loss_robust_ce_new (y, tg5, NULL, alphas, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "group 5 of row 4"));
  g_clear_error (&err);
  g_autoptr (KdfTensor) g4 = kdf_tensor_new_1d (KDF_DTYPE_I32, 4);
  g_assert_null (kdf_loss_robust_ce_new (y, g4, NULL, alphas, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) p3 = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, 3); /* label 3 ≥ C */
  g_assert_null (kdf_loss_robust_ce_new (y, g, p3, alphas, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  g_autoptr (KdfTensor) pn = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, C);
  kdf_tensor_f32 (pn)[5] = NAN;
  g_assert_null (kdf_loss_robust_ce_new (y, g, pn, alphas, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&err);
  /* partner mode on one network */
  g_autoptr (KdfLoss) l = kdf_loss_robust_ce_new (y, g, NULL, alphas, 1.0, &err);
  LossCtx c;
  ctx_init (&c, l, 1, 63);
  double v;
  g_assert_false (kdf_loss_compute (l, &c.b, &v, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  ctx_clear (&c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/loss-methods/robust-target", test_robust_target);
  g_test_add_func ("/nn/loss-methods/robust-vector", test_robust_vector);
  g_test_add_func ("/nn/loss-methods/robust-grads", test_robust_grads);
  g_test_add_func ("/nn/loss-methods/robust-bad", test_robust_bad);
  g_test_add_func ("/nn/loss-methods/gce-vector", test_gce_vector);
  g_test_add_func ("/nn/loss-methods/gce-grads", test_gce_grads);
  g_test_add_func ("/nn/loss-methods/gce-bad", test_gce_bad);
  g_test_add_func ("/nn/loss-methods/blind-hand", test_blind_hand);
  g_test_add_func ("/nn/loss-methods/blind-grads", test_blind_grads);
  g_test_add_func ("/nn/loss-methods/blind-bad", test_blind_bad);
  return g_test_run ();
}
