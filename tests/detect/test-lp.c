/* Label propagation (engine/detect/lp.c): METHODS' test vector (labels, Z rows, CG
 * against an exact dense solve), the k-NN lists against brute force (self excluded,
 * ties by index, every tile boundary), the graph against its dense definition, seeds,
 * weights and masks, the percentile rule, a two-moons set whose flipped seeds LP
 * repairs, and the working memory (measured against the bound, the bound at N = 60 000). */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

/* ---- METHODS' test vector ---------------------------------------------------- */

#define TV_N 8
static const float tv_f[TV_N * 2] = { 1, .1f, .9f, .2f, 1, 0, .8f, .1f,
                                      .1f, 1, .2f, .9f, 0, 1, .1f, .8f };
static const int32_t tv_seeds[TV_N] = { 0, 0, 1, 0, 1, 1, 1, 1 };

/* L2-normalised in double, as a float copy (for the k-NN) and in double */
static void
tv_normalised (float *xf, double *xd)
{
  for (int i = 0; i < TV_N; i++) {
    double a = tv_f[2 * i], b = tv_f[2 * i + 1], r = sqrt (a * a + b * b);
    xd[2 * i] = a / r;
    xd[2 * i + 1] = b / r;
    xf[2 * i] = (float) (a / r);
    xf[2 * i + 1] = (float) (b / r);
  }
}

/* x := A⁻¹ b by Gaussian elimination with partial pivoting (A n×n, destroyed) */
static void
dense_solve (double *x, double *a, double *b, int n)
{
  for (int col = 0; col < n; col++) {
    int piv = col;
    for (int r = col + 1; r < n; r++)
      if (fabs (a[r * n + col]) > fabs (a[piv * n + col]))
        piv = r;
    for (int q = 0; q < n; q++) {
      double t = a[col * n + q];
      a[col * n + q] = a[piv * n + q];
      a[piv * n + q] = t;
    }
    double t = b[col];
    b[col] = b[piv];
    b[piv] = t;
    for (int r = col + 1; r < n; r++) {
      double f = a[r * n + col] / a[col * n + col];
      for (int q = col; q < n; q++)
        a[r * n + q] -= f * a[col * n + q];
      b[r] -= f * b[col];
    }
  }
  for (int r = n - 1; r >= 0; r--) {
    double s = b[r];
    for (int q = r + 1; q < n; q++)
      s -= a[r * n + q] * x[q];
    x[r] = s / a[r * n + r];
  }
}

static void
csr_dense (double *m, const KdfCsr *w)
{
  memset (m, 0, sizeof (double) * (gsize) (w->n * w->n));
  for (int64_t i = 0; i < w->n; i++)
    for (int64_t q = w->row_ptr[i]; q < w->row_ptr[i + 1]; q++)
      m[i * w->n + w->col[q]] = w->val[q];
}

