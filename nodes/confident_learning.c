/* confident_learning: label issues from out-of-sample probabilities (Northcutt,
 * Jiang & Chuang, "Confident Learning", JAIR 70, 2021), step for step as cleanlab
 * 2.9's filter.find_label_issues does it for single-label data: per-class
 * thresholds, the confident joint, its calibration, prune counts and the chosen
 * filter (kernel and every rounding rule in engine/detect/cl.c). On the
 * label-errors sets it flags the rows cleanlab flags (tests/nodes/cl_real.lua).
 *
 * Outputs: `flagged` (the issues mask), `score` = 1 − label quality (higher = more
 * likely an error; quality is cleanlab's self-confidence or normalised margin, as
 * rank_by says), `order` (the flagged rows, worst first), the confident joint,
 * thresholds, and the estimated noise rate (off-diagonal mass of the calibrated
 * joint). */
#include <kdflow/data.h>
#include <kdflow/detect.h>
#include <kdflow/dist.h>
#include <kdflow/kdflow-plugin.h>

#include "probs-common.h"

typedef struct {
  KdfClFilter filter;
  double frac_noise;
  int64_t min_examples_per_class;
  gboolean argmax_above_threshold;
  KdfClRank rank_by;
  double tol;
} Params;

static const KdfChoice filters[] = {
  { "prune_by_noise_rate", KDF_CL_PRUNE_BY_NOISE_RATE },
  { "prune_by_class", KDF_CL_PRUNE_BY_CLASS },
  { "both", KDF_CL_BOTH },
  { "confident_learning", KDF_CL_CONFIDENT_LEARNING },
  { "predicted_neq_given", KDF_CL_PREDICTED_NEQ_GIVEN },
  { 0 },
};
static const KdfChoice rankings[] = {
  { "self_confidence", KDF_CL_RANK_SELF_CONFIDENCE },
  { "normalized_margin", KDF_CL_RANK_NORMALIZED_MARGIN },
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("probs", "f32[N,C]", 0, "out-of-sample probabilities"),
  KDF_PORT ("labels", "i32[N] < C", 0, "the given labels, in [0, C)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("flagged", "u8[N]", 0, "1 = label issue"),
  KDF_PORT ("score", "f32[N]", 0, "1 − label quality (higher = more likely an error)"),
  KDF_PORT ("order", "i32[*]", 0, "the flagged rows, worst label quality first"),
  KDF_PORT ("confident_joint", "i32[C,C]", 0, "[given][true] counts, before calibration"),
  KDF_PORT ("thresholds", "f32[C]", 0,
            "per-class thresholds (mean self-confidence of each given class)"),
  KDF_PORT ("noise_rate", "f32[]", 0,
            "estimated fraction of wrong labels (calibrated joint off the diagonal)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, filter, "prune_by_noise_rate", filters, "cleanlab's filter_by"),
  KDF_PARAM_DOUBLE (Params, frac_noise, 1.0, 1e-9, 1.0,
                    "prune this fraction of the estimated errors"),
  KDF_PARAM_INT (Params, min_examples_per_class, 1, 0, G_MAXINT32,
                 "never prune a class below this"),
  KDF_PARAM_BOOL (Params, argmax_above_threshold, FALSE,
                  "count a sample confident in 2+ classes in the argmax over those classes "
                  "(the paper's Eq. 2) instead of over all classes (cleanlab)"),
  KDF_PARAM_ENUM (Params, rank_by, "self_confidence", rankings,
                  "label quality for score and order"),
  KDF_PARAM_DOUBLE (Params, tol, 1e-4, 1e-12, 0.5,
                    "rows with |sum − 1| > tol are normalised (warning)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  g_autoptr (KdfTensor) probs = kdf_node_checked_probs (ctx, kdf_ctx_input_tensor (ctx, "probs"),
                                                        p->tol, "input 'probs'", error);
  if (probs == NULL)
    return FALSE;
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "labels"));
  int64_t n = probs->shape[0];
  if (probs->shape[1] > 65536) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'probs': %" G_GINT64_FORMAT
                 " classes; at most 65536", (gint64) probs->shape[1]);
    return FALSE;
  }
  int c = (int) probs->shape[1];
  const float *pp = kdf_tensor_f32 (probs);
  const int32_t *py = kdf_tensor_i32 (y);

  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  opt.filter = p->filter;
  opt.frac_noise = p->frac_noise;
  opt.min_examples_per_class = p->min_examples_per_class;
  opt.argmax_above_threshold = p->argmax_above_threshold;
  opt.threads = kdf_ctx_threads (ctx);
  const KdfClRank rank_by = p->rank_by;

  g_autoptr (KdfTensor) flagged = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  KdfClResult r = { 0 };
  /* under mpirun each rank works on its block of rows; counts, thresholds and the
   * pruning candidates are reduced and the flags gathered (engine/detect/cl.c) */
  if (!kdf_confident_learning_sharded_f32 (kdf_tensor_u8 (flagged), pp, py, n, c, &opt, &r, error))
    return FALSE;
  uint8_t *pf = kdf_tensor_u8 (flagged);
  int64_t n_flagged = 0;
  for (int64_t i = 0; i < n; i++)
    n_flagged += pf[i] != 0;
  g_autofree int64_t *order64 = g_new (int64_t, MAX (n_flagged, 1));
  int64_t n_order = 0;
  if (!kdf_cl_order_issues_sharded_f32 (order64, &n_order, pf, pp, py, n, c, rank_by, error)) {
    kdf_cl_result_clear (&r);
    return FALSE;
  }

  KdfTensor *order = kdf_tensor_new_1d (KDF_DTYPE_I32, n_order);
  for (int64_t k = 0; k < n_order; k++)
    kdf_tensor_i32 (order)[k] = (int32_t) order64[k];
  /* score = 1 − quality: the same quality the order uses, for every row */
  KdfTensor *score = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  float *ps = kdf_tensor_f32 (score);
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  for (int64_t i = from; i < to; i++) {
    const float *row = pp + i * c;
    double self = row[py[i]], q = self;
    if (rank_by == KDF_CL_RANK_NORMALIZED_MARGIN) {
      float other = -1.0f;
      for (int k = 0; k < c; k++)
        if (k != py[i] && row[k] > other)
          other = row[k];
      q = (self - (double) other + 1.0) * 0.5;
    }
    ps[i] = (float) (1.0 - q);
  }
  if (!kdf_dist_allgather_rows (ps, n, sizeof *ps, error)) {
    kdf_tensor_unref (score);
    kdf_tensor_unref (order);
    kdf_cl_result_clear (&r);
    return FALSE;
  }
  KdfTensor *joint = kdf_tensor_new_2d (KDF_DTYPE_I32, c, c);
  KdfTensor *thr = kdf_tensor_new_1d (KDF_DTYPE_F32, c);
  int64_t off = 0, total = 0;
  for (int64_t a = 0; a < (int64_t) c * c; a++) {
    kdf_tensor_i32 (joint)[a] = (int32_t) MIN (r.confident_joint[a], G_MAXINT32);
    total += r.calibrated_joint[a];
    if (a / c != a % c)
      off += r.calibrated_joint[a];
  }
  for (int k = 0; k < c; k++)
    kdf_tensor_f32 (thr)[k] = (float) r.thresholds[k];
  double noise_rate = total ? (double) off / (double) total : 0.0;
  kdf_ctx_metric (ctx, "flagged", (double) n_flagged);
  kdf_ctx_metric (ctx, "noise_rate", noise_rate);
  kdf_ctx_metric (ctx, "confident", (double) r.n_confident);
  kdf_cl_result_clear (&r);

  kdf_ctx_set_output_tensor (ctx, "flagged", g_steal_pointer (&flagged));
  kdf_ctx_set_output_tensor (ctx, "score", score);
  kdf_ctx_set_output_tensor (ctx, "order", order);
  kdf_ctx_set_output_tensor (ctx, "confident_joint", joint);
  kdf_ctx_set_output_tensor (ctx, "thresholds", thr);
  kdf_ctx_set_output_tensor (ctx, "noise_rate", kdf_tensor_new_scalar_f32 ((float) noise_rate));
  return TRUE;
}

static const KdfNodeClass confident_learning_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "confident_learning",
  .summary = "label issues by confident learning (cleanlab's find_label_issues)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (confident_learning, &confident_learning_class)
