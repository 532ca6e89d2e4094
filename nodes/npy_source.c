/* npy_source: any .npy file as a tensor output, so that arrays made elsewhere
 * (a teacher's probabilities, features, human annotations) can enter a graph.
 *
 * The file is read once (the node has no inputs; it reruns only when a param
 * changes). With probs = true the array must be an N×C matrix of probabilities:
 * a NaN, infinite or negative entry is an error naming the file, row and column;
 * rows whose sum is off 1 by more than tol are divided by their sum and one
 * warning says how many. Reading and conversion checks are engine/data's
 * (kdf_npy_read): every error names the file. */
#include <kdflow/data.h>
#include <kdflow/kdflow-plugin.h>

#include "probs-common.h"

typedef struct {
  const char *path;
  KdfDType dtype;
  gboolean probs;
  double tol;
  gboolean oracle;
} Params;

static const KdfChoice dtypes[] = {
  { "auto", KDF_DTYPE_ANY },
  { "f32", KDF_DTYPE_F32 },
  { "i32", KDF_DTYPE_I32 },
  { "u8", KDF_DTYPE_U8 },
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("value", "any", 0,
            "the array (floats become f32; with dtype auto, bool and u1 become u8, other "
            "integers i32)"),
  KDF_PORT ("rows", "f32[]", 0, "the length of the first dimension"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_REQUIRED_STRING (Params, path, "the .npy file"),
  KDF_PARAM_ENUM (Params, dtype, "auto", dtypes,
                  "convert to this dtype (integers must be integral and in range)"),
  KDF_PARAM_BOOL (Params, probs, FALSE,
                  "check an N×C probability matrix: NaN/Inf/negative is an error, rows not "
                  "summing to 1 are normalised with a warning"),
  KDF_PARAM_DOUBLE (Params, tol, 1e-4, 1e-12, 0.5,
                    "probs: a row is normalised when |sum − 1| > tol"),
  KDF_PARAM_BOOL (Params, oracle, FALSE,
                  "mark the value as ground truth (only evaluation nodes may read it)"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfDType want = p->dtype;
  if (p->probs && want != KDF_DTYPE_ANY && want != KDF_DTYPE_F32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'probs' needs dtype f32 (or auto), not %s", kdf_dtype_name (want));
    return FALSE;
  }
  if (p->probs)
    want = KDF_DTYPE_F32;
  g_autoptr (KdfTensor) t = kdf_npy_read (p->path, want, error);
  if (t == NULL)
    return FALSE;
  if (p->probs) {
    if (t->rank != 2) {
      g_autofree char *d = kdf_tensor_describe (t);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "%s: probabilities must be an N×C matrix, the file holds %s", p->path, d);
      return FALSE;
    }
    KdfTensor *checked = kdf_node_checked_probs (ctx, t, p->tol, p->path, error);
    if (checked == NULL)
      return FALSE;
    kdf_tensor_unref (t);
    t = checked;
  }
  if (p->oracle) {
    /* the tensor may be the reader's own or the checker's copy: both are ours alone */
    kdf_tensor_make_writable (&t);
    kdf_tensor_set_oracle (t, TRUE);
  }
  kdf_ctx_set_output_tensor (ctx, "rows",
                             kdf_tensor_new_scalar_f32 (t->rank ? (float) t->shape[0] : 1.0f));
  kdf_ctx_set_output_tensor (ctx, "value", g_steal_pointer (&t));
  return TRUE;
}

static const KdfNodeClass npy_source_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "npy_source",
  .summary = "reads a .npy file into a tensor (optionally checked as probabilities)",
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (npy_source, &npy_source_class)
