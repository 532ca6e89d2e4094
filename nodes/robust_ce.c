/* robust_ce — Blind KD's training term after the split (METHODS §1; Kaiser et al.,
 * arXiv 2211.11355; engine/nn/loss_methods.c): cross-entropy against
 *
 *   t_i = normalise(((1−β_i)·onehot(ỹ_i) + β_i·p_i)^(1+β_i)),  β_i = alpha<g_i>,
 *
 * g_i the sample's Otsu group (otsu_threshold's groups: 1 = highest agreement, β =
 * 0.30; 4 = lowest, β = 0.70) and p_i the partner's probabilities, a target (the
 * released code lets the gradient flow into the partner through it — fixed here).
 *
 * p comes from the partner network of the pair student_update trains, on the same
 * batch, or is bound per sample (`probs`, or `logits` through a softmax). Until the
 * split exists — `groups` not (yet) there, e.g. a delay edge at tick 0, or the `reached`
 * gate 0 — the term is plain CE on the labels (`before_split = ce`, the teacher's
 * objective in Blind KD), or nothing at all (`before_split = none`: a network that must
 * not see the labels until the split, Blind KD's student). */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

typedef enum { BEFORE_CE, BEFORE_NONE } Before;

typedef struct {
  KDF_LOSS_FIELDS;
  double alpha1, alpha2, alpha3, alpha4;
  Before before_split;
} Params;

static const KdfChoice befores[] = { { "ce", BEFORE_CE }, { "none", BEFORE_NONE }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("labels", "i32[N] < C", 0, "the given (noisy) labels"),
  KDF_PORT ("groups", "i32[N]", KDF_PORT_OPTIONAL, "Otsu groups 1..4 (absent: plain CE)"),
  KDF_PORT ("probs", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the partner's probabilities per sample (default: the partner network's)"),
  KDF_PORT ("logits", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the partner's logits per sample (softmax here)"),
  KDF_PORT ("reached", "u8[]", KDF_PORT_OPTIONAL,
            "a gate (tipping_point.reached): 0 = plain CE"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE (Params, alpha1, 0.30, 0, 1, "β of group 1 (highest agreement)"),
  KDF_PARAM_DOUBLE (Params, alpha2, 0.45, 0, 1, "β of group 2"),
  KDF_PARAM_DOUBLE (Params, alpha3, 0.55, 0, 1, "β of group 3"),
  KDF_PARAM_DOUBLE (Params, alpha4, 0.70, 0, 1, "β of group 4 (lowest agreement)"),
  KDF_PARAM_ENUM (Params, before_split, "ce", befores,
                  "the term before the split: ce (plain CE on the labels) or none (nothing)"),
  KDF_LOSS_PARAMS (Params, 1.0),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *groups = kdf_ctx_input_tensor (ctx, "groups");
  KdfTensor *probs = kdf_ctx_input_tensor (ctx, "probs");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *reached = kdf_ctx_input_tensor (ctx, "reached");
  const double alphas[4] = { p->alpha1, p->alpha2, p->alpha3, p->alpha4 };
  if (probs && logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "connect at most one of 'probs' and 'logits' (the partner's output)");
    return FALSE;
  }
  if (reached && kdf_tensor_u8 (reached)[0] == 0)
    groups = NULL; /* not yet: plain CE */
  g_autoptr (KdfTensor) probs_of = NULL;
  if (logits) {
    g_autoptr (KdfTensor) z = kdf_tensor_contiguous (logits);
    probs_of = kdf_tensor_new_2d (KDF_DTYPE_F32, z->shape[0], z->shape[1]);
    kdf_softmax (kdf_tensor_f32 (probs_of), kdf_tensor_f32 (z), z->shape[0], z->shape[1], 1.0);
  } else if (probs)
    probs_of = kdf_tensor_ref (probs);
  kdf_ctx_metric (ctx, "split", groups != NULL);
  /* before the split with `none`: the term is there (student_update's list stays as
   * wired) and weighs nothing */
  const double weight = !groups && p->before_split == BEFORE_NONE ? 0.0 : p->weight;
  return kdf_loss_publish (ctx, p->net,
                           kdf_loss_robust_ce_new (labels, groups, probs_of, alphas, weight,
                                                   error));
}

KDF_LOSS_NODE (robust_ce, "Blind KD robust CE: targets mixing the label and the partner's p by Otsu group",
               inputs, params, Params, run)
