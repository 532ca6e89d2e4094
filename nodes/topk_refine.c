/* topk_refine — partial-label candidate sets from a teacher (METHODS §1 extra kinds;
 * Jeong & Chung, arXiv 2402.10482: the PLL student learns from the teacher's top-2;
 * kernel kdf_topk_refine in engine/detect/agreement.c).
 *
 * The candidate set of row i is the teacher's k most probable classes (ties to the
 * lower class). Outputs it as a mask for gce_loss and as soft targets 1/k for
 * ce_loss (the ½/½ form of the paper when k = 2). Logits give the same sets as their
 * softmax, so either input serves. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>

typedef struct {
  int k;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("probs", "f32[N,C]", KDF_PORT_OPTIONAL, "the teacher's probabilities (or logits)"),
  KDF_PORT ("logits", "f32[N,C]", KDF_PORT_OPTIONAL, "the teacher's logits"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("candidates", "u8[N,C]", 0, "1 on the k candidates of each row (for gce_loss)"),
  KDF_PORT ("soft", "f32[N,C]", 0, "1/k on the candidates (soft targets for ce_loss)"),
  KDF_PORT ("top", "i32[N,K]", 0, "the candidates, best first"),
  KDF_PORT ("labels", "i32[N]", 0, "the best candidate (the teacher's argmax)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, k, 2, 1, 1000000, "candidates per row (1 ≤ k ≤ C)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *probs = kdf_ctx_input_tensor (ctx, "probs");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  if (!!probs == !!logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "connect exactly one of 'probs' and 'logits' (%s)",
                 probs ? "both are" : "neither is");
    return FALSE;
  }
  g_autoptr (KdfTensor) x = kdf_tensor_contiguous (probs ? probs : logits);
  const int64_t n = x->shape[0], c = x->shape[1];
  const int64_t k = p->k;
  if (k > c || c > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'k' = %" G_GINT64_FORMAT " exceeds the %" G_GINT64_FORMAT " classes of input '%s'",
                 (gint64) k, (gint64) c, probs ? "probs" : "logits");
    return FALSE;
  }
  g_autoptr (KdfTensor) mask = kdf_tensor_new_2d (KDF_DTYPE_U8, n, c);
  g_autoptr (KdfTensor) soft = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
  g_autoptr (KdfTensor) top = kdf_tensor_new_2d (KDF_DTYPE_I32, n, k);
  if (!kdf_topk_refine (kdf_tensor_f32 (soft), kdf_tensor_u8 (mask), kdf_tensor_i32 (top),
                        kdf_tensor_f32 (x), n, (int) c, (int) k, error)) {
    g_prefix_error (error, "input '%s': ", probs ? "probs" : "logits");
    return FALSE;
  }
  KdfTensor *best = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_i32 (best)[i] = kdf_tensor_i32 (top)[i * k];
  kdf_ctx_set_output_tensor (ctx, "candidates", g_steal_pointer (&mask));
  kdf_ctx_set_output_tensor (ctx, "soft", g_steal_pointer (&soft));
  kdf_ctx_set_output_tensor (ctx, "top", g_steal_pointer (&top));
  kdf_ctx_set_output_tensor (ctx, "labels", best);
  return TRUE;
}

static const KdfNodeClass topk_refine_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "topk_refine",
  .summary = "PLL candidate sets: the teacher's top-k classes as a mask and as 1/k soft targets",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (topk_refine, &topk_refine_class)
