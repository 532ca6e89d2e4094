/* uncertainty_split: MODUL's three-way split of a noisy training set into clean,
 * open-set and closed-set samples (METHODS §1 uncertainty_split).
 *
 *   evidential loss  e = relu(z) + 1, S = Σ e_c, ℓ = Σ (y_c − e_c/S)² + Σ e_c(S − e_c)/(S²(S+1))
 *   normalise        ℓ' = (ℓ − min ℓ) / (max ℓ − min ℓ)
 *   mixture          a 1-D Gaussian mixture of K components fitted to ℓ' by EM
 *   groups           component mean < clean_below → clean; ≥ closed_from → closed-set;
 *                    otherwise open-set; each sample to the group whose components'
 *                    posteriors sum highest.
 *   fitted bounds    (bounds = FITTED) clean vs noisy by a two-component mixture on ℓ',
 *                    open-set vs closed-set by a two-component mixture on an open-set
 *                    score fitted over the noisy rows; docs/design.md says why.
 *
 * Why a small EM of our own: no C library in Debian fits a Gaussian mixture (GSL has
 * none; mlpack's is C++ on Armadillo, a large dependency for 100 lines of a 1-D
 * EM). The EM follows scikit-learn's GaussianMixture step for step (same order,
 * same n_k guard, same variance regulariser), so a test checks it against
 * scikit-learn's own numbers from the same starting point. The E-step streams over
 * the samples and keeps only the sufficient statistics (Σr, Σr·x, Σr·x²): memory
 * O(K), not O(N·K). */
#include "config.h"

#include "detect-private.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GMM_MAX_COMPONENTS 256

gboolean
kdf_evidential_loss (float *loss, const float *logits, const int32_t *labels, int64_t n, int c,
                     GError **error)
{
  if (!kdf_check_size (n, c, "evidential loss", error) ||
      !kdf_check_finite_f32 (logits, n * c, "evidential loss: logits", error) ||
      !kdf_check_labels (labels, n, c, "evidential loss: labels", error))
    return FALSE;
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * c;
    double s = 0;
    for (int k = 0; k < c; k++)
      s += (z[k] > 0 ? z[k] : 0) + 1.0;
    double l = 0;
    for (int k = 0; k < c; k++) {
      double e = (z[k] > 0 ? z[k] : 0) + 1.0;
      double p = e / s;
      double d = (k == labels[i] ? 1.0 : 0.0) - p;
      l += d * d + e * (s - e) / (s * s * (s + 1));
    }
    loss[i] = (float) l;
  }
  return TRUE;
}

void
kdf_gmm1d_options_init (KdfGmm1dOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->components = 20;
  opt->max_iter = 100;
  opt->tol = 1e-3;
  opt->reg_var = 5e-4;
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* log N(x | μ, v) + log w for every component; returns log Σ_k exp(·), and leaves
 * the terms in LP */
static double
log_terms (double *lp, double x, int k, const double *logw, const double *means,
           const double *vars)
{
  double m = -INFINITY;
  for (int j = 0; j < k; j++) {
    double d = x - means[j];
    lp[j] = logw[j] - 0.5 * (log (2 * G_PI * vars[j]) + d * d / vars[j]);
    if (lp[j] > m)
      m = lp[j];
  }
  double s = 0;
  for (int j = 0; j < k; j++)
    s += exp (lp[j] - m);
  return m + log (s);
}

static gboolean
check_gmm_options (const KdfGmm1dOptions *opt, GError **error)
{
  if (opt->components < 1 || opt->components > GMM_MAX_COMPONENTS) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "gaussian mixture: components must be in [1, %d], found %d", GMM_MAX_COMPONENTS,
                 opt->components);
    return FALSE;
  }
  if (opt->max_iter < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "gaussian mixture: max_iter must be ≥ 1, found %d", opt->max_iter);
    return FALSE;
  }
  if (!(opt->tol >= 0) || !(opt->reg_var >= 0) || !isfinite (opt->tol) ||
      !isfinite (opt->reg_var)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "gaussian mixture: tol and reg_var must be finite and ≥ 0 (tol %g, reg_var %g)",
                 opt->tol, opt->reg_var);
    return FALSE;
  }
  for (int j = 0; j < opt->components; j++) {
    if ((opt->init_weights && !(opt->init_weights[j] > 0 && isfinite (opt->init_weights[j]))) ||
        (opt->init_means && !isfinite (opt->init_means[j])) ||
        (opt->init_vars && !(opt->init_vars[j] > 0 && isfinite (opt->init_vars[j])))) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "gaussian mixture: starting parameters of component %d are not usable "
                   "(weights and variances must be finite and > 0, means finite)", j);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
