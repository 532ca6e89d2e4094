/* Tensors: refcounted, strided, 64-byte aligned storage shared by views. */
#include "config.h"

#include <kdflow/base.h>
#include <kdflow/tensor.h>
#include <stdlib.h>
#include <string.h>

#include "memory-private.h"

struct _KdfStorage {
  gint ref_count;
  void *bytes;
  gsize size;
};

static KdfStorage *
storage_new (gsize size, gboolean zero, GError **error)
{
  /* aligned_alloc wants a multiple of the alignment; never 0. */
  gsize padded = (size + 63) & ~(gsize) 63;
  if (padded < size) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "tensor of %" G_GSIZE_FORMAT " bytes is too large", size);
    return NULL;
  }
  if (padded == 0)
    padded = 64;
  void *bytes = aligned_alloc (64, padded);
  if (bytes == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "cannot allocate a tensor of %" G_GSIZE_FORMAT " bytes", size);
    return NULL;
  }
  if (zero)
    memset (bytes, 0, padded);
  KdfStorage *s = g_new (KdfStorage, 1);
  s->ref_count = 1;
  s->bytes = bytes;
  s->size = size;
  kdf_memory_account ((gint64) size);
  return s;
}

static void
storage_unref (KdfStorage *s)
{
  if (s && g_atomic_int_dec_and_test (&s->ref_count)) {
    kdf_memory_account (-(gint64) s->size);
    free (s->bytes);
    g_free (s);
  }
}

gsize
kdf_dtype_size (KdfDType dtype)
{
  switch (dtype) {
  case KDF_DTYPE_F32:
  case KDF_DTYPE_I32:
    return 4;
  case KDF_DTYPE_U8:
    return 1;
  default:
    return 0;
  }
}

const char *
kdf_dtype_name (KdfDType dtype)
{
  switch (dtype) {
  case KDF_DTYPE_F32:
    return "f32";
  case KDF_DTYPE_I32:
    return "i32";
  case KDF_DTYPE_U8:
    return "u8";
  case KDF_DTYPE_ANY:
    return "any";
  default:
    return "?";
  }
}

gboolean
kdf_dtype_from_name (const char *name, KdfDType *out)
{
  static const KdfDType all[] = { KDF_DTYPE_F32, KDF_DTYPE_I32, KDF_DTYPE_U8 };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (g_strcmp0 (name, kdf_dtype_name (all[i])) == 0) {
      *out = all[i];
      return TRUE;
    }
  return FALSE;
}

static void
set_contiguous_strides (KdfTensor *t)
{
  int64_t s = 1;
  for (int d = KDF_MAX_RANK - 1; d >= 0; d--) {
    t->strides[d] = d < t->rank ? s : 1;
    if (d < t->rank)
      s *= t->shape[d];
  }
}

static KdfTensor *
tensor_alloc (KdfDType dtype, int rank, const int64_t *shape, gboolean budget, GError **error)
{
  g_return_val_if_fail (rank >= 0 && rank <= KDF_MAX_RANK, NULL);
  g_return_val_if_fail (kdf_dtype_size (dtype) > 0, NULL);
  uint64_t numel = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] < 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "negative dimension %" G_GINT64_FORMAT,
                   (gint64) shape[d]);
      return NULL;
    }
  }
  /* the strides multiply every dimension but the first, zero or not: the product of
   * the non-zero ones must fit (a 0×2^29×2^30 shape has no elements and still
   * overflowed the strides) */
  uint64_t span = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 0)
      continue;
    if (span > (G_MAXINT64 / 8) / (uint64_t) shape[d]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "tensor shape overflows");
      return NULL;
    }
    span *= (uint64_t) shape[d];
  }
  for (int d = 0; d < rank; d++)
    numel *= (uint64_t) shape[d];
  /* a size from input: within the memory budget, or an error (never an abort) */
  g_autofree char *what = NULL;
  if (budget && numel * kdf_dtype_size (dtype) > (1u << 20)) {
    GString *st = g_string_new (kdf_dtype_name (dtype));
    g_string_append_c (st, '[');
    for (int d = 0; d < rank; d++)
      g_string_append_printf (st, "%s%" G_GINT64_FORMAT, d ? "," : "", (gint64) shape[d]);
    g_string_append_c (st, ']');
    what = g_strdup_printf ("a tensor %s", st->str);
    g_string_free (st, TRUE);
    if (!kdf_memory_check (numel * kdf_dtype_size (dtype), what, error))
      return NULL;
  }
  KdfStorage *s = storage_new (numel * kdf_dtype_size (dtype), TRUE, error);
  if (!s)
    return NULL;
  KdfTensor *t = g_new0 (KdfTensor, 1);
  t->ref_count = 1;
  t->dtype = dtype;
  t->rank = rank;
  for (int d = 0; d < KDF_MAX_RANK; d++)
    t->shape[d] = d < rank ? shape[d] : 1;
  set_contiguous_strides (t);
  t->storage = s;
  t->data = s->bytes;
  return t;
}

