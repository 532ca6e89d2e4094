/* put_rows — the inverse of take_rows over several parts: out[index_k[i]] = values_k[i]
 * for each pair (values_k, index_k) wired in order, into N rows (zero elsewhere).
 * Cross-validation uses it to assemble out-of-sample predictions in dataset order. */
#include <kdflow/kdflow-plugin.h>
#include <string.h>

typedef struct {
  int n;
  gboolean complete;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("values", "any", KDF_PORT_MULTI, "parts, each K_k rows"),
  KDF_PORT ("index", "i32[*]", KDF_PORT_MULTI, "the rows of each part, in the same order"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("out", "any", 0, "N rows"),
  KDF_PORT ("filled", "u8[*]", 0, "1 = the row was written"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_REQUIRED_INT (Params, n, 1, G_MAXINT32, "N, the rows of the output"),
  KDF_PARAM_BOOL (Params, complete, TRUE, "every row must be written exactly once"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  guint parts = kdf_ctx_input_count (ctx, "values");
  if (parts == 0 || parts != kdf_ctx_input_count (ctx, "index")) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "inputs 'values' and 'index' need the same number of edges (got %u and %u)",
                 parts, kdf_ctx_input_count (ctx, "index"));
    return FALSE;
  }
  const int64_t n = p->n;
  KdfTensor *first = kdf_ctx_input_nth (ctx, "values", 0);
  int64_t shape[KDF_MAX_RANK];
  for (int d = 0; d < first->rank; d++)
    shape[d] = first->shape[d];
  shape[0] = n;
  if (first->rank < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input 'values' must have rows");
    return FALSE;
  }
  g_autoptr (KdfTensor) out = kdf_tensor_try_new (first->dtype, first->rank, shape, error);
  if (!out)
    return FALSE;
  g_autoptr (KdfTensor) filled = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  const gsize row_bytes = kdf_tensor_nbytes (out) / (gsize) (n ? n : 1);
  for (guint part = 0; part < parts; part++) {
    g_autoptr (KdfTensor) v = kdf_tensor_contiguous (kdf_ctx_input_nth (ctx, "values", part));
    g_autoptr (KdfTensor) idx = kdf_tensor_contiguous (kdf_ctx_input_nth (ctx, "index", part));
    gboolean same = v->dtype == out->dtype && v->rank == out->rank;
    for (int d = 1; same && d < v->rank; d++)
      same = v->shape[d] == out->shape[d];
    if (!same || v->shape[0] != idx->shape[0]) {
      g_autofree char *dv = kdf_tensor_describe (v), *di = kdf_tensor_describe (idx), *df = kdf_tensor_describe (first);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "part %u: values %s with index %s do not fit the first part %s", part + 1, dv, di, df);
      return FALSE;
    }
    const int32_t *ix = kdf_tensor_i32 (idx);
    for (int64_t i = 0; i < idx->shape[0]; i++) {
      if (ix[i] < 0 || ix[i] >= n) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "part %u: index entry %" G_GINT64_FORMAT " is %d, outside [0, %" G_GINT64_FORMAT ")",
                     part + 1, (gint64) i, ix[i], (gint64) n);
        return FALSE;
      }
      if (kdf_tensor_u8 (filled)[ix[i]] && p->complete) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "row %d is written by two parts", ix[i]);
        return FALSE;
      }
      kdf_tensor_u8 (filled)[ix[i]] = 1;
      memcpy ((char *) out->data + (gsize) ix[i] * row_bytes, (const char *) v->data + (gsize) i * row_bytes,
              row_bytes);
    }
  }
  if (p->complete)
    for (int64_t i = 0; i < n; i++)
      if (!kdf_tensor_u8 (filled)[i]) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "row %" G_GINT64_FORMAT " is written by no part (set complete = false to allow it)",
                     (gint64) i);
        return FALSE;
      }
  kdf_ctx_set_output_tensor (ctx, "out", g_steal_pointer (&out));
  kdf_ctx_set_output_tensor (ctx, "filled", g_steal_pointer (&filled));
  return TRUE;
}

static const KdfNodeClass put_rows_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "put_rows",
  .summary = "assembles parts into N rows by their indices (inverse of take_rows)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (put_rows, &put_rows_class)
