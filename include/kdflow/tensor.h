/* kdflow — tensors and the BLIS GEMM wrapper.
 *
 * A KdfTensor is an n-d (rank ≤ 4) strided array of f32, i32 or u8. Strides are
 * in elements, so a 2-d tensor maps straight onto BLIS's row/column strides.
 * Storage is 64-byte aligned and reference counted; a view shares its base's
 * storage and keeps it alive. A tensor published on an edge is immutable: a node
 * that wants to write into one calls kdf_tensor_make_writable(), which copies
 * unless the caller holds the only reference to tensor and storage.
 *
 * The fields of KdfTensor are public for reading (kernels index data directly);
 * change them only through the functions below.
 */
#pragma once

#include <kdflow/base.h>

G_BEGIN_DECLS

typedef enum {
  KDF_TENSOR_ORACLE = 1 << 0, /* ground truth: evaluation nodes only */
  KDF_TENSOR_TEST = 1 << 1,   /* the test split (or computed from it): evaluation only, never
                                 trained on or selected by */
} KdfTensorFlags;

/* The flags that say where a tensor's values came from: a node computing from such an
 * input passes them on to its outputs (see kdflow.h, "Ground truth"). */
#define KDF_TENSOR_PROVENANCE (KDF_TENSOR_ORACLE | KDF_TENSOR_TEST)

typedef struct _KdfStorage KdfStorage;
typedef struct _KdfTensor KdfTensor;

struct _KdfTensor {
  gint ref_count;                /* atomic */
  KdfDType dtype;
  int rank;
  guint flags;                   /* KdfTensorFlags */
  int64_t shape[KDF_MAX_RANK];   /* unused dims are 1 */
  int64_t strides[KDF_MAX_RANK]; /* in elements */
  void *data;                    /* first element of this view */
  KdfStorage *storage;           /* owner of the bytes */
  gpointer reserved[2];
};

/* New contiguous tensor, zero-filled. transfer full. */
KDF_API KdfTensor *kdf_tensor_new (KdfDType dtype, int rank, const int64_t *shape);
KDF_API KdfTensor *kdf_tensor_new_1d (KdfDType dtype, int64_t n0);
KDF_API KdfTensor *kdf_tensor_new_2d (KdfDType dtype, int64_t n0, int64_t n1);
KDF_API KdfTensor *kdf_tensor_new_scalar_f32 (float value);
/* New contiguous tensor holding a copy of DATA (row-major). transfer full. */
KDF_API KdfTensor *kdf_tensor_new_from_data (KdfDType dtype, int rank, const int64_t *shape,
                                             const void *data);
/* Like kdf_tensor_new() but returns NULL with an error instead of aborting when the
 * size overflows or the allocation fails (for sizes read from files). */
KDF_API KdfTensor *kdf_tensor_try_new (KdfDType dtype, int rank, const int64_t *shape,
                                       GError **error);

/* ---- the memory budget ------------------------------------------------------
 *
 * Sizes that come from input (files, architectures, params, checkpoints) are checked
 * against a budget before allocation, so bad input is an error naming its source
 * rather than an abort. The budget is set by `kdflow run --memory SIZE`, else the
 * environment variable KDFLOW_MEMORY, else 3/4 of the machine's RAM (or cgroup limit).
 * Tensor storage alive counts against it. */
KDF_API guint64 kdf_memory_budget (void);
KDF_API void kdf_memory_set_budget (guint64 bytes);
KDF_API guint64 kdf_memory_default_budget (void);
KDF_API guint64 kdf_memory_in_use (void); /* bytes of tensor storage alive */
/* Parses "512M", "4G", "1.5GiB", "1048576" (K, M, G, T are powers of 1024; 1M to 1P). */
KDF_API gboolean kdf_memory_parse_size (const char *text, guint64 *out, GError **error);
/* TRUE if BYTES more fit in the budget; otherwise FALSE with a KDF_ERROR_VALUE error
 * "WHAT: needs …, over the memory budget of …". */
KDF_API gboolean kdf_memory_check (guint64 bytes, const char *what, GError **error);
/* The same for COUNT elements of ELEM_SIZE bytes, refusing an overflowing product. */
KDF_API gboolean kdf_memory_check_elements (guint64 count, guint64 elem_size, const char *what,
                                            GError **error);

