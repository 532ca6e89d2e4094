/* ce_loss — the cross-entropy term of a training objective (METHODS §1, loss terms):
 * mean_i w_i · H(t_i, softmax(z_i)) over each mini-batch, hard (N labels) or soft
 * (N×C) targets, optional per-sample weights. The weights multiply each sample's CE
 * before the mean — not mean(w)·mean(CE), as AML-KD's released code computes.
 *
 * In-batch small-loss selection (AML-KD, Co-teaching): with keep < 1 only the
 * ⌊keep·B⌋ smallest CEs of each of the trainer's shuffled mini-batches count (the
 * mean is over them), with otsu = true those below the Otsu threshold of the batch's
 * CEs; a `keep_fraction` input (e.g. loss_ranking's kept_fraction, Otsu on the
 * previous tick's sample_loss, through a delay edge) sets keep. student_update's
 * `selected` output shows which samples counted. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>
#include <math.h>

#include "loss-common.h"

typedef struct {
  KDF_LOSS_FIELDS;
  double keep;
  gboolean otsu;
  int bins;
} Params;

static const KdfParamSpec params[] = {
  KDF_LOSS_PARAMS (Params, 1.0),
  KDF_PARAM_DOUBLE (Params, keep, 1.0, 0.0, 1.0,
                    "in-batch selection: only the ⌊keep·B⌋ smallest CEs of each mini-batch "
                    "count (1 = all; a schedule is fine)"),
  KDF_PARAM_BOOL (Params, otsu, FALSE,
                  "in-batch selection by the Otsu threshold of each batch's CEs (no noise "
                  "rate needed)"),
  KDF_PARAM_INT (Params, bins, 1000, 8, 10000000, "otsu: histogram bins"),
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("targets", "any", 0, "N i32 labels or N×C f32 soft targets (dataset order)"),
  KDF_PORT ("weights", "f32[N]", KDF_PORT_OPTIONAL, "per-sample weights (default 1)"),
  KDF_PORT ("keep_fraction", "f32[]", KDF_PORT_OPTIONAL,
            "the kept fraction of each batch, instead of param keep (e.g. loss_ranking's "
            "kept_fraction of the previous tick)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *targets = kdf_ctx_input_tensor (ctx, "targets");
  KdfTensor *weights = kdf_ctx_input_tensor (ctx, "weights");
  gboolean hard = targets->dtype == KDF_DTYPE_I32 && targets->rank == 1;
  gboolean soft = targets->dtype == KDF_DTYPE_F32 && targets->rank == 2;
  if (!hard && !soft) {
    g_autofree char *d = kdf_tensor_describe (targets);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'targets' must be i32[N] labels or f32[N,C] soft targets, got %s", d);
    return FALSE;
  }
  if (weights && weights->shape[0] != targets->shape[0]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "input 'weights' has %" G_GINT64_FORMAT " rows, 'targets' %" G_GINT64_FORMAT,
                 (gint64) weights->shape[0], (gint64) targets->shape[0]);
    return FALSE;
  }
  KdfTensor *kf = kdf_ctx_input_tensor (ctx, "keep_fraction");
  double keep = p->keep;
  if (kf) {
    keep = kdf_tensor_get_flat (kf, 0);
    if (!(keep >= 0.0 && keep <= 1.0)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "input 'keep_fraction' is %g, expected a fraction in [0,1]", keep);
      return FALSE;
    }
  }
  if (p->otsu && (kf || p->keep < 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'otsu' is true and a kept fraction is given (%s); use one",
                 kf ? "input 'keep_fraction'" : "param 'keep'");
    return FALSE;
  }
  KdfLoss *l = kdf_loss_ce_new (targets, weights, p->weight, error);
  if (!l)
    return FALSE;
  KdfSelectKind sel = p->otsu ? KDF_SELECT_OTSU : keep < 1.0 ? KDF_SELECT_SMALL_LOSS : KDF_SELECT_ALL;
  if (!kdf_loss_ce_set_selection (l, sel, keep, p->bins, error)) {
    kdf_loss_unref (l);
    return FALSE;
  }
  kdf_ctx_metric (ctx, "keep", p->otsu ? NAN : keep);
  return kdf_loss_publish (ctx, p->net, l);
}

KDF_LOSS_NODE (ce_loss, "cross-entropy term: mean of w_i·CE_i, hard or soft targets, "
               "optionally over each batch's smallest losses", inputs, params, Params, run)