KdfTensor *
kdf_tensor_try_new (KdfDType dtype, int rank, const int64_t *shape, GError **error)
{
  return tensor_alloc (dtype, rank, shape, TRUE, error);
}

KdfTensor *
kdf_tensor_new (KdfDType dtype, int rank, const int64_t *shape)
{
  GError *error = NULL;
  /* sizes the program computed from tensors already in memory: not budgeted */
  KdfTensor *t = tensor_alloc (dtype, rank, shape, FALSE, &error);
  if (!t)
    g_error ("kdf_tensor_new: %s", error->message); /* programming error or OOM */
  return t;
}

KdfTensor *
kdf_tensor_new_1d (KdfDType dtype, int64_t n0)
{
  return kdf_tensor_new (dtype, 1, (int64_t[]){ n0 });
}

KdfTensor *
kdf_tensor_new_2d (KdfDType dtype, int64_t n0, int64_t n1)
{
  return kdf_tensor_new (dtype, 2, (int64_t[]){ n0, n1 });
}

KdfTensor *
kdf_tensor_new_scalar_f32 (float value)
{
  KdfTensor *t = kdf_tensor_new (KDF_DTYPE_F32, 0, NULL);
  kdf_tensor_f32 (t)[0] = value;
  return t;
}

KdfTensor *
kdf_tensor_new_from_data (KdfDType dtype, int rank, const int64_t *shape, const void *data)
{
  KdfTensor *t = kdf_tensor_new (dtype, rank, shape);
  if (kdf_tensor_nbytes (t))
    memcpy (t->data, data, kdf_tensor_nbytes (t));
  return t;
}

KdfTensor *
kdf_tensor_ref (KdfTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  g_atomic_int_inc (&t->ref_count);
  return t;
}

void
kdf_tensor_unref (KdfTensor *t)
{
  if (t && g_atomic_int_dec_and_test (&t->ref_count)) {
    storage_unref (t->storage);
    g_free (t);
  }
}

int64_t
kdf_tensor_numel (const KdfTensor *t)
{
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++)
    n *= t->shape[d];
  return n;
}

gsize
kdf_tensor_nbytes (const KdfTensor *t)
{
  return (gsize) kdf_tensor_numel (t) * kdf_dtype_size (t->dtype);
}

gboolean
kdf_tensor_is_contiguous (const KdfTensor *t)
{
  int64_t s = 1;
  for (int d = t->rank - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->strides[d] != s)
      return FALSE;
    s *= t->shape[d];
  }
  return TRUE;
}

gboolean
kdf_tensor_is_oracle (const KdfTensor *t)
{
  return (t->flags & KDF_TENSOR_ORACLE) != 0;
}

void
kdf_tensor_set_oracle (KdfTensor *t, gboolean oracle)
{
  if (oracle)
    t->flags |= KDF_TENSOR_ORACLE;
  else
    t->flags &= ~(guint) KDF_TENSOR_ORACLE;
}

