/* student_update — the training node (METHODS §1): trains one network, or a pair with
 * one optimizer (Blind KD's teacher and student, co-teaching peers), for `epochs`
 * epochs per tick over shuffled mini-batches, on the sum of the loss terms wired into
 * `losses`. Outputs a snapshot of each model, and the training pass's per-sample loss,
 * logits and features in dataset order (what loss ranking and agreement read).
 *
 * All randomness — initial weights, shuffling, augmentation, dropout, mixup — comes
 * from the node's seed (graph seed, node name, tick), so a run is a function of the
 * seed, and bit-identical run to run at one thread. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>
#include <math.h>
#include <string.h>

static const KdfPortSpec inputs[] = {
  { .name = "x", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = -1,
    .summary = "training inputs, N×D or N×C×H×W" },
  { .name = "losses", .kind = KDF_VALUE_LOSS, .rank = -1, .flags = KDF_PORT_MULTI,
    .summary = "the loss terms, summed" },
  { .name = "model", .kind = KDF_VALUE_MODEL, .rank = -1, .flags = KDF_PORT_OPTIONAL,
    .summary = "initial weights of the student (copied), instead of arch" },
  { .name = "model2", .kind = KDF_VALUE_MODEL, .rank = -1, .flags = KDF_PORT_OPTIONAL,
    .summary = "initial weights of the partner (copied), instead of arch2" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT_MODEL ("model"),
  KDF_PORT_MODEL ("model2"),
  KDF_PORT_TENSOR ("logits", F32, 2, "N,C"),
  KDF_PORT_TENSOR ("logits2", F32, 2, "N,C"),
  KDF_PORT_TENSOR ("sample_loss", F32, 1, "N"),
  KDF_PORT_TENSOR ("features", F32, 2, "N,F"),
  { 0 },
};

static const char *const optimizers[] = { "sgd", "adam", NULL };
static const char *const augments[] = { "none", "shift", "flip", "shift+flip", NULL };

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING ("arch", "", "the student, e.g. mlp:784-256-10 (or connect 'model')"),
  KDF_PARAM_STRING ("arch2", "", "a partner trained jointly with one optimizer (or 'model2')"),
  KDF_PARAM_INT ("epochs", 1, 1, 1000000, "epochs per tick"),
  KDF_PARAM_INT ("batch", 128, 1, 1 << 20, "mini-batch size"),
  KDF_PARAM_ENUM ("optimizer", "sgd", optimizers, "sgd or adam"),
  KDF_PARAM_DOUBLE ("lr", 0.1, 1e-12, 100, "learning rate (may be a schedule over ticks)"),
  KDF_PARAM_DOUBLE ("momentum", 0.9, 0, 0.9999, "SGD momentum"),
  KDF_PARAM_BOOL ("nesterov", FALSE, "Nesterov momentum"),
  KDF_PARAM_DOUBLE ("weight_decay", 5e-4, 0, 1, "L2 weight decay"),
  KDF_PARAM_ENUM ("augment", "none", augments, "image augmentation (two views when a loss asks)"),
  KDF_PARAM_INT ("shift", 2, 1, 64, "pixels of the random shift"),
  KDF_PARAM_DOUBLE ("mixup", 0, 0, 100, "mixup Beta(α, α); 0 is off"),
  KDF_PARAM_STRING ("save", "", "write the student's checkpoint here after each tick "
                                "(relative paths go into the run directory)"),
  { 0 },
};

typedef struct {
  KdfModel *net[2];
  int n_nets;
  KdfOptimizer *opt;
  KdfTrainer *tr;
  int32_t *order;
  float *batch_loss;
  int64_t cap;
} State;

static void
finalize (gpointer state)
{
  State *s = state;
  if (!s)
    return;
  kdf_trainer_free (s->tr);
  if (s->opt)
    kdf_optimizer_unref (s->opt);
  for (int k = 0; k < 2; k++)
    if (s->net[k])
      kdf_model_unref (s->net[k]);
  g_free (s->order);
  g_free (s->batch_loss);
  g_free (s);
}

static KdfModel *
build_net (KdfNodeCtx *ctx, const char *port, const char *arch_param, guint64 seed,
           gboolean required, GError **error)
{
  KdfModel *given = kdf_ctx_input_model (ctx, port);
  const char *arch = kdf_ctx_param_string (ctx, arch_param);
  if (given && *arch) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "give either the '%s' input or param '%s', not both", port, arch_param);
    return NULL;
  }
  if (given)
    return kdf_model_copy (given); /* the upstream model stays as it was */
  if (*arch)
    return kdf_model_new_from_arch (arch, seed, error);
  if (required)
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "no student: set param '%s' (e.g. \"mlp:784-256-10\") or connect '%s'",
                 arch_param, port);
  return NULL;
}

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  State *s = g_new0 (State, 1);
  *state = s;
  guint64 seed = kdf_ctx_seed (ctx);
  s->net[0] = build_net (ctx, "model", "arch", seed, TRUE, error);
  if (!s->net[0])
    return FALSE;
  GError *local = NULL;
  s->net[1] = build_net (ctx, "model2", "arch2", seed ^ 0x5bd1e995u, FALSE, &local);
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  s->n_nets = s->net[1] ? 2 : 1;
  KdfOptimConfig oc = { 0 };
  oc.kind = kdf_ctx_param_enum (ctx, "optimizer") == 0 ? KDF_OPTIM_SGD : KDF_OPTIM_ADAM;
  oc.lr = kdf_ctx_param_double (ctx, "lr");
  oc.weight_decay = kdf_ctx_param_double (ctx, "weight_decay");
  oc.momentum = kdf_ctx_param_double (ctx, "momentum");
  oc.nesterov = kdf_ctx_param_bool (ctx, "nesterov");
  s->opt = kdf_optimizer_new (&oc, error);
  if (!s->opt)
    return FALSE;
  for (int k = 0; k < s->n_nets; k++)
    if (!kdf_optimizer_add_model (s->opt, s->net[k], error))
      return FALSE;
  static const guint aug[] = { KDF_AUGMENT_NONE, KDF_AUGMENT_SHIFT, KDF_AUGMENT_FLIP,
                               KDF_AUGMENT_SHIFT | KDF_AUGMENT_FLIP };
  KdfTrainConfig tc = { 0 };
  tc.batch = kdf_ctx_param_int (ctx, "batch");
  tc.augment = aug[kdf_ctx_param_enum (ctx, "augment")];
  tc.shift = (int) kdf_ctx_param_int (ctx, "shift");
  tc.mixup_alpha = kdf_ctx_param_double (ctx, "mixup");
  s->tr = kdf_trainer_new (s->net[0], s->net[1], s->opt, &tc, error);
  return s->tr != NULL;
}

