/* keep_best — model selection: keeps the model (and an optional tensor that goes with
 * it) of the tick whose score was best so far, e.g. the noisy-validation accuracy, and
 * can write that model's checkpoint. A selection node learns from its score, so the
 * engine refuses a score computed from the test split (the test split is for reporting
 * only: choosing the checkpoint by test accuracy is training on the test set).
 *
 * Ties keep the earlier tick; a NaN score never wins. The score is read each time it
 * changes, so the node follows a metric that an evaluate node recomputes each tick. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>
#include <math.h>

typedef enum { MODE_MAX, MODE_MIN } Mode;

typedef struct {
  Mode mode;
  const char *save;
} Params;

static const KdfChoice modes[] = { { "max", MODE_MAX }, { "min", MODE_MIN }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("score", "f32[]", 0, "the number models are chosen by (e.g. noisy-validation accuracy)"),
  KDF_PORT ("model", "model", KDF_PORT_OPTIONAL, "the model to keep when its score is the best"),
  KDF_PORT ("value", "any", KDF_PORT_OPTIONAL, "a tensor kept with it (e.g. its logits)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("model", "model", 0, "the model of the best tick so far"),
  KDF_PORT ("value", "any", 0, "the tensor of the best tick so far"),
  KDF_PORT ("best", "f32[]", 0, "the best score so far"),
  KDF_PORT ("tick", "i32[]", 0, "the tick it came at"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, mode, "max", modes, "max: higher is better; min: lower is better"),
  KDF_PARAM_STRING (Params, save, "",
                    "write the best model's checkpoint here whenever it changes (relative "
                    "paths go into the run directory)"),
  { 0 },
};

typedef struct {
  double best;
  gboolean have;
} State;

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
  const double v = kdf_tensor_f32 (kdf_ctx_input_tensor (ctx, "score"))[0];
  KdfModel *model = kdf_ctx_input_model (ctx, "model");
  KdfTensor *value = kdf_ctx_input_tensor (ctx, "value");
  const gboolean better = isfinite (v) && (!s->have || (p->mode == MODE_MAX ? v > s->best
                                                                            : v < s->best));
  if (!better)
    return TRUE; /* the outputs keep the best tick's */
  if (model && *p->save) {
    g_autofree char *path = kdf_ctx_output_path (ctx, p->save);
    if (!kdf_model_save (model, path, error))
      return FALSE;
  }
  s->best = v;
  s->have = TRUE;
  kdf_ctx_metric (ctx, "best", v);
  kdf_ctx_metric (ctx, "tick", kdf_ctx_tick (ctx));
  if (model)
    kdf_ctx_set_output_model (ctx, "model", kdf_model_ref (model));
  if (value)
    kdf_ctx_set_output_tensor (ctx, "value", kdf_tensor_ref (value));
  kdf_ctx_set_output_tensor (ctx, "best", kdf_tensor_new_scalar_f32 ((float) v));
  KdfTensor *tick = kdf_tensor_new (KDF_DTYPE_I32, 0, NULL);
  kdf_tensor_i32 (tick)[0] = (int32_t) kdf_ctx_tick (ctx);
  kdf_ctx_set_output_tensor (ctx, "tick", tick);
  return TRUE;
}

static const KdfNodeClass keep_best_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "keep_best",
  .summary = "model selection: the model (and a tensor) of the best-scoring tick so far",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = g_free,
  .flags = KDF_NODE_LEARNS,
};

KDF_PLUGIN (keep_best, &keep_best_class)