kdf_gmm1d_fit (double *weights, double *means, double *vars, const float *x, int64_t n,
               const KdfGmm1dOptions *opt, KdfGmm1dResult *result, GError **error)
{
  KdfGmm1dOptions defaults;
  if (!opt) {
    kdf_gmm1d_options_init (&defaults);
    opt = &defaults;
  }
  if (!check_gmm_options (opt, error) || !kdf_check_size (n, 1, "gaussian mixture", error) ||
      !kdf_check_finite_f32 (x, n, "gaussian mixture: data", error))
    return FALSE;
  const int k = opt->components;

  /* starting point */
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; i++)
    mean += x[i];
  mean /= n;
  for (int64_t i = 0; i < n; i++)
    var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  float *sorted = NULL;
  if (!opt->init_means) {
    sorted = g_new (float, n);
    memcpy (sorted, x, n * sizeof *x);
    qsort (sorted, n, sizeof *sorted, cmp_float);
  }
  double wsum = 0;
  for (int j = 0; j < k; j++) {
    weights[j] = opt->init_weights ? opt->init_weights[j] : 1.0;
    wsum += weights[j];
    means[j] = opt->init_means ? opt->init_means[j]
                               : sorted[MIN ((int64_t) ((j + 0.5) * n / k), n - 1)];
    vars[j] = opt->init_vars ? opt->init_vars[j] : var / ((double) k * k) + opt->reg_var;
    if (!(vars[j] > 0))
      vars[j] = DBL_MIN; /* constant data and no regulariser: a point mass */
  }
  for (int j = 0; j < k; j++)
    weights[j] /= wsum;
  g_free (sorted);

  double logw[GMM_MAX_COMPONENTS], lp[GMM_MAX_COMPONENTS];
  double s0[GMM_MAX_COMPONENTS], s1[GMM_MAX_COMPONENTS], s2[GMM_MAX_COMPONENTS];
  double prev = -INFINITY, ll = -INFINITY;
  int it;
  gboolean converged = FALSE;
  for (it = 1; it <= opt->max_iter; it++) {
    /* E-step, streaming: the responsibilities go straight into the sums */
    for (int j = 0; j < k; j++) {
      logw[j] = log (weights[j]);
      s0[j] = s1[j] = s2[j] = 0;
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
      double xi = x[i];
      double norm = log_terms (lp, xi, k, logw, means, vars);
      total += norm;
      for (int j = 0; j < k; j++) {
        double r = exp (lp[j] - norm);
        s0[j] += r;
        s1[j] += r * xi;
        s2[j] += r * xi * xi;
      }
    }
    ll = total / n;
    /* M-step (scikit-learn's _estimate_gaussian_parameters, 1-D) */
    double nsum = 0;
    for (int j = 0; j < k; j++) {
      double nk = s0[j] + 10 * DBL_EPSILON;
      double m = s1[j] / nk;
      double v = s2[j] / nk - 2 * m * s1[j] / nk + m * m * s0[j] / nk;
      means[j] = m;
      vars[j] = MAX (v, 0.0) + opt->reg_var;
      if (!(vars[j] > 0))
        vars[j] = DBL_MIN;
      weights[j] = nk;
      nsum += nk;
    }
    for (int j = 0; j < k; j++)
      weights[j] /= nsum;
    if (!isfinite (ll)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "gaussian mixture: the log-likelihood became %g at iteration %d "
                   "(a component collapsed onto a point; set reg_var > 0)", ll, it);
      return FALSE;
    }
    if (fabs (ll - prev) < opt->tol) {
      converged = TRUE;
      break;
    }
    prev = ll;
  }
  if (result) {
    memset (result, 0, sizeof *result);
    result->iterations = MIN (it, opt->max_iter);
    result->converged = converged;
    result->log_likelihood = ll;
  }
  return TRUE;
}

