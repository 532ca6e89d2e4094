/* score_histogram — a drop-in kdflow node: the histogram and quantiles of a score
 * vector (per-sample losses, agreement scores, confidences), so a pipeline can watch
 * how a detector's scores separate over the ticks.
 *
 * Build it outside the kdflow tree:
 *   cc -shared -fPIC -O2 -o kdf-score_histogram.so score_histogram.c \
 *      $(pkg-config --cflags --libs kdflow)
 * then put the directory on KDFLOW_PLUGIN_PATH. The file name kdf-score_histogram.so
 * and KDF_PLUGIN (score_histogram, ...) below must agree. */
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int bins;
  double lo, hi;
  gboolean auto_range;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("scores", "f32[N]", 0, "one score per sample"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("counts", "i32[B]", 0, "samples per bin"),
  KDF_PORT ("edges", "f32[*]", 0, "the B + 1 bin edges"),
  KDF_PORT ("quantiles", "f32[5]", 0, "min, 25 %, median, 75 %, max"),
  KDF_PORT ("mean", "f32[]", 0, "the mean score"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, bins, 20, 1, 100000, "number of bins"),
  KDF_PARAM_DOUBLE (Params, lo, 0, -1e30, 1e30, "left edge (with hi; ignored when auto_range)"),
  KDF_PARAM_DOUBLE (Params, hi, 1, -1e30, 1e30, "right edge"),
  KDF_PARAM_BOOL (Params, auto_range, FALSE, "use the scores' min and max as the range"),
  { 0 },
};

static int
compare_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* Linear interpolation between order statistics (numpy's default "linear"). */
static float
quantile (const float *sorted, int64_t n, double q)
{
  double pos = q * (double) (n - 1);
  int64_t i = (int64_t) floor (pos);
  if (i + 1 >= n)
    return sorted[n - 1];
  double frac = pos - (double) i;
  return (float) (sorted[i] + frac * (sorted[i + 1] - sorted[i]));
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state G_GNUC_UNUSED, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *scores = kdf_ctx_input_tensor (ctx, "scores");
  int64_t n = scores->shape[0];
  int bins = p->bins;
  if (n == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "input 'scores' is empty");
    return FALSE;
  }
  /* a sorted private copy (the input is shared and immutable) */
  float *sorted = g_new (float, n);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = kdf_tensor_f32 (scores)[i * scores->strides[0]];
    if (!isfinite (v)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "input 'scores' has a non-finite value at row %" G_GINT64_FORMAT, (gint64) i);
      g_free (sorted);
      return FALSE;
    }
    sorted[i] = v;
    sum += v;
  }
  qsort (sorted, (size_t) n, sizeof (float), compare_float);
  double lo = p->lo, hi = p->hi;
  if (p->auto_range) {
    lo = sorted[0];
    hi = sorted[n - 1] > lo ? sorted[n - 1] : lo + 1;
  }
  if (!(hi > lo)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "param 'hi' (%g) must be greater than 'lo' (%g)", hi, lo);
    g_free (sorted);
    return FALSE;
  }
  KdfTensor *counts = kdf_tensor_new_1d (KDF_DTYPE_I32, bins);
  KdfTensor *edges = kdf_tensor_new_1d (KDF_DTYPE_F32, bins + 1);
  for (int b = 0; b <= bins; b++)
    kdf_tensor_f32 (edges)[b] = (float) (lo + (hi - lo) * b / bins);
  for (int64_t i = 0; i < n; i++) {
    /* values outside [lo, hi] go to the end bins, like a clipped histogram */
    int b = (int) floor ((sorted[i] - lo) / (hi - lo) * bins);
    kdf_tensor_i32 (counts)[CLAMP (b, 0, bins - 1)]++;
  }
  KdfTensor *q = kdf_tensor_new_1d (KDF_DTYPE_F32, 5);
  const double qs[] = { 0, 0.25, 0.5, 0.75, 1 };
  for (int k = 0; k < 5; k++)
    kdf_tensor_f32 (q)[k] = quantile (sorted, n, qs[k]);
  g_free (sorted);
  kdf_ctx_metric (ctx, "median", kdf_tensor_f32 (q)[2]);
  kdf_ctx_metric (ctx, "mean", sum / (double) n);
  kdf_ctx_set_output_tensor (ctx, "counts", counts);
  kdf_ctx_set_output_tensor (ctx, "edges", edges);
  kdf_ctx_set_output_tensor (ctx, "quantiles", q);
  kdf_ctx_set_output_tensor (ctx, "mean", kdf_tensor_new_scalar_f32 ((float) (sum / (double) n)));
  return TRUE;
}

static const KdfNodeClass score_histogram_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "score_histogram",
  .summary = "histogram and quantiles of per-sample scores",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (score_histogram, &score_histogram_class)