gboolean
kdf_tensor_is_test (const KdfTensor *t)
{
  return (t->flags & KDF_TENSOR_TEST) != 0;
}

void
kdf_tensor_set_test (KdfTensor *t, gboolean test)
{
  if (test)
    t->flags |= KDF_TENSOR_TEST;
  else
    t->flags &= ~(guint) KDF_TENSOR_TEST;
}

static KdfTensor *view_of (KdfTensor *t);

KdfTensor *
kdf_tensor_with_flags (KdfTensor *t, guint flags)
{
  g_return_val_if_fail (t != NULL, NULL);
  if ((t->flags & flags) == flags)
    return t;
  if (g_atomic_int_get (&t->ref_count) > 1) {
    KdfTensor *v = view_of (t);
    kdf_tensor_unref (t);
    t = v;
  }
  t->flags |= flags;
  return t;
}

static KdfTensor *
view_of (KdfTensor *t)
{
  KdfTensor *v = g_new0 (KdfTensor, 1);
  *v = *t;
  v->ref_count = 1;
  g_atomic_int_inc (&t->storage->ref_count);
  return v;
}

KdfTensor *
kdf_tensor_slice (KdfTensor *t, int dim, int64_t start, int64_t len)
{
  g_return_val_if_fail (dim >= 0 && dim < t->rank, NULL);
  g_return_val_if_fail (start >= 0 && len >= 0 && start + len <= t->shape[dim], NULL);
  KdfTensor *v = view_of (t);
  v->shape[dim] = len;
  v->data = (char *) t->data + start * t->strides[dim] * (int64_t) kdf_dtype_size (t->dtype);
  return v;
}

KdfTensor *
kdf_tensor_transpose (KdfTensor *t, int d0, int d1)
{
  g_return_val_if_fail (d0 >= 0 && d0 < t->rank && d1 >= 0 && d1 < t->rank, NULL);
  KdfTensor *v = view_of (t);
  v->shape[d0] = t->shape[d1];
  v->shape[d1] = t->shape[d0];
  v->strides[d0] = t->strides[d1];
  v->strides[d1] = t->strides[d0];
  return v;
}

KdfTensor *
kdf_tensor_reshape (KdfTensor *t, int rank, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (rank >= 0 && rank <= KDF_MAX_RANK, NULL);
  int64_t n = 1;
  for (int d = 0; d < rank; d++)
    n *= shape[d];
  if (!kdf_tensor_is_contiguous (t) || n != kdf_tensor_numel (t)) {
    g_autofree char *from = kdf_tensor_shape_string (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "cannot reshape %s tensor %s to %" G_GINT64_FORMAT " elements",
                 kdf_tensor_is_contiguous (t) ? "contiguous" : "non-contiguous", from,
                 (gint64) n);
    return NULL;
  }
  KdfTensor *v = view_of (t);
  v->rank = rank;
  for (int d = 0; d < KDF_MAX_RANK; d++)
    v->shape[d] = d < rank ? shape[d] : 1;
  set_contiguous_strides (v);
  return v;
}

/* Copies any strided T into contiguous DST bytes, row-major: an odometer over the
 * outer dims, the innermost dim copied as a run (memcpy when its stride is 1). */
static void
copy_strided (const KdfTensor *t, char *dst)
{
  const int64_t es = (int64_t) kdf_dtype_size (t->dtype);
  const char *base = t->data;
  if (t->rank == 0) {
    memcpy (dst, base, (gsize) es);
    return;
  }
  const int inner = t->rank - 1;
  const int64_t n = t->shape[inner], st = t->strides[inner];
  int64_t idx[KDF_MAX_RANK] = { 0 };
  for (;;) {
    int64_t off = 0;
    for (int d = 0; d < inner; d++)
      off += idx[d] * t->strides[d];
    if (st == 1) {
      memcpy (dst, base + off * es, (gsize) (n * es));
      dst += n * es;
    } else {
      for (int64_t i = 0; i < n; i++, dst += es)
        memcpy (dst, base + (off + i * st) * es, (gsize) es);
    }
    int d = inner - 1;
    while (d >= 0 && ++idx[d] == t->shape[d])
      idx[d--] = 0;
    if (d < 0)
      return;
  }
}

