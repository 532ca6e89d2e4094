/* ce_loss — the cross-entropy term of a training objective (METHODS §1, loss terms):
 * mean_i w_i · H(t_i, softmax(z_i)) over each mini-batch, hard (N labels) or soft
 * (N×C) targets, optional per-sample weights. The weights multiply each sample's CE
 * before the mean — not mean(w)·mean(CE), as AML-KD's released code computes. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  KDF_PORT ("targets", "any", 0, "N i32 labels or N×C f32 soft targets (dataset order)"),
  KDF_PORT ("weights", "f32[N]", KDF_PORT_OPTIONAL, "per-sample weights (default 1)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const KdfLossParams *p = kdf_ctx_params (ctx);
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
  return kdf_loss_publish (ctx, p->net, kdf_loss_ce_new (targets, weights, p->weight, error));
}

KDF_LOSS_NODE (ce_loss, "cross-entropy term: mean of w_i·CE_i, hard or soft targets", inputs,
               kdf_loss_params, KdfLossParams, run)
