/* engine/detect internals: shared by the detection kernels, not installed. */
#pragma once

#include <kdflow/detect.h>
#include <kdflow/base.h>

/* Sum of A[0..n) in exactly numpy's float64 order (pairwise_sum in
 * numpy/core/src/umath/loops_utils.h.src: blocks of ≤ 128 with eight accumulators,
 * split at a multiple of 8 above that). Used where a result must match a numpy
 * reference bit for bit; elsewhere it is simply an accurate sum. */
G_GNUC_INTERNAL double kdf_pairwise_sum (const double *a, int64_t n);

/* INDEX[0..n) := the permutation that sorts KEY ascending, ties by index (a stable
 * LSD radix sort on the float bits, O(N)). KEY must hold no NaN. */
G_GNUC_INTERNAL void kdf_argsort_f32 (int32_t *index, const float *key, int64_t n);

/* One (key, index) pair for selection: ordered by key descending, then index
 * ascending — a strict total order, so any selection algorithm gives one answer. */
typedef struct {
  double key;
  int64_t index;
} KdfKeyIndex;

/* Partially orders V so that its first M entries are the M greatest under the
 * order above (introselect, O(n) expected, O(n log n) worst). */
G_GNUC_INTERNAL void kdf_select_top (KdfKeyIndex *v, int64_t n, int64_t m);

/* FALSE with an error naming WHAT and the first non-finite element. */
G_GNUC_INTERNAL gboolean kdf_check_finite_f32 (const float *x, int64_t n, const char *what,
                                               GError **error);
G_GNUC_INTERNAL gboolean kdf_check_finite_f64 (const double *x, int64_t n, const char *what,
                                               GError **error);
G_GNUC_INTERNAL gboolean kdf_check_labels (const int32_t *labels, int64_t n, int c,
                                           const char *what, GError **error);
G_GNUC_INTERNAL gboolean kdf_check_size (int64_t n, int c, const char *what, GError **error);

/* A contiguous f32/i32/u8 view of a tensor of the given rank (a new reference, or a
 * contiguous copy), or NULL with a KDF_ERROR_SHAPE error. */
G_GNUC_INTERNAL KdfTensor *kdf_detect_contiguous (KdfTensor *t, KdfDType dtype, int rank,
                                                  const char *what, GError **error);