KdfTensor *
kdf_tensor_copy (const KdfTensor *t)
{
  KdfTensor *c = kdf_tensor_new (t->dtype, t->rank, t->shape);
  if (kdf_tensor_numel (t) > 0) {
    if (kdf_tensor_is_contiguous (t))
      memcpy (c->data, t->data, kdf_tensor_nbytes (t));
    else
      copy_strided (t, c->data);
  }
  c->flags = t->flags;
  return c;
}

KdfTensor *
kdf_tensor_contiguous (KdfTensor *t)
{
  return kdf_tensor_is_contiguous (t) ? kdf_tensor_ref (t) : kdf_tensor_copy (t);
}

KdfTensor *
kdf_tensor_make_writable (KdfTensor **t)
{
  KdfTensor *cur = *t;
  if (g_atomic_int_get (&cur->ref_count) == 1 &&
      g_atomic_int_get (&cur->storage->ref_count) == 1 && kdf_tensor_is_contiguous (cur))
    return cur;
  *t = kdf_tensor_copy (cur);
  kdf_tensor_unref (cur);
  return *t;
}

double
kdf_tensor_get (const KdfTensor *t, const int64_t *index)
{
  int64_t off = 0;
  for (int d = 0; d < t->rank; d++)
    off += index[d] * t->strides[d];
  switch (t->dtype) {
  case KDF_DTYPE_F32:
    return ((const float *) t->data)[off];
  case KDF_DTYPE_I32:
    return ((const int32_t *) t->data)[off];
  case KDF_DTYPE_U8:
    return ((const uint8_t *) t->data)[off];
  default:
    return 0;
  }
}

double
kdf_tensor_get_flat (const KdfTensor *t, int64_t i)
{
  int64_t index[KDF_MAX_RANK] = { 0 };
  for (int d = t->rank - 1; d >= 0; d--) {
    index[d] = i % t->shape[d];
    i /= t->shape[d];
  }
  return kdf_tensor_get (t, index);
}

char *
kdf_tensor_shape_string (const KdfTensor *t)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < t->rank; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : "", (gint64) t->shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

char *
kdf_tensor_describe (const KdfTensor *t)
{
  g_autofree char *shape = kdf_tensor_shape_string (t);
  return g_strdup_printf ("%s%s", kdf_dtype_name (t->dtype), shape);
}

gboolean
kdf_tensor_same_shape (const KdfTensor *a, const KdfTensor *b)
{
  if (a->rank != b->rank)
    return FALSE;
  for (int d = 0; d < a->rank; d++)
    if (a->shape[d] != b->shape[d])
      return FALSE;
  return TRUE;
}

gboolean
kdf_tensor_check_labels (const KdfTensor *labels, int64_t n_classes, const char *what,
                         GError **error)
{
  g_return_val_if_fail (labels != NULL && what != NULL, FALSE);
  if (labels->dtype != KDF_DTYPE_I32 || labels->rank != 1) {
    g_autofree char *d = kdf_tensor_describe (labels);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s must be i32[N] class labels, got %s",
                 what, d);
    return FALSE;
  }
  const int32_t *y = kdf_tensor_i32 (labels);
  const int64_t st = labels->strides[0];
  for (int64_t i = 0; i < labels->shape[0]; i++) {
    int32_t v = y[i * st];
    if (v < 0 || v >= n_classes) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s row %" G_GINT64_FORMAT " is %d, outside [0, %" G_GINT64_FORMAT ")", what,
                   (gint64) i, v, (gint64) n_classes);
      return FALSE;
    }
  }
  return TRUE;
}
