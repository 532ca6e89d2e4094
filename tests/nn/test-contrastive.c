/* The representation terms (engine/nn/contrastive.c): every contrastive kernel's
 * gradient against central differences, each with a wrong-gradient control (the
 * positive term's sign flipped) that the same check must reject; then every term
 * end to end through kdf_trainer_step (views with noise, the rotated view, the head on
 * the student, the tap, the trunk) against central differences of the step's loss in
 * the parameters (lr 0, so a step changes nothing), with a control gradient (another
 * batch's draws) that must fail; rotations; bad inputs. */
#include "config.h"

#include "nn-test-util.h"

#include <kdflow/contrastive.h>

#define M 8 /* rows */
#define D 5 /* embedding width */
#define NC 3

/* ---- kernels ------------------------------------------------------------------------- */

typedef struct {
  int mode; /* KdfContrastMode */
  float z[2 * M * D], t[M * D], pr[NC * D];
  int32_t y[2 * M], perm[M];
  double lambda, tau;
  int views; /* proto: 1 or 2 */
} KCtx;

static double
k_value (gpointer p)
{
  KCtx *c = p;
  switch (c->mode) {
  case KDF_CONTRAST_SUPCON:
  case KDF_CONTRAST_SIMCLR:
    return kdf_supcon (NULL, NULL, c->z, c->y, 2 * M, D, c->tau, 1.0);
  case KDF_CONTRAST_INSTANCE:
    return kdf_instance_nce (NULL, NULL, c->z, c->t, M, D, c->tau, 1.0);
  default:
    return kdf_proto_nce (NULL, NULL, NULL, c->z, c->views == 2 ? c->z + M * D : c->z, c->y,
                          c->perm, c->lambda, c->pr, M, D, NC, c->tau, 1.0);
  }
}

static void
k_grad (KCtx *c, float *g)
{
  memset (g, 0, sizeof (float) * 2 * M * D);
  switch (c->mode) {
  case KDF_CONTRAST_SUPCON:
  case KDF_CONTRAST_SIMCLR:
    kdf_supcon (g, NULL, c->z, c->y, 2 * M, D, c->tau, 1.0);
    break;
  case KDF_CONTRAST_INSTANCE:
    kdf_instance_nce (g, NULL, c->z, c->t, M, D, c->tau, 1.0);
    break;
  default:
    if (c->views == 2)
      kdf_proto_nce (g, g + M * D, NULL, c->z, c->z + M * D, c->y, c->perm, c->lambda, c->pr, M,
                     D, NC, c->tau, 1.0);
    else
      kdf_proto_nce (g, g, NULL, c->z, c->z, c->y, c->perm, c->lambda, c->pr, M, D, NC, c->tau,
                     1.0);
  }
}

static void
unit (double *u, double *nrm, const float *z, int rows)
{
  for (int a = 0; a < rows; a++) {
    double s = 0;
    for (int j = 0; j < D; j++)
      s += (double) z[a * D + j] * z[a * D + j];
    nrm[a] = sqrt (s);
    for (int j = 0; j < D; j++)
      u[a * D + j] = z[a * D + j] / nrm[a];
  }
}

/* g (rows×D) += (gu − u⟨u,gu⟩)/‖z‖, written here independently of the engine */
static void
through_norm (float *g, const double *gu, const double *u, const double *nrm, int rows)
{
  for (int a = 0; a < rows; a++) {
    double dot = 0;
    for (int j = 0; j < D; j++)
      dot += u[a * D + j] * gu[a * D + j];
    for (int j = 0; j < D; j++)
      g[a * D + j] += (float) ((gu[a * D + j] - u[a * D + j] * dot) / nrm[a]);
  }
}

/* The gradient of the positive (attracting) part of each loss alone — the part whose
 * sign the control flips: supcon −(1/A)Σ_a (1/|P|)Σ_p s_ap; instance −(1/n)Σ_i s(u_i,v_i);
 * proto −(1/n)Σ_i Σ_c Y_ic·m_i·Pr_c/τ. */
