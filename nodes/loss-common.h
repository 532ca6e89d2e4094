/* Shared by the loss-term nodes: which network of a trained pair a term applies to. */
#pragma once

#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

static const char *const kdf_loss_net_choices[] = { "student", "partner", "both", NULL };

/* "student" is the network student_update builds from `arch`, "partner" the one from
 * `arch2` (Blind KD's teacher, a co-teaching peer). */
#define KDF_LOSS_NET_PARAM                                                                  \
  KDF_PARAM_ENUM ("net", "student", kdf_loss_net_choices,                                   \
                  "the network of a trained pair the term applies to")

static inline guint
kdf_loss_nets_param (KdfNodeCtx *ctx)
{
  static const guint nets[] = { KDF_LOSS_NET0, KDF_LOSS_NET1, KDF_LOSS_BOTH };
  return nets[kdf_ctx_param_enum (ctx, "net")];
}
