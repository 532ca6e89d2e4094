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

typedef struct {
  KDF_LOSS_FIELDS;
  double q;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("candidates", "any", 0,
            "u8[N,C] candidate mask, f32[N,C] candidate weights, or i32[N] labels"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE (Params, q, 0.7, 1e-3, 1.0, "the GCE exponent: → 0 is CE, 1 is MAE"),
  KDF_LOSS_PARAMS (Params, 1.0),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfLoss *l = kdf_loss_gce_new (kdf_ctx_input_tensor (ctx, "candidates"), p->q, p->weight, error);
  if (!l)
    g_prefix_error (error, "input 'candidates': ");
  return kdf_loss_publish (ctx, p->net, l);
}

KDF_LOSS_NODE (gce_loss, "generalised CE (1 − p^q)/q, mean over each row's candidate set (PLL)",
               inputs, params, Params, run)