static gboolean
check_losses (KdfNodeCtx *ctx, State *s, int64_t n, GError **error)
{
  guint count = kdf_ctx_input_count (ctx, "losses");
  for (guint i = 0; i < count; i++) {
    KdfLoss *l = kdf_ctx_input_nth (ctx, "losses", i);
    if (l->n_samples >= 0 && l->n_samples != n) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "loss term %u ('%s') is bound to %" G_GINT64_FORMAT " samples, 'x' has %" G_GINT64_FORMAT,
                   i + 1, l->name, (gint64) l->n_samples, (gint64) n);
      return FALSE;
    }
    for (int k = 0; k < s->n_nets; k++)
      if ((l->nets & (1u << k)) && l->n_classes >= 0 && l->n_classes != s->net[k]->n_classes) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "loss term %u ('%s') has %" G_GINT64_FORMAT " classes, the %s ('%s') %" G_GINT64_FORMAT,
                     i + 1, l->name, (gint64) l->n_classes, k ? "partner" : "student",
                     s->net[k]->arch, (gint64) s->net[k]->n_classes);
        return FALSE;
      }
    if ((l->needs & KDF_LOSS_NEEDS_PARTNER) && s->n_nets < 2) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss term %u ('%s') reads the partner network on each batch, but there is "
                   "none (set arch2 or connect model2)",
                   i + 1, l->name);
      return FALSE;
    }
    if ((l->nets & KDF_LOSS_NET1) && s->n_nets < 2) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss term %u ('%s') is for the partner network, but there is none (set arch2)",
                   i + 1, l->name);
      return FALSE;
    }
  }
  return TRUE;
}

