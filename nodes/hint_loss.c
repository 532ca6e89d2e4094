/* hint_loss — the feature hint (METHODS §2 universal_kd; FitNets, MODUL; engine/nn/
 * contrastive.c): a linear adapter F → T on the student's feature tap, and the term
 * mean over rows, views and columns of (adapter(φ_i) − t_i)², t the teacher's feature
 * tap (T wide, dataset order; mixed like the inputs under mixup). The adapter is the
 * student's (added on its first batch, trained and saved with it). */
#include <kdflow/contrastive.h>
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

typedef struct {
  KDF_LOSS_FIELDS;
  const char *head;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("teacher_features", "f32[N,T]", 0, "the teacher's feature tap, dataset order"),
  KDF_PORT ("mask", "u8[N]", KDF_PORT_OPTIONAL, "the rows the term applies to (default: all)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING (Params, head, "hint", "the student's adapter head (Linear F → T)"),
  KDF_LOSS_PARAMS (Params, 1.0),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  return kdf_loss_publish (ctx, p->net,
                           kdf_loss_hint_new (kdf_ctx_input_tensor (ctx, "teacher_features"),
                                              kdf_ctx_input_tensor (ctx, "mask"), p->head,
                                              kdf_ctx_seed (ctx), p->weight, error));
}

KDF_LOSS_NODE (hint_loss, "feature hint: MSE between a linear adapter of the student's tap and the teacher's",
               inputs, params, Params, run)