static void
test_vector (void)
{
  float xf[TV_N * 2];
  double xd[TV_N * 2];
  tv_normalised (xf, xd);
  const int k = 3;
  int32_t idx[TV_N * 3];
  float fs[TV_N * 3];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_knn_inner_product (idx, fs, xf, TV_N, 2, 2, k, NULL, NULL, &error));
  g_assert_no_error (error);
  /* the neighbours of the reference (numpy, stable argsort of −S, self at −∞) */
  const int32_t want_idx[TV_N * 3] = { 3, 2, 1, 3, 0, 2, 0, 3, 1, 0, 1, 2,
                                       7, 6, 5, 7, 4, 6, 4, 7, 5, 4, 5, 6 };
  for (int e = 0; e < TV_N * 3; e++)
    g_assert_cmpint (idx[e], ==, want_idx[e]);

  double sim[TV_N * 3];
  for (int i = 0; i < TV_N; i++)
    for (int m = 0; m < k; m++) {
      int j = idx[i * k + m];
      sim[i * k + m] = xd[2 * i] * xd[2 * j] + xd[2 * i + 1] * xd[2 * j + 1];
    }
  KdfCsr wn = { 0 };
  double deg[TV_N];
  g_assert_true (kdf_lp_graph (&wn, deg, idx, sim, TV_N, k, 3.0, &error));
  g_assert_no_error (error);

  /* the graph against its dense definition: A_ij = s^3, W = A + Aᵀ, Wn = D^-½ W D^-½ */
  double a[TV_N * TV_N] = { 0 }, w[TV_N * TV_N], dn[TV_N * TV_N];
  for (int i = 0; i < TV_N; i++)
    for (int m = 0; m < k; m++)
      a[i * TV_N + idx[i * k + m]] = pow (sim[i * k + m], 3.0);
  double d[TV_N] = { 0 };
  for (int i = 0; i < TV_N; i++)
    for (int j = 0; j < TV_N; j++) {
      w[i * TV_N + j] = i == j ? 0.0 : a[i * TV_N + j] + a[j * TV_N + i];
      d[i] += w[i * TV_N + j];
    }
  csr_dense (dn, &wn);
  for (int i = 0; i < TV_N; i++) {
    g_assert_cmpfloat_with_epsilon (deg[i], d[i], 1e-14);
    for (int j = 0; j < TV_N; j++)
      g_assert_cmpfloat_with_epsilon (dn[i * TV_N + j], w[i * TV_N + j] / sqrt (d[i] * d[j]),
                                      1e-15);
  }

  /* Y: one-hot seeds, columns to sum 1 (class 0: rows 0 1 3; class 1: rows 2 4 5 6 7) */
  double y[TV_N * 2] = { 0 }, z[TV_N * 2];
  for (int i = 0; i < TV_N; i++)
    y[i * 2 + tv_seeds[i]] = tv_seeds[i] == 0 ? 1.0 / 3 : 1.0 / 5;
  KdfLpSolveStats st;
  g_assert_true (kdf_lp_solve (z, &wn, y, 2, 0.99, KDF_LP_SOLVER_CG, 100, 0.0, 1, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpint (st.iterations, <=, 100);
  g_assert_cmpfloat (st.residual, <, 1e-13);
  /* METHODS: Z row 0 = (25.259160, 4.961106), row 4 = (0, 20.116602) */
  g_assert_cmpfloat_with_epsilon (z[0], 25.259160, 5e-7);
  g_assert_cmpfloat_with_epsilon (z[1], 4.961106, 5e-7);
  g_assert_cmpfloat_with_epsilon (z[8], 0.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (z[9], 20.116602, 5e-7);
  /* CG against the exact dense solve of (I − αWn) z = y, to 1e-12 */
  for (int cls = 0; cls < 2; cls++) {
    double m[TV_N * TV_N], b[TV_N], ex[TV_N];
    for (int i = 0; i < TV_N; i++) {
      for (int j = 0; j < TV_N; j++)
        m[i * TV_N + j] = (i == j) - 0.99 * dn[i * TV_N + j];
      b[i] = y[i * 2 + cls];
    }
    dense_solve (ex, m, b, TV_N);
    for (int i = 0; i < TV_N; i++)
      g_assert_cmpfloat_with_epsilon (z[i * 2 + cls], ex[i], 1e-12);
  }
  /* Zhou's iteration tends to the same Z (error ≤ 0.99^t · ‖Z‖) */
  double zi[TV_N * 2];
  g_assert_true (kdf_lp_solve (zi, &wn, y, 2, 0.99, KDF_LP_SOLVER_ITERATE, 4000, 0.0, 1, &st,
                               &error));
  for (int e = 0; e < TV_N * 2; e++)
    g_assert_cmpfloat_with_epsilon (zi[e], z[e], 1e-9);
  g_assert_cmpint (st.iterations, ==, 4000);
  /* … and after 20 steps is still far from it */
  g_assert_true (kdf_lp_solve (zi, &wn, y, 2, 0.99, KDF_LP_SOLVER_ITERATE, 20, 0.0, 1, &st,
                               &error));
  g_assert_cmpfloat (fabs (zi[0] - z[0]), >, 1.0);
  kdf_csr_clear (&wn);

  /* the whole node kernel: labels, soft = Z row / sum, confidence = max softmax(Z_i) */
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = 3;
  opt.tol = 0.0;
  opt.iters = 100;
  int32_t lab[TV_N];
  float soft[TV_N * 2], conf[TV_N];
  int32_t nb[TV_N * 3];
  KdfLpInput in = { .x = tv_f, .n = TV_N, .d = 2, .c = 2, .seeds = tv_seeds };
  KdfLpResult res;
  g_assert_true (kdf_label_propagation (lab, soft, conf, nb, &in, &opt, &res, &error));
  g_assert_no_error (error);
  const int32_t want[TV_N] = { 0, 0, 0, 0, 1, 1, 1, 1 };
  for (int i = 0; i < TV_N; i++)
    g_assert_cmpint (lab[i], ==, want[i]);
  for (int e = 0; e < TV_N * 3; e++)
    g_assert_cmpint (nb[e], ==, want_idx[e]);
  g_assert_cmpint (res.n_changed, ==, 1);
  g_assert_cmpint (res.n_kept, ==, 0);
  g_assert_cmpint (res.empty_classes, ==, 0);
  g_assert_cmpfloat_with_epsilon (soft[0], 25.259160 / (25.259160 + 4.961106), 1e-6);
  g_assert_cmpfloat_with_epsilon (soft[1], 4.961106 / (25.259160 + 4.961106), 1e-6);
  g_assert_cmpfloat_with_epsilon (soft[8], 0.0, 1e-7);
  g_assert_cmpfloat_with_epsilon (soft[9], 1.0, 1e-7);
  g_assert_cmpfloat_with_epsilon (conf[0], 1.0 / (1.0 + exp (4.961106 - 25.259160)), 1e-7);
  for (int i = 0; i < TV_N; i++)
    g_assert_cmpfloat_with_epsilon (soft[2 * i] + soft[2 * i + 1], 1.0, 1e-6);
}

/* ---- seeds, weights, masks, the percentile rule ------------------------------------ */

static void
run_lp (int32_t *lab, float *soft, float *conf, const KdfLpInput *in, const KdfLpOptions *opt,
        KdfLpResult *res)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_label_propagation (lab, soft, conf, NULL, in, opt, res, &error));
  g_assert_no_error (error);
}

