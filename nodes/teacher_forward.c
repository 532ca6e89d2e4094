/* teacher_forward — a model's forward pass over a whole data set, in eval mode and in
 * batches (METHODS §1): logits, the feature tap, softmax at temperature T, and the
 * per-sample cross-entropy against optional labels. The model comes from the `model`
 * input (a student being trained, say) or from a checkpoint file; a frozen model over
 * unchanged inputs runs once (the engine only reruns a node whose inputs changed). */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>
#include <string.h>

static const KdfPortSpec inputs[] = {
  { .name = "model", .kind = KDF_VALUE_MODEL, .rank = -1, .flags = KDF_PORT_OPTIONAL,
    .summary = "the network (or give param checkpoint)" },
  { .name = "x", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = -1,
    .summary = "inputs, N×D or N×C×H×W" },
  { .name = "labels", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .flags = KDF_PORT_OPTIONAL, .summary = "labels for sample_loss" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT_TENSOR ("logits", F32, 2, "N,C"),
  KDF_PORT_TENSOR ("features", F32, 2, "N,F"),
  KDF_PORT_TENSOR ("probs", F32, 2, "N,C"),
  KDF_PORT_TENSOR ("sample_loss", F32, 1, "N"),
  KDF_PORT_TENSOR ("predictions", I32, 1, "N"),
  KDF_PORT_MODEL ("model"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING ("checkpoint", "", "a safetensors file written by kdflow (when no model input)"),
  KDF_PARAM_DOUBLE ("T", 1.0, 0.01, 100, "temperature of probs"),
  KDF_PARAM_INT ("batch", 256, 1, 1 << 20, "rows per forward batch"),
  { 0 },
};

typedef struct {
  KdfModel *loaded; /* from the checkpoint param */
  char *path;
} State;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  *state = g_new0 (State, 1);
  return TRUE;
}

static void
finalize (gpointer state)
{
  State *s = state;
  if (s->loaded)
    kdf_model_unref (s->loaded);
  g_free (s->path);
  g_free (s);
}

/* The run directory is where relative checkpoint paths written by a script live. */
static char *
resolve_path (KdfNodeCtx *ctx, const char *path)
{
  if (g_path_is_absolute (path) || g_file_test (path, G_FILE_TEST_EXISTS) || !kdf_ctx_run_dir (ctx))
    return g_strdup (path);
  char *in_run = g_build_filename (kdf_ctx_run_dir (ctx), path, NULL);
  if (g_file_test (in_run, G_FILE_TEST_EXISTS))
    return in_run;
  g_free (in_run);
  return g_strdup (path);
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  State *s = state;
  KdfModel *m = kdf_ctx_input_model (ctx, "model");
  const char *checkpoint = kdf_ctx_param_string (ctx, "checkpoint");
  if (m && *checkpoint) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "give either the 'model' input or param 'checkpoint', not both");
    return FALSE;
  }
  if (!m) {
    if (!*checkpoint) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "no model: connect the 'model' input or set param 'checkpoint'");
      return FALSE;
    }
    g_autofree char *path = resolve_path (ctx, checkpoint);
    if (!s->loaded || g_strcmp0 (s->path, path) != 0) {
      KdfModel *loaded = kdf_model_load (path, error);
      if (!loaded)
        return FALSE;
      if (s->loaded)
        kdf_model_unref (s->loaded);
      s->loaded = loaded;
      g_free (s->path);
      s->path = g_strdup (path);
    }
    m = s->loaded;
  }
  KdfTensor *x = kdf_ctx_input_tensor (ctx, "x");
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  if (labels && labels->shape[0] != x->shape[0]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'labels' has %" G_GINT64_FORMAT " rows, 'x' has %" G_GINT64_FORMAT,
                 (gint64) labels->shape[0], (gint64) x->shape[0]);
    return FALSE;
  }
  KdfTensor *logits = NULL, *features = NULL;
  if (!kdf_model_predict (m, x, kdf_ctx_param_int (ctx, "batch"), kdf_ctx_threads (ctx), &logits,
                          &features, error))
    return FALSE;
  const int64_t n = logits->shape[0], c = logits->shape[1];
  KdfTensor *probs = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
  kdf_softmax (kdf_tensor_f32 (probs), kdf_tensor_f32 (logits), n, c, kdf_ctx_param_double (ctx, "T"));
  KdfTensor *pred = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  const float *z = kdf_tensor_f32 (logits);
  for (int64_t i = 0; i < n; i++) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; j++)
      if (z[i * c + j] > z[i * c + best])
        best = j;
    kdf_tensor_i32 (pred)[i] = (int32_t) best;
  }
  if (labels) {
    g_autoptr (KdfTensor) lab = kdf_tensor_contiguous (labels);
    const int32_t *y = kdf_tensor_i32 (lab);
    for (int64_t i = 0; i < n; i++)
      if (y[i] < 0 || y[i] >= c) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "input 'labels' row %" G_GINT64_FORMAT " is %d, outside [0, %" G_GINT64_FORMAT ")",
                     (gint64) i, y[i], (gint64) c);
        kdf_tensor_unref (logits);
        kdf_tensor_unref (features);
        kdf_tensor_unref (probs);
        kdf_tensor_unref (pred);
        return FALSE;
      }
    KdfTensor *sl = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
    kdf_cross_entropy (kdf_tensor_f32 (sl), z, y, n, c);
    kdf_ctx_set_output_tensor (ctx, "sample_loss", sl);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++)
      right += kdf_tensor_i32 (pred)[i] == y[i];
    kdf_ctx_metric (ctx, "accuracy", n ? (double) right / (double) n : 0);
  }
  kdf_ctx_set_output_tensor (ctx, "logits", logits);
  kdf_ctx_set_output_tensor (ctx, "features", features);
  kdf_ctx_set_output_tensor (ctx, "probs", probs);
  kdf_ctx_set_output_tensor (ctx, "predictions", pred);
  kdf_ctx_set_output_model (ctx, "model", kdf_model_ref (m));
  return TRUE;
}

static const KdfNodeClass teacher_forward_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "teacher_forward",
  .summary = "a model's logits, features, probs at T and per-sample loss over a data set",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .init = init,
  .run = run,
  .finalize = finalize,
};

KDF_PLUGIN (teacher_forward, &teacher_forward_class)
