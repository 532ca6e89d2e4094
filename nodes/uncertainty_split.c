/* uncertainty_split: MODUL's split of a noisy training set into clean, open-set and
 * closed-set samples (METHODS §1 uncertainty_split; kernels in engine/detect/uncertainty.c).
 *
 *   evidential loss  e = relu(z) + 1, S = Σ e, ℓ = Σ (y − e/S)² + Σ e(S − e)/(S²(S+1))
 *   then min-max normalised. bounds = fixed (METHODS): a 1-D Gaussian mixture fitted by
 *   EM, each component sent to a group by its mean (< clean_below clean, ≥ closed_from
 *   closed-set, otherwise open-set), each sample to the group with the largest summed
 *   posterior. bounds = fitted (default): clean vs noisy by a two-component mixture on
 *   the normalised loss, open-set vs closed-set among the noisy rows by a two-component
 *   mixture on the network's open-set score (param score: msp = 1 − the largest softmax
 *   probability; vacuity = C / S) — the bounds come from the data, not from a teacher
 *   of another scale (docs/design.md).
 *
 * The logits are usually a teacher's on the noisy training set; the labels are the
 * given ones. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>

#include <math.h>

typedef struct {
  int bounds;
  int score;
  int components;
  int max_iter;
  double tol;
  double reg_var;
  double clean_below;
  double closed_from;
} Params;

enum { SCORE_MSP, SCORE_VACUITY };

static const KdfChoice bounds_choices[] = {
  { "fitted", KDF_SPLIT_BOUNDS_FITTED },
  { "fixed", KDF_SPLIT_BOUNDS_FIXED },
  { NULL, 0 },
};

static const KdfChoice score_choices[] = {
  { "msp", SCORE_MSP },
  { "vacuity", SCORE_VACUITY },
  { NULL, 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("logits", "f32[N,C]", 0, "a network's logits on the training rows"),
  KDF_PORT ("labels", "i32[N] < C", 0, "the given (noisy) labels"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("loss", "f32[N]", 0, "the evidential loss per sample"),
  KDF_PORT ("normalized", "f32[N]", 0, "the loss min-max normalised to [0, 1]"),
  KDF_PORT ("groups", "i32[N]", 0, "0 clean, 1 open-set, 2 closed-set"),
  KDF_PORT ("posterior", "f32[N,3]", 0, "the three groups' posteriors"),
  KDF_PORT ("open_score", "f32[N]", 0, "the open-set score (fitted bounds; zeros with fixed)"),
  KDF_PORT ("clean", "u8[N]", 0, "1 on the clean group"),
  KDF_PORT ("open", "u8[N]", 0, "1 on the open-set group"),
  KDF_PORT ("closed", "u8[N]", 0, "1 on the closed-set group"),
  KDF_PORT ("noisy", "u8[N]", 0, "1 on open-set or closed-set (predicted noisy)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, bounds, "fitted", bounds_choices,
                  "fitted: two-component mixtures on the loss, then on the open-set score over the "
                  "noisy rows; fixed: METHODS' bounds clean_below / closed_from on the "
                  "components' means"),
  KDF_PARAM_ENUM (Params, score, "msp", score_choices,
                  "fitted: the open-set score, msp (1 − largest softmax probability) or "
                  "vacuity (C / S of the evidence)"),
  KDF_PARAM_INT (Params, components, 20, 1, 256, "fixed: Gaussian mixture components"),
  KDF_PARAM_INT (Params, max_iter, 100, 1, 100000, "EM iterations at most"),
  KDF_PARAM_DOUBLE (Params, tol, 1e-3, 0, 1,
                    "stop EM when the mean log-likelihood changes by less"),
  KDF_PARAM_DOUBLE (Params, reg_var, 5e-4, 0, 1, "added to every component's variance"),
  KDF_PARAM_DOUBLE (Params, clean_below, 0.3, 0, 1, "components with a lower mean are clean"),
  KDF_PARAM_DOUBLE (Params, closed_from, 0.9, 0, 1,
                    "components with this mean or higher are closed-set; between: open-set"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  g_autoptr (KdfTensor) z = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "logits"));
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "labels"));
  const int64_t n = z->shape[0], c = z->shape[1];
  if (c > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'logits': too many classes (%" G_GINT64_FORMAT ")",
                 (gint64) c);
    return FALSE;
  }
  KdfUncertaintyOptions opt;
  kdf_uncertainty_options_init (&opt);
  opt.gmm.components = p->components;
  opt.gmm.max_iter = p->max_iter;
  opt.gmm.tol = p->tol;
  opt.gmm.reg_var = p->reg_var;
  opt.clean_below = p->clean_below;
  opt.closed_from = p->closed_from;

  g_autoptr (KdfTensor) loss = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  g_autoptr (KdfTensor) norm = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  g_autoptr (KdfTensor) groups = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) post = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 3);
  g_autoptr (KdfTensor) score = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  opt.bounds = p->bounds;
  if (p->bounds == KDF_SPLIT_BOUNDS_FITTED) {
    const float *zf = kdf_tensor_f32 (z);
    float *s = kdf_tensor_f32 (score);
    for (int64_t i = 0; i < n; i++) {
      const float *zi = zf + i * c;
      double mx = zi[0], sum = 0, ev = 0;
      for (int64_t k = 1; k < c; k++)
        mx = MAX (mx, zi[k]);
      for (int64_t k = 0; k < c; k++) {
        sum += exp (zi[k] - mx);
        ev += (zi[k] > 0 ? zi[k] : 0) + 1.0;
      }
      s[i] = p->score == SCORE_MSP ? (float) (1.0 - 1.0 / sum) : (float) ((double) c / ev);
    }
    opt.open_score = s;
  }
  KdfUncertaintyResult r;
  if (!kdf_evidential_loss (kdf_tensor_f32 (loss), kdf_tensor_f32 (z), kdf_tensor_i32 (y), n,
                            (int) c, error) ||
      !kdf_uncertainty_split (kdf_tensor_i32 (groups), kdf_tensor_f32 (post),
                              kdf_tensor_f32 (norm), kdf_tensor_f32 (loss), n, &opt, &r, error))
    return FALSE;
  static const char *const names[4] = { "clean", "open", "closed", "noisy" };
  KdfTensor *mask[4];
  for (int g = 0; g < 4; g++)
    mask[g] = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  const int32_t *pg = kdf_tensor_i32 (groups);
  for (int64_t i = 0; i < n; i++) {
    for (int g = 0; g < 3; g++)
      kdf_tensor_u8 (mask[g])[i] = pg[i] == g;
    kdf_tensor_u8 (mask[3])[i] = pg[i] != KDF_SPLIT_CLEAN;
  }
  for (int g = 0; g < 3; g++) {
    g_autofree char *key = g_strdup_printf ("%s", names[g]);
    kdf_ctx_metric (ctx, key, (double) r.count[g]);
    g_autofree char *ckey = g_strdup_printf ("%s_components", names[g]);
    kdf_ctx_metric (ctx, ckey, (double) r.components[g]);
  }
  kdf_ctx_metric (ctx, "em_iterations", r.gmm.iterations);
  kdf_ctx_metric (ctx, "loss_min", r.loss_min);
  kdf_ctx_metric (ctx, "loss_max", r.loss_max);
  if (r.gmm.iterations > 0 && !r.gmm.converged)
    kdf_ctx_warning (ctx, "the Gaussian mixture did not converge in %d EM iterations "
                     "(raise max_iter or tol)", r.gmm.iterations);
  for (int g = 0; g < 4; g++)
    kdf_ctx_set_output_tensor (ctx, names[g], mask[g]);
  kdf_ctx_set_output_tensor (ctx, "loss", g_steal_pointer (&loss));
  kdf_ctx_set_output_tensor (ctx, "normalized", g_steal_pointer (&norm));
  kdf_ctx_set_output_tensor (ctx, "groups", g_steal_pointer (&groups));
  kdf_ctx_set_output_tensor (ctx, "posterior", g_steal_pointer (&post));
  kdf_ctx_set_output_tensor (ctx, "open_score", g_steal_pointer (&score));
  return TRUE;
}

static const KdfNodeClass uncertainty_split_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "uncertainty_split",
  .summary = "MODUL's clean / open-set / closed-set split: evidential loss, 1-D GMM by EM",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (uncertainty_split, &uncertainty_split_class)