static void
test_seeds (void)
{
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = 3;
  opt.tol = 0.0;
  opt.iters = 100;
  int32_t lab[TV_N];
  float soft[TV_N * 3], conf[TV_N];
  KdfLpResult res;
  KdfLpInput in = { .x = tv_f, .n = TV_N, .d = 2, .c = 2, .seeds = tv_seeds };

  /* the two clusters share no edge: with row 2's seed weighted 0 (or masked out), class
   * 1 gets no mass on rows 0..3 at all — the weight of row 2 is row 2's, not another's */
  const float w[TV_N] = { 1, 1, 0, 1, 1, 1, 1, 1 };
  in.weights = w;
  run_lp (lab, soft, conf, &in, &opt, &res);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (soft[2 * i + 1], ==, 0.0f);
  const float w2[TV_N] = { 1, 1, 1, 1, 1, 1, 0, 1 };
  in.weights = w2; /* row 6 weighs nothing: the first cluster still sees class 1 */
  run_lp (lab, soft, conf, &in, &opt, &res);
  g_assert_cmpfloat (soft[1], >, 0.1f);
  in.weights = NULL;
  const uint8_t sm[TV_N] = { 1, 1, 0, 1, 1, 1, 1, 1 };
  in.seed_mask = sm;
  run_lp (lab, soft, conf, &in, &opt, &res);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (soft[2 * i + 1], ==, 0.0f);
  g_assert_cmpint (lab[2], ==, 0); /* the masked row still gets a label */
  in.seed_mask = NULL;

  /* keep_mask: row 2 keeps its (wrong) seed */
  const uint8_t km[TV_N] = { 0, 0, 1, 0, 0, 0, 0, 0 };
  in.keep_mask = km;
  run_lp (lab, soft, conf, &in, &opt, &res);
  g_assert_cmpint (lab[2], ==, 1);
  g_assert_cmpint (res.n_kept, ==, 1);
  g_assert_cmpint (res.n_changed, ==, 0);
  in.keep_mask = NULL;

  /* the percentile rule: Z_i0 − Z_i1 is smallest on row 2 (19.656), then row 6 (19.877),
   * so the 25th percentile (position 1.75 of 8) lets rows 2 and 6 keep their seeds */
  opt.percentile = 25.0;
  run_lp (lab, soft, conf, &in, &opt, &res);
  const int32_t want25[TV_N] = { 0, 0, 1, 0, 1, 1, 1, 1 };
  for (int i = 0; i < TV_N; i++)
    g_assert_cmpint (lab[i], ==, want25[i]);
  g_assert_cmpint (res.n_kept, ==, 2);
  /* 1/(1 + e^−19.877) < θ < 1/(1 + e^−19.888), θ = numpy's linear percentile */
  g_assert_cmpfloat (res.conf_threshold, >, 1.0 / (1.0 + exp (-19.8768)));
  g_assert_cmpfloat (res.conf_threshold, <, 1.0 / (1.0 + exp (-19.8886)));
  /* 12.5: position 0.875 — only row 2 lies below */
  opt.percentile = 12.5;
  run_lp (lab, soft, conf, &in, &opt, &res);
  g_assert_cmpint (res.n_kept, ==, 1);
  g_assert_cmpint (lab[2], ==, 1);
  /* 100: everyone below the maximum keeps its seed; the most confident row does not */
  opt.percentile = 100.0;
  run_lp (lab, soft, conf, &in, &opt, &res);
  g_assert_cmpint (res.n_kept, ==, TV_N - 1);
  opt.percentile = 0.0;

  /* a class without seeds: a zero column, no NaN, nobody labelled 2 */
  in.c = 3;
  run_lp (lab, soft, conf, &in, &opt, &res);
  g_assert_cmpint (res.empty_classes, ==, 1);
  for (int i = 0; i < TV_N; i++) {
    g_assert_cmpfloat (soft[3 * i + 2], ==, 0.0f);
    g_assert_true (isfinite (soft[3 * i]) && isfinite (conf[i]));
    g_assert_cmpint (lab[i], !=, 2);
  }
  in.c = 2;

  /* soft seeds: the rows' own distributions, weighted the same way */
  const float sp[TV_N * 2] = { 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1 };
  float soft2[TV_N * 2];
  run_lp (lab, soft, conf, &in, &opt, &res);
  in.seed_probs = sp;
  run_lp (lab, soft2, conf, &in, &opt, &res);
  for (int e = 0; e < TV_N * 2; e++)
    g_assert_cmpfloat_with_epsilon (soft2[e], soft[e], 1e-7);
  in.seed_probs = NULL;

  /* a row with no edge (all its similarities ≤ 0) and no seed mass keeps its seed */
  const float iso[5 * 2] = { 1, 0, .9f, .1f, .8f, .2f, .7f, .3f, -1, 0 };
  const int32_t iso_s[5] = { 0, 0, 0, 1, 1 };
  KdfLpInput in2 = { .x = iso, .n = 5, .d = 2, .c = 2, .seeds = iso_s };
  const uint8_t iso_m[5] = { 1, 1, 1, 1, 0 };
  in2.seed_mask = iso_m;
  opt.k = 2;
  int32_t lab5[5];
  float soft5[10], conf5[5];
  run_lp (lab5, soft5, conf5, &in2, &opt, &res);
  g_assert_cmpint (lab5[4], ==, 1);
  g_assert_cmpfloat_with_epsilon (soft5[8], 0.5, 1e-7);
  g_assert_cmpfloat_with_epsilon (conf5[4], 0.5, 1e-7);
}