/* Q[i] = the posterior of the higher-mean component of a two-component mixture fitted
 * to FIT (NFIT values), for every X[i] (N values), all min-max normalised with FIT's
 * range (X clamped to it). Made monotone in x: 0 at or below the lower mean, 1 at or
 * above the higher one (a wide component must not claim both tails). Constant FIT or
 * NFIT < 2: Q = 0. */
static gboolean
upper_posterior (float *q, const float *x, int64_t n, const float *fit, int64_t nfit,
                 const KdfGmm1dOptions *base, GError **error)
{
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < nfit; i++) {
    lo = MIN (lo, fit[i]);
    hi = MAX (hi, fit[i]);
  }
  const double span = (double) hi - lo;
  if (nfit < 2 || !(span > 0)) {
    memset (q, 0, n * sizeof *q);
    return TRUE;
  }
  float *t = g_new (float, nfit);
  for (int64_t i = 0; i < nfit; i++)
    t[i] = (float) (((double) fit[i] - lo) / span);
  KdfGmm1dOptions opt = *base;
  opt.components = 2;
  opt.init_weights = opt.init_means = opt.init_vars = NULL;
  double w[2], m[2], v[2], logw[2], lp[2];
  gboolean ok = kdf_gmm1d_fit (w, m, v, t, nfit, &opt, NULL, error);
  g_free (t);
  if (!ok)
    return FALSE;
  const int a = m[0] <= m[1] ? 0 : 1, b = 1 - a; /* a: lower mean, b: higher */
  logw[0] = log (w[0]);
  logw[1] = log (w[1]);
  for (int64_t i = 0; i < n; i++) {
    double xi = CLAMP (((double) x[i] - lo) / span, 0.0, 1.0);
    if (!(m[b] > m[a]) || xi <= m[a])
      q[i] = 0;
    else if (xi >= m[b])
      q[i] = 1;
    else {
      double norm = log_terms (lp, xi, 2, logw, m, v);
      q[i] = (float) exp (lp[b] - norm);
    }
  }
  return TRUE;
}

void
kdf_uncertainty_options_init (KdfUncertaintyOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  kdf_gmm1d_options_init (&opt->gmm);
  opt->clean_below = 0.3;
  opt->closed_from = 0.9;
}

/* bounds = FITTED on the normalised losses X (see detect.h) */
static gboolean
split_fitted (int32_t *group, float *posterior, const float *x, int64_t n,
              const KdfUncertaintyOptions *opt, KdfUncertaintyResult *r, GError **error)
{
  float *q = g_new (float, n), *o = g_new (float, n), *fit = g_new (float, n);
  gboolean ok = upper_posterior (q, x, n, x, n, &opt->gmm, error);
  int64_t nfit = 0;
  if (ok) {
    /* the open-set mixture is fitted to the noisy rows' scores only: clean rows (the
     * bulk, confident and right) would otherwise take a component of their own */
    for (int64_t i = 0; i < n; i++)
      if (q[i] > 0.5f)
        fit[nfit++] = opt->open_score[i];
    ok = upper_posterior (o, opt->open_score, n, fit, nfit, &opt->gmm, error);
  }
  if (ok) {
    for (int64_t i = 0; i < n; i++) {
      double p[3] = { 1.0 - q[i], (double) q[i] * o[i], (double) q[i] * (1.0 - o[i]) };
      int best = 0;
      for (int g = 1; g < 3; g++)
        if (p[g] > p[best])
          best = g;
      group[i] = best;
      r->count[best]++;
      if (posterior)
        for (int g = 0; g < 3; g++)
          posterior[3 * i + g] = (float) p[g];
    }
    r->components[0] = r->components[1] = r->components[2] = 1;
  } else {
    g_prefix_error (error, "uncertainty split: ");
  }
  g_free (q);
  g_free (o);
  g_free (fit);
  return ok;
}

