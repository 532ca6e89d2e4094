/* awe — ambiguity-aware weight estimation (AML-KD, Jiang et al., TNNLS 2023;
 * METHODS §1 awe; kernels in engine/nn/awe.c). Down-weights samples whose features
 * sit ambiguously between the class centres.
 *
 * Centres μ_c are the mean features of each label (or the `centers` input). Modes:
 *   cosine  w_i = sigmoid(cos(φ_i, μ_{ỹ_i}))                          (AML-KD stage 2)
 *   margin  w_i = (cos(φ_i, μ_{ỹ_i}) − max_{c≠ỹ_i} cos(φ_i, μ_c) + 2)/4  (ours)
 *   net     w_i = sigmoid(g([cos(φ_i, μ_c)]_c ⊕ onehot(ỹ_i))), g = Linear(2C,C) PReLU
 *           Linear(C,1)                                              (AML-KD stage 1)
 * In net mode the node keeps g and publishes `loss`, a term for student_update that
 * trains g with the student (same optimizer, gradients zeroed every step) to predict
 * the in-batch small-loss selection of a ce_loss before it in the list; `weights` is g
 * applied to this tick's features (so the weights a tick uses come from g as trained
 * up to the previous tick), `net` a snapshot of g.
 *
 * Weights are in dataset order: row i of `weights` is the sample of row i of
 * `features` and `labels`, however the trainer shuffled its batches. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

typedef struct {
  KdfAweMode mode;
  int n_classes;
  double weight;
} Params;

static const KdfChoice modes[] = {
  { "net", KDF_AWE_NET }, { "cosine", KDF_AWE_COSINE }, { "margin", KDF_AWE_MARGIN }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("features", "f32[N,F]", 0, "the student's features (dataset order)"),
  KDF_PORT ("labels", "i32[N] < C", 0, "the current labels (given or refined)"),
  KDF_PORT ("centers", "f32[C,F]", KDF_PORT_OPTIONAL,
            "class centres to use (default: the mean features of each label)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("weights", "f32[N]", 0, "per-sample weights in [0,1], dataset order"),
  KDF_PORT ("centers", "f32[C,F]", 0, "the class centres used"),
  KDF_PORT ("loss", "loss", 0, "net mode: the term that trains the weight network "
                               "(for student_update, after a selecting ce_loss)"),
  KDF_PORT ("net", "model", 0, "net mode: a snapshot of the weight network"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, mode, "cosine", modes, "net, cosine or margin"),
  KDF_PARAM_INT (Params, n_classes, 0, 0, 1 << 20,
                 "C (0: the rows of 'centers', else max label + 1)"),
  KDF_PARAM_DOUBLE (Params, weight, 1.0, 0, 1e6, "net mode: scale of the weight network's term"),
  { 0 },
};

typedef struct {
  KdfModel *net;
  int64_t c;
} State;

static void
finalize (gpointer state)
{
  State *s = state;
  if (!s)
    return;
  if (s->net)
    kdf_model_unref (s->net);
  g_free (s);
}

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  *state = g_new0 (State, 1);
  return TRUE;
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  State *s = state;
  g_autoptr (KdfTensor) feat = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "features"));
  g_autoptr (KdfTensor) labels = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "labels"));
  KdfTensor *cin = kdf_ctx_input_tensor (ctx, "centers");
  const int64_t n = feat->shape[0], f = feat->shape[1];
  if (labels->shape[0] != n) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'labels' has %" G_GINT64_FORMAT " rows, 'features' %" G_GINT64_FORMAT,
                 (gint64) labels->shape[0], (gint64) n);
    return FALSE;
  }
  int64_t c = p->n_classes;
  if (cin) {
    if (cin->shape[1] != f || (c && cin->shape[0] != c)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "input 'centers' is %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT ", expected C×%"
                   G_GINT64_FORMAT " (the features' width)%s",
                   (gint64) cin->shape[0], (gint64) cin->shape[1], (gint64) f,
                   c ? " with C = param 'n_classes'" : "");
      return FALSE;
    }
    c = cin->shape[0];
  }
  if (c == 0) {
    const int32_t *y = kdf_tensor_i32 (labels);
    for (int64_t i = 0; i < n; i++)
      c = MAX (c, (int64_t) y[i] + 1);
  }
  if (c < 1 || (p->mode == KDF_AWE_MARGIN && c < 2)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%" G_GINT64_FORMAT " classes: mode %s needs %s (set param 'n_classes')",
                 (gint64) c, p->mode == KDF_AWE_MARGIN ? "margin" : "awe",
                 p->mode == KDF_AWE_MARGIN ? "2 or more" : "1 or more");
    return FALSE;
  }
  if (!kdf_ctx_check_labels (ctx, "labels", c, error))
    return FALSE;

  g_autoptr (KdfTensor) centers = NULL;
  if (cin)
    centers = kdf_tensor_contiguous (cin);
  else {
    centers = kdf_tensor_new_2d (KDF_DTYPE_F32, c, f);
    g_autofree int64_t *counts = g_new0 (int64_t, c);
    if (!kdf_class_centers (kdf_tensor_f32 (centers), counts, kdf_tensor_f32 (feat),
                            kdf_tensor_i32 (labels), n, f, c, error))
      return FALSE;
    int64_t empty = 0;
    for (int64_t k = 0; k < c; k++)
      empty += counts[k] == 0;
    if (empty)
      kdf_ctx_warning (ctx, "%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " classes have no sample: "
                       "their centres are zero (cosine 0)", (gint64) empty, (gint64) c);
  }
  g_autofree float *cos = g_new (float, n * c);
  kdf_awe_cosines (cos, kdf_tensor_f32 (feat), kdf_tensor_f32 (centers), n, f, c);
  KdfTensor *w = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  gboolean ok;
  if (p->mode == KDF_AWE_NET) {
    if (s->net && s->c != c) {
      kdf_tensor_unref (w);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "the weight network was made for %" G_GINT64_FORMAT " classes, this tick has %"
                   G_GINT64_FORMAT, (gint64) s->c, (gint64) c);
      return FALSE;
    }
    if (!s->net) {
      s->net = kdf_awe_net_new (c, kdf_ctx_seed (ctx), error);
      if (!s->net) {
        kdf_tensor_unref (w);
        return FALSE;
      }
      s->c = c;
    }
    ok = kdf_awe_net_weights (kdf_tensor_f32 (w), s->net, cos, kdf_tensor_i32 (labels), n, c,
                              kdf_ctx_threads (ctx), error);
  } else
    ok = kdf_awe_weights (kdf_tensor_f32 (w), cos, kdf_tensor_i32 (labels), n, c, p->mode, error);
  if (!ok) {
    kdf_tensor_unref (w);
    return FALSE;
  }
  double mean = 0.0;
  for (int64_t i = 0; i < n; i++)
    mean += kdf_tensor_f32 (w)[i];
  kdf_ctx_metric (ctx, "mean_weight", n ? mean / (double) n : 0.0);
  if (p->mode == KDF_AWE_NET) {
    KdfLoss *l = kdf_loss_awe_new (s->net, labels, centers, p->weight, error);
    if (!l) {
      kdf_tensor_unref (w);
      return FALSE;
    }
    kdf_ctx_set_output_loss (ctx, "loss", l);
    kdf_ctx_set_output_model (ctx, "net", kdf_model_copy (s->net));
  }
  kdf_ctx_set_output_tensor (ctx, "weights", w);
  kdf_ctx_set_output_tensor (ctx, "centers", g_steal_pointer (&centers));
  return TRUE;
}

static const KdfNodeClass awe_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "awe",
  .summary = "ambiguity-aware sample weights from cosines to class centres (net, cosine, margin)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
};

KDF_PLUGIN (awe, &awe_class)
