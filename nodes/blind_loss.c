/* blind_loss — Blind KD's masked-logit distillation term (METHODS §1; Kaiser et al.,
 * arXiv 2211.11355; engine/nn/loss_methods.c):
 *
 *   Σ_i Σ_{c≠ỹ_i} (z^T_ic − z^S_ic)² / (B·(C−1))   per mini-batch,
 *
 * the teacher's logit of the given label masked, so the student must predict it
 * blind. Two teachers:
 *   - the partner network of a pair trained by the same student_update (the paper:
 *     teacher and student online, one optimizer) when `teacher_logits` is not
 *     connected. `net` = student: the student (arch) learns from the partner's
 *     (arch2) masked logits, which are a target — the paper's intent; partner: the
 *     reverse; both: the one MSE differentiated w.r.t. both networks, which is what
 *     the released code does (nothing detaches its teacher);
 *   - a frozen teacher's logits, bound per sample (`teacher_logits`, N×C): each
 *     network `net` names learns from them. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  { .name = "labels", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .summary = "the given (noisy) labels, whose teacher logit is masked" },
  { .name = "teacher_logits", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2,
    .shape = "N,C", .flags = KDF_PORT_OPTIONAL,
    .summary = "a frozen teacher's logits; without it the partner network is the teacher" },
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
  KdfLoss *l = kdf_loss_blind_new (kdf_ctx_input_tensor (ctx, "labels"),
                                   kdf_ctx_input_tensor (ctx, "teacher_logits"),
                                   kdf_ctx_param_double (ctx, "weight"), error);
  if (!l)
    return FALSE;
  kdf_loss_set_nets (l, kdf_loss_nets_param (ctx));
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

static const KdfNodeClass blind_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "blind_loss",
  .summary = "Blind KD term: MSE to the teacher's logits with the given label's masked",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = run,
};

KDF_PLUGIN (blind_loss, &blind_loss_class)