static void
test_bad (void)
{
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = 3;
  int32_t lab[TV_N];
  KdfLpInput in = { .x = tv_f, .n = TV_N, .d = 2, .c = 2, .seeds = tv_seeds };
  struct {
    const char *what;
    int k;
    double alpha, p, gamma;
    GQuark domain;
    int code;
  } cases[] = {
    { "k = N", TV_N, 0.99, 0, 3, KDF_ERROR, KDF_ERROR_PARAM },
    { "k = 0", 0, 0.99, 0, 3, KDF_ERROR, KDF_ERROR_PARAM },
    { "alpha = 1", 3, 1.0, 0, 3, KDF_ERROR, KDF_ERROR_PARAM },
    { "percentile 101", 3, 0.99, 101, 3, KDF_ERROR, KDF_ERROR_PARAM },
    { "gamma 0", 3, 0.99, 0, 0, KDF_ERROR, KDF_ERROR_PARAM },
  };
  for (gsize e = 0; e < G_N_ELEMENTS (cases); e++) {
    g_autoptr (GError) error = NULL;
    opt.k = cases[e].k;
    opt.alpha = cases[e].alpha;
    opt.percentile = cases[e].p;
    opt.gamma = cases[e].gamma;
    g_assert_false (kdf_label_propagation (lab, NULL, NULL, NULL, &in, &opt, NULL, &error));
    g_assert_error (error, cases[e].domain, cases[e].code);
    g_test_message ("%s: %s", cases[e].what, error->message);
  }
  kdf_lp_options_init (&opt);
  opt.k = 3;
  float bad[TV_N * 2];
  memcpy (bad, tv_f, sizeof bad);
  bad[5] = NAN;
  in.x = bad;
  g_autoptr (GError) e1 = NULL;
  g_assert_false (kdf_label_propagation (lab, NULL, NULL, NULL, &in, &opt, NULL, &e1));
  g_assert_error (e1, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (e1->message, "row 2, column 1"));
  in.x = tv_f;
  const int32_t s2[TV_N] = { 0, 0, 1, 0, 1, 1, 2, 1 };
  in.seeds = s2;
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_label_propagation (lab, NULL, NULL, NULL, &in, &opt, NULL, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (e2->message, "row 6 is 2, outside [0, 2)"));
  in.seeds = tv_seeds;
  const float wneg[TV_N] = { 1, 1, 1, -1, 1, 1, 1, 1 };
  in.weights = wneg;
  g_autoptr (GError) e3 = NULL;
  g_assert_false (kdf_label_propagation (lab, NULL, NULL, NULL, &in, &opt, NULL, &e3));
  g_assert_error (e3, KDF_ERROR, KDF_ERROR_VALUE);
  in.weights = NULL;
  /* a graph from lists naming the row itself is refused */
  const int32_t self_idx[2] = { 0, 0 };
  const double s[2] = { 1, 1 };
  KdfCsr wn = { 0 };
  g_autoptr (GError) e4 = NULL;
  g_assert_false (kdf_lp_graph (&wn, NULL, self_idx, s, 2, 1, 3.0, &e4));
  g_assert_error (e4, KDF_ERROR, KDF_ERROR_VALUE);
  kdf_csr_clear (&wn);
}

