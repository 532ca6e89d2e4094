/* otsu_threshold: a histogram threshold on per-sample scores and Blind KD's four
 * groups (METHODS §1 otsu_threshold; kernel and formulas in engine/detect/otsu.c).
 *
 *   criterion otsu   classic between-class variance (Otsu, IEEE SMC 1979)
 *   criterion blind  Blind KD's variant (Kaiser et al., arXiv 2211.11355)
 *   bin b = min(⌊bins·a⌋, bins−1); θ = split/bins; mask = a ≥ θ;
 *   groups: 1 a ≥ μ_hi, 2 θ ≤ a < μ_hi, 3 μ_lo ≤ a < θ, 4 a < μ_lo.
 *
 * Scores must lie in [0,1] unless normalize is set (min-max first; threshold and
 * means are then reported on the input's scale too). `flagged` is the side a
 * detector reports as noisy: below θ for agreement-like scores (high = the label
 * looks right, the default), above θ for losses. */
#include <kdflow/detect.h>
#include <kdflow/dist.h>
#include <kdflow/kdflow-plugin.h>

typedef enum { FLAG_BELOW, FLAG_ABOVE } Side;

typedef struct {
  int bins;
  KdfOtsuCriterion criterion;
  gboolean normalize;
  gboolean exact;
  Side flag;
} Params;

static const KdfChoice criteria[] = {
  { "otsu", KDF_OTSU_CRITERION_OTSU }, { "blind", KDF_OTSU_CRITERION_BLIND }, { 0 } };
static const KdfChoice sides[] = { { "below", FLAG_BELOW }, { "above", FLAG_ABOVE }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("scores", "f32[N]", 0, "per-sample scores, in [0, 1] unless normalize"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("threshold", "f32[]", 0, "θ on the scores' own scale"),
  KDF_PORT ("mask", "u8[N]", 0, "1 where score ≥ θ"),
  KDF_PORT ("flagged", "u8[N]", 0, "1 on the side param 'flag' names (predicted noisy)"),
  KDF_PORT ("groups", "i32[N]", 0, "Blind KD's groups 1..4 (1 = highest scores)"),
  KDF_PORT ("mean_lo", "f32[]", 0, "μ_lo, the mean histogram position below θ"),
  KDF_PORT ("mean_hi", "f32[]", 0, "μ_hi, the mean histogram position at or above θ"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, bins, 1000, 8, 10000000, "histogram bins"),
  KDF_PARAM_ENUM (Params, criterion, "otsu", criteria,
                  "otsu (between-class variance) or blind (Blind KD)"),
  KDF_PARAM_BOOL (Params, normalize, FALSE, "min-max normalise the scores first"),
  KDF_PARAM_BOOL (Params, exact, FALSE,
                  "exact integer moments; ties (empty-bin plateaus) go to the middle of the "
                  "tied run instead of numpy's first maximum"),
  KDF_PARAM_ENUM (Params, flag, "below", sides, "which side of θ is 'flagged' (predicted noisy)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfOtsuOptions opt;
  kdf_otsu_options_init (&opt);
  opt.bins = p->bins;
  opt.criterion = p->criterion;
  opt.normalize = p->normalize;
  opt.exact = p->exact;
  KdfOtsuResult r;
  /* under mpirun each rank histograms its block of the scores; the histogram is summed
   * and the mask and groups gathered (kdf_otsu_threshold_sharded) */
  g_autoptr (KdfTensor) scores = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "scores"));
  const int64_t n = scores->shape[0];
  KdfTensor *mask = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  KdfTensor *groups = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  if (!kdf_otsu_threshold_sharded (kdf_tensor_f32 (scores), n, &opt, &r, kdf_tensor_u8 (mask),
                                   kdf_tensor_i32 (groups), error)) {
    kdf_tensor_unref (mask);
    kdf_tensor_unref (groups);
    g_prefix_error (error, "input 'scores': ");
    return FALSE;
  }
  KdfTensor *flagged = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  const uint8_t *pm = kdf_tensor_u8 (mask);
  uint8_t *pf = kdf_tensor_u8 (flagged);
  int64_t n_flagged = 0;
  for (int64_t i = 0; i < n; i++) {
    pf[i] = p->flag == FLAG_ABOVE ? pm[i] : !pm[i];
    n_flagged += pf[i];
  }
  /* the means are histogram positions on the normalised scale; map them back so
   * that every number this node reports is on the scores' scale */
  double lo = r.score_min, span = r.score_max - r.score_min;
  double mean_lo = opt.normalize ? lo + r.mean_lo * span : r.mean_lo;
  double mean_hi = opt.normalize ? lo + r.mean_hi * span : r.mean_hi;
  kdf_ctx_metric (ctx, "threshold", r.threshold_raw);
  kdf_ctx_metric (ctx, "split", r.split);
  kdf_ctx_metric (ctx, "mean_lo", mean_lo);
  kdf_ctx_metric (ctx, "mean_hi", mean_hi);
  kdf_ctx_metric (ctx, "flagged", (double) n_flagged);
  for (int k = 0; k < 4; k++) {
    char key[16];
    g_snprintf (key, sizeof key, "group%d", k + 1);
    kdf_ctx_metric (ctx, key, (double) r.group_count[k]);
  }
  kdf_ctx_set_output_tensor (ctx, "threshold", kdf_tensor_new_scalar_f32 ((float) r.threshold_raw));
  kdf_ctx_set_output_tensor (ctx, "mean_lo", kdf_tensor_new_scalar_f32 ((float) mean_lo));
  kdf_ctx_set_output_tensor (ctx, "mean_hi", kdf_tensor_new_scalar_f32 ((float) mean_hi));
  kdf_ctx_set_output_tensor (ctx, "mask", mask);
  kdf_ctx_set_output_tensor (ctx, "flagged", flagged);
  kdf_ctx_set_output_tensor (ctx, "groups", groups);
  return TRUE;
}

static const KdfNodeClass otsu_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "otsu_threshold",
  .summary = "Otsu / Blind-KD threshold of scores, its mask and four groups",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (otsu_threshold, &otsu_class)
