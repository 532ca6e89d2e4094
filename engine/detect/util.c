/* Shared helpers of the detection kernels: numpy-order sums, a stable radix
 * argsort, top-m selection with a total order, input checks. */
#include "config.h"

#include "detect-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* numpy's pairwise summation (PW_BLOCKSIZE 128, eight-way unrolled), reproduced
 * operation for operation so that sums match numpy's float64 results exactly. The
 * leading 0.0 of the short case is numpy's too (it turns −0.0 into +0.0). */
double
kdf_pairwise_sum (const double *a, int64_t n)
{
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; i++)
      res += a[i];
    return res;
  } else if (n <= 128) {
    double r[8];
    int64_t i;
    for (int j = 0; j < 8; j++)
      r[j] = a[j];
    for (i = 8; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++)
        r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++)
      res += a[i];
    return res;
  } else {
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return kdf_pairwise_sum (a, n2) + kdf_pairwise_sum (a + n2, n - n2);
  }
}

/* Maps a float to a uint32 whose unsigned order is the float's numeric order
 * (negative floats: all bits flipped; others: sign bit set). −0.0 is folded into
 * +0.0 first so that equal values stay tied and fall back to index order. */
static inline uint32_t
float_key (float f)
{
  if (f == 0.0f)
    f = 0.0f;
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* LSD radix sort, four passes of 8 bits over (key, index) pairs. Each pass is
 * stable and the input is in index order, so equal keys end in index order. */
void
kdf_argsort_f32 (int32_t *index, const float *key, int64_t n)
{
  if (n <= 0)
    return;
  uint32_t *ka = g_new (uint32_t, n), *kb = g_new (uint32_t, n);
  int32_t *own = g_new (int32_t, n);
  int32_t *ia = index, *ib = own;
  for (int64_t i = 0; i < n; i++) {
    ka[i] = float_key (key[i]);
    ia[i] = (int32_t) i;
  }
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t count[257] = { 0 };
    for (int64_t i = 0; i < n; i++)
      count[((ka[i] >> shift) & 0xff) + 1]++;
    if (count[((ka[0] >> shift) & 0xff) + 1] == n)
      continue; /* every key has the same byte here: the pass is the identity */
    for (int b = 0; b < 256; b++)
      count[b + 1] += count[b];
    for (int64_t i = 0; i < n; i++) {
      int64_t dst = count[(ka[i] >> shift) & 0xff]++;
      kb[dst] = ka[i];
      ib[dst] = ia[i];
    }
    uint32_t *tk = ka;
    ka = kb;
    kb = tk;
    int32_t *ti = ia;
    ia = ib;
    ib = ti;
  }
  if (ia != index)
    memcpy (index, ia, (size_t) n * sizeof *index);
  g_free (ka);
  g_free (kb);
  g_free (own);
}

static inline gboolean
ki_before (const KdfKeyIndex *a, const KdfKeyIndex *b)
{
  return a->key > b->key || (a->key == b->key && a->index < b->index);
}

static int
ki_compare (const void *pa, const void *pb)
{
  const KdfKeyIndex *a = pa, *b = pb;
  if (ki_before (a, b))
    return -1;
  if (ki_before (b, a))
    return 1;
  return 0;
}

static inline void
ki_swap (KdfKeyIndex *a, KdfKeyIndex *b)
{
  KdfKeyIndex t = *a;
  *a = *b;
  *b = t;
}

/* Quickselect (Hoare) with median-of-three pivots; after 2·log2(n) rounds without
 * converging it sorts the remaining range, which bounds the worst case. The order
 * is total (index breaks ties), so the selected set does not depend on pivots. */
void
kdf_select_top (KdfKeyIndex *v, int64_t n, int64_t m)
{
  if (m <= 0 || m >= n)
    return;
  int64_t lo = 0, hi = n - 1, target = m - 1;
  int budget = 2;
  for (int64_t t = n; t > 1; t >>= 1)
    budget += 2;
  while (hi > lo) {
    if (budget-- == 0) {
      qsort (v + lo, (size_t) (hi - lo + 1), sizeof *v, ki_compare);
      return;
    }
    int64_t mid = lo + (hi - lo) / 2;
    if (ki_before (&v[mid], &v[lo]))
      ki_swap (&v[mid], &v[lo]);
    if (ki_before (&v[hi], &v[lo]))
      ki_swap (&v[hi], &v[lo]);
    if (ki_before (&v[hi], &v[mid]))
      ki_swap (&v[hi], &v[mid]);
    KdfKeyIndex pivot = v[mid];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (ki_before (&v[i], &pivot))
        i++;
      while (ki_before (&pivot, &v[j]))
        j--;
      if (i <= j) {
        ki_swap (&v[i], &v[j]);
        i++;
        j--;
      }
    }
    if (target <= j)
      hi = j;
    else if (target >= i)
      lo = i;
    else
      return;
  }
}

gboolean
kdf_check_finite_f32 (const float *x, int64_t n, const char *what, GError **error)
{
  for (int64_t i = 0; i < n; i++)
    if (!isfinite (x[i])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s: expected finite values, found %g at element %" G_GINT64_FORMAT,
                   what, (double) x[i], i);
      return FALSE;
    }
  return TRUE;
}

gboolean
kdf_check_finite_f64 (const double *x, int64_t n, const char *what, GError **error)
{
  for (int64_t i = 0; i < n; i++)
    if (!isfinite (x[i])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s: expected finite values, found %g at element %" G_GINT64_FORMAT,
                   what, x[i], i);
      return FALSE;
    }
  return TRUE;
}

gboolean
kdf_check_labels (const int32_t *labels, int64_t n, int c, const char *what, GError **error)
{
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= c) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s row %" G_GINT64_FORMAT " is %d, outside [0, %d)", what, (gint64) i,
                   labels[i], c);
      return FALSE;
    }
  return TRUE;
}

gboolean
kdf_check_size (int64_t n, int c, const char *what, GError **error)
{
  if (n < 1 || n > G_MAXINT32 || c < 1 || n > G_MAXINT64 / c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: expected 1 ≤ N ≤ 2^31−1 samples and C ≥ 1 classes, found N = %"
                 G_GINT64_FORMAT ", C = %d", what, n, c);
    return FALSE;
  }
  return TRUE;
}

KdfTensor *
kdf_detect_contiguous (KdfTensor *t, KdfDType dtype, int rank, const char *what,
                       GError **error)
{
  if (t == NULL || t->dtype != dtype || t->rank != rank) {
    g_autofree char *found = t ? kdf_tensor_describe (t) : g_strdup ("nothing");
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: expected a rank-%d %s tensor, found %s",
                 what, rank, kdf_dtype_name (dtype), found);
    return NULL;
  }
  return kdf_tensor_contiguous (t);
}
