/* self_confidence: per-sample scores of the given label under a model's
 * probabilities, the inputs that otsu_threshold and loss_ranking rank when all a
 * pipeline has is P (N×C) and the given labels ỹ (N):
 *
 *   score[i]  = p[i, ỹ_i]                                  (self-confidence)
 *   loss[i]   = −log max(p[i, ỹ_i], 1e-12)                 (cross entropy of ỹ_i)
 *   margin[i] = (p[i, ỹ_i] − max_{k≠ỹ_i} p[i,k] + 1) / 2   (normalised margin)
 *   pred[i]   = argmax_k p[i,k] (first maximum)
 *
 * Self-confidence and the normalised margin are cleanlab's label-quality scores
 * (Northcutt et al., JAIR 2021; Kuan & Mueller 2022); the loss is the quantity
 * small-loss selection ranks (Han et al. 2018). Probabilities are checked first
 * (NaN is an error, rows off 1 are normalised with a warning). */
#include <kdflow/data.h>
#include <kdflow/kdflow-plugin.h>

#include <math.h>

#include "probs-common.h"

typedef struct {
  double tol;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("probs", "f32[N,C]", 0, "probabilities, rows summing to 1"),
  KDF_PORT ("labels", "i32[N] < C", 0, "the given (possibly noisy) labels, in [0, C)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("score", "f32[N]", 0, "p[i, label_i]: high = the label looks right"),
  KDF_PORT ("loss", "f32[N]", 0, "−log p[i, label_i] (clipped at 1e-12)"),
  KDF_PORT ("margin", "f32[N]", 0, "(p[i, label_i] − best other + 1)/2, in [0, 1]"),
  KDF_PORT ("pred", "i32[N]", 0, "argmax of each row"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_DOUBLE (Params, tol, 1e-4, 1e-12, 0.5,
                    "rows with |sum − 1| > tol are normalised (warning)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  g_autoptr (KdfTensor) probs = kdf_node_checked_probs (ctx, kdf_ctx_input_tensor (ctx, "probs"),
                                                        p->tol, "input 'probs'", error);
  if (probs == NULL)
    return FALSE;
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "labels"));
  int64_t n = probs->shape[0], c = probs->shape[1];
  const float *pp = kdf_tensor_f32 (probs);
  const int32_t *py = kdf_tensor_i32 (y);
  KdfTensor *score = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  KdfTensor *loss = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  KdfTensor *margin = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  KdfTensor *pred = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  float *ps = kdf_tensor_f32 (score), *pl = kdf_tensor_f32 (loss), *pm = kdf_tensor_f32 (margin);
  int32_t *pa = kdf_tensor_i32 (pred);
  for (int64_t i = 0; i < n; i++) {
    const float *row = pp + i * c;
    float self = row[py[i]], other = c > 1 ? -1.0f : 0.0f, best = row[0];
    int32_t arg = 0;
    for (int64_t k = 0; k < c; k++) {
      if (k != py[i] && row[k] > other)
        other = row[k];
      if (row[k] > best) {
        best = row[k];
        arg = (int32_t) k;
      }
    }
    /* a row normalised in f32 can hold 1 + 1 ulp; scores are probabilities */
    ps[i] = fminf (self, 1.0f);
    pl[i] = (float) -log (fmin (fmax ((double) self, 1e-12), 1.0));
    pm[i] = fminf (fmaxf ((float) (((double) self - (double) other + 1.0) * 0.5), 0.0f), 1.0f);
    pa[i] = arg;
  }
  kdf_ctx_set_output_tensor (ctx, "score", score);
  kdf_ctx_set_output_tensor (ctx, "loss", loss);
  kdf_ctx_set_output_tensor (ctx, "margin", margin);
  kdf_ctx_set_output_tensor (ctx, "pred", pred);
  return TRUE;
}

static const KdfNodeClass self_confidence_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "self_confidence",
  .summary = "p[i, label_i], its loss and normalised margin from probabilities and labels",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (self_confidence, &self_confidence_class)
