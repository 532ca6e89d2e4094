/* engine/data: checks on probability matrices handed to detection nodes (the
 * label-errors .npy files, teachers' softmax outputs). */
#include "config.h"

#include "data-private.h"

#include <math.h>

KdfTensor *
kdf_probs_check (KdfTensor *probs, double tol, int64_t *n_renormalized, GError **error)
{
  g_return_val_if_fail (probs != NULL, NULL);
  if (n_renormalized)
    *n_renormalized = 0;
  if (probs->dtype != KDF_DTYPE_F32 || probs->rank != 2) {
    g_autofree char *d = kdf_tensor_describe (probs);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "probabilities must be an f32[N,C] matrix, got %s", d);
    return NULL;
  }
  if (tol <= 0)
    tol = 1e-4;
  int64_t n = probs->shape[0], c = probs->shape[1];
  int64_t rs = probs->strides[0], cs = probs->strides[1];
  const float *p = probs->data;
  int64_t bad_rows = 0;
  for (int64_t i = 0; i < n; i++) {
    double sum = 0;
    for (int64_t j = 0; j < c; j++) {
      float v = p[i * rs + j * cs];
      if (!isfinite (v) || v < 0) {
        g_autofree char *what = isnan (v)   ? g_strdup ("NaN")
                                : isinf (v) ? g_strdup_printf ("an infinite value (%g)", v)
                                            : g_strdup_printf ("a negative value (%g)", v);
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "probabilities: row %" G_GINT64_FORMAT " has %s in column %" G_GINT64_FORMAT
                     " (the first bad row)",
                     (gint64) i, what, (gint64) j);
        return NULL;
      }
      sum += v;
    }
    if (sum <= 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "probabilities: row %" G_GINT64_FORMAT " sums to 0 and cannot be normalised",
                   (gint64) i);
      return NULL;
    }
    bad_rows += fabs (sum - 1.0) > tol;
  }
  if (n_renormalized)
    *n_renormalized = bad_rows;
  if (bad_rows == 0)
    return kdf_tensor_ref (probs);
  KdfTensor *out = kdf_tensor_copy (probs);
  float *q = kdf_tensor_f32 (out);
  for (int64_t i = 0; i < n; i++) {
    double sum = 0;
    for (int64_t j = 0; j < c; j++)
      sum += q[i * c + j];
    if (fabs (sum - 1.0) > tol)
      for (int64_t j = 0; j < c; j++)
        q[i * c + j] = (float) (q[i * c + j] / sum);
  }
  return out;
}
