/* Layer kernels and whole models: forward values against naive double references,
 * gradients against central differences. */
#include "config.h"

#include "nn-test-util.h"

/* ---- linear ----------------------------------------------------------------------- */

typedef struct {
  float *out, *inp, *w, *b, *r;
  int64_t n, in, o;
  gboolean relu;
} LinCtx;

static double
lin_loss (gpointer p)
{
  LinCtx *c = p;
  kdf_linear_forward (c->out, c->inp, c->w, c->b, c->n, c->in, c->o, c->relu, 1);
  return probe (c->out, c->r, c->n * c->o);
}

static void
check_linear (gboolean bias, gboolean relu)
{
  GRand *rng = g_rand_new_with_seed (11 + bias * 2 + relu);
  LinCtx c = { .n = 5, .in = 7, .o = 4, .relu = relu };
  c.out = g_new0 (float, c.n * c.o);
  c.inp = g_new0 (float, c.n * c.in);
  c.w = g_new0 (float, c.o * c.in);
  c.b = bias ? g_new0 (float, c.o) : NULL;
  c.r = g_new0 (float, c.n * c.o);
  fill_uniform (c.inp, c.n * c.in, rng, -1, 1);
  fill_uniform (c.w, c.o * c.in, rng, -1, 1);
  if (bias)
    fill_uniform (c.b, c.o, rng, -0.5, 0.5);
  fill_uniform (c.r, c.n * c.o, rng, -1, 1);

  /* values */
  lin_loss (&c);
  for (int64_t i = 0; i < c.n; i++)
    for (int64_t j = 0; j < c.o; j++) {
      double s = bias ? c.b[j] : 0.0;
      for (int64_t k = 0; k < c.in; k++)
        s += (double) c.inp[i * c.in + k] * c.w[j * c.in + k];
      if (relu)
        s = fmax (s, 0.0);
      g_assert_cmpfloat_with_epsilon (c.out[i * c.o + j], s, 1e-5);
    }

  /* gradients: dout = r */
  float *dout = g_memdup2 (c.r, sizeof (float) * c.n * c.o);
  float *dinp = g_new0 (float, c.n * c.in), *dw = g_new0 (float, c.o * c.in),
        *db = g_new0 (float, c.o);
  kdf_linear_backward (dinp, dw, bias ? db : NULL, dout, c.out, c.inp, c.w, c.n, c.in, c.o, relu,
                       1.0f, 1);
  /* smaller steps across ReLU kinks */
  const double h = relu ? 1e-3 : 1e-2;
  g_assert_cmpfloat (grad_error (lin_loss, &c, c.inp, dinp, c.n * c.in, h, 1000), <, GRAD_TOL);
  g_assert_cmpfloat (grad_error (lin_loss, &c, c.w, dw, c.o * c.in, h, 1000), <, GRAD_TOL);
  if (bias)
    g_assert_cmpfloat (grad_error (lin_loss, &c, c.b, db, c.o, h, 1000), <, GRAD_TOL);

  /* a wrong gradient (transposed dweight) must fail the same check */
  float *dwt = g_new0 (float, c.o * c.in);
  for (int64_t j = 0; j < c.o; j++)
    for (int64_t k = 0; k < c.in; k++)
      dwt[k * c.o + j] = dw[j * c.in + k];
  g_assert_cmpfloat (grad_error (lin_loss, &c, c.w, dwt, c.o * c.in, h, 1000), >, 0.1);

  /* accumulation: a second backward adds the same again; gbeta 0 overwrites */
  lin_loss (&c);
  memcpy (dout, c.r, sizeof (float) * c.n * c.o);
  float *dw2 = g_memdup2 (dw, sizeof (float) * c.o * c.in);
  kdf_linear_backward (NULL, dw2, NULL, dout, c.out, c.inp, c.w, c.n, c.in, c.o, relu, 1.0f, 1);
  for (int64_t j = 0; j < c.o * c.in; j++)
    g_assert_cmpfloat_with_epsilon (dw2[j], 2 * dw[j], 1e-5);
  memcpy (dout, c.r, sizeof (float) * c.n * c.o);
  kdf_linear_backward (NULL, dw2, NULL, dout, c.out, c.inp, c.w, c.n, c.in, c.o, relu, 0.0f, 1);
  for (int64_t j = 0; j < c.o * c.in; j++)
    g_assert_cmpfloat_with_epsilon (dw2[j], dw[j], 1e-6);

  g_free (dwt);
  g_free (dw2);
  g_free (dout);
  g_free (dinp);
  g_free (dw);
  g_free (db);
  g_free (c.out);
  g_free (c.inp);
  g_free (c.w);
  g_free (c.b);
  g_free (c.r);
  g_rand_free (rng);
}

