/* kd_loss — Hinton distillation (METHODS §1): T² · KL(softmax_T(z^T) ‖ softmax_T(z^S)),
 * mean over each mini-batch, from the teacher's logits in dataset order. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

typedef struct {
  KDF_LOSS_FIELDS;
  double T;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("teacher_logits", "f32[N,C]", 0, "the teacher's logits, dataset order"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE (Params, T, 4.0, 0.01, 100, "temperature"),
  KDF_LOSS_PARAMS (Params, 0.9),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  return kdf_loss_publish (ctx, p->net,
                           kdf_loss_kd_new (kdf_ctx_input_tensor (ctx, "teacher_logits"), p->T,
                                            p->weight, error));
}

KDF_LOSS_NODE (kd_loss, "distillation term: T²·KL(teacher_T ‖ student_T)", inputs, params, Params,
               run)
