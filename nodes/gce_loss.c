/* gce_loss — generalised cross-entropy over candidate sets, the PLL student's loss
 * (METHODS §1; Zhang & Sabuncu, NeurIPS 2018; Jeong & Chung, arXiv 2402.10482;
 * engine/nn/loss_methods.c):
 *
 *   ℓ_i = mean over the candidates k of row i of (1 − p_ik^q)/q,  p = softmax(z),
 *
 * averaged over each mini-batch. `candidates` is topk_refine's u8 N×C mask, or f32
 * N×C non-negative weights (a weighted mean; topk_refine's 1/k soft targets give the
 * same as the mask), or i32 N labels (one candidate: plain GCE). */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  { .name = "candidates", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .summary = "u8[N,C] candidate mask, f32[N,C] candidate weights, or i32[N] labels" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  { .name = "loss", .kind = KDF_VALUE_LOSS, .rank = -1, .summary = "the term, for student_update" },
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE ("q", 0.7, 1e-3, 1.0, "the GCE exponent: → 0 is CE, 1 is MAE"),
  KDF_PARAM_DOUBLE ("weight", 1.0, 0, 1e6, "scale of the term in the objective"),
  KDF_LOSS_NET_PARAM,
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfLoss *l = kdf_loss_gce_new (kdf_ctx_input_tensor (ctx, "candidates"),
                                 kdf_ctx_param_double (ctx, "q"),
                                 kdf_ctx_param_double (ctx, "weight"), error);
  if (!l) {
    g_prefix_error (error, "input 'candidates': ");
    return FALSE;
  }
  kdf_loss_set_nets (l, kdf_loss_nets_param (ctx));
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

static const KdfNodeClass gce_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "gce_loss",
  .summary = "generalised CE (1 − p^q)/q, mean over each row's candidate set (PLL)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = run,
};

KDF_PLUGIN (gce_loss, &gce_loss_class)