static void
test_linear (void)
{
  check_linear (TRUE, FALSE);
  check_linear (FALSE, FALSE);
  check_linear (TRUE, TRUE);
}

/* ---- conv2d ------------------------------------------------------------------------ */

typedef struct {
  float *out, *inp, *w, *b, *r, *col;
  int64_t n;
  int cin, h, wd, cout, k, s, p, oh, ow;
  gboolean relu;
} ConvCtx;

static double
conv_loss (gpointer p)
{
  ConvCtx *c = p;
  kdf_conv2d_forward (c->out, c->col, c->inp, c->w, c->b, c->n, c->cin, c->h, c->wd, c->cout,
                      c->k, c->s, c->p, c->relu, 1);
  return probe (c->out, c->r, c->n * c->cout * c->oh * c->ow);
}

static void
check_conv (int cin, int h, int w, int cout, int k, int s, int p, gboolean bias, gboolean relu)
{
  GRand *rng = g_rand_new_with_seed (100 + k * 7 + s * 3 + p);
  ConvCtx c = { .n = 2, .cin = cin, .h = h, .wd = w, .cout = cout, .k = k, .s = s, .p = p,
                .relu = relu };
  c.oh = (h + 2 * p - k) / s + 1;
  c.ow = (w + 2 * p - k) / s + 1;
  const int64_t nin = c.n * cin * h * w, nout = c.n * cout * c.oh * c.ow,
                nw = (int64_t) cout * cin * k * k;
  c.out = g_new0 (float, nout);
  c.inp = g_new0 (float, nin);
  c.w = g_new0 (float, nw);
  c.b = bias ? g_new0 (float, cout) : NULL;
  c.r = g_new0 (float, nout);
  c.col = g_new0 (float, 2 * (int64_t) cin * k * k * c.oh * c.ow);
  fill_uniform (c.inp, nin, rng, -1, 1);
  fill_uniform (c.w, nw, rng, -0.5, 0.5);
  if (bias)
    fill_uniform (c.b, cout, rng, -0.5, 0.5);
  fill_uniform (c.r, nout, rng, -1, 1);

  conv_loss (&c);
  for (int64_t i = 0; i < c.n; i++)
    for (int oc = 0; oc < cout; oc++)
      for (int y = 0; y < c.oh; y++)
        for (int x = 0; x < c.ow; x++) {
          double acc = bias ? c.b[oc] : 0.0;
          for (int ic = 0; ic < cin; ic++)
            for (int kh = 0; kh < k; kh++)
              for (int kw = 0; kw < k; kw++) {
                int iy = y * s - p + kh, ix = x * s - p + kw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue;
                acc += (double) c.inp[((i * cin + ic) * h + iy) * w + ix] *
                       c.w[((oc * cin + ic) * k + kh) * k + kw];
              }
          if (relu)
            acc = fmax (acc, 0.0);
          g_assert_cmpfloat_with_epsilon (c.out[((i * cout + oc) * c.oh + y) * c.ow + x], acc, 1e-5);
        }

  float *dout = g_memdup2 (c.r, sizeof (float) * nout);
  float *dinp = g_new0 (float, nin), *dw = g_new0 (float, nw), *db = g_new0 (float, cout);
  kdf_conv2d_backward (dinp, dw, bias ? db : NULL, dout, c.out, c.col, c.inp, c.w, c.n, cin, h, w,
                       cout, k, s, p, relu, 1.0f, 1);
  const double hh = relu ? 1e-3 : 1e-2;
  g_assert_cmpfloat (grad_error (conv_loss, &c, c.inp, dinp, nin, hh, 400), <, GRAD_TOL);
  g_assert_cmpfloat (grad_error (conv_loss, &c, c.w, dw, nw, hh, 400), <, GRAD_TOL);
  if (bias)
    g_assert_cmpfloat (grad_error (conv_loss, &c, c.b, db, cout, hh, 400), <, GRAD_TOL);
  /* control: the gradient of another sample's input is wrong */
  if (!relu) {
    float *shifted = g_new0 (float, nin);
    memcpy (shifted, dinp + nin / 2, sizeof (float) * (nin / 2));
    memcpy (shifted + nin / 2, dinp, sizeof (float) * (nin / 2));
    g_assert_cmpfloat (grad_error (conv_loss, &c, c.inp, shifted, nin, 1e-2, 400), >, 0.1);
    g_free (shifted);
  }
  g_free (dout);
  g_free (dinp);
  g_free (dw);
  g_free (db);
  g_free (c.out);
  g_free (c.inp);
  g_free (c.w);
  g_free (c.b);
  g_free (c.r);
  g_free (c.col);
  g_rand_free (rng);
}