KDF_API KdfTensor *kdf_tensor_ref (KdfTensor *t);   /* transfer full */
KDF_API void kdf_tensor_unref (KdfTensor *t);       /* NULL-safe */

KDF_API int64_t kdf_tensor_numel (const KdfTensor *t);
KDF_API gsize kdf_tensor_nbytes (const KdfTensor *t); /* numel × dtype size */
KDF_API gboolean kdf_tensor_is_contiguous (const KdfTensor *t);
KDF_API gboolean kdf_tensor_is_oracle (const KdfTensor *t);
/* Marks T as ground truth. Only on a tensor the caller just made. */
KDF_API void kdf_tensor_set_oracle (KdfTensor *t, gboolean oracle);
/* Whether T is (or was computed from) the test split; marks a tensor the caller just
 * made. */
KDF_API gboolean kdf_tensor_is_test (const KdfTensor *t);
KDF_API void kdf_tensor_set_test (KdfTensor *t, gboolean test);
/* T with FLAGS added (transfer full; consumes T): T itself when the caller holds its only
 * reference, otherwise a new view of the same storage, so that a tensor others hold
 * never changes. */
KDF_API KdfTensor *kdf_tensor_with_flags (KdfTensor *t, guint flags);

/* Views (transfer full; share storage with T). */
KDF_API KdfTensor *kdf_tensor_slice (KdfTensor *t, int dim, int64_t start, int64_t len);
KDF_API KdfTensor *kdf_tensor_transpose (KdfTensor *t, int d0, int d1);
/* Reshape a contiguous tensor (a view); NULL with error if T is not contiguous or
 * the element counts differ. */
KDF_API KdfTensor *kdf_tensor_reshape (KdfTensor *t, int rank, const int64_t *shape,
                                       GError **error);

/* A contiguous deep copy (flags kept). transfer full. */
KDF_API KdfTensor *kdf_tensor_copy (const KdfTensor *t);
/* T itself (a new reference) if contiguous, otherwise a contiguous copy. */
KDF_API KdfTensor *kdf_tensor_contiguous (KdfTensor *t);
/* Makes *T safe to write: replaces *T with a contiguous private copy unless the
 * caller holds the only reference to it and to its storage. Returns *T. */
KDF_API KdfTensor *kdf_tensor_make_writable (KdfTensor **t);

static inline float *
kdf_tensor_f32 (const KdfTensor *t)
{
  return (float *) t->data;
}
static inline int32_t *
kdf_tensor_i32 (const KdfTensor *t)
{
  return (int32_t *) t->data;
}
static inline uint8_t *
kdf_tensor_u8 (const KdfTensor *t)
{
  return (uint8_t *) t->data;
}

/* Element access by index (any dtype, any strides), as double. For tests and
 * glue, not kernels. */
KDF_API double kdf_tensor_get (const KdfTensor *t, const int64_t *index);
KDF_API double kdf_tensor_get_flat (const KdfTensor *t, int64_t i); /* row-major order */

/* "f32[128,10]" — newly allocated. */
KDF_API char *kdf_tensor_describe (const KdfTensor *t);
/* "[128,10]" — newly allocated. */
KDF_API char *kdf_tensor_shape_string (const KdfTensor *t);
KDF_API gboolean kdf_tensor_same_shape (const KdfTensor *a, const KdfTensor *b);

/* Checks that LABELS (i32, rank 1, any strides) holds only values in [0, N_CLASSES):
 * FALSE with a KDF_ERROR_VALUE error "WHAT row I is V, outside [0, C)" naming the
 * first bad row (0-based), or a KDF_ERROR_SHAPE error if LABELS is not i32[N]. WHAT
 * names the tensor for the user ("input 'labels'", "labels.npy"). */
KDF_API gboolean kdf_tensor_check_labels (const KdfTensor *labels, int64_t n_classes, const char *what,
                                          GError **error);

