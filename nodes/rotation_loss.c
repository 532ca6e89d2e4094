/* rotation_loss — 4-way rotation prediction (METHODS §1 rotation_loss; Gidaris et al.
 * 2018, MODUL's self-supervision on the open set; engine/nn/contrastive.c): the trainer
 * also forwards each batch row turned by a random 0, 90, 180 or 270° (square images,
 * e.g. 28×28 rows), a linear head F → 4 on the student's features predicts the turn,
 * and the term is the mean cross-entropy over the `mask` rows. The head is the
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
  KDF_PORT ("mask", "u8[N]", KDF_PORT_OPTIONAL,
            "the rows the term applies to (e.g. the open set; default: all)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_STRING (Params, head, "rot", "the student's head the term trains (Linear F → 4)"),
  KDF_LOSS_PARAMS (Params, 1.0),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  return kdf_loss_publish (ctx, p->net,
                           kdf_loss_rotation_new (kdf_ctx_input_tensor (ctx, "mask"), p->head,
                                                  kdf_ctx_seed (ctx), p->weight, error));
}

KDF_LOSS_NODE (rotation_loss, "4-way rotation prediction through a linear head on the student's features",
               inputs, params, Params, run)