static void
test_conv2d (void)
{
  check_conv (3, 7, 6, 4, 3, 1, 1, TRUE, FALSE);  /* same padding */
  check_conv (2, 8, 7, 3, 3, 2, 0, TRUE, FALSE);  /* stride 2, no padding */
  check_conv (2, 6, 6, 3, 2, 2, 1, FALSE, FALSE); /* even kernel, padding, no bias */
  check_conv (3, 5, 5, 4, 1, 1, 0, TRUE, FALSE);  /* 1×1: the direct path */
  check_conv (2, 6, 5, 3, 3, 1, 1, TRUE, TRUE);   /* fused ReLU */
}

/* ---- maxpool, relu, dropout, l2norm -------------------------------------------------- */

typedef struct {
  float *out, *inp, *r, *norm;
  int32_t *argmax;
  uint8_t *mask;
  int64_t n;
  int c, h, w, k, s;
  int64_t nout;
  int which; /* 0 maxpool, 1 relu, 2 dropout, 3 l2norm */
  guint32 seed;
  double p;
} EwCtx;

static double
ew_loss (gpointer p)
{
  EwCtx *c = p;
  switch (c->which) {
  case 0:
    kdf_maxpool2d_forward (c->out, c->argmax, c->inp, c->n, c->c, c->h, c->w, c->k, c->s);
    break;
  case 1:
    kdf_relu_forward (c->out, c->inp, c->nout);
    break;
  case 2: {
    GRand *r = g_rand_new_with_seed (c->seed); /* the same mask every call */
    kdf_dropout_forward (c->out, c->mask, c->inp, c->nout, c->p, r);
    g_rand_free (r);
    break;
  }
  case 3:
    kdf_l2norm_forward (c->out, c->norm, c->inp, c->n, c->nout / c->n);
    break;
  }
  return probe (c->out, c->r, c->nout);
}