/* ---- tensors kept on disk: u8 until the batch ----------------------------------
 *
 * An on-disk tensor is an f32[N,D] whose values are not in memory: its row i is row
 * index[i] of a file of u8 rows (D bytes each, from a byte offset: a C-order u8 .npy),
 * and a byte v in column j reads as lut[j][v] (one 256-entry table per column, or one
 * for all columns) — the normalisation the dense path applies, as a table, so that a
 * row read from disk is bit-identical to the same row of the dense f32 tensor. Its
 * `data` is NULL: memory holds the row index (4 bytes a row) and the tables only.
 *
 * Rows are read with pread(2) from a descriptor opened once and held: no map, so the
 * pages an epoch reads stay in the page cache and never count in the process's RSS
 * (a mapped file's pages read do), and a file truncated while in use is a read error
 * naming the file, not a SIGBUS (replacing the file by rename leaves the open
 * descriptor on the old one).
 *
 * Only input ports flagged KDF_PORT_ON_DISK receive one (the engine refuses the
 * others with an error naming the port and the producer's hint, e.g. "data_loader
 * param 'keep_u8'"); they read rows through kdf_gather_rows (nn.h) or
 * kdf_tensor_read_rows. kdf_tensor_get and kdf_tensor_copy read from the file (a copy
 * is the dense tensor); views (slice, reshape, transpose) of one are refused. */

/* Rows 0..FILE_ROWS−1 of PATH (ROW_SIZE bytes each from DATA_OFFSET), each byte v read
 * as (float) v. HINT (nullable) says how to get the inputs in memory instead, for the
 * error a consumer that needs them there reports. FALSE/NULL with a KDF_ERROR_IO error
 * naming PATH if it cannot be opened or is shorter than the rows. transfer full. */
KDF_API KdfTensor *kdf_tensor_new_on_disk (const char *path, guint64 data_offset, int64_t file_rows,
                                           int64_t row_size, const char *hint, GError **error);
KDF_API gboolean kdf_tensor_is_on_disk (const KdfTensor *t);
/* The file and the hint of an on-disk tensor (NULL for others). */
KDF_API const char *kdf_tensor_on_disk_path (const KdfTensor *t);
KDF_API const char *kdf_tensor_on_disk_hint (const KdfTensor *t);
/* Each row's row in the file (N entries), or NULL for others. */
KDF_API const int32_t *kdf_tensor_on_disk_index (const KdfTensor *t);
/* The rows ROWS (N of them, each in [0, rows of T)) of on-disk T: a new on-disk tensor
 * on the same file (the index composed, nothing read). transfer full. */
KDF_API KdfTensor *kdf_tensor_on_disk_take (const KdfTensor *t, const int32_t *rows, int64_t n);
/* On-disk T with each value x replaced by (float) ((x − SHIFT[k]) · SCALE[k]), k the
 * column if PER_COL else 0 — the arithmetic of the dense normalisation, applied to the
 * tables. transfer full. */
KDF_API KdfTensor *kdf_tensor_on_disk_affine (const KdfTensor *t, const double *shift,
                                              const double *scale, gboolean per_col);
/* Rows ROWS (N, each in [0, rows of T)) of T — f32 in memory (any strides) or on
 * disk — as N × D contiguous floats into OUT. Consecutive file rows are read in one
 * pread. FALSE with an error for a row out of range, a non-f32 T, or a file that reads
 * short (truncated while in use). */
KDF_API gboolean kdf_tensor_read_rows (const KdfTensor *t, const int32_t *rows, int64_t n, float *out,
                                       GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfTensor, kdf_tensor_unref)

/* ---- BLIS ------------------------------------------------------------------ */

typedef enum {
  KDF_NO_TRANS = 0,
  KDF_TRANS = 1,
} KdfTrans;

/* C = alpha · op(A) · op(B) + beta · C on raw strided f32 matrices.
 * op(A) is m×k, op(B) is k×n, C is m×n; rs/cs are row/column strides in elements
 * of the matrices as stored (before op). THREADS ≥ 1 is the BLIS thread count for
 * this call alone. No checks: for kernels that already know their shapes. */
KDF_API void kdf_sgemm (KdfTrans transa, KdfTrans transb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t rsa, int64_t csa,
                        const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                        int64_t rsc, int64_t csc, int threads);

/* C = alpha · op(A) · op(B) + beta · C on 2-d f32 tensors, with every shape,
 * dtype and stride checked first (BLIS aborts on bad arguments; this returns
 * FALSE with a KDF_ERROR_SHAPE error instead). C must be writable. */
KDF_API gboolean kdf_tensor_gemm (KdfTensor *c, float alpha, const KdfTensor *a, KdfTrans transa,
                                  const KdfTensor *b, KdfTrans transb, float beta, int threads,
                                  GError **error);

/* Releases BLIS's memory pools; call once at process exit (kdf_shutdown does). */
KDF_API void kdf_blas_finalize (void);

G_END_DECLS
