/* ce_loss — the cross-entropy term of a training objective (METHODS §1, loss terms):
 * mean_i w_i · H(t_i, softmax(z_i)) over each mini-batch, hard (N labels) or soft
 * (N×C) targets, optional per-sample weights. The weights multiply each sample's CE
 * before the mean — not mean(w)·mean(CE), as AML-KD's released code computes. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  { .name = "targets", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .summary = "N i32 labels or N×C f32 soft targets (dataset order)" },
  { .name = "weights", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 1, .shape = "N",
    .flags = KDF_PORT_OPTIONAL, .summary = "per-sample weights (default 1)" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  { .name = "loss", .kind = KDF_VALUE_LOSS, .rank = -1, .summary = "the term, for student_update" },
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE ("weight", 1.0, 0, 1e6, "scale of the term in the objective"),
  KDF_LOSS_NET_PARAM,
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *targets = kdf_ctx_input_tensor (ctx, "targets");
  KdfTensor *weights = kdf_ctx_input_tensor (ctx, "weights");
  gboolean hard = targets->dtype == KDF_DTYPE_I32 && targets->rank == 1;
  gboolean soft = targets->dtype == KDF_DTYPE_F32 && targets->rank == 2;
  if (!hard && !soft) {
    g_autofree char *d = kdf_tensor_describe (targets);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'targets' must be i32[N] labels or f32[N,C] soft targets, got %s", d);
    return FALSE;
  }
  if (weights && weights->shape[0] != targets->shape[0]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'weights' has %" G_GINT64_FORMAT " rows, 'targets' %" G_GINT64_FORMAT,
                 (gint64) weights->shape[0], (gint64) targets->shape[0]);
    return FALSE;
  }
  KdfLoss *l = kdf_loss_ce_new (targets, weights, kdf_ctx_param_double (ctx, "weight"), error);
  if (!l)
    return FALSE;
  kdf_loss_set_nets (l, kdf_loss_nets_param (ctx));
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

static const KdfNodeClass ce_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "ce_loss",
  .summary = "cross-entropy term: mean of w_i·CE_i, hard or soft targets",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = run,
};

KDF_PLUGIN (ce_loss, &ce_loss_class)