gboolean
kdf_uncertainty_split (int32_t *group, float *posterior, float *normalized, const float *loss,
                       int64_t n, const KdfUncertaintyOptions *opt, KdfUncertaintyResult *result,
                       GError **error)
{
  KdfUncertaintyOptions defaults;
  if (!opt) {
    kdf_uncertainty_options_init (&defaults);
    opt = &defaults;
  }
  if (!(opt->clean_below <= opt->closed_from) || !isfinite (opt->clean_below) ||
      !isfinite (opt->closed_from)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "uncertainty split: need clean_below ≤ closed_from, found %g and %g",
                 opt->clean_below, opt->closed_from);
    return FALSE;
  }
  if (opt->bounds != KDF_SPLIT_BOUNDS_FIXED && opt->bounds != KDF_SPLIT_BOUNDS_FITTED) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "uncertainty split: unknown bounds %d",
                 opt->bounds);
    return FALSE;
  }
  if (opt->bounds == KDF_SPLIT_BOUNDS_FITTED && !opt->open_score) {
    g_set_error_literal (error, KDF_ERROR, KDF_ERROR_PARAM,
                         "uncertainty split: fitted bounds need an open-set score per sample");
    return FALSE;
  }
  if (!check_gmm_options (&opt->gmm, error) || !kdf_check_size (n, 1, "uncertainty split", error) ||
      !kdf_check_finite_f32 (loss, n, "uncertainty split: losses", error) ||
      (opt->bounds == KDF_SPLIT_BOUNDS_FITTED &&
       !kdf_check_finite_f32 (opt->open_score, n, "uncertainty split: open-set scores", error)))
    return FALSE;
  KdfUncertaintyResult r;
  memset (&r, 0, sizeof r);
  float lo = loss[0], hi = loss[0];
  for (int64_t i = 1; i < n; i++) {
    lo = MIN (lo, loss[i]);
    hi = MAX (hi, loss[i]);
  }
  r.loss_min = lo;
  r.loss_max = hi;
  float *x = normalized ? normalized : g_new (float, n);
  double span = (double) hi - lo;
  for (int64_t i = 0; i < n; i++)
    x[i] = span > 0 ? (float) (((double) loss[i] - lo) / span) : 0.0f;

  if (!(span > 0)) {
    /* every loss equal: nothing to split */
    for (int64_t i = 0; i < n; i++) {
      group[i] = KDF_SPLIT_CLEAN;
      if (posterior) {
        posterior[3 * i] = 1;
        posterior[3 * i + 1] = posterior[3 * i + 2] = 0;
      }
    }
    r.count[KDF_SPLIT_CLEAN] = n;
  } else if (opt->bounds == KDF_SPLIT_BOUNDS_FITTED) {
    if (!split_fitted (group, posterior, x, n, opt, &r, error)) {
      if (!normalized)
        g_free (x);
      return FALSE;
    }
  } else {
    const int k = opt->gmm.components;
    double w[GMM_MAX_COMPONENTS], m[GMM_MAX_COMPONENTS], v[GMM_MAX_COMPONENTS];
    double logw[GMM_MAX_COMPONENTS], lp[GMM_MAX_COMPONENTS];
    int of[GMM_MAX_COMPONENTS];
    if (!kdf_gmm1d_fit (w, m, v, x, n, &opt->gmm, &r.gmm, error)) {
      g_prefix_error (error, "uncertainty split: ");
      if (!normalized)
        g_free (x);
      return FALSE;
    }
    for (int j = 0; j < k; j++) {
      of[j] = m[j] < opt->clean_below ? KDF_SPLIT_CLEAN
              : m[j] >= opt->closed_from ? KDF_SPLIT_CLOSED
                                         : KDF_SPLIT_OPEN;
      r.components[of[j]]++;
      logw[j] = log (w[j]);
    }
    for (int64_t i = 0; i < n; i++) {
      double norm = log_terms (lp, x[i], k, logw, m, v);
      double sum[3] = { 0, 0, 0 };
      for (int j = 0; j < k; j++)
        sum[of[j]] += exp (lp[j] - norm);
      int best = 0;
      for (int g = 1; g < 3; g++)
        if (sum[g] > sum[best])
          best = g;
      group[i] = best;
      r.count[best]++;
      if (posterior)
        for (int g = 0; g < 3; g++)
          posterior[3 * i + g] = (float) sum[g];
    }
  }
  if (!normalized)
    g_free (x);
  if (result)
    *result = r;
  return TRUE;
}
