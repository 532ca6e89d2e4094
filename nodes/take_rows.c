/* take_rows — the rows of a tensor at given indices (a fold of a data set, the kept
 * samples of a filter). Flags such as oracle travel with the data. */
#include <kdflow/data.h>
#include <kdflow/kdflow-plugin.h>

static const KdfPortSpec inputs[] = {
  KDF_PORT ("x", "any", 0, "a tensor of N rows (rank ≥ 1)"),
  KDF_PORT ("index", "i32[K]", 0, "row indices in [0, N)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("rows", "any", 0, "the K rows, in index order"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *x = kdf_ctx_input_tensor (ctx, "x");
  g_autoptr (KdfTensor) index = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "index"));
  if (x->rank < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'x' must have rows (rank ≥ 1)");
    return FALSE;
  }
  const int64_t k = index->shape[0], n = x->shape[0];
  const int32_t *idx = kdf_tensor_i32 (index);
  for (int64_t i = 0; i < k; i++)
    if (idx[i] < 0 || idx[i] >= n) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "input 'index' entry %" G_GINT64_FORMAT " is %d, outside [0, %" G_GINT64_FORMAT ")",
                   (gint64) i, idx[i], (gint64) n);
      return FALSE;
    }
  kdf_ctx_set_output_tensor (ctx, "rows", kdf_data_take_rows (x, idx, k));
  return TRUE;
}

static const KdfNodeClass take_rows_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "take_rows",
  .summary = "the rows of a tensor at given indices",
  .inputs = inputs,
  .outputs = outputs,
  .run = run,
};

KDF_PLUGIN (take_rows, &take_rows_class)
