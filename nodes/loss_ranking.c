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
#include <kdflow/dist.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>

typedef struct {
  double keep;
  KdfRankScope scope;
  int batch;
  gboolean otsu;
  KdfOtsuCriterion criterion;
  int bins;
  int n_classes;
} Params;

static const KdfChoice scopes[] = { { "global", KDF_RANK_SCOPE_GLOBAL },
                                    { "per_class", KDF_RANK_SCOPE_PER_CLASS },
                                    { "batch", KDF_RANK_SCOPE_BATCH },
                                    { 0 } };
static const KdfChoice criteria[] = {
  { "otsu", KDF_OTSU_CRITERION_OTSU }, { "blind", KDF_OTSU_CRITERION_BLIND }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("loss", "f32[N]", KDF_PORT_OPTIONAL, "per-sample losses (or give logits and labels)"),
  KDF_PORT ("logits", "f32[N,C]", KDF_PORT_OPTIONAL, "logits: the loss is their cross entropy"),
  KDF_PORT ("labels", "i32[N] < C", KDF_PORT_OPTIONAL,
            "given labels (for logits and scope per_class)"),
  KDF_PORT ("threshold", "f32[]", KDF_PORT_OPTIONAL,
            "clean ⇔ loss < threshold (e.g. from otsu_threshold)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("clean_mask", "u8[N]", 0, "1 = selected as clean"),
  KDF_PORT ("flagged", "u8[N]", 0, "1 − clean_mask (predicted noisy)"),
  KDF_PORT ("rank", "i32[N]", 0, "position by ascending loss inside the sample's group"),
  KDF_PORT ("sample_loss", "f32[N]", 0, "the losses that were ranked"),
  KDF_PORT ("kept_fraction", "f32[]", 0, "the fraction actually kept as clean"),
  KDF_PORT ("loss_threshold", "f32[]", 0,
            "the loss threshold used (threshold and otsu modes; NaN otherwise)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE (Params, keep, 1.0, 0.0, 1.0,
                    "fraction kept as clean in each group (a schedule is fine)"),
  KDF_PARAM_ENUM (Params, scope, "global", scopes,
                  "global, per_class (inside each given class) or batch"),
  KDF_PARAM_INT (Params, batch, 128, 1, 1 << 30, "scope batch: block size B"),
  KDF_PARAM_BOOL (Params, otsu, FALSE, "threshold the losses by Otsu instead of a kept fraction"),
  KDF_PARAM_ENUM (Params, criterion, "otsu", criteria, "otsu mode: the criterion"),
  KDF_PARAM_INT (Params, bins, 1000, 8, 10000000, "otsu mode: histogram bins"),
  KDF_PARAM_INT (Params, n_classes, 0, 0, 1 << 30,
                 "scope per_class: C (0 = from logits, else max label + 1)"),
  { 0 },
};

/* The per-sample cross entropy of LOGITS (f32 N×C) against LABELS (contiguous i32 N):
 * each rank computes its block of rows and the rows are gathered (one process: all). */
static KdfTensor *
sharded_cross_entropy (KdfTensor *logits, KdfTensor *labels, GError **error)
{
  if (!kdf_dist_active () || logits->shape[0] == 0)
    return kdf_sample_cross_entropy_tensor (logits, labels, error);
  g_autoptr (KdfTensor) z = kdf_tensor_contiguous (logits);
  const int64_t n = z->shape[0], c = z->shape[1];
  if (labels->shape[0] != n) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "sample_cross_entropy: %" G_GINT64_FORMAT " logit rows but %" G_GINT64_FORMAT
                 " labels", (gint64) n, (gint64) labels->shape[0]);
    return NULL;
  }
  if (c > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "sample_cross_entropy: too many classes");
    return NULL;
  }
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  g_autoptr (KdfTensor) out = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  /* an empty block (more ranks than rows) has nothing to check */
  gboolean ok = to == from ||
                kdf_sample_cross_entropy (kdf_tensor_f32 (out) + from, kdf_tensor_f32 (z) + from * c,
                                          to - from, (int) c, c, kdf_tensor_i32 (labels) + from,
                                          error);
  if (!ok && from > 0)
    g_prefix_error (error, "rows from %" G_GINT64_FORMAT ": ", (gint64) from);
  if (!kdf_dist_agree (ok, "sample_cross_entropy", error) ||
      !kdf_dist_allgather_rows (kdf_tensor_f32 (out), n, sizeof (float), error))
    return NULL;
  return g_steal_pointer (&out);
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *loss_in = kdf_ctx_input_tensor (ctx, "loss");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *labels_in = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *thr_in = kdf_ctx_input_tensor (ctx, "threshold");

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
  if (p->scope == KDF_RANK_SCOPE_PER_CLASS && !labels_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "scope per_class needs input 'labels'");
    return FALSE;
  }
  if (thr_in && p->otsu) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'otsu' is true and input 'threshold' is connected; use one");
    return FALSE;
  }

  g_autoptr (KdfTensor) labels = labels_in ? kdf_tensor_contiguous (labels_in) : NULL;
  g_autoptr (KdfTensor) loss = NULL;
  if (logits) {
    /* under mpirun each rank its block of rows, gathered */
    loss = sharded_cross_entropy (logits, labels, error);
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
  opt.keep = p->keep;
  opt.scope = p->scope;
  opt.batch = p->batch;
  if (labels) {
    int c = p->n_classes;
    if (c == 0 && logits)
      c = (int) logits->shape[1];
    if (c == 0) {
      int64_t from, to, big = -1;
      kdf_dist_shard (n, &from, &to);
      const int32_t *y = kdf_tensor_i32 (labels);
      for (int64_t i = from; i < to; i++)
        big = MAX (big, (int64_t) y[i]);
      if (!kdf_dist_allreduce_i64 (&big, 1, KDF_DIST_MAX, error))
        return FALSE;
      const int32_t mx = (int32_t) big;
      if (mx >= 1 << 30) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "input 'labels': the largest label is %d, more than param 'n_classes' may be "
                     "(2^30)", mx);
        return FALSE;
      }
      c = mx + 1;
    }
    if (!kdf_memory_check_elements ((guint64) c, 4 * sizeof (int64_t), "per-class groups", error))
      return FALSE;
    opt.labels = kdf_tensor_i32 (labels);
    opt.n_classes = MAX (c, 1);
  }

  KdfTensor *clean = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  KdfTensor *rank = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  int64_t n_clean = 0;
  double threshold = NAN;
  gboolean ok;
  if (thr_in) {
    threshold = kdf_tensor_get_flat (thr_in, 0);
    ok = kdf_loss_rank_threshold_sharded (kdf_tensor_f32 (loss), n, threshold, &opt,
                                          kdf_tensor_u8 (clean), kdf_tensor_i32 (rank), &n_clean,
                                          error);
  } else if (p->otsu) {
    KdfOtsuOptions o;
    kdf_otsu_options_init (&o);
    o.normalize = TRUE;
    o.bins = p->bins;
    o.criterion = p->criterion;
    KdfOtsuResult r;
    ok = kdf_loss_rank_otsu_sharded (kdf_tensor_f32 (loss), n, &o, &opt, kdf_tensor_u8 (clean),
                                     kdf_tensor_i32 (rank), &n_clean, &r, error);
    threshold = r.threshold_raw;
  } else {
    ok = kdf_loss_rank_sharded (kdf_tensor_f32 (loss), n, &opt, kdf_tensor_u8 (clean),
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
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (loss_ranking, &loss_ranking_class)
