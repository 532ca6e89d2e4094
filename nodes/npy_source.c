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
#include <stdio.h>

#include "probs-common.h"

static const char *const dtype_choices[] = { "auto", "f32", "i32", "u8", NULL };

static const KdfPortSpec outputs[] = {
  { .name = "value", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .summary = "the array (floats become f32; with dtype auto, bool and u1 become u8, "
               "other integers i32)" },
  { .name = "rows", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 0,
    .summary = "the length of the first dimension" },
  { 0 },
};

static const KdfParamSpec params[] = {
  { .name = "path", .type = KDF_PARAM_STRING, .flags = KDF_PARAM_REQUIRED,
    .summary = "the .npy file" },
  KDF_PARAM_ENUM ("dtype", "auto", dtype_choices,
                  "convert to this dtype (integers must be integral and in range)"),
  KDF_PARAM_BOOL ("probs", FALSE,
                  "check an N×C probability matrix: NaN/Inf/negative is an error, rows not "
                  "summing to 1 are normalised with a warning"),
  KDF_PARAM_DOUBLE ("tol", 1e-4, 1e-12, 0.5, "probs: a row is normalised when |sum − 1| > tol"),
  KDF_PARAM_BOOL ("oracle", FALSE,
                  "mark the value as ground truth (only evaluation nodes may read it)"),
  { 0 },
};

static gboolean
npy_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const char *path = kdf_ctx_param_string (ctx, "path");
  static const KdfDType dtypes[] = { KDF_DTYPE_ANY, KDF_DTYPE_F32, KDF_DTYPE_I32, KDF_DTYPE_U8 };
  gboolean probs = kdf_ctx_param_bool (ctx, "probs");
  KdfDType want = dtypes[kdf_ctx_param_enum (ctx, "dtype")];
  if (probs && want != KDF_DTYPE_ANY && want != KDF_DTYPE_F32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'probs' needs dtype f32 (or auto), not %s", kdf_dtype_name (want));
    return FALSE;
  }
  if (probs)
    want = KDF_DTYPE_F32;
  g_autoptr (KdfTensor) t = kdf_npy_read (path, want, error);
  if (t == NULL)
    return FALSE;
  if (probs) {
    if (t->rank != 2) {
      g_autofree char *d = kdf_tensor_describe (t);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "%s: probabilities must be an N×C matrix, the file holds %s", path, d);
      return FALSE;
    }
    KdfTensor *checked = kdf_node_checked_probs (ctx, t, path, error);
    if (checked == NULL)
      return FALSE;
    kdf_tensor_unref (t);
    t = checked;
  }
  if (kdf_ctx_param_bool (ctx, "oracle")) {
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
  .run = npy_run,
};

KDF_PLUGIN (npy_source, &npy_source_class)