static void
test_maxpool (void)
{
  int cases[][3] = { { 2, 2, 0 }, { 3, 2, 0 }, { 2, 1, 0 } }; /* k, s */
  for (guint t = 0; t < G_N_ELEMENTS (cases); t++) {
    GRand *rng = g_rand_new_with_seed (7 + t);
    EwCtx c = { .n = 2, .c = 3, .h = 7, .w = 6, .k = cases[t][0], .s = cases[t][1], .which = 0 };
    int oh = (c.h - c.k) / c.s + 1, ow = (c.w - c.k) / c.s + 1;
    int64_t nin = c.n * c.c * c.h * c.w;
    c.nout = c.n * c.c * oh * ow;
    c.inp = g_new0 (float, nin);
    c.out = g_new0 (float, c.nout);
    c.r = g_new0 (float, c.nout);
    c.argmax = g_new0 (int32_t, c.nout);
    fill_uniform (c.inp, nin, rng, -1, 1);
    fill_uniform (c.r, c.nout, rng, -1, 1);
    ew_loss (&c);
    for (int64_t pl = 0; pl < c.n * c.c; pl++)
      for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
          float m = -INFINITY;
          for (int a = 0; a < c.k; a++)
            for (int b = 0; b < c.k; b++)
              m = fmaxf (m, c.inp[pl * c.h * c.w + (y * c.s + a) * c.w + x * c.s + b]);
          g_assert_cmpfloat (c.out[(pl * oh + y) * ow + x], ==, m);
        }
    float *dinp = g_new0 (float, nin);
    kdf_maxpool2d_backward (dinp, c.r, c.argmax, c.n, c.c, c.h, c.w, c.k, c.s);
    g_assert_cmpfloat (grad_error (ew_loss, &c, c.inp, dinp, nin, 1e-3, 1000), <, GRAD_TOL);
    g_free (dinp);
    g_free (c.inp);
    g_free (c.out);
    g_free (c.r);
    g_free (c.argmax);
    g_rand_free (rng);
  }
}

static void
check_elementwise (int which, double p)
{
  GRand *rng = g_rand_new_with_seed (31 + which);
  EwCtx c = { .n = 4, .nout = 4 * 9, .which = which, .seed = 5, .p = p };
  c.inp = g_new0 (float, c.nout);
  c.out = g_new0 (float, c.nout);
  c.r = g_new0 (float, c.nout);
  c.mask = g_new0 (uint8_t, c.nout);
  c.norm = g_new0 (float, c.n);
  fill_away_from_zero (c.inp, c.nout, rng, 0.05);
  fill_uniform (c.r, c.nout, rng, -1, 1);
  ew_loss (&c);
  float *dinp = g_new0 (float, c.nout);
  switch (which) {
  case 1:
    for (int64_t j = 0; j < c.nout; j++)
      g_assert_cmpfloat (c.out[j], ==, fmaxf (c.inp[j], 0.0f));
    kdf_relu_backward (dinp, c.r, c.out, c.nout);
    break;
  case 2: {
    int kept = 0;
    for (int64_t j = 0; j < c.nout; j++) {
      kept += c.mask[j];
      g_assert_cmpfloat_with_epsilon (c.out[j], c.mask[j] ? c.inp[j] / (1 - p) : 0.0f, 1e-6);
    }
    g_assert_cmpint (kept, >, 0);
    g_assert_cmpint (kept, <, c.nout); /* p = 0.5 over 36 draws */
    kdf_dropout_backward (dinp, c.r, c.mask, c.nout, p);
    break;
  }
  case 3:
    for (int64_t i = 0; i < c.n; i++) {
      double ss = 0;
      for (int j = 0; j < 9; j++)
        ss += (double) c.out[i * 9 + j] * c.out[i * 9 + j];
      g_assert_cmpfloat_with_epsilon (ss, 1.0, 1e-5);
    }
    kdf_l2norm_backward (dinp, c.r, c.out, c.norm, c.n, 9);
    break;
  }
  g_assert_cmpfloat (grad_error (ew_loss, &c, c.inp, dinp, c.nout, 1e-3, 1000), <, GRAD_TOL);
  g_free (dinp);
  g_free (c.inp);
  g_free (c.out);
  g_free (c.r);
  g_free (c.mask);
  g_free (c.norm);
  g_rand_free (rng);
}

static void
test_relu (void)
{
  check_elementwise (1, 0);
}

static void
test_dropout (void)
{
  check_elementwise (2, 0.5);
}

static void
test_l2norm (void)
{
  check_elementwise (3, 0);
}

/* ---- softmax ---------------------------------------------------------------------- */