/* ---- k-NN against brute force ---------------------------------------------------- */

/* the k best other rows by (x_i·x_j desc, j asc), the products in double */
static void
brute_knn (int32_t *idx, double *sim, const float *x, int64_t n, int64_t d, int k)
{
  double *s = g_new (double, n);
  int32_t *o = g_new (int32_t, n);
  for (int64_t i = 0; i < n; i++) {
    int m = 0;
    for (int64_t j = 0; j < n; j++) {
      if (j == i)
        continue;
      double v = 0.0;
      for (int64_t q = 0; q < d; q++)
        v += (double) x[i * d + q] * x[j * d + q];
      /* insertion into the sorted candidates */
      int p = m;
      while (p > 0 && (s[p - 1] < v))
        p--;
      memmove (s + p + 1, s + p, sizeof *s * (gsize) (m - p));
      memmove (o + p + 1, o + p, sizeof *o * (gsize) (m - p));
      s[p] = v;
      o[p] = (int32_t) j;
      m++;
    }
    for (int q = 0; q < k; q++) {
      idx[i * k + q] = o[q];
      sim[i * k + q] = s[q];
    }
  }
  g_free (s);
  g_free (o);
}

/* small integer features: every product is exact in float, so ties are real ties and
 * the lists must match brute force exactly, index for index */
static void
test_knn_ties (void)
{
  GRand *rng = g_rand_new_with_seed (11);
  const int64_t sizes[] = { 2, 3, 5, 7, 8, 9, 16, 17, 31, 33, 64, 65 };
  const int tiles[] = { 1, 2, 3, 8, 16, 1024 };
  int checked = 0;
  for (gsize a = 0; a < G_N_ELEMENTS (sizes); a++) {
    const int64_t n = sizes[a], d = 3;
    float *x = g_new (float, n * d);
    for (int64_t e = 0; e < n * d; e++)
      x[e] = (float) g_rand_int_range (rng, -2, 3);
    const int ks[] = { 1, 3, (int) (n - 1) };
    for (gsize b = 0; b < G_N_ELEMENTS (ks); b++) {
      const int k = ks[b];
      if (k > n - 1)
        continue;
      int32_t *want = g_new (int32_t, n * k), *got = g_new (int32_t, n * k);
      double *wsim = g_new (double, n * k);
      float *gsim = g_new (float, n * k);
      brute_knn (want, wsim, x, n, d, k);
      for (gsize t = 0; t < G_N_ELEMENTS (tiles); t++)
        for (int threads = 1; threads <= 2; threads++) {
          KdfKnnOptions opt;
          kdf_knn_options_init (&opt);
          opt.tile = tiles[t];
          opt.threads = threads;
          g_autoptr (GError) error = NULL;
          g_assert_true (kdf_knn_inner_product (got, gsim, x, n, d, d, k, &opt, NULL, &error));
          g_assert_no_error (error);
          for (int64_t e = 0; e < n * k; e++) {
            if (got[e] != want[e])
              g_error ("n %" G_GINT64_FORMAT " k %d tile %d threads %d: row %" G_GINT64_FORMAT
                       " neighbour %d is %d, brute force %d", (gint64) n, k, tiles[t], threads,
                       (gint64) (e / k), (int) (e % k), got[e], want[e]);
            g_assert_cmpfloat (gsim[e], ==, (float) wsim[e]);
            g_assert_cmpint (got[e], !=, e / k);
          }
          checked++;
        }
      g_free (want);
      g_free (got);
      g_free (wsim);
      g_free (gsim);
    }
    g_free (x);
  }
  g_test_message ("%d configurations", checked);
  g_rand_free (rng);
}

/* duplicates: row i and a copy under another index are each other's best neighbour,
 * never i itself (dropping the first hit, as the released code does, would drop the
 * copy or keep i) */
static void
test_knn_duplicates (void)
{
  const float x[4 * 2] = { 1, 0, 1, 0, 0, 1, .6f, .8f };
  int32_t idx[4 * 2];
  float s[4 * 2];
  g_autoptr (GError) error = NULL;
  KdfKnnOptions opt;
  kdf_knn_options_init (&opt);
  opt.tile = 1;
  g_assert_true (kdf_knn_inner_product (idx, s, x, 4, 2, 2, 2, &opt, NULL, &error));
  g_assert_cmpint (idx[0], ==, 1);
  g_assert_cmpint (idx[2], ==, 0);
  g_assert_cmpfloat (s[0], ==, 1.0f);
  g_assert_cmpint (idx[1], ==, 3);
  /* unnormalised: row 0 (1,0) is less similar to itself (1) than to (3,0) (3) */
  const float u[3 * 2] = { 1, 0, 3, 0, 0, 1 };
  g_assert_true (kdf_knn_inner_product (idx, s, u, 3, 2, 2, 1, NULL, NULL, &error));
  g_assert_cmpint (idx[0], ==, 1);
  g_assert_cmpint (idx[1], ==, 1 - 1); /* row 1's best other is row 0 (3) */
  g_assert_cmpint (idx[2], ==, 0);     /* row 2: 0 and 0, the tie to the lower index */
}

