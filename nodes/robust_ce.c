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
 * split exists the term is plain CE on the labels, as the released code trains before
 * the tipping point: `groups` not (yet) there — e.g. a delay edge at tick 0 — or the
 * `reached` gate 0. In Blind KD the trained net is the teacher (net = partner when
 * the teacher is student_update's arch2) and p the student's. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

static const KdfPortSpec inputs[] = {
  { .name = "labels", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .summary = "the given (noisy) labels" },
  { .name = "groups", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_I32, .rank = 1, .shape = "N",
    .flags = KDF_PORT_OPTIONAL, .summary = "Otsu groups 1..4 (absent: plain CE)" },
  { .name = "probs", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2, .shape = "N,C",
    .flags = KDF_PORT_OPTIONAL,
    .summary = "the partner's probabilities per sample (default: the partner network's)" },
  { .name = "logits", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2, .shape = "N,C",
    .flags = KDF_PORT_OPTIONAL, .summary = "the partner's logits per sample (softmax here)" },
  { .name = "reached", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_U8, .rank = 0,
    .flags = KDF_PORT_OPTIONAL, .summary = "a gate (tipping_point.reached): 0 = plain CE" },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  { .name = "loss", .kind = KDF_VALUE_LOSS, .rank = -1, .summary = "the term, for student_update" },
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE ("alpha1", 0.30, 0, 1, "β of group 1 (highest agreement)"),
  KDF_PARAM_DOUBLE ("alpha2", 0.45, 0, 1, "β of group 2"),
  KDF_PARAM_DOUBLE ("alpha3", 0.55, 0, 1, "β of group 3"),
  KDF_PARAM_DOUBLE ("alpha4", 0.70, 0, 1, "β of group 4 (lowest agreement)"),
  KDF_PARAM_DOUBLE ("weight", 1.0, 0, 1e6, "scale of the term in the objective"),
  KDF_LOSS_NET_PARAM,
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *groups = kdf_ctx_input_tensor (ctx, "groups");
  KdfTensor *probs = kdf_ctx_input_tensor (ctx, "probs");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *reached = kdf_ctx_input_tensor (ctx, "reached");
  const double alphas[4] = { kdf_ctx_param_double (ctx, "alpha1"), kdf_ctx_param_double (ctx, "alpha2"),
                             kdf_ctx_param_double (ctx, "alpha3"), kdf_ctx_param_double (ctx, "alpha4") };
  if (probs && logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "connect at most one of 'probs' and 'logits' (the partner's output)");
    return FALSE;
  }
  if (reached && kdf_tensor_u8 (reached)[0] == 0)
    groups = NULL; /* not yet: plain CE */
  g_autoptr (KdfTensor) p = NULL;
  if (logits) {
    g_autoptr (KdfTensor) z = kdf_tensor_contiguous (logits);
    p = kdf_tensor_new_2d (KDF_DTYPE_F32, z->shape[0], z->shape[1]);
    kdf_softmax (kdf_tensor_f32 (p), kdf_tensor_f32 (z), z->shape[0], z->shape[1], 1.0);
  } else if (probs)
    p = kdf_tensor_ref (probs);
  KdfLoss *l = kdf_loss_robust_ce_new (labels, groups, p, alphas,
                                       kdf_ctx_param_double (ctx, "weight"), error);
  if (!l)
    return FALSE;
  kdf_loss_set_nets (l, kdf_loss_nets_param (ctx));
  kdf_ctx_metric (ctx, "split", groups != NULL);
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

static const KdfNodeClass robust_ce_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "robust_ce",
  .summary = "Blind KD robust CE: targets mixing the label and the partner's p by Otsu group",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .run = run,
};

KDF_PLUGIN (robust_ce, &robust_ce_class)