static void
test_softmax (void)
{
  const float z[] = { 1000.0f, -1000.0f, 0.0f, 2.0f, 1.0f, 0.5f };
  float p[6], lp[6];
  kdf_softmax (p, z, 2, 3, 1.0);
  kdf_log_softmax (lp, z, 2, 3, 1.0);
  g_assert_cmpfloat_with_epsilon (p[0], 1.0, 1e-7);
  g_assert_cmpfloat (p[1], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (lp[1], -2000.0, 1e-3);
  g_assert_true (isfinite (lp[2]));
  /* row 2 with T = 2: softmax of (1, 0.5, 0.25) */
  kdf_softmax (p, z, 2, 3, 2.0);
  double e[3] = { exp (1.0), exp (0.5), exp (0.25) }, s = e[0] + e[1] + e[2];
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat_with_epsilon (p[3 + j], e[j] / s, 1e-6);
  kdf_log_softmax (lp, z, 2, 3, 2.0);
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat_with_epsilon (lp[3 + j], log (e[j] / s), 1e-6);
  /* in place */
  float q[3] = { 3.0f, 1.0f, -2.0f };
  kdf_softmax (q, q, 1, 3, 1.0);
  g_assert_cmpfloat_with_epsilon (q[0] + q[1] + q[2], 1.0, 1e-6);
}

/* ---- whole models --------------------------------------------------------------------- */

typedef struct {
  KdfModel *m;
  float *x, *r, *s, *t;
  int64_t n;
  int head;
} ModelCtx;

/* L = Σ r·logits + Σ s·features + Σ t·head — exercises the tap and head gradients. */
static double
model_loss (gpointer p)
{
  ModelCtx *c = p;
  GRand *rng = g_rand_new_with_seed (3); /* same dropout mask every call */
  const float *z = kdf_model_forward (c->m, c->x, c->n, TRUE, rng, 1);
  g_rand_free (rng);
  double l = probe (z, c->r, c->n * c->m->n_classes) +
             probe (kdf_model_get_features (c->m), c->s, c->n * c->m->n_features);
  if (c->head >= 0)
    l += probe (kdf_model_head_forward (c->m, c->head, 1), c->t,
                c->n * kdf_model_head_dim (c->m, c->head));
  return l;
}

static void
model_grads (ModelCtx *c)
{
  model_loss (c);
  KdfModel *m = c->m;
  float *gl = kdf_model_get_grad_logits (m), *gf = kdf_model_get_grad_features (m);
  for (int64_t j = 0; j < c->n * m->n_classes; j++)
    gl[j] += c->r[j];
  for (int64_t j = 0; j < c->n * m->n_features; j++)
    gf[j] += c->s[j];
  if (c->head >= 0) {
    float *gh = kdf_model_get_head_grad (m, c->head);
    for (int64_t j = 0; j < c->n * kdf_model_head_dim (m, c->head); j++)
      gh[j] += c->t[j];
  }
  kdf_model_backward (m, 1);
}

static void
check_model (const char *arch, const char *head, int64_t n)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch (arch, 42, &err);
  g_assert_no_error (err);
  ModelCtx c = { .m = m, .n = n, .head = -1 };
  if (head) {
    c.head = kdf_model_add_head (m, "proj", head, 43, &err);
    g_assert_no_error (err);
  }
  GRand *rng = g_rand_new_with_seed (9);
  c.x = g_new0 (float, n * m->in_size);
  c.r = g_new0 (float, n * m->n_classes);
  c.s = g_new0 (float, n * m->n_features);
  int64_t hd = head ? kdf_model_head_dim (m, c.head) : 0;
  c.t = g_new0 (float, MAX (1, n * hd));
  fill_uniform (c.x, n * m->in_size, rng, -1, 1);
  fill_uniform (c.r, n * m->n_classes, rng, -1, 1);
  fill_uniform (c.s, n * m->n_features, rng, -0.5, 0.5);
  fill_uniform (c.t, n * hd, rng, -1, 1);

  /* lazy zero_grad then backward (overwrite path), then the accumulate path */
  kdf_model_zero_grad (m);
  model_grads (&c);
  GPtrArray *first = g_ptr_array_new_with_free_func (g_free);
  int skipped = 0, checked = 0;
  for (guint i = 0; i < m->params->len; i++) {
    const KdfParam *p = kdf_model_get_param (m, i);
    float *g = g_memdup2 (p->grad, sizeof (float) * p->numel);
    g_ptr_array_add (first, g);
    double e = grad_error_ex (model_loss, &c, p->data, g, p->numel, 2e-3, 150, &skipped, &checked);
    if (e >= GRAD_TOL)
      g_error ("%s: gradient of %s off by %g", arch, p->name, e);
  }
  g_assert_cmpint (skipped * 10, <=, checked);
  model_grads (&c);
  for (guint i = 0; i < m->params->len; i++) {
    const KdfParam *p = kdf_model_get_param (m, i);
    const float *g = first->pdata[i];
    for (int64_t j = 0; j < p->numel; j++)
      g_assert_cmpfloat (fabsf (p->grad[j] - 2 * g[j]), <=, 1e-5f + 1e-5f * fabsf (g[j]));
  }
  g_ptr_array_unref (first);
  g_free (c.x);
  g_free (c.r);
  g_free (c.s);
  g_free (c.t);
  g_rand_free (rng);
}

