/* loss_ranking: small-loss selection (Co-teaching, Han et al., NeurIPS 2018; AML-KD,
 * Jiang et al., TNNLS 2023, per mini-batch; METHODS §1 loss_ranking). Kernels in
 * engine/detect/ranking.c.
 *
 * The losses are the `loss` input, or the per-sample cross entropy of `logits`
 * against `labels`. Which samples count as clean, in order of precedence:
 *   1. a `threshold` input (e.g. otsu_threshold.threshold run on the same losses):
 *      clean ⇔ loss < threshold — the noise rate need not be known;
 *   2. param otsu = true: the Otsu threshold of the min-max normalised losses,
 *      found here (criterion and bins as params);
 *   3. a kept fraction: in each group (all N, each given class, or each block of
 *      `batch`) the ⌊keep·m⌋ smallest losses are clean (ties to the lower index).
 *      keep may be a schedule: Co-teaching's keep(t) = 1 − τ·min(t/T_k, 1) is
 *      kdf.linear(1, 1 − τ, T_k) in Lua. (A schedule is a param that changes,
 *      so the node reruns when it moves even if the losses do not.)
 * `rank` is each sample's 0-based position by ascending loss inside its group. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>

static const char *const scopes[] = { "global", "per_class", "batch", NULL };
static const char *const criteria[] = { "otsu", "blind", NULL };

static const KdfPortSpec inputs[] = {
  { .name = "loss", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 1, .shape = "N",
    .flags = KDF_PORT_OPTIONAL, .summary = "per-sample losses (or give logits and labels)" },
  { .name = "logits", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2, .shape = "N,C",
    .flags = KDF_PORT_OPTIONAL, .summary = "logits: the loss is their cross entropy" },
  { .name = "labels", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .flags = KDF_PORT_OPTIONAL, .summary = "given labels (for logits and scope per_class)" },
  { .name = "threshold", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 0,
    .flags = KDF_PORT_OPTIONAL, .summary = "clean ⇔ loss < threshold (e.g. from otsu_threshold)" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  { .name = "clean_mask", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_U8, .rank = 1, .shape = "N",
    .summary = "1 = selected as clean" },
  { .name = "flagged", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_U8, .rank = 1, .shape = "N",
    .summary = "1 − clean_mask (predicted noisy)" },
  { .name = "rank", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .summary = "position by ascending loss inside the sample's group" },
  { .name = "sample_loss", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 1, .shape = "N",
    .summary = "the losses that were ranked" },
  { .name = "kept_fraction", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 0,
    .summary = "the fraction actually kept as clean" },
  { .name = "loss_threshold", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 0,
    .summary = "the loss threshold used (threshold and otsu modes; NaN otherwise)" },
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE ("keep", 1.0, 0.0, 1.0, "fraction kept as clean in each group (a schedule is fine)"),
  KDF_PARAM_ENUM ("scope", "global", scopes, "global, per_class (inside each given class) or batch"),
  KDF_PARAM_INT ("batch", 128, 1, 1 << 30, "scope batch: block size B"),
  KDF_PARAM_BOOL ("otsu", FALSE, "threshold the losses by Otsu instead of a kept fraction"),
  KDF_PARAM_ENUM ("criterion", "otsu", criteria, "otsu mode: the criterion"),
  KDF_PARAM_INT ("bins", 1000, 8, 10000000, "otsu mode: histogram bins"),
  KDF_PARAM_INT ("n_classes", 0, 0, 1 << 30, "scope per_class: C (0 = from logits, else max label + 1)"),
  { 0 },
};

static gboolean
rank_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *loss_in = kdf_ctx_input_tensor (ctx, "loss");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *labels_in = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *thr_in = kdf_ctx_input_tensor (ctx, "threshold");
  int scope = kdf_ctx_param_enum (ctx, "scope");
  gboolean otsu = kdf_ctx_param_bool (ctx, "otsu");

  if (loss_in && logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "inputs 'loss' and 'logits' are both connected; give one");
    return FALSE;
  }
  if (!loss_in && !logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "no losses: connect input 'loss', or 'logits' and 'labels'");
    return FALSE;
  }
  if (logits && !labels_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "input 'logits' needs input 'labels' for the cross entropy");
    return FALSE;
  }
  if (scope == KDF_RANK_SCOPE_PER_CLASS && !labels_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "scope per_class needs input 'labels'");
    return FALSE;
  }
  if (thr_in && otsu) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'otsu' is true and input 'threshold' is connected; use one");
    return FALSE;
  }

  g_autoptr (KdfTensor) labels = labels_in ? kdf_tensor_contiguous (labels_in) : NULL;
  g_autoptr (KdfTensor) loss = NULL;
  if (logits) {
    loss = kdf_sample_cross_entropy_tensor (logits, labels, error);
    if (loss == NULL) {
      g_prefix_error (error, "inputs 'logits', 'labels': ");
      return FALSE;
    }
  } else {
    loss = kdf_tensor_contiguous (loss_in);
  }
  int64_t n = loss->shape[0];

  KdfRankOptions opt;
  kdf_rank_options_init (&opt);
  opt.scope = (KdfRankScope) scope;
  opt.batch = kdf_ctx_param_int (ctx, "batch");
  if (labels) {
    int c = (int) kdf_ctx_param_int (ctx, "n_classes");
    if (c == 0 && logits)
      c = (int) logits->shape[1];
    if (c == 0) {
      int32_t mx = -1;
      const int32_t *y = kdf_tensor_i32 (labels);
      for (int64_t i = 0; i < n; i++)
        mx = MAX (mx, y[i]);
      c = mx + 1;
    }
    opt.labels = kdf_tensor_i32 (labels);
    opt.n_classes = MAX (c, 1);
  }
  opt.keep = kdf_ctx_param_double (ctx, "keep");

  KdfTensor *clean = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  KdfTensor *rank = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  int64_t n_clean = 0;
  double threshold = NAN;
  gboolean ok;
  if (thr_in) {
    threshold = kdf_tensor_get_flat (thr_in, 0);
    ok = kdf_loss_rank_threshold (kdf_tensor_f32 (loss), n, threshold, &opt, kdf_tensor_u8 (clean),
                                  kdf_tensor_i32 (rank), &n_clean, error);
  } else if (otsu) {
    KdfOtsuOptions o;
    kdf_otsu_options_init (&o);
    o.normalize = TRUE;
    o.bins = (int) kdf_ctx_param_int (ctx, "bins");
    o.criterion = kdf_ctx_param_enum (ctx, "criterion") == 1 ? KDF_OTSU_CRITERION_BLIND
                                                               : KDF_OTSU_CRITERION_OTSU;
    KdfOtsuResult r;
    ok = kdf_loss_rank_otsu (kdf_tensor_f32 (loss), n, &o, &opt, kdf_tensor_u8 (clean),
                             kdf_tensor_i32 (rank), &n_clean, &r, error);
    threshold = r.threshold_raw;
  } else {
    ok = kdf_loss_rank (kdf_tensor_f32 (loss), n, &opt, kdf_tensor_u8 (clean),
                        kdf_tensor_i32 (rank), &n_clean, error);
  }
  if (!ok) {
    kdf_tensor_unref (clean);
    kdf_tensor_unref (rank);
    return FALSE;
  }
  KdfTensor *flagged = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  const uint8_t *pc = kdf_tensor_u8 (clean);
  uint8_t *pf = kdf_tensor_u8 (flagged);
  for (int64_t i = 0; i < n; i++)
    pf[i] = !pc[i];
  double kept = n ? (double) n_clean / (double) n : 1.0;
  kdf_ctx_metric (ctx, "keep", kept);
  kdf_ctx_metric (ctx, "clean", (double) n_clean);
  kdf_ctx_metric (ctx, "flagged", (double) (n - n_clean));
  if (!isnan (threshold))
    kdf_ctx_metric (ctx, "threshold", threshold);
  kdf_ctx_set_output_tensor (ctx, "clean_mask", clean);
  kdf_ctx_set_output_tensor (ctx, "flagged", flagged);
  kdf_ctx_set_output_tensor (ctx, "rank", rank);
  kdf_ctx_set_output_tensor (ctx, "sample_loss", g_steal_pointer (&loss));
  kdf_ctx_set_output_tensor (ctx, "kept_fraction", kdf_tensor_new_scalar_f32 ((float) kept));
  kdf_ctx_set_output_tensor (ctx, "loss_threshold", kdf_tensor_new_scalar_f32 ((float) threshold));
  return TRUE;
}

static const KdfNodeClass loss_ranking_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "loss_ranking",
  .summary = "small-loss selection: a kept fraction (global, per class, per batch), a "
             "threshold or Otsu",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = rank_run,
};

KDF_PLUGIN (loss_ranking, &loss_ranking_class)