static void
positive_grad (KCtx *c, float *g)
{
  memset (g, 0, sizeof (float) * 2 * M * D);
  double u[2 * M * D], nrm[2 * M], gu[2 * M * D] = { 0 };
  if (c->mode == KDF_CONTRAST_SUPCON || c->mode == KDF_CONTRAST_SIMCLR) {
    const int m = 2 * M;
    unit (u, nrm, c->z, m);
    int anchors = 0;
    for (int a = 0; a < m; a++) {
      int np = 0;
      for (int p = 0; p < m; p++)
        np += p != a && c->y[p] == c->y[a];
      anchors += np > 0;
    }
    for (int a = 0; a < m; a++) {
      int np = 0;
      for (int p = 0; p < m; p++)
        np += p != a && c->y[p] == c->y[a];
      for (int p = 0; p < m; p++)
        if (p != a && c->y[p] == c->y[a])
          for (int j = 0; j < D; j++) {
            const double f = -1.0 / (anchors * np * c->tau);
            gu[a * D + j] += f * u[p * D + j];
            gu[p * D + j] += f * u[a * D + j];
          }
    }
    through_norm (g, gu, u, nrm, m);
  } else if (c->mode == KDF_CONTRAST_INSTANCE) {
    double v[M * D], nv[M];
    unit (u, nrm, c->z, M);
    unit (v, nv, c->t, M);
    for (int i = 0; i < M * D; i++)
      gu[i] = -v[i] / (M * c->tau);
    through_norm (g, gu, u, nrm, M);
  } else {
    double pr[NC * D], npr[NC];
    unit (pr, npr, c->pr, NC);
    unit (u, nrm, c->z, c->views * M);
    const double *u2 = c->views == 2 ? u + M * D : u;
    double g2[M * D] = { 0 };
    for (int i = 0; i < M; i++) {
      const int k = c->perm[i];
      double w[D], wn = 0, gm[D], dot = 0;
      for (int j = 0; j < D; j++) {
        w[j] = c->lambda * u[i * D + j] + (1 - c->lambda) * u2[k * D + j];
        wn += w[j] * w[j];
      }
      wn = sqrt (wn);
      for (int j = 0; j < D; j++) {
        w[j] /= wn;
        gm[j] = -(c->lambda * pr[c->y[i] * D + j] + (1 - c->lambda) * pr[c->y[k] * D + j]) /
                (M * c->tau);
      }
      for (int j = 0; j < D; j++)
        dot += w[j] * gm[j];
      for (int j = 0; j < D; j++) {
        const double gw = (gm[j] - w[j] * dot) / wn;
        gu[i * D + j] += c->lambda * gw;
        (c->views == 2 ? g2 : gu)[k * D + j] += (1 - c->lambda) * gw;
      }
    }
    through_norm (g, gu, u, nrm, M);
    if (c->views == 2)
      through_norm (g + M * D, g2, u + M * D, nrm + M, M);
  }
}

static void
check_kernel (int mode, int views)
{
  KCtx c = { .mode = mode, .tau = 0.3, .lambda = 0.37, .views = views };
  GRand *r = g_rand_new_with_seed (17 + mode);
  fill_uniform (c.z, 2 * M * D, r, -1, 1);
  fill_uniform (c.t, M * D, r, -1, 1);
  fill_uniform (c.pr, NC * D, r, -1, 1);
  for (int i = 0; i < M; i++) {
    c.y[i] = mode == KDF_CONTRAST_SIMCLR ? i : (int32_t) g_rand_int_range (r, 0, NC);
    c.y[M + i] = c.y[i]; /* the second view's rows: the same samples */
    c.perm[i] = i;
  }
  for (int i = M - 1; i > 0; i--) {
    int j = g_rand_int_range (r, 0, i + 1), t = c.perm[i];
    c.perm[i] = c.perm[j];
    c.perm[j] = t;
  }
  g_rand_free (r);
  const int64_t nz = (mode == KDF_CONTRAST_INSTANCE || (mode == KDF_CONTRAST_PROTO && views == 1))
                         ? M * D : 2 * M * D;
  float g[2 * M * D], gp[2 * M * D], wrong[2 * M * D];
  k_grad (&c, g);
  const double err = grad_error (k_value, &c, c.z, g, nz, 1e-3, 1000);
  g_test_message ("mode %d views %d: gradient error %.2e", mode, views, err);
  g_assert_cmpfloat (err, <, 1e-3);
  /* the control: the positive term's sign flipped (g − 2·g_pos) must be rejected */
  positive_grad (&c, gp);
  double gpn = 0;
  for (int64_t i = 0; i < nz; i++) {
    wrong[i] = g[i] - 2 * gp[i];
    gpn = fmax (gpn, fabs (gp[i]));
  }
  g_assert_cmpfloat (gpn, >, 1e-3); /* the flipped term is not negligible */
  const double werr = grad_error (k_value, &c, c.z, wrong, nz, 1e-3, 1000);
  g_test_message ("mode %d views %d: control (positive term flipped) error %.2e", mode, views, werr);
  g_assert_cmpfloat (werr, >, 0.1);
}