static void
test_model_mlp (void)
{
  check_model ("mlp:6-5-4-3", NULL, 4);
  check_model ("mlp:6-5-3:nobias", "4-2", 3);
}

/* PReLU (nn.PReLU(): one slope a, init 0.25): y = x for x > 0, a·x otherwise, by
 * hand through a Linear 2→2 set to the identity; then the gradients of a and of the
 * layers around it by finite differences (the slope's gradient Σ dy·x over x ≤ 0). */
static void
test_prelu (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("seq:2-linear2-prelu-linear1", 1, &err);
  g_assert_no_error (err);
  const KdfParam *a = kdf_model_find_param (m, "1.weight");
  g_assert_nonnull (a);
  g_assert_cmpint (a->numel, ==, 1);
  g_assert_cmpfloat (a->data[0], ==, 0.25f);
  const float id[4] = { 1, 0, 0, 1 }, zero2[2] = { 0, 0 }, w2[2] = { 1, 10 }, b2[1] = { 0 };
  memcpy (kdf_model_find_param (m, "0.weight")->data, id, sizeof id);
  memcpy (kdf_model_find_param (m, "0.bias")->data, zero2, sizeof zero2);
  memcpy (kdf_model_find_param (m, "2.weight")->data, w2, sizeof w2);
  memcpy (kdf_model_find_param (m, "2.bias")->data, b2, sizeof b2);
  const float x[6] = { 2, -3, -1, 4, -2, -0.5f };
  const float *z = kdf_model_forward (m, x, 3, FALSE, NULL, 1);
  g_assert_cmpfloat_with_epsilon (z[0], 2 + 10 * (0.25 * -3), 1e-6);  /* −5.5 */
  g_assert_cmpfloat_with_epsilon (z[1], 0.25 * -1 + 10 * 4, 1e-6);    /* 39.75 */
  g_assert_cmpfloat_with_epsilon (z[2], 0.25 * -2 + 10 * (0.25 * -0.5), 1e-6); /* −1.75 */
  g_assert_cmpstr (m->arch, ==, "seq:2-linear2-prelu-linear1");
  check_model ("seq:6-linear5-prelu-linear4-prelu-tap-linear3", NULL, 4);
}

static void
test_model_probe (void)
{
  /* the tap is the input: its gradient buffer exists, the head feeds it */
  check_model ("linear:5-3:nobias", "4-l2", 3);
}

static void
test_model_cnn (void)
{
  check_model ("cnn:2x6x6-c3-p2-c4k3s1p1-f5-d0.3-4", "3", 2);
  check_model ("seq:1x5x5-conv2k3s2p1-relu-flatten-linear6-tap-relu-l2norm-linear3nb", NULL, 3);
}

