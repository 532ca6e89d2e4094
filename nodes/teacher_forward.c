/* teacher_forward — a model's forward pass over a whole data set, in eval mode and in
 * batches (METHODS §1): logits, the feature tap, softmax at temperature T, and the
 * per-sample cross-entropy against optional labels. The model comes from the `model`
 * input (a student being trained, say), from a checkpoint file, or — param `arch` — is
 * an untrained network whose weights are drawn from the node's seed: a fixed random
 * feature map that has seen no labels (the label-independent features of sd_pll.lua).
 * A frozen model over unchanged inputs runs once (the engine only reruns a node whose
 * inputs changed). */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include <string.h>

typedef struct {
  const char *checkpoint;
  const char *arch;
  double T;
  int batch;
  gboolean with_features;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("model", "model", KDF_PORT_OPTIONAL,
            "the network (or give param checkpoint or arch)"),
  KDF_PORT ("x", "f32", KDF_PORT_ON_DISK,
            "inputs, N×D or N×C×H×W (or kept on disk: data_loader keep_u8)"),
  KDF_PORT ("labels", "i32[N]", KDF_PORT_OPTIONAL, "labels for sample_loss"),
  KDF_PORT ("rows", "i32[N]", KDF_PORT_OPTIONAL,
            "score these rows of x only, an index view (a held-out fold: no copy of x); "
            "the outputs have one row per entry"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("logits", "f32[N,C]", 0, "the network's outputs"),
  KDF_PORT ("features", "f32[N,F]", 0, "the feature tap"),
  KDF_PORT ("probs", "f32[N,C]", 0, "softmax of the logits at temperature T"),
  KDF_PORT ("sample_loss", "f32[N]", 0, "per-sample cross-entropy (with labels)"),
  KDF_PORT ("predictions", "i32[N]", 0, "the argmax of the logits"),
  KDF_PORT ("model", "model", 0, "the network used"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING (Params, checkpoint, "",
                    "a safetensors file written by kdflow (when no model input)"),
  KDF_PARAM_STRING (Params, arch, "",
                    "an untrained network of this architecture (e.g. mlp:784-2048-10), its "
                    "weights drawn from the node's seed: a fixed random feature map that has "
                    "seen no labels (when no model input and no checkpoint)"),
  KDF_PARAM_DOUBLE (Params, T, 1.0, 0.01, 100, "temperature of probs"),
  KDF_PARAM_INT (Params, batch, 256, 1, 1 << 20, "rows per forward batch"),
  KDF_PARAM_BOOL (Params, with_features, TRUE,
                  "make the 'features' output (N×F floats); false when nothing reads them "
                  "(a node that reads them then fails naming this output)"),
  { 0 },
};

typedef struct {
  KdfModel *loaded; /* from the checkpoint or arch param */
  char *path;       /* the checkpoint's path, or "arch:" and the architecture */
} State;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  *state = g_new0 (State, 1);
  return TRUE;
}

/* The model to run: the input, else the checkpoint (loaded once per path; a relative
 * path is looked up in the run directory too, where a script's stage wrote it). */
static KdfModel *
get_model (KdfNodeCtx *ctx, State *s, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfModel *m = kdf_ctx_input_model (ctx, "model");
  int given = (m != NULL) + (*p->checkpoint != '\0') + (*p->arch != '\0');
  if (given > 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "give one of the 'model' input, param 'checkpoint' and param 'arch', not %s",
                 given == 3 ? "all three" : "two");
    return NULL;
  }
  if (m)
    return m;
  if (given == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "no model: connect the 'model' input or set param 'checkpoint' or 'arch'");
    return NULL;
  }
  g_autofree char *path = *p->arch ? g_strconcat ("arch:", p->arch, NULL)
                                   : kdf_ctx_input_path (ctx, p->checkpoint);
  if (!s->loaded || g_strcmp0 (s->path, path) != 0) {
    KdfModel *loaded = *p->arch ? kdf_model_new_from_arch (p->arch, kdf_ctx_seed (ctx), error)
                                : kdf_model_load (path, error);
    if (!loaded && *p->arch)
      g_prefix_error (error, "param 'arch': ");
    if (!loaded)
      return NULL;
    if (s->loaded)
      kdf_model_unref (s->loaded);
    s->loaded = loaded;
    g_free (s->path);
    s->path = g_steal_pointer (&path);
  }
  return s->loaded;
}

/* Under mpirun (kdflow/dist.h): this rank scores its block of the NX rows, and the
 * blocks are gathered, so every rank holds what one process computes. */
