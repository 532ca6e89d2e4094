/* What every loss-term node shares: the params `weight` (the term's scale in the
 * objective) and `net` (the network of a trained pair it trains), the one output
 * `loss`, publishing the term, and the class itself. A loss node is then its inputs,
 * its own params and a run that builds the term:
 *
 *   typedef struct { KDF_LOSS_FIELDS; double T; } Params;
 *   static const KdfParamSpec params[] = {
 *     KDF_PARAM_DOUBLE (Params, T, 4.0, 0.01, 100, "temperature"),
 *     KDF_LOSS_PARAMS (Params, 0.9), { 0 } };
 *   static gboolean run (...) { ...; return kdf_loss_publish (ctx, p->net, kdf_loss_kd_new (...)); }
 *   KDF_LOSS_NODE (kd_loss, "summary", inputs, params, Params, run)
 */
#pragma once

#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

/* The fields every loss node's params struct starts with. */
#define KDF_LOSS_FIELDS                                                                    \
  double weight;                                                                           \
  KdfLossNets net

static const KdfChoice kdf_loss_nets[] = {
  /* "student" is the network student_update builds from `arch`, "partner" the one from
   * `arch2` (Blind KD's teacher, a co-teaching peer) */
  { "student", KDF_LOSS_NET0 },
  { "partner", KDF_LOSS_NET1 },
  { "both", KDF_LOSS_BOTH },
  { 0 },
};

#define KDF_LOSS_PARAMS(S, WEIGHT)                                                         \
  KDF_PARAM_DOUBLE (S, weight, WEIGHT, 0, 1e6, "scale of the term in the objective"),      \
  KDF_PARAM_ENUM (S, net, "student", kdf_loss_nets,                                        \
                  "the network of a trained pair the term applies to")

/* The params of a term that has no others (weight 1 by default). */
typedef struct {
  KDF_LOSS_FIELDS;
} KdfLossParams;

static const KdfParamSpec kdf_loss_params[] = {
  KDF_LOSS_PARAMS (KdfLossParams, 1.0),
  { 0 },
};

static const KdfPortSpec kdf_loss_outputs[] = {
  KDF_PORT ("loss", "loss", 0, "the term, for student_update"),
  { 0 },
};

/* Publishes L on output "loss" for the nets NET; L NULL means it failed (the error is
 * set) and returns FALSE. */
static inline gboolean
kdf_loss_publish (KdfNodeCtx *ctx, KdfLossNets net, KdfLoss *l)
{
  if (!l)
    return FALSE;
  kdf_loss_set_nets (l, net);
  kdf_ctx_set_output_loss (ctx, "loss", l);
  return TRUE;
}

#define KDF_LOSS_NODE(KIND, SUMMARY, INPUTS, PARAMS, PARAMS_TYPE, RUN)                     \
  static const KdfNodeClass KIND##_class = {                                               \
    .struct_size = sizeof (KdfNodeClass), .name = #KIND, .summary = (SUMMARY),             \
    .inputs = (INPUTS), .outputs = kdf_loss_outputs, .params = (PARAMS),                   \
    .params_size = sizeof (PARAMS_TYPE), .run = (RUN) };                                   \
  KDF_PLUGIN (KIND, &KIND##_class)