static void
test_model_specs (void)
{
  /* the C spec API and the string give the same network and names */
  const KdfLayerSpec specs[] = {
    { .kind = KDF_LAYER_CONV2D, .out = 4, .kernel = 3, .padding = 1 },
    { .kind = KDF_LAYER_RELU },
    { .kind = KDF_LAYER_MAXPOOL2D, .kernel = 2 },
    { .kind = KDF_LAYER_FLATTEN },
    { .kind = KDF_LAYER_LINEAR, .out = 8 },
    { .kind = KDF_LAYER_RELU, .tap = TRUE },
    { .kind = KDF_LAYER_LINEAR, .out = 10 },
  };
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) a = kdf_model_new (3, (int64_t[]){ 1, 8, 8 }, specs, G_N_ELEMENTS (specs),
                                          5, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (a->arch, ==, "seq:1x8x8-conv4k3s1p1-relu-max2s2-flatten-linear8-relu-tap-linear10");
  g_autoptr (KdfModel) b = kdf_model_new_from_arch ("cnn:1x8x8-c4-p2-f8-10", 5, &err);
  g_assert_no_error (err);
  g_assert_cmpint (a->n_params, ==, b->n_params);
  g_assert_cmpint (a->n_params, ==, 4 * 9 + 4 + 8 * 64 + 8 + 80 + 10);
  g_assert_cmpint (a->n_features, ==, 8);
  g_assert_cmpuint (a->params->len, ==, b->params->len);
  const char *names[] = { "0.weight", "0.bias", "4.weight", "4.bias", "6.weight", "6.bias" };
  for (guint i = 0; i < a->params->len; i++) {
    g_assert_cmpstr (((KdfParam *) a->params->pdata[i])->name, ==, names[i]);
    g_assert_cmpstr (((KdfParam *) b->params->pdata[i])->name, ==, names[i]);
    /* same seed, same init */
    const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
    g_assert_cmpmem (pa->data, pa->numel * 4, pb->data, pb->numel * 4);
  }
  /* the teacher CNN of METHODS §3 */
  g_autoptr (KdfModel) t = kdf_model_new_from_arch ("cnn:1x28x28-c32-p2-c64-p2-f256-10", 1, &err);
  g_assert_no_error (err);
  g_assert_cmpint (t->n_features, ==, 256);
  g_assert_cmpint (t->n_classes, ==, 10);
  g_assert_nonnull (kdf_model_find_param (t, "7.weight"));
  g_assert_cmpint (kdf_model_find_param (t, "7.weight")->shape[1], ==, 64 * 7 * 7);
  g_assert_nonnull (kdf_model_find_param (t, "9.bias"));
  /* init bounds: U(±1/√fan_in) */
  const KdfParam *w = kdf_model_find_param (t, "7.weight");
  double mx = 0;
  for (int64_t j = 0; j < w->numel; j++)
    mx = fmax (mx, fabs (w->data[j]));
  g_assert_cmpfloat (mx, <=, 1.0 / sqrt (3136.0));
  g_assert_cmpfloat (mx, >, 0.99 / sqrt (3136.0));
  /* probe and MLP taps */
  g_autoptr (KdfModel) mlp = kdf_model_new_from_arch ("mlp:784-512-512-10", 1, &err);
  g_assert_no_error (err);
  g_assert_cmpint (mlp->n_features, ==, 512);
  g_assert_cmpint (mlp->n_params, ==, 784 * 512 + 512 + 512 * 512 + 512 + 5120 + 10);
  g_autoptr (KdfModel) pr = kdf_model_new_from_arch ("linear:256-10:nobias", 1, &err);
  g_assert_no_error (err);
  g_assert_cmpint (pr->n_features, ==, 256);
  g_assert_cmpint (pr->n_params, ==, 2560);
}