/* random floats: the GEMM's float sums differ from sequential ones by rounding, so a
 * neighbour may swap only with a near-tie; every similarity is the true one */
/* given neighbour lists (a cached graph): the same result as the search, the search
 * skipped (its time is not spent), and lists naming the row itself or a row out of range
 * refused */
static void
test_given_knn (void)
{
  GRand *rng = g_rand_new_with_seed (11);
  const int64_t n = 600, d = 16;
  const int c = 3;
  float *x = g_new (float, n * d);
  int32_t *seeds = g_new (int32_t, n);
  for (int64_t i = 0; i < n; i++) {
    seeds[i] = g_rand_int_range (rng, 0, c);
    for (int64_t q = 0; q < d; q++)
      x[i * d + q] = (float) g_rand_double_range (rng, -1, 1) + (q == seeds[i] ? 1.5f : 0.0f);
  }
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = 8;
  opt.percentile = 10;
  KdfLpInput in = { .x = x, .n = n, .d = d, .c = c, .seeds = seeds };
  int32_t *lab1 = g_new (int32_t, n), *lab2 = g_new (int32_t, n);
  int32_t *nb1 = g_new (int32_t, n * opt.k), *nb2 = g_new (int32_t, n * opt.k);
  float *soft1 = g_new (float, n * c), *soft2 = g_new (float, n * c);
  KdfLpResult r1, r2;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_label_propagation (lab1, soft1, NULL, nb1, &in, &opt, &r1, &error));
  in.knn = nb1;
  g_assert_true (kdf_label_propagation (lab2, soft2, NULL, nb2, &in, &opt, &r2, &error));
  g_assert_cmpmem (nb1, n * opt.k * sizeof *nb1, nb2, n * opt.k * sizeof *nb2);
  g_assert_cmpmem (lab1, n * sizeof *lab1, lab2, n * sizeof *lab2);
  g_assert_cmpmem (soft1, n * c * sizeof *soft1, soft2, n * c * sizeof *soft2);
  g_assert_cmpint (r1.n_changed, ==, r2.n_changed);
  g_assert_cmpint (r1.n_changed, >, 0);
  /* neighbours of other features give another result: the lists are used, not ignored */
  int32_t *shifted = g_new (int32_t, n * opt.k);
  for (int64_t e = 0; e < n * opt.k; e++)
    shifted[e] = (int32_t) ((nb1[e] + 7 * (e / opt.k + 1)) % n);
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < opt.k; m++)
      if (shifted[i * opt.k + m] == i)
        shifted[i * opt.k + m] = (int32_t) ((i + 1) % n);
  in.knn = shifted;
  g_assert_true (kdf_label_propagation (lab2, soft2, NULL, NULL, &in, &opt, &r2, &error));
  g_assert_true (memcmp (soft1, soft2, n * c * sizeof *soft1) != 0);
  /* bad lists */
  const int32_t bad_val[2] = { 0, (int32_t) n };
  for (int b = 0; b < 2; b++) {
    memcpy (shifted, nb1, n * opt.k * sizeof *nb1);
    shifted[5 * opt.k + 2] = b == 0 ? 5 : bad_val[b];
    in.knn = shifted;
    g_autoptr (GError) e = NULL;
    g_assert_false (kdf_label_propagation (lab2, NULL, NULL, NULL, &in, &opt, NULL, &e));
    g_assert_error (e, KDF_ERROR, KDF_ERROR_VALUE);
    g_assert_nonnull (strstr (e->message, "row 5 lists"));
  }
  g_free (shifted);
  g_free (x);
  g_free (seeds);
  g_free (lab1);
  g_free (lab2);
  g_free (nb1);
  g_free (nb2);
  g_free (soft1);
  g_free (soft2);
  g_rand_free (rng);
}

