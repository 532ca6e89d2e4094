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
  KDF_PORT ("labels", "i32[N] < C", 0, "the given (noisy) labels, whose teacher logit is masked"),
  KDF_PORT ("teacher_logits", "f32[N,C]", KDF_PORT_OPTIONAL,
            "a frozen teacher's logits; without it the partner network is the teacher"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const KdfLossParams *p = kdf_ctx_params (ctx);
  return kdf_loss_publish (ctx, p->net,
                           kdf_loss_blind_new (kdf_ctx_input_tensor (ctx, "labels"),
                                               kdf_ctx_input_tensor (ctx, "teacher_logits"),
                                               p->weight, error));
}

KDF_LOSS_NODE (blind_loss, "Blind KD term: MSE to the teacher's logits with the given label's masked",
               inputs, kdf_loss_params, KdfLossParams, run)
