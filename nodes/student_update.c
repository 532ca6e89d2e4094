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

typedef enum { AUG_NONE, AUG_SHIFT, AUG_FLIP, AUG_SHIFT_FLIP } Augment;

typedef struct {
  const char *arch, *arch2;
  int epochs;
  int batch;
  KdfOptimKind optimizer;
  double lr, momentum;
  gboolean nesterov;
  double weight_decay;
  guint augment; /* KdfAugmentFlags */
  int shift;
  double noise;
  double mixup;
  const char *save;
  gboolean with_features;
} Params;

static const KdfChoice optimizers[] = {
  { "sgd", KDF_OPTIM_SGD }, { "adam", KDF_OPTIM_ADAM }, { 0 } };
static const KdfChoice augments[] = {
  { "none", KDF_AUGMENT_NONE },
  { "shift", KDF_AUGMENT_SHIFT },
  { "flip", KDF_AUGMENT_FLIP },
  { "shift+flip", KDF_AUGMENT_SHIFT | KDF_AUGMENT_FLIP },
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("x", "f32", KDF_PORT_ON_DISK,
            "training inputs, N×D or N×C×H×W (or kept on disk: data_loader keep_u8)"),
  KDF_PORT ("losses", "loss", KDF_PORT_MULTI, "the loss terms, summed"),
  KDF_PORT ("model", "model", KDF_PORT_OPTIONAL,
            "initial weights of the student (copied), instead of arch"),
  KDF_PORT ("model2", "model", KDF_PORT_OPTIONAL,
            "initial weights of the partner (copied), instead of arch2"),
  KDF_PORT ("rows", "i32[N]", KDF_PORT_OPTIONAL,
            "train on these rows of x only, an index view (a fold, the rows a filter kept: "
            "no copy of x); the terms' inputs and the per-sample outputs then have one row "
            "per entry"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("model", "model", 0, "a snapshot of the student after this tick"),
  KDF_PORT ("model2", "model", 0, "a snapshot of the partner after this tick"),
  KDF_PORT ("logits", "f32[N,C]", 0, "the student's logits of the training pass, dataset order"),
  KDF_PORT ("logits2", "f32[N,C]", 0, "the partner's logits of the training pass"),
  KDF_PORT ("sample_loss", "f32[N]", 0, "each sample's loss in the training pass: Σ term weight × the term's unweighted per-sample loss"),
  KDF_PORT ("features", "f32[N,F]", 0, "the student's feature tap in the training pass"),
  KDF_PORT ("selected", "u8[N]", 0,
            "1 where the sample counted in its mini-batch in the last epoch (a term's "
            "in-batch small-loss selection, e.g. ce_loss keep < 1; all 1 without one)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING (Params, arch, "", "the student, e.g. mlp:784-256-10 (or connect 'model')"),
  KDF_PARAM_STRING (Params, arch2, "", "a partner trained jointly with one optimizer (or 'model2')"),
  KDF_PARAM_INT (Params, epochs, 1, 1, 1000000, "epochs per tick"),
  KDF_PARAM_INT (Params, batch, 128, 1, 1 << 20, "mini-batch size"),
  KDF_PARAM_ENUM (Params, optimizer, "sgd", optimizers, "sgd or adam"),
  KDF_PARAM_DOUBLE (Params, lr, 0.1, 1e-12, 100, "learning rate (may be a schedule over ticks)"),
  KDF_PARAM_DOUBLE (Params, momentum, 0.9, 0, 0.9999, "SGD momentum"),
  KDF_PARAM_BOOL (Params, nesterov, FALSE, "Nesterov momentum"),
  KDF_PARAM_DOUBLE (Params, weight_decay, 5e-4, 0, 1, "L2 weight decay"),
  KDF_PARAM_ENUM (Params, augment, "none", augments,
                  "image augmentation (two views when a loss asks)"),
  KDF_PARAM_INT (Params, shift, 2, 1, 64, "pixels of the random shift"),
  KDF_PARAM_DOUBLE (Params, noise, 0, 0, 100,
                    "std of Gaussian noise added to each view's inputs (0: none); with "
                    "augment, what makes a contrastive term's two views differ"),
  KDF_PARAM_DOUBLE (Params, mixup, 0, 0, 100, "mixup Beta(α, α); 0 is off"),
  KDF_PARAM_STRING (Params, save, "", "write the student's checkpoint here after each tick "
                                      "(relative paths go into the run directory)"),
  KDF_PARAM_BOOL (Params, with_features, TRUE,
                  "make the 'features' output (N×F floats); false for a student whose features "
                  "nothing reads (a node that reads them then fails naming this output)"),
  { 0 },
};

typedef struct {
  KdfModel *net[2];
  int n_nets;
  KdfOptimizer *opt;
  KdfTrainer *tr;
  gboolean warned_views;
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
  g_free (s);
}

static KdfModel *
build_net (KdfNodeCtx *ctx, const char *port, const char *arch_param, const char *arch,
           guint64 seed, gboolean required, GError **error)
{
  KdfModel *given = kdf_ctx_input_model (ctx, port);
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
  const Params *p = kdf_ctx_params (ctx);
  State *s = g_new0 (State, 1);
  *state = s;
  guint64 seed = kdf_ctx_seed (ctx);
  s->net[0] = build_net (ctx, "model", "arch", p->arch, seed, TRUE, error);
  if (!s->net[0])
    return FALSE;
  GError *local = NULL;
  s->net[1] = build_net (ctx, "model2", "arch2", p->arch2, seed ^ 0x5bd1e995u, FALSE, &local);
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  s->n_nets = s->net[1] ? 2 : 1;
  KdfOptimConfig oc = { .kind = p->optimizer, .lr = p->lr, .weight_decay = p->weight_decay,
                        .momentum = p->momentum, .nesterov = p->nesterov };
  s->opt = kdf_optimizer_new (&oc, error);
  if (!s->opt)
    return FALSE;
  for (int k = 0; k < s->n_nets; k++)
    if (!kdf_optimizer_add_model (s->opt, s->net[k], error))
      return FALSE;
  KdfTrainConfig tc = { .batch = p->batch, .augment = p->augment, .shift = p->shift,
                        .mixup_alpha = p->mixup, .noise = p->noise };
  s->tr = kdf_trainer_new (s->net[0], s->net[1], s->opt, &tc, error);
  return s->tr != NULL;
}

typedef struct {
  KdfNodeCtx *ctx;
  int epoch, epochs;
} Progress;

static void
progress (double fraction, gpointer data)
{
  Progress *pr = data;
  kdf_ctx_progress (pr->ctx, (pr->epoch + fraction) / pr->epochs);
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  State *s = state;
  KdfTensor *x = kdf_ctx_input_tensor (ctx, "x");
  KdfTensor *rows_in = kdf_ctx_input_tensor (ctx, "rows");
  g_autoptr (KdfTensor) rows = rows_in ? kdf_tensor_contiguous (rows_in) : NULL;
  const int64_t n = rows ? rows->shape[0] : x->rank > 0 ? x->shape[0] : 0;
  if (rows) {
    const int64_t nx = x->rank > 0 ? x->shape[0] : 0;
    for (int64_t i = 0; i < n; i++)
      if (kdf_tensor_i32 (rows)[i] < 0 || kdf_tensor_i32 (rows)[i] >= nx) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "input 'rows' entry %" G_GINT64_FORMAT " is %d, outside the %" G_GINT64_FORMAT
                     " rows of 'x'", (gint64) i, kdf_tensor_i32 (rows)[i], (gint64) nx);
        return FALSE;
      }
    if (n == 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'rows' is empty: no rows to train on");
      return FALSE;
    }
  }
  guint n_losses = kdf_ctx_input_count (ctx, "losses");
  g_autofree KdfLoss **losses = g_new0 (KdfLoss *, n_losses + 1);
  for (guint i = 0; i < n_losses; i++)
    losses[i] = kdf_ctx_input_nth (ctx, "losses", i);
  if (!kdf_trainer_check_losses (s->tr, n, losses, n_losses, error))
    return FALSE;
  if (p->augment == 0 && !(p->noise > 0) && !s->warned_views)
    for (guint i = 0; i < n_losses; i++)
      if (losses[i]->needs & KDF_LOSS_NEEDS_TWO_VIEWS) {
        /* two copies of the same rows: the contrast is between identical inputs */
        kdf_ctx_warning (ctx, "loss '%s' contrasts two views of each batch, but with augment "
                         "'none' and noise 0 the two views are identical (set param 'augment' "
                         "or 'noise')", losses[i]->name);
        s->warned_views = TRUE;
        break;
      }
  kdf_optimizer_set_lr (s->opt, p->lr);

  /* the training pass's outputs, in dataset order */
  g_autoptr (KdfTensor) sample_loss = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  g_autoptr (KdfTensor) logits = kdf_tensor_new_2d (KDF_DTYPE_F32, n, s->net[0]->n_classes);
  g_autoptr (KdfTensor) logits2 =
      s->n_nets == 2 ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, s->net[1]->n_classes) : NULL;
  g_autoptr (KdfTensor) features =
      p->with_features ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, s->net[0]->n_features) : NULL;
  g_autoptr (KdfTensor) selected = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  Progress pr = { ctx, 0, p->epochs };
  KdfEpochResult res = {
    .sample_loss = kdf_tensor_f32 (sample_loss),
    .logits = kdf_tensor_f32 (logits),
    .logits2 = logits2 ? kdf_tensor_f32 (logits2) : NULL,
    .features = features ? kdf_tensor_f32 (features) : NULL,
    .selected = kdf_tensor_u8 (selected),
    .progress = progress,
    .progress_data = &pr,
  };
  /* the view lives while this run holds ROWS; it is dropped before returning */
  kdf_trainer_set_rows (s->tr, rows ? kdf_tensor_i32 (rows) : NULL, rows ? n : 0);
  for (int e = 0; e < p->epochs; e++) {
    pr.epoch = res.epoch = e;
    if (!kdf_trainer_epoch (s->tr, x, losses, n_losses, kdf_ctx_rng (ctx), kdf_ctx_threads (ctx),
                            &res, kdf_ctx_cancellable (ctx), error)) {
      kdf_trainer_set_rows (s->tr, NULL, 0);
      return FALSE;
    }
  }
  kdf_trainer_set_rows (s->tr, NULL, 0);
  if (*p->save) {
    g_autofree char *path = kdf_ctx_output_path (ctx, p->save);
    if (!kdf_model_save (s->net[0], path, error))
      return FALSE;
  }
  kdf_ctx_metric (ctx, "loss", res.loss);
  kdf_ctx_metric (ctx, "lr", p->lr);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++)
    kept += kdf_tensor_u8 (selected)[i] != 0;
  kdf_ctx_metric (ctx, "selected", n ? (double) kept / (double) n : 1.0);
  /* snapshots: what is published is never written again */
  kdf_ctx_set_output_model (ctx, "model", kdf_model_copy (s->net[0]));
  kdf_ctx_set_output_tensor (ctx, "logits", g_steal_pointer (&logits));
  if (s->n_nets == 2) {
    kdf_ctx_set_output_model (ctx, "model2", kdf_model_copy (s->net[1]));
    kdf_ctx_set_output_tensor (ctx, "logits2", g_steal_pointer (&logits2));
  }
  kdf_ctx_set_output_tensor (ctx, "sample_loss", g_steal_pointer (&sample_loss));
  if (features)
    kdf_ctx_set_output_tensor (ctx, "features", g_steal_pointer (&features));
  kdf_ctx_set_output_tensor (ctx, "selected", g_steal_pointer (&selected));
  return TRUE;
}

static const KdfNodeClass student_update_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "student_update",
  .summary = "trains a network (or a pair, jointly) on the sum of its loss terms",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
  .flags = KDF_NODE_EVERY_TICK | KDF_NODE_LEARNS,
};

KDF_PLUGIN (student_update, &student_update_class)
