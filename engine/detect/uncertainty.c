/* uncertainty_split: MODUL's three-way split of a noisy training set into clean,
 * open-set and closed-set samples (METHODS §1 uncertainty_split).
 *
 *   evidential loss  e = relu(z) + 1, S = Σ e_c, ℓ = Σ (y_c − e_c/S)² + Σ e_c(S − e_c)/(S²(S+1))
 *   normalise        ℓ' = (ℓ − min ℓ) / (max ℓ − min ℓ)
 *   mixture          a 1-D Gaussian mixture of K components fitted to ℓ' by EM
 *   groups           component mean < clean_below → clean; ≥ closed_from → closed-set;
 *                    otherwise open-set; each sample to the group whose components'
 *                    posteriors sum highest.
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

void
kdf_uncertainty_options_init (KdfUncertaintyOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  kdf_gmm1d_options_init (&opt->gmm);
  opt->clean_below = 0.3;
  opt->closed_from = 0.9;
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
  if (!check_gmm_options (&opt->gmm, error) || !kdf_check_size (n, 1, "uncertainty split", error) ||
      !kdf_check_finite_f32 (loss, n, "uncertainty split: losses", error))
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