static void test_supcon (void) { check_kernel (KDF_CONTRAST_SUPCON, 2); }
static void test_simclr (void) { check_kernel (KDF_CONTRAST_SIMCLR, 2); }
static void test_instance (void) { check_kernel (KDF_CONTRAST_INSTANCE, 1); }
static void test_proto (void) { check_kernel (KDF_CONTRAST_PROTO, 2); }
static void test_proto_one_view (void) { check_kernel (KDF_CONTRAST_PROTO, 1); }

/* Values by hand: two rows, d = 2. supcon: u = e1, e2, same label: each anchor's only
 * other row is its positive, ℓ = log e^{s} − s = 0. instance at τ = 1 with u1 = v1 =
 * e1, u2 = v2 = e2: ℓ_1 = −1 + log(e^1 + e^0 + e^0) = log(e + 2) − 1. proto with λ = 1,
 * m = e1, Pr = (e1, e2), τ = 1, y = 0: ℓ = log(e + 1) − 1. */
static void
test_values (void)
{
  const float z[4] = { 2, 0, 0, 3 };
  const int32_t y[2] = { 1, 1 }, perm[2] = { 0, 1 }, y0[2] = { 0, 1 };
  g_assert_cmpfloat (fabs (kdf_supcon (NULL, NULL, z, y, 2, 2, 0.5, 1)), <, 1e-12);
  g_assert_cmpfloat (fabs (kdf_instance_nce (NULL, NULL, z, z, 2, 2, 1.0, 1) - (log (G_E + 2) - 1)),
                     <, 1e-12);
  const float pr[4] = { 1, 0, 0, 1 };
  g_assert_cmpfloat (fabs (kdf_proto_nce (NULL, NULL, NULL, z, z, y0, perm, 1.0, pr, 2, 2, 2, 1.0, 1) -
                           (log (G_E + 1) - 1)),
                     <, 1e-12);
  /* an anchor without a positive is left out of the mean: u = e1, e1, e2, labels 0 0 1,
   * τ = 1: anchors 0 and 1 each give log(e + 1) − 1, anchor 2 none */
  const float z3[6] = { 1, 0, 2, 0, 0, 1 };
  const int32_t y3[3] = { 0, 0, 1 };
  double rl[3];
  g_assert_cmpfloat (fabs (kdf_supcon (NULL, rl, z3, y3, 3, 2, 1.0, 1) - (log (G_E + 1) - 1)), <, 1e-12);
  g_assert_cmpfloat (rl[2], ==, 0.0);
  /* no anchor has a positive: 0 */
  const int32_t yd[2] = { 0, 1 };
  g_assert_cmpfloat (kdf_supcon (NULL, NULL, z, yd, 2, 2, 0.5, 1), ==, 0.0);
  /* prototypes: class means over the mask; a class with no row is an error */
  const float emb[8] = { 1, 2, 3, 4, 5, 6, 100, 100 };
  const int32_t lab[4] = { 0, 1, 0, 1 };
  const uint8_t mask[4] = { 1, 1, 1, 0 };
  float p[4];
  g_autoptr (GError) err = NULL;
  g_assert_true (kdf_class_prototypes (p, emb, lab, mask, 4, 2, 2, &err));
  g_assert_cmpfloat (p[0], ==, 3);
  g_assert_cmpfloat (p[1], ==, 4);
  g_assert_cmpfloat (p[2], ==, 3);
  g_assert_cmpfloat (p[3], ==, 4);
  g_assert_false (kdf_class_prototypes (p, emb, lab, mask, 4, 2, 3, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (err->message, "class 2 has no row"));
}

/* ---- rotations --------------------------------------------------------------------- */

static void
test_rotate (void)
{
  /* a 3×3 image 0..8: a quarter turn counter-clockwise puts the top-right corner (2)
   * at the top left */
  float in[9], a[9], b[9];
  for (int i = 0; i < 9; i++)
    in[i] = (float) i;
  const int32_t one = 1, three = 3, two = 2;
  kdf_rotate90 (a, in, 1, 1, 3, &one);
  const float want[9] = { 2, 5, 8, 1, 4, 7, 0, 3, 6 };
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat (a[i], ==, want[i]);
  kdf_rotate90 (b, a, 1, 1, 3, &three); /* and back */
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat (b[i], ==, in[i]);
  kdf_rotate90 (a, in, 1, 1, 3, &two);
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat (a[i], ==, 8 - i);
}

/* ---- end to end through the trainer --------------------------------------------------- */

#define TN 12 /* rows of the data set */

typedef struct {
  KdfModel *m;
  KdfTrainer *tr;
  KdfTensor *x;
  KdfLoss *terms[2];
  guint n_terms;
  int32_t rows[TN];
  guint32 seed;
} TCtx;

static double
t_loss (gpointer p)
{
  TCtx *c = p;
  GRand *rng = g_rand_new_with_seed (c->seed);
  double l = 0;
  g_autoptr (GError) err = NULL;
  g_assert_true (kdf_trainer_step (c->tr, c->x, c->rows, TN, c->terms, c->n_terms, rng, 1, &l,
                                   NULL, &err));
  g_assert_no_error (err);
  g_rand_free (rng);
  return l;
}

/* the gradient of every parameter after one step (lr 0: the step moves nothing) */
static float *
t_grads (TCtx *c, int64_t *len)
{
  t_loss (c);
  *len = c->m->n_params;
  float *g = g_new (float, *len);
  int64_t o = 0;
  for (guint i = 0; i < c->m->params->len; i++) {
    const KdfParam *p = kdf_model_get_param (c->m, i);
    memcpy (g + o, p->grad, (size_t) p->numel * sizeof (float));
    o += p->numel;
  }
  return g;
}

/* FD of each parameter block (trunk and heads) against the analytic gradient */
static double
t_check (TCtx *c, const float *g)
{
  double worst = 0;
  int64_t o = 0;
  int sk = 0, ch = 0;
  for (guint i = 0; i < c->m->params->len; i++) {
    const KdfParam *p = kdf_model_get_param (c->m, i);
    worst = fmax (worst, grad_error_ex (t_loss, c, p->data, g + o, p->numel, 2e-3, 40, &sk, &ch));
    o += p->numel;
  }
  g_assert_cmpint (sk * 10, <=, ch); /* ReLU kinks (skipped) stay rare */
  return worst;
}

static void
check_term (KdfLoss *a, KdfLoss *b, const char *arch, int64_t d)
{
  g_autoptr (GError) err = NULL;
  TCtx c = { .seed = 5 };
  c.m = kdf_model_new_from_arch (arch, 3, &err);
  g_assert_no_error (err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.0, 0.0, 0.0, FALSE);
  g_assert_true (kdf_optimizer_add_model (opt, c.m, &err));
  KdfTrainConfig cfg = { .batch = TN, .noise = 0.3, .no_shuffle = TRUE };
  c.tr = kdf_trainer_new (c.m, NULL, opt, &cfg, &err);
  g_assert_no_error (err);
  c.x = kdf_tensor_new_2d (KDF_DTYPE_F32, TN, d);
  GRand *r = g_rand_new_with_seed (8);
  fill_uniform (kdf_tensor_f32 (c.x), TN * d, r, -1, 1);
  g_rand_free (r);
  for (int i = 0; i < TN; i++)
    c.rows[i] = (TN - 1 - i + 5) % TN;
  c.terms[0] = a;
  c.terms[1] = b;
  c.n_terms = b ? 2 : 1;
  int64_t len;
  g_autofree float *g = t_grads (&c, &len);
  g_assert_cmpuint (c.m->heads->len, >=, 1); /* the term put its head on the student */
  const double e = t_check (&c, g);
  g_test_message ("%s: end-to-end gradient error %.2e", a->name, e);
  g_assert_cmpfloat (e, <, GRAD_TOL);
  /* control: the gradient of another batch's draws (noise, rotations, λ) */
  c.seed = 6;
  g_autofree float *g6 = t_grads (&c, &len);
  c.seed = 5;
  const double ec = t_check (&c, g6);
  g_test_message ("%s: control (another batch's gradient) error %.2e", a->name, ec);
  g_assert_cmpfloat (ec, >, 0.1);
  kdf_trainer_free (c.tr);
  kdf_model_unref (c.m);
  kdf_tensor_unref (c.x);
}

static KdfTensor *
labels12 (void)
{
  KdfTensor *y = kdf_tensor_new_1d (KDF_DTYPE_I32, TN);
  for (int i = 0; i < TN; i++)
    kdf_tensor_i32 (y)[i] = i % 3;
  return y;
}

static KdfTensor *
rand2d (int64_t n, int64_t d, guint32 seed)
{
  KdfTensor *t = kdf_tensor_new_2d (KDF_DTYPE_F32, n, d);
  GRand *r = g_rand_new_with_seed (seed);
  fill_uniform (kdf_tensor_f32 (t), n * d, r, -1, 1);
  g_rand_free (r);
  return t;
}

static void
test_term_modes (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels12 ();
  g_autoptr (KdfTensor) emb = rand2d (TN, 4, 21);
  g_autoptr (KdfTensor) pr = rand2d (3, 4, 22);
  g_autoptr (KdfTensor) mask = kdf_tensor_new_1d (KDF_DTYPE_U8, TN);
  for (int i = 0; i < TN; i++)
    kdf_tensor_u8 (mask)[i] = i != 4;
  for (int mode = 0; mode <= KDF_CONTRAST_SIMCLR; mode++) {
    KdfContrastOptions o = { .mode = mode, .tau = 0.5, .beta = 8, .dim = 4, .hidden = mode == 0 ? 6 : 0,
                             .seed = 9 };
    g_autoptr (KdfLoss) l = kdf_loss_contrastive_new (&o, y, emb, pr, mode == 3 ? mask : NULL, 1.3, &err);
    g_assert_no_error (err);
    /* with a CE term beside it: the trunk sums both gradients */
    g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 0.5, &err);
    check_term (l, ce, "mlp:9-7-3", 9);
  }
  /* proto and instance on one head (MODUL's pair): both gradients reach it */
  KdfContrastOptions op = { .mode = KDF_CONTRAST_PROTO, .tau = 0.3, .beta = 8, .dim = 4, .seed = 9 };
  KdfContrastOptions oi = { .mode = KDF_CONTRAST_INSTANCE, .tau = 0.3, .dim = 4, .seed = 9 };
  g_autoptr (KdfLoss) lp = kdf_loss_contrastive_new (&op, y, emb, pr, NULL, 1.0, &err);
  g_autoptr (KdfLoss) li = kdf_loss_contrastive_new (&oi, NULL, emb, NULL, NULL, 0.7, &err);
  g_assert_no_error (err);
  check_term (lp, li, "mlp:9-7-3", 9);
}