static void
test_arch_errors (void)
{
  const char *bad[] = { "mlp:784", "mlp:784-x-10", "cnn:1x28x28-c32-q2-10", "cnn:28x28-c3-10",
                        "cnn:1x28x28-c32-p2", "linear:5-4-3", "seq:4-conv3-linear2",
                        "seq:1x4x4-linear3", "seq:1x4x4-max8-flatten-linear2", "foo:1-2",
                        "mlp:784-10:bias", "cnn:1x4x4-f3-c2-2", "seq:4-linear3-tap-linear2-tap-linear1",
                        "cnn:1x8x8-d1.5-2", "nocolon" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) err = NULL;
    KdfModel *m = kdf_model_new_from_arch (bad[i], 1, &err);
    g_assert_null (m);
    g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
    g_assert_nonnull (strstr (err->message, bad[i]) ? err->message : NULL);
  }
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:4-3-2", 1, &err);
  g_assert_cmpint (kdf_model_add_head (m, "h", "3-x", 1, &err), ==, -1);
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&err);
  g_assert_cmpint (kdf_model_add_head (m, "h", "3", 1, &err), ==, 0);
  g_assert_cmpint (kdf_model_add_head (m, "h", "3", 1, &err), ==, -1);
  g_assert_error (err, KDF_ERROR, KDF_ERROR_PARAM);
}

static void
test_predict (void)
{
  /* predict in batches of 3 equals one forward; strided input gives the same */
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:6-8-3", 4, &err);
  GRand *rng = g_rand_new_with_seed (1);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, 7, 6);
  fill_uniform (kdf_tensor_f32 (x), 42, rng, -1, 1);
  const float *z = kdf_model_forward (m, kdf_tensor_f32 (x), 7, FALSE, NULL, 1);
  g_autofree float *ref = g_memdup2 (z, 7 * 3 * sizeof (float));
  KdfTensor *lo = NULL, *fe = NULL;
  g_assert_true (kdf_model_predict (m, x, 3, 1, &lo, &fe, &err));
  g_assert_no_error (err);
  for (int j = 0; j < 21; j++)
    g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (lo)[j], ref[j], 1e-6);
  g_assert_cmpint (fe->shape[1], ==, 8);
  kdf_tensor_unref (lo);
  kdf_tensor_unref (fe);
  g_autoptr (KdfTensor) xt = kdf_tensor_new_2d (KDF_DTYPE_F32, 6, 7);
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 6; j++)
      kdf_tensor_f32 (xt)[j * 7 + i] = kdf_tensor_f32 (x)[i * 6 + j];
  g_autoptr (KdfTensor) view = kdf_tensor_transpose (xt, 0, 1);
  g_assert_true (kdf_model_predict (m, view, 2, 1, &lo, NULL, &err));
  for (int j = 0; j < 21; j++)
    g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (lo)[j], ref[j], 1e-6);
  kdf_tensor_unref (lo);
  g_autoptr (KdfTensor) bad = kdf_tensor_new_2d (KDF_DTYPE_F32, 7, 5);
  g_assert_false (kdf_model_predict (m, bad, 2, 1, &lo, NULL, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_SHAPE);
  g_rand_free (rng);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nn/layers/linear", test_linear);
  g_test_add_func ("/nn/layers/conv2d", test_conv2d);
  g_test_add_func ("/nn/layers/maxpool2d", test_maxpool);
  g_test_add_func ("/nn/layers/relu", test_relu);
  g_test_add_func ("/nn/layers/dropout", test_dropout);
  g_test_add_func ("/nn/layers/l2norm", test_l2norm);
  g_test_add_func ("/nn/layers/softmax", test_softmax);
  g_test_add_func ("/nn/model/mlp", test_model_mlp);
  g_test_add_func ("/nn/model/prelu", test_prelu);
  g_test_add_func ("/nn/model/probe", test_model_probe);
  g_test_add_func ("/nn/model/cnn", test_model_cnn);
  g_test_add_func ("/nn/model/specs", test_model_specs);
  g_test_add_func ("/nn/model/arch-errors", test_arch_errors);
  g_test_add_func ("/nn/model/predict", test_predict);
  int rc = g_test_run ();
  kdf_blas_finalize ();
  return rc;
}
