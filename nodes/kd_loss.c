/* kd_loss — Hinton distillation (METHODS §1): T² · KL(softmax_T(z^T) ‖ softmax_T(z^S)),
 * mean over each mini-batch, from the teacher's logits in dataset order. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  { .name = "teacher_logits", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2,
    .shape = "N,C", .summary = "the teacher's logits, dataset order" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  { .name = "loss", .kind = KDF_VALUE_LOSS, .rank = -1, .summary = "the term, for student_update" },
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE ("T", 4.0, 0.01, 100, "temperature"),
  KDF_PARAM_DOUBLE ("weight", 0.9, 0, 1e6, "scale of the term in the objective"),
  KDF_LOSS_NET_PARAM,
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfLoss *l = kdf_loss_kd_new (kdf_ctx_input_tensor (ctx, "teacher_logits"),
                                kdf_ctx_param_double (ctx, "T"),
                                kdf_ctx_param_double (ctx, "weight"), error);
  if (!l)
    return FALSE;
  kdf_loss_set_nets (l, kdf_loss_nets_param (ctx));
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

static const KdfNodeClass kd_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "kd_loss",
  .summary = "distillation term: T²·KL(teacher_T ‖ student_T)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = run,
};

KDF_PLUGIN (kd_loss, &kd_loss_class)