static void
test_term_rotation (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfLoss) l = kdf_loss_rotation_new (NULL, "rot", 4, 0.8, &err);
  g_assert_no_error (err);
  g_autoptr (KdfTensor) y = labels12 ();
  KdfContrastOptions o = { .mode = KDF_CONTRAST_SIMCLR, .tau = 0.5, .dim = 3, .seed = 9 };
  g_autoptr (KdfLoss) s = kdf_loss_contrastive_new (&o, NULL, NULL, NULL, NULL, 1.0, &err);
  g_assert_no_error (err);
  check_term (l, NULL, "mlp:9-7-3", 9);
  check_term (l, s, "mlp:9-7-3", 9); /* with two views: the rotated rows come after both */
}

static void
test_term_hint (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) t = rand2d (TN, 5, 31);
  g_autoptr (KdfTensor) mask = kdf_tensor_new_1d (KDF_DTYPE_U8, TN);
  for (int i = 0; i < TN; i++)
    kdf_tensor_u8 (mask)[i] = i % 2;
  g_autoptr (KdfLoss) l = kdf_loss_hint_new (t, mask, "hint", 4, 0.7, &err);
  g_assert_no_error (err);
  check_term (l, NULL, "mlp:9-7-3", 9);
}

/* a head name already taken by another size, mixup, a non-square input: named errors */
static void
test_bad (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) y = labels12 ();
  KdfContrastOptions o = { .mode = KDF_CONTRAST_SUPCON, .tau = 0.5, .dim = 4, .seed = 9 };
  g_assert_null (kdf_loss_contrastive_new (&o, NULL, NULL, NULL, NULL, 1.0, &err));
  g_assert_nonnull (strstr (err->message, "contrastive:supcon needs labels"));
  g_clear_error (&err);
  o.tau = 0;
  g_assert_null (kdf_loss_contrastive_new (&o, y, NULL, NULL, NULL, 1.0, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  o.tau = 0.5;
  g_autoptr (KdfLoss) a = kdf_loss_contrastive_new (&o, y, NULL, NULL, NULL, 1.0, &err);
  o.dim = 5;
  g_autoptr (KdfLoss) b = kdf_loss_contrastive_new (&o, y, NULL, NULL, NULL, 1.0, &err);
  g_assert_no_error (err);
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:9-7-3", 3, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0.0, 0.0, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  KdfTrainConfig cfg = { .batch = TN };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_autoptr (KdfTensor) x = rand2d (TN, 9, 1);
  int32_t rows[TN];
  for (int i = 0; i < TN; i++)
    rows[i] = i;
  KdfLoss *two[2] = { a, b };
  GRand *rng = g_rand_new_with_seed (1);
  g_assert_false (kdf_trainer_step (tr, x, rows, TN, two, 2, rng, 1, NULL, NULL, &err));
  g_assert_nonnull (strstr (err->message, "has a head 'proj' of spec '4', a loss term asks for '5'"));
  g_clear_error (&err);
  /* rotations need square images */
  g_autoptr (KdfLoss) rot = kdf_loss_rotation_new (NULL, NULL, 1, 1.0, &err);
  g_autoptr (KdfModel) m10 = kdf_model_new_from_arch ("mlp:10-7-3", 3, &err);
  g_autoptr (KdfOptimizer) opt10 = kdf_optimizer_new_sgd (0.1, 0.0, 0.0, FALSE);
  kdf_optimizer_add_model (opt10, m10, &err);
  g_autoptr (KdfTrainer) tr10 = kdf_trainer_new (m10, NULL, opt10, &cfg, &err);
  g_autoptr (KdfTensor) x10 = rand2d (TN, 10, 1);
  g_assert_false (kdf_trainer_step (tr10, x10, rows, TN, &rot, 1, rng, 1, NULL, NULL, &err));
  g_assert_nonnull (strstr (err->message, "not a square image"));
  g_clear_error (&err);
  /* the trainer's mixup */
  cfg.mixup_alpha = 0.4;
  g_autoptr (KdfTrainer) trm = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_assert_false (kdf_trainer_step (trm, x, rows, TN, &a, 1, rng, 1, NULL, NULL, &err));
  g_assert_nonnull (strstr (err->message, "mixup is not supported"));
  g_clear_error (&err);
  /* shapes */
  g_autoptr (KdfTensor) bad = rand2d (TN, 3, 2);
  o.mode = KDF_CONTRAST_INSTANCE;
  o.dim = 4;
  g_assert_null (kdf_loss_contrastive_new (&o, NULL, bad, NULL, NULL, 1.0, &err));
  g_assert_nonnull (strstr (err->message, "the teacher's embeddings must be f32[N,4]"));
  g_clear_error (&err);
  g_rand_free (rng);
}

/* the noise augmentation is a function of the seed and makes the views differ */
static void
test_noise_views (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) x = rand2d (TN, 9, 1);
  KdfContrastOptions o = { .mode = KDF_CONTRAST_SIMCLR, .tau = 0.5, .dim = 4, .seed = 9 };
  g_autoptr (KdfLoss) l = kdf_loss_contrastive_new (&o, NULL, NULL, NULL, NULL, 1.0, &err);
  double v[3];
  for (int k = 0; k < 3; k++) {
    g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:9-7-3", 3, &err);
    g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.0, 0.0, 0.0, FALSE);
    kdf_optimizer_add_model (opt, m, &err);
    KdfTrainConfig cfg = { .batch = TN, .noise = k == 2 ? 0.0 : 0.2 };
    g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
    int32_t rows[TN];
    for (int i = 0; i < TN; i++)
      rows[i] = i;
    GRand *rng = g_rand_new_with_seed (4);
    g_assert_true (kdf_trainer_step (tr, x, rows, TN, &l, 1, rng, 1, &v[k], NULL, &err));
    g_rand_free (rng);
  }
  g_assert_cmpfloat (v[0], ==, v[1]); /* same seed, same noise */
  g_assert_cmpfloat (v[0], !=, v[2]); /* noise changes the views */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/contrastive/supcon", test_supcon);
  g_test_add_func ("/contrastive/simclr", test_simclr);
  g_test_add_func ("/contrastive/instance", test_instance);
  g_test_add_func ("/contrastive/proto", test_proto);
  g_test_add_func ("/contrastive/proto-one-view", test_proto_one_view);
  g_test_add_func ("/contrastive/values", test_values);
  g_test_add_func ("/contrastive/rotate", test_rotate);
  g_test_add_func ("/contrastive/term-modes", test_term_modes);
  g_test_add_func ("/contrastive/term-rotation", test_term_rotation);
  g_test_add_func ("/contrastive/term-hint", test_term_hint);
  g_test_add_func ("/contrastive/bad", test_bad);
  g_test_add_func ("/contrastive/noise-views", test_noise_views);
  return g_test_run ();
}
