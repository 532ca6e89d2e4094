/* The one place that calls BLIS. Every call takes its own thread count through a
 * per-call rntm_t: library code never reads thread counts from the environment. */
#include "config.h"

#include <blis.h>
#include <kdflow/base.h>
#include <kdflow/tensor.h>

#include "nn/nn-private.h"

void
kdf_sgemm (KdfTrans transa, KdfTrans transb, int64_t m, int64_t n, int64_t k, float alpha,
           const float *a, int64_t rsa, int64_t csa, const float *b, int64_t rsb,
           int64_t csb, float beta, float *c, int64_t rsc, int64_t csc, int threads)
{
  if (m == 0 || n == 0)
    return;
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads (threads > 0 ? threads : 1, &rntm);
  bli_sgemm_ex (transa == KDF_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                transb == KDF_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &alpha,
                (float *) a, rsa, csa, (float *) b, rsb, csb, &beta, c, rsc, csc, NULL, &rntm);
}

/* C (m×n) = alpha·op(A)·op(B) + beta·C in double, row-major and contiguous (lda = the
 * stored row length): engine/nn/contrastive.c's similarity matrices (nn-private.h). */
void
kdf_dgemm_rm (gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k, double alpha,
              const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
              int64_t ldc, int threads)
{
  if (m == 0 || n == 0)
    return;
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads (threads > 0 ? threads : 1, &rntm);
  bli_dgemm_ex (ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                m, n, k, &alpha, (double *) a, lda, 1, (double *) b, ldb, 1, &beta, c, ldc, 1,
                NULL, &rntm);
}

static gboolean
check_matrix (const char *what, const KdfTensor *t, GError **error)
{
  if (t->dtype != KDF_DTYPE_F32 || t->rank != 2) {
    g_autofree char *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "gemm: %s must be a 2-d f32 tensor, got %s",
                 what, d);
    return FALSE;
  }
  /* BLIS wants one unit stride or general strides that do not overlap. */
  if (t->strides[0] < 1 || t->strides[1] < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "gemm: %s has non-positive strides", what);
    return FALSE;
  }
  return TRUE;
}

gboolean
kdf_tensor_gemm (KdfTensor *c, float alpha, const KdfTensor *a, KdfTrans transa,
                 const KdfTensor *b, KdfTrans transb, float beta, int threads, GError **error)
{
  if (!check_matrix ("A", a, error) || !check_matrix ("B", b, error) ||
      !check_matrix ("C", c, error))
    return FALSE;
  int64_t m = a->shape[transa ? 1 : 0], ka = a->shape[transa ? 0 : 1];
  int64_t kb = b->shape[transb ? 1 : 0], n = b->shape[transb ? 0 : 1];
  if (ka != kb || c->shape[0] != m || c->shape[1] != n) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "gemm: op(A) is %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 ", op(B) is %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 ", C is %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " (want op(A) m×k, op(B) k×n, C m×n)",
                 (gint64) m, (gint64) ka, (gint64) kb, (gint64) n, (gint64) c->shape[0],
                 (gint64) c->shape[1]);
    return FALSE;
  }
  if (c->storage == a->storage || c->storage == b->storage) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "gemm: C shares storage with an operand");
    return FALSE;
  }
  kdf_sgemm (transa, transb, m, n, ka, alpha, a->data, a->strides[0], a->strides[1], b->data,
             b->strides[0], b->strides[1], beta, c->data, c->strides[0], c->strides[1], threads);
  return TRUE;
}

void
kdf_blas_finalize (void)
{
  bli_finalize ();
}