static gboolean
predict_sharded (KdfModel *m, KdfTensor *x, KdfTensor *rows, int64_t nx, int64_t batch,
                 int threads, KdfTensor **logits, KdfTensor **features, GError **error)
{
  int64_t lo, hi;
  kdf_dist_shard (nx, &lo, &hi);
  g_autofree int32_t *block = g_new (int32_t, MAX (hi - lo, 1));
  for (int64_t i = lo; i < hi; i++)
    block[i - lo] = rows ? kdf_tensor_i32 (rows)[i] : (int32_t) i;
  g_autoptr (KdfTensor) lz = NULL;
  g_autoptr (KdfTensor) lf = NULL;
  if (hi > lo && !kdf_model_predict_rows (m, x, block, hi - lo, batch, threads, &lz,
                                          features ? &lf : NULL, error))
    return FALSE;
  const int64_t c = m->n_classes, f = m->n_features;
  KdfTensor *z = kdf_tensor_new_2d (KDF_DTYPE_F32, nx, c);
  KdfTensor *ft = features ? kdf_tensor_new_2d (KDF_DTYPE_F32, nx, f) : NULL;
  if (hi > lo) {
    memcpy (kdf_tensor_f32 (z) + lo * c, kdf_tensor_f32 (lz), (size_t) ((hi - lo) * c) * sizeof (float));
    if (ft)
      memcpy (kdf_tensor_f32 (ft) + lo * f, kdf_tensor_f32 (lf), (size_t) ((hi - lo) * f) * sizeof (float));
  }
  *logits = z;
  if (features)
    *features = ft;
  return kdf_dist_allgather_rows (kdf_tensor_f32 (z), nx, c * (int64_t) sizeof (float), error) &&
         (!ft || kdf_dist_allgather_rows (kdf_tensor_f32 (ft), nx, f * (int64_t) sizeof (float), error));
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfModel *m = get_model (ctx, state, error);
  if (!m)
    return FALSE;
  KdfTensor *x = kdf_ctx_input_tensor (ctx, "x");
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *rows_in = kdf_ctx_input_tensor (ctx, "rows");
  g_autoptr (KdfTensor) rows = rows_in ? kdf_tensor_contiguous (rows_in) : NULL;
  const int64_t nx = rows ? rows->shape[0] : x->shape[0];
  if (labels && labels->shape[0] != nx) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'labels' has %" G_GINT64_FORMAT " rows, '%s' has %" G_GINT64_FORMAT,
                 (gint64) labels->shape[0], rows ? "rows" : "x", (gint64) nx);
    return FALSE;
  }
  if (rows)
    for (int64_t i = 0; i < nx; i++)
      if (kdf_tensor_i32 (rows)[i] < 0 || kdf_tensor_i32 (rows)[i] >= x->shape[0]) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "input 'rows' entry %" G_GINT64_FORMAT " is %d, outside the %" G_GINT64_FORMAT
                     " rows of 'x'", (gint64) i, kdf_tensor_i32 (rows)[i], (gint64) x->shape[0]);
        return FALSE;
      }
  g_autoptr (KdfTensor) logits = NULL;
  g_autoptr (KdfTensor) features = NULL;
  KdfTensor **want_features = p->with_features ? &features : NULL;
  if (kdf_dist_active ()) {
    if (!predict_sharded (m, x, rows, nx, p->batch, kdf_ctx_threads (ctx), &logits, want_features,
                          error))
      return FALSE;
  } else if (!kdf_model_predict_rows (m, x, rows ? kdf_tensor_i32 (rows) : NULL, rows ? nx : -1,
                                      p->batch, kdf_ctx_threads (ctx), &logits, want_features,
                                      error))
    return FALSE;
  const int64_t n = logits->shape[0], c = logits->shape[1];
  /* C is the network's: the labels are checked against it here */
  if (!kdf_ctx_check_labels (ctx, "labels", c, error))
    return FALSE;
  KdfTensor *probs = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
  kdf_softmax (kdf_tensor_f32 (probs), kdf_tensor_f32 (logits), n, c, p->T);
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
    KdfTensor *sl = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
    kdf_cross_entropy (kdf_tensor_f32 (sl), z, y, n, c);
    kdf_ctx_set_output_tensor (ctx, "sample_loss", sl);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++)
      right += kdf_tensor_i32 (pred)[i] == y[i];
    kdf_ctx_metric (ctx, "accuracy", n ? (double) right / (double) n : 0);
  }
  kdf_ctx_set_output_tensor (ctx, "logits", g_steal_pointer (&logits));
  if (features)
    kdf_ctx_set_output_tensor (ctx, "features", g_steal_pointer (&features));
  kdf_ctx_set_output_tensor (ctx, "probs", probs);
  kdf_ctx_set_output_tensor (ctx, "predictions", pred);
  kdf_ctx_set_output_model (ctx, "model", kdf_model_ref (m));
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

static const KdfNodeClass teacher_forward_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "teacher_forward",
  .summary = "a model's logits, features, probs at T and per-sample loss over a data set",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
};

KDF_PLUGIN (teacher_forward, &teacher_forward_class)