static char *
resolve_save_path (KdfNodeCtx *ctx, const char *path)
{
  if (g_path_is_absolute (path) || !kdf_ctx_run_dir (ctx))
    return g_strdup (path);
  return g_build_filename (kdf_ctx_run_dir (ctx), path, NULL);
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  State *s = state;
  KdfTensor *x = kdf_ctx_input_tensor (ctx, "x");
  const int64_t n = x->rank > 0 ? x->shape[0] : 0;
  if (n <= 0 || n > G_MAXINT32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'x' must have 1 to 2^31 rows, got %" G_GINT64_FORMAT, (gint64) n);
    return FALSE;
  }
  if (!check_losses (ctx, s, n, error))
    return FALSE;
  guint n_losses = kdf_ctx_input_count (ctx, "losses");
  g_autofree KdfLoss **losses = g_new0 (KdfLoss *, n_losses + 1);
  for (guint i = 0; i < n_losses; i++)
    losses[i] = kdf_ctx_input_nth (ctx, "losses", i);

  const int64_t batch = kdf_ctx_param_int (ctx, "batch");
  const int epochs = (int) kdf_ctx_param_int (ctx, "epochs");
  const int threads = kdf_ctx_threads (ctx);
  const double lr = kdf_ctx_param_double (ctx, "lr");
  kdf_optimizer_set_lr (s->opt, lr);
  if (s->cap < n) {
    s->order = g_renew (int32_t, s->order, n);
    s->cap = n;
  }
  s->batch_loss = g_renew (float, s->batch_loss, MIN (batch, n));
  g_autoptr (KdfTensor) sample_loss = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  KdfTensor *logits[2] = { NULL, NULL };
  for (int k = 0; k < s->n_nets; k++)
    logits[k] = kdf_tensor_new_2d (KDF_DTYPE_F32, n, s->net[k]->n_classes);
  g_autoptr (KdfTensor) features = kdf_tensor_new_2d (KDF_DTYPE_F32, n, s->net[0]->n_features);
  GRand *rng = kdf_ctx_rng (ctx);
  GCancellable *cancel = kdf_ctx_cancellable (ctx);
  double epoch_loss = 0;
  gboolean ok = TRUE;

  for (int e = 0; e < epochs && ok; e++) {
    /* a fresh permutation each epoch (Fisher–Yates) */
    for (int64_t i = 0; i < n; i++)
      s->order[i] = (int32_t) i;
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = g_rand_int_range (rng, 0, (gint32) (i + 1));
      int32_t t = s->order[i];
      s->order[i] = s->order[j];
      s->order[j] = t;
    }
    double sum = 0;
    int64_t batches = 0;
    for (int64_t off = 0; off < n && ok; off += batch) {
      if (g_cancellable_set_error_if_cancelled (cancel, error)) {
        ok = FALSE;
        break;
      }
      const int64_t nb = MIN (batch, n - off);
      const int32_t *rows = s->order + off;
      double loss = 0;
      ok = kdf_trainer_step (s->tr, x, rows, nb, losses, n_losses, rng, threads, &loss,
                             s->batch_loss, error);
      if (!ok)
        break;
      if (!isfinite (loss)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_NODE,
                     "the loss is %g at epoch %d, batch %" G_GINT64_FORMAT " (lr %g too high?)",
                     loss, e + 1, (gint64) batches + 1, lr);
        ok = FALSE;
        break;
      }
      sum += loss;
      batches++;
      /* the training pass's outputs, scattered back to dataset order */
      float *sl = kdf_tensor_f32 (sample_loss);
      for (int64_t i = 0; i < nb; i++)
        sl[rows[i]] = s->batch_loss[i];
      for (int k = 0; k < s->n_nets; k++) {
        const int64_t c = s->net[k]->n_classes;
        const float *z = kdf_model_get_logits (s->net[k]);
        float *out = kdf_tensor_f32 (logits[k]);
        for (int64_t i = 0; i < nb; i++)
          memcpy (out + (int64_t) rows[i] * c, z + i * c, (size_t) c * sizeof (float));
      }
      const int64_t f = s->net[0]->n_features;
      const float *h = kdf_model_get_features (s->net[0]);
      float *fo = kdf_tensor_f32 (features);
      for (int64_t i = 0; i < nb; i++)
        memcpy (fo + (int64_t) rows[i] * f, h + i * f, (size_t) f * sizeof (float));
      kdf_ctx_progress (ctx, ((double) e * n + off + nb) / ((double) epochs * n));
    }
    epoch_loss = batches ? sum / batches : 0;
  }
  if (ok) {
    const char *save = kdf_ctx_param_string (ctx, "save");
    if (*save) {
      g_autofree char *path = resolve_save_path (ctx, save);
      ok = kdf_model_save (s->net[0], path, error);
    }
  }
  if (!ok) {
    for (int k = 0; k < 2; k++)
      kdf_tensor_unref (logits[k]);
    return FALSE;
  }
  kdf_ctx_metric (ctx, "loss", epoch_loss);
  kdf_ctx_metric (ctx, "lr", lr);
  /* snapshots: what is published is never written again */
  kdf_ctx_set_output_model (ctx, "model", kdf_model_copy (s->net[0]));
  kdf_ctx_set_output_tensor (ctx, "logits", logits[0]);
  if (s->n_nets == 2) {
    kdf_ctx_set_output_model (ctx, "model2", kdf_model_copy (s->net[1]));
    kdf_ctx_set_output_tensor (ctx, "logits2", logits[1]);
  }
  kdf_ctx_set_output_tensor (ctx, "sample_loss", g_steal_pointer (&sample_loss));
  kdf_ctx_set_output_tensor (ctx, "features", g_steal_pointer (&features));
  return TRUE;
}

static const KdfNodeClass student_update_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "student_update",
  .summary = "trains a network (or a pair, jointly) on the sum of its loss terms",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .init = init,
  .run = run,
  .finalize = finalize,
  .flags = KDF_NODE_EVERY_TICK,
};

KDF_PLUGIN (student_update, &student_update_class)