static void
test_knn_random (void)
{
  GRand *rng = g_rand_new_with_seed (5);
  const int64_t n = 700, d = 37;
  const int k = 10;
  float *x = g_new (float, n * d);
  for (int64_t e = 0; e < n * d; e++)
    x[e] = (float) g_rand_double_range (rng, -1, 1);
  int32_t *want = g_new (int32_t, n * k), *got = g_new (int32_t, n * k);
  double *wsim = g_new (double, n * k);
  float *gsim = g_new (float, n * k);
  brute_knn (want, wsim, x, n, d, k);
  KdfKnnOptions opt;
  kdf_knn_options_init (&opt);
  opt.tile = 96;
  opt.threads = 2;
  gsize peak = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_knn_inner_product (got, gsim, x, n, d, d, k, &opt, &peak, &error));
  int64_t same = 0;
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < k; m++) {
      const int64_t j = got[i * k + m];
      g_assert_cmpint (j, !=, i);
      double v = 0.0;
      for (int64_t q = 0; q < d; q++)
        v += (double) x[i * d + q] * x[j * d + q];
      g_assert_cmpfloat (fabs (v - gsim[i * k + m]), <, 1e-5);
      g_assert_cmpfloat (fabs (v - wsim[i * k + m]), <, 1e-5); /* the m-th best value */
      same += got[i * k + m] == want[i * k + m];
    }
  g_assert_cmpfloat ((double) same / (double) (n * k), >, 0.999);
  /* the working memory: thresholds, counts and one tile (sims are the caller's) */
  g_assert_cmpuint (peak, ==, (gsize) (n * 4 + n * 4 + 96 * 96 * 4));
  g_free (x);
  g_free (want);
  g_free (got);
  g_free (wsim);
  g_free (gsim);
  g_rand_free (rng);
}

static void
cancel_at (double fraction, gpointer data)
{
  GCancellable *c = data;
  if (fraction > 0.3)
    g_cancellable_cancel (c);
}

