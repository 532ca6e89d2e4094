/* uncertainty_split's kernels (engine/detect/uncertainty.c): METHODS' three evidential
 * loss vectors, the 1-D EM against scikit-learn's GaussianMixture from the same
 * starting point, EM's non-decreasing likelihood, and the three-way split recovering
 * known clusters. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

static void
test_evidential (void)
{
  /* METHODS §1: z = (5, 0, −1): y = 0 → 0.138889, y = 1 → 1.388889;
   * z = (0.2, 0.1, 0), y = 2 → 0.883721 */
  const float z[9] = { 5, 0, -1, 5, 0, -1, 0.2f, 0.1f, 0 };
  const int32_t y[3] = { 0, 1, 2 };
  float l[3];
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_evidential_loss (l, z, y, 3, 3, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (l[0], 0.138889, 5e-7);
  g_assert_cmpfloat_with_epsilon (l[1], 1.388889, 5e-7);
  g_assert_cmpfloat_with_epsilon (l[2], 0.883721, 5e-7);
  /* bad input: a label out of range, a NaN logit */
  const int32_t bad_y[3] = { 0, 3, 2 };
  g_assert_false (kdf_evidential_loss (l, z, bad_y, 3, 3, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
  g_clear_error (&error);
  float zn[9];
  memcpy (zn, z, sizeof z);
  zn[4] = NAN;
  g_assert_false (kdf_evidential_loss (l, zn, y, 3, 3, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
}

/* three clusters: 600 near 0.1, 200 near 0.5, 200 near 0.95 (f32) */
static float *
clusters (int64_t n)
{
  float *x = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    x[i] = i < 600 ? 0.1 + 0.05 * sin (i) : i < 800 ? 0.5 + 0.08 * cos (i) : 0.95 + 0.03 * sin (3 * i);
  return x;
}

static void
test_em_reference (void)
{
  /* scikit-learn 1.2.1 (Debian, /usr/bin/python3), the same data as float64:
   * GaussianMixture(3, tol=0, max_iter=M, reg_covar=5e-4, weights_init=[1/3]*3,
   * means_init=[[.2],[.5],[.8]], precisions_init=[[[100]]]*3).fit(x) */
  static const struct {
    int iters;
    double w[3], m[3], v[3], ll;
  } ref[2] = {
    { 1,
      { 0.60568955289365, 0.188070832687027, 0.206239614419323 },
      { 0.103625692852686, 0.499197449519402, 0.938118700438583 },
      { 0.00292374182879263, 0.00405465084498779, 0.00544832121604452 },
      -0.299485483753475 },
    { 30,
      { 0.599999996920882, 0.200000003080693, 0.199999999998425 },
      { 0.100150625019491, 0.500200918373554, 0.949980793595519 },
      { 0.00175003228289703, 0.00370905478061618, 0.000949318202096171 },
      0.942764373191769 },
  };
  g_autofree float *x = clusters (1000);
  const double w0[3] = { 1, 1, 1 }, m0[3] = { 0.2, 0.5, 0.8 }, v0[3] = { 0.01, 0.01, 0.01 };
  for (int r = 0; r < 2; r++) {
    KdfGmm1dOptions opt;
    kdf_gmm1d_options_init (&opt);
    opt.components = 3;
    opt.max_iter = ref[r].iters;
    opt.tol = 0;
    opt.reg_var = 5e-4;
    opt.init_weights = w0;
    opt.init_means = m0;
    opt.init_vars = v0;
    double w[3], m[3], v[3];
    KdfGmm1dResult res;
    g_autoptr (GError) error = NULL;
    g_assert_true (kdf_gmm1d_fit (w, m, v, x, 1000, &opt, &res, &error));
    g_assert_no_error (error);
    g_assert_cmpint (res.iterations, ==, ref[r].iters);
    g_assert_false (res.converged);
    for (int j = 0; j < 3; j++) {
      g_assert_cmpfloat_with_epsilon (w[j], ref[r].w[j], 1e-9);
      g_assert_cmpfloat_with_epsilon (m[j], ref[r].m[j], 1e-9);
      g_assert_cmpfloat_with_epsilon (v[j], ref[r].v[j], 1e-10);
    }
    g_assert_cmpfloat_with_epsilon (res.log_likelihood, ref[r].ll, 1e-9);
  }
}

static void
test_em_monotone (void)
{
  /* EM never lowers the likelihood: the E-step value after t iterations, for the
   * default 20-component start on the same data. Only plain maximum-likelihood EM has
   * that property, so the variance regulariser is off here (with it, the M-step is
   * not the likelihood's maximiser and the value may dip slightly). */
  g_autofree float *x = clusters (1000);
  double prev = -INFINITY;
  for (int t = 1; t <= 15; t++) {
    KdfGmm1dOptions opt;
    kdf_gmm1d_options_init (&opt);
    opt.max_iter = t;
    opt.tol = 0;
    opt.reg_var = 0;
    double w[20], m[20], v[20];
    KdfGmm1dResult res;
    g_autoptr (GError) error = NULL;
    g_assert_true (kdf_gmm1d_fit (w, m, v, x, 1000, &opt, &res, &error));
    g_assert_cmpfloat (res.log_likelihood, >=, prev - 1e-12);
    prev = res.log_likelihood;
    double s = 0;
    for (int j = 0; j < 20; j++)
      s += w[j];
    g_assert_cmpfloat_with_epsilon (s, 1.0, 1e-12);
  }
}

static void
test_split (void)
{
  /* losses shaped like MODUL's: clean low, open-set in the middle, closed-set high;
   * stretched so that the min-max normalisation leaves them at ~0.1 / 0.5 / 0.95 */
  const int64_t n = 1000;
  g_autofree float *x = clusters (n);
  g_autofree float *loss = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    loss[i] = 2.0f * x[i] + 0.25f;
  g_autofree int32_t *group = g_new (int32_t, n);
  g_autofree float *post = g_new (float, 3 * n);
  g_autofree float *norm = g_new (float, n);
  KdfUncertaintyOptions opt;
  kdf_uncertainty_options_init (&opt);
  KdfUncertaintyResult r;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_uncertainty_split (group, post, norm, loss, n, &opt, &r, &error));
  g_assert_no_error (error);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; i++) {
    int want = i < 600 ? KDF_SPLIT_CLEAN : i < 800 ? KDF_SPLIT_OPEN : KDF_SPLIT_CLOSED;
    wrong += group[i] != want;
    g_assert_cmpfloat_with_epsilon (post[3 * i] + post[3 * i + 1] + post[3 * i + 2], 1.0, 1e-5);
    g_assert_cmpfloat (norm[i], >=, 0);
    g_assert_cmpfloat (norm[i], <=, 1);
  }
  g_assert_cmpint (wrong, ==, 0);
  g_assert_cmpint (r.count[0], ==, 600);
  g_assert_cmpint (r.count[1], ==, 200);
  g_assert_cmpint (r.count[2], ==, 200);
  g_assert_cmpint (r.components[0] + r.components[1] + r.components[2], ==, 20);
  /* moving the closed-set bound above every component: no closed-set group at all */
  opt.closed_from = 1.5;
  g_assert_true (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_cmpint (r.count[2], ==, 0);
  g_assert_cmpint (r.count[1], ==, 400);
  /* equal losses: all clean; bad bounds and NaN refused */
  for (int64_t i = 0; i < n; i++)
    loss[i] = 0.5f;
  kdf_uncertainty_options_init (&opt);
  g_assert_true (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_cmpint (r.count[0], ==, n);
  opt.clean_below = 0.95;
  g_assert_false (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&error);
  kdf_uncertainty_options_init (&opt);
  loss[7] = NAN;
  g_assert_false (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
}

static void
test_fitted (void)
{
  /* losses and open-set scores shaped like an MLP teacher's on Fashion-MNIST (docs/
   * results.md): clean rows low loss, low score; open-set and closed-set rows share
   * one loss band (0.62–0.78 and 0.66–0.82) that never reaches 0.9, and differ in the
   * score (open-set uncertain: 0.45–0.65; closed-set confident: 0.02–0.12). METHODS'
   * fixed bounds find no closed-set row here; fitted bounds recover all three. */
  const int64_t n = 1000;
  g_autofree float *loss = g_new (float, n);
  g_autofree float *score = g_new (float, n);
  for (int64_t i = 0; i < n; i++) {
    double u = (double) ((i * 7919) % 1000) / 1000.0; /* a spread in [0, 1) */
    double v = (double) ((i * 104729) % 997) / 997.0;
    if (i < 600) {
      loss[i] = (float) (0.05 + 0.25 * u);
      score[i] = (float) (0.02 + 0.10 * v);
    } else if (i < 800) {
      loss[i] = (float) (0.62 + 0.16 * u);
      score[i] = (float) (0.45 + 0.20 * v);
    } else {
      loss[i] = (float) (0.66 + 0.16 * u);
      score[i] = (float) (0.02 + 0.10 * v);
    }
  }
  loss[0] = 0.0f; /* the normalisation's ends */
  loss[999] = 1.0f;
  g_autofree int32_t *group = g_new (int32_t, n);
  g_autofree float *post = g_new (float, 3 * n);
  KdfUncertaintyOptions opt;
  kdf_uncertainty_options_init (&opt);
  KdfUncertaintyResult r;
  g_autoptr (GError) error = NULL;
  /* fixed bounds: no closed-set group */
  g_assert_true (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_cmpint (r.count[KDF_SPLIT_CLOSED], <, 20);
  /* fitted bounds */
  opt.bounds = KDF_SPLIT_BOUNDS_FITTED;
  opt.open_score = score;
  g_assert_true (kdf_uncertainty_split (group, post, NULL, loss, n, &opt, &r, &error));
  g_assert_no_error (error);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; i++) {
    int want = i < 600 ? KDF_SPLIT_CLEAN : i < 800 ? KDF_SPLIT_OPEN : KDF_SPLIT_CLOSED;
    wrong += group[i] != want;
    g_assert_cmpfloat_with_epsilon (post[3 * i] + post[3 * i + 1] + post[3 * i + 2], 1.0, 1e-5);
    for (int g = 0; g < 3; g++)
      g_assert_cmpfloat (post[3 * i + group[i]], >=, post[3 * i + g]);
  }
  g_assert_cmpint (wrong, ==, 0);
  g_assert_cmpint (r.count[0] + r.count[1] + r.count[2], ==, n);
  /* monotone in the loss: at one score, a higher loss is never more clean */
  for (int64_t i = 0; i < n; i++)
    score[i] = 0.3f;
  score[0] = 0.0f;
  score[999] = 1.0f;
  g_assert_true (kdf_uncertainty_split (group, post, NULL, loss, n, &opt, &r, &error));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      if (loss[j] > loss[i])
        g_assert_cmpfloat (post[3 * j], <=, post[3 * i]);
  /* a narrow clean band (0.20–0.25) and a wide noisy one (0.4–1.0): far below the
   * clean band (rows at 0) the wide component's density is the larger, yet those rows
   * are the cleanest — the posterior is monotone, so they stay clean */
  for (int64_t i = 0; i < n; i++) {
    double u = (double) ((i * 7919) % 1000) / 1000.0;
    loss[i] = i < 10 ? 0.0f : i < 700 ? (float) (0.20 + 0.05 * u) : (float) (0.4 + 0.6 * u);
    score[i] = 0.3f;
  }
  g_assert_true (kdf_uncertainty_split (group, post, NULL, loss, n, &opt, &r, &error));
  for (int64_t i = 0; i < 700; i++)
    g_assert_cmpint (group[i], ==, KDF_SPLIT_CLEAN);
  /* the open-set mixture is fitted over the noisy rows only: here the clean rows are
   * the most confident (score 0–0.05), the closed-set rows less so (0.30–0.40), the
   * open-set rows least (0.55–0.75); over every row the clean rows would take the lower
   * component and send the closed-set rows to open-set with the open-set ones */
  for (int64_t i = 0; i < n; i++) {
    double u = (double) ((i * 7919) % 1000) / 1000.0;
    double v = (double) ((i * 104729) % 997) / 997.0;
    loss[i] = i < 600 ? (float) (0.05 + 0.25 * u) : (float) (0.62 + 0.2 * u);
    score[i] = i < 600 ? (float) (0.05 * v) : i < 800 ? (float) (0.55 + 0.2 * v)
                                                      : (float) (0.30 + 0.10 * v);
  }
  g_assert_true (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  wrong = 0;
  for (int64_t i = 0; i < n; i++)
    wrong += group[i] != (i < 600 ? KDF_SPLIT_CLEAN : i < 800 ? KDF_SPLIT_OPEN : KDF_SPLIT_CLOSED);
  g_assert_cmpint (wrong, ==, 0);
  /* fewer than two noisy rows: the one noisy row is closed-set (nothing to fit) */
  for (int64_t i = 0; i < n; i++)
    loss[i] = 0.1f + 0.001f * (float) (i % 7);
  loss[500] = 5.0f;
  g_assert_true (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_cmpint (group[500], ==, KDF_SPLIT_CLOSED);
  g_assert_cmpint (r.count[KDF_SPLIT_CLOSED], ==, 1);
  g_assert_cmpint (r.count[KDF_SPLIT_OPEN], ==, 0);
  /* bad input: no score, a NaN score, an unknown rule */
  score[3] = NAN;
  g_assert_false (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_nonnull (strstr (error->message, "open-set scores"));
  g_clear_error (&error);
  opt.open_score = NULL;
  g_assert_false (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&error);
  opt.bounds = 7;
  g_assert_false (kdf_uncertainty_split (group, NULL, NULL, loss, n, &opt, &r, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/uncertainty/evidential", test_evidential);
  g_test_add_func ("/uncertainty/em-reference", test_em_reference);
  g_test_add_func ("/uncertainty/em-monotone", test_em_monotone);
  g_test_add_func ("/uncertainty/split", test_split);
  g_test_add_func ("/uncertainty/fitted", test_fitted);
  return g_test_run ();
}