static void
test_knn_cancel (void)
{
  const int64_t n = 64, d = 2;
  float x[64 * 2];
  for (int e = 0; e < 128; e++)
    x[e] = (float) (e % 7);
  int32_t idx[64 * 2];
  KdfKnnOptions opt;
  kdf_knn_options_init (&opt);
  opt.tile = 8;
  opt.cancellable = g_cancellable_new ();
  opt.progress = cancel_at;
  opt.progress_data = opt.cancellable;
  g_autoptr (GError) error = NULL;
  g_assert_false (kdf_knn_inner_product (idx, NULL, x, n, d, d, 2, &opt, NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_CANCELLED);
  g_object_unref (opt.cancellable);
}

/* ---- two moons: LP repairs 30 % flipped seeds ------------------------------------- */

static double
gauss (GRand *r)
{
  double u = g_rand_double (r), v = g_rand_double (r);
  return sqrt (-2.0 * log (1.0 - u)) * cos (2.0 * G_PI * v);
}

static void
test_two_moons (void)
{
  /* make_moons-like: upper moon (cos t, sin t), lower (1 − cos t, ½ − sin t), noise
   * σ = 0.1; features: Gaussian bumps (σ = 0.25) on a 21×13 grid of anchors over
   * [−1.5, 2.5]×[−1, 1.5], so that ⟨φ(a), φ(b)⟩ of the normalised features falls
   * with the distance from a to b */
  const int64_t n = 2000, gx = 21, gy = 13, d = gx * gy;
  GRand *rng = g_rand_new_with_seed (2026);
  float *f = g_new (float, n * d);
  int32_t *truth = g_new (int32_t, n), *seeds = g_new (int32_t, n), *lab = g_new (int32_t, n);
  int64_t flipped = 0;
  for (int64_t i = 0; i < n; i++) {
    const double t = g_rand_double_range (rng, 0, G_PI);
    truth[i] = (int32_t) (i % 2);
    double px = truth[i] ? 1 - cos (t) : cos (t), py = truth[i] ? 0.5 - sin (t) : sin (t);
    px += 0.1 * gauss (rng);
    py += 0.1 * gauss (rng);
    for (int64_t a = 0; a < gx; a++)
      for (int64_t b = 0; b < gy; b++) {
        const double ax = -1.5 + 4.0 * a / (gx - 1), ay = -1.0 + 2.5 * b / (gy - 1);
        const double r2 = (px - ax) * (px - ax) + (py - ay) * (py - ay);
        f[i * d + a * gy + b] = (float) exp (-r2 / (2 * 0.25 * 0.25));
      }
    const gboolean flip = g_rand_double (rng) < 0.3;
    seeds[i] = flip ? 1 - truth[i] : truth[i];
    flipped += flip;
  }
  g_test_message ("%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " seeds flipped", (gint64) flipped,
                  (gint64) n);
  g_assert_cmpfloat ((double) flipped / n, >, 0.27);
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = 10;
  opt.knn.tile = 300; /* tiles that do not divide N */
  KdfLpInput in = { .x = f, .n = n, .d = d, .c = 2, .seeds = seeds };
  KdfLpResult res;
  float *soft = g_new (float, n * 2);
  run_lp (lab, soft, NULL, &in, &opt, &res);
  /* every soft label a distribution */
  for (int64_t i = 0; i < n; i++) {
    g_assert_cmpfloat (soft[2 * i], >=, 0.0f);
    g_assert_cmpfloat (soft[2 * i + 1], >=, 0.0f);
    g_assert_cmpfloat_with_epsilon (soft[2 * i] + soft[2 * i + 1], 1.0, 1e-6);
  }
  g_free (soft);
  int64_t right = 0, seeds_right = 0;
  for (int64_t i = 0; i < n; i++) {
    right += lab[i] == truth[i];
    seeds_right += seeds[i] == truth[i];
  }
  const double acc = (double) right / n;
  g_test_message ("seed accuracy %.4f, after LP %.4f (CG %d iterations, residual %.2g)",
                  (double) seeds_right / n, acc, res.solve.iterations, res.solve.residual);
  g_assert_cmpfloat (acc, >=, 0.97);
  g_assert_cmpint (res.solve.iterations, ==, 20);
  g_assert_cmpint (res.n_changed, >, flipped * 9 / 10);

  /* the same with 2 threads, another tile and the plain iteration for many steps:
   * the labels do not depend on threads or tiles */
  int32_t *lab2 = g_new (int32_t, n);
  opt.knn.threads = 2;
  opt.knn.tile = 4096;
  run_lp (lab2, NULL, NULL, &in, &opt, &res);
  for (int64_t i = 0; i < n; i++)
    g_assert_cmpint (lab2[i], ==, lab[i]);
  g_free (lab2);
  g_free (f);
  g_free (truth);
  g_free (seeds);
  g_free (lab);
  g_rand_free (rng);
}

/* ---- working memory ------------------------------------------------------------------ */

static void
test_memory (void)
{
  /* the measured peak never exceeds the bound, and is most of it (the bound is not a
   * loose guess) */
  GRand *rng = g_rand_new_with_seed (3);
  const int64_t n = 3000, d = 24;
  float *x = g_new (float, n * d);
  int32_t *seeds = g_new (int32_t, n), *lab = g_new (int32_t, n);
  for (int64_t e = 0; e < n * d; e++)
    x[e] = (float) g_rand_double_range (rng, -1, 1);
  for (int64_t i = 0; i < n; i++)
    seeds[i] = g_rand_int_range (rng, 0, 10);
  KdfLpInput in = { .x = x, .n = n, .d = d, .c = 10, .seeds = seeds };
  const struct {
    int k, tile, threads;
    gboolean normalize;
  } cfg[] = { { 20, 1024, 1, TRUE }, { 5, 100, 2, FALSE }, { 40, 3000, 2, TRUE } };
  for (gsize e = 0; e < G_N_ELEMENTS (cfg); e++) {
    KdfLpOptions opt;
    kdf_lp_options_init (&opt);
    opt.k = cfg[e].k;
    opt.knn.tile = cfg[e].tile;
    opt.knn.threads = cfg[e].threads;
    opt.normalize = cfg[e].normalize;
    opt.percentile = 5;
    KdfLpResult res;
    run_lp (lab, NULL, NULL, &in, &opt, &res);
    const gsize bound = kdf_lp_workspace_bytes (n, d, 10, &opt);
    g_test_message ("k %d tile %d: peak %zu bytes, bound %zu", cfg[e].k, cfg[e].tile,
                    res.peak_bytes, bound);
    g_assert_cmpuint (res.peak_bytes, <=, bound);
    g_assert_cmpuint (res.peak_bytes, >=, bound * 6 / 10);
  }
  /* at N = 60 000 (256 features, 10 classes, k = 20, 2 threads) the bound is under
   * 1 GB, and it grows linearly in N: no N² term */
  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.knn.threads = 2;
  const gsize b60 = kdf_lp_workspace_bytes (60000, 256, 10, &opt);
  const gsize b120 = kdf_lp_workspace_bytes (120000, 256, 10, &opt);
  g_test_message ("bound at N = 60 000: %.1f MB", (double) b60 / 1e6);
  g_assert_cmpuint (b60, <, (gsize) 1 << 30);
  g_assert_cmpuint (b120, <=, 2 * b60);
  g_free (x);
  g_free (seeds);
  g_free (lab);
  g_rand_free (rng);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/lp/test-vector", test_vector);
  g_test_add_func ("/detect/lp/seeds-weights-masks", test_seeds);
  g_test_add_func ("/detect/lp/bad-input", test_bad);
  g_test_add_func ("/detect/lp/knn-ties", test_knn_ties);
  g_test_add_func ("/detect/lp/knn-duplicates", test_knn_duplicates);
  g_test_add_func ("/detect/lp/knn-random", test_knn_random);
  g_test_add_func ("/detect/lp/given-knn", test_given_knn);
  g_test_add_func ("/detect/lp/knn-cancel", test_knn_cancel);
  g_test_add_func ("/detect/lp/two-moons", test_two_moons);
  g_test_add_func ("/detect/lp/memory", test_memory);
  return g_test_run ();
}
