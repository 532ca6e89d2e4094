/* Tensors: refcounted, strided, 64-byte aligned storage shared by views. */
#include "config.h"

#include <kdflow/base.h>
#include <kdflow/tensor.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory-private.h"

/* An on-disk tensor's file: opened once, shared by the tensors taken from it. */
typedef struct {
  gint ref_count;
  int fd;
  char *path;
  char *hint;
  guint64 offset;   /* of row 0 */
  int64_t rows;     /* rows in the file */
  int64_t row_size; /* bytes a row */
} RowFile;

/* The byte → float tables: COLS tables of 256 (COLS = 1: one for every column). */
typedef struct {
  gint ref_count;
  int64_t cols;
  float v[];
} RowLut;

struct _KdfStorage {
  gint ref_count;
  void *bytes; /* on disk: the row index (int32_t × rows) */
  gsize size;
  RowFile *file; /* on disk only */
  RowLut *lut;
};

static void
row_file_unref (RowFile *f)
{
  if (f && g_atomic_int_dec_and_test (&f->ref_count)) {
    if (f->fd >= 0)
      close (f->fd);
    g_free (f->path);
    g_free (f->hint);
    g_free (f);
  }
}

/* A table of COLS × 256 floats, counted as tensor storage while alive. */
static RowLut *
row_lut_new (int64_t cols)
{
  RowLut *l = g_malloc (sizeof (RowLut) + (gsize) cols * 256 * sizeof (float));
  l->ref_count = 1;
  l->cols = cols;
  kdf_memory_account ((gint64) (cols * 256 * sizeof (float)));
  return l;
}

static void
row_lut_unref (RowLut *l)
{
  if (l && g_atomic_int_dec_and_test (&l->ref_count)) {
    kdf_memory_account (-(gint64) (l->cols * 256 * sizeof (float)));
    g_free (l);
  }
}

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
  KdfStorage *s = g_new0 (KdfStorage, 1);
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
    row_file_unref (s->file);
    row_lut_unref (s->lut);
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
  g_return_val_if_fail (!kdf_tensor_is_on_disk (t), NULL);
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
  g_return_val_if_fail (!kdf_tensor_is_on_disk (t), NULL);
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
  if (kdf_tensor_is_on_disk (t)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "cannot reshape a tensor kept on disk (%s)",
                 kdf_tensor_on_disk_path (t));
    return NULL;
  }
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
  if (kdf_tensor_is_on_disk (t)) {
    /* the dense tensor: every row read from the file */
    g_autofree int32_t *rows = g_new (int32_t, MAX (t->shape[0], 1));
    for (int64_t i = 0; i < t->shape[0]; i++)
      rows[i] = (int32_t) i;
    GError *error = NULL;
    if (!kdf_tensor_read_rows (t, rows, t->shape[0], kdf_tensor_f32 (c), &error)) {
      g_warning ("copying a tensor kept on disk: %s (the copy is zero-filled)", error->message);
      memset (c->data, 0, kdf_tensor_nbytes (c));
      g_error_free (error);
    }
    c->flags = t->flags;
    return c;
  }
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
  return kdf_tensor_is_contiguous (t) && !kdf_tensor_is_on_disk (t) ? kdf_tensor_ref (t) : kdf_tensor_copy (t);
}

KdfTensor *
kdf_tensor_make_writable (KdfTensor **t)
{
  KdfTensor *cur = *t;
  if (g_atomic_int_get (&cur->ref_count) == 1 &&
      g_atomic_int_get (&cur->storage->ref_count) == 1 && kdf_tensor_is_contiguous (cur) &&
      !kdf_tensor_is_on_disk (cur))
    return cur;
  *t = kdf_tensor_copy (cur);
  kdf_tensor_unref (cur);
  return *t;
}

double
kdf_tensor_get (const KdfTensor *t, const int64_t *index)
{
  if (kdf_tensor_is_on_disk (t)) {
    /* one row read for one value: for tests and glue, never a loop over the data */
    const int64_t d = t->shape[1];
    g_autofree float *row = g_new (float, d);
    int32_t r = (int32_t) index[0];
    GError *error = NULL;
    if (!kdf_tensor_read_rows (t, &r, 1, row, &error)) {
      g_warning ("%s", error->message);
      g_error_free (error);
      return NAN;
    }
    return row[index[1]];
  }
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

/* ---- tensors kept on disk ---------------------------------------------------------- */

gboolean
kdf_tensor_is_on_disk (const KdfTensor *t)
{
  return t && t->storage && t->storage->file != NULL;
}

const char *
kdf_tensor_on_disk_path (const KdfTensor *t)
{
  return kdf_tensor_is_on_disk (t) ? t->storage->file->path : NULL;
}

const char *
kdf_tensor_on_disk_hint (const KdfTensor *t)
{
  return kdf_tensor_is_on_disk (t) ? t->storage->file->hint : NULL;
}

const int32_t *
kdf_tensor_on_disk_index (const KdfTensor *t)
{
  return kdf_tensor_is_on_disk (t) ? (const int32_t *) t->storage->bytes : NULL;
}

/* A new on-disk tensor of N rows on FILE with LUT (both referenced); its index
 * uninitialised, to be filled by the caller. */
static KdfTensor *
on_disk_new (RowFile *file, RowLut *lut, int64_t n)
{
  KdfStorage *s = g_new0 (KdfStorage, 1);
  s->ref_count = 1;
  s->size = (gsize) MAX (n, 1) * sizeof (int32_t);
  s->bytes = g_malloc (s->size);
  g_atomic_int_inc (&file->ref_count);
  s->file = file;
  g_atomic_int_inc (&lut->ref_count);
  s->lut = lut;
  kdf_memory_account ((gint64) s->size);
  KdfTensor *t = g_new0 (KdfTensor, 1);
  t->ref_count = 1;
  t->dtype = KDF_DTYPE_F32;
  t->rank = 2;
  t->shape[0] = n;
  t->shape[1] = file->row_size;
  for (int d = 2; d < KDF_MAX_RANK; d++)
    t->shape[d] = 1;
  set_contiguous_strides (t);
  t->storage = s;
  t->data = NULL;
  return t;
}

KdfTensor *
kdf_tensor_new_on_disk (const char *path, guint64 data_offset, int64_t file_rows, int64_t row_size,
                        const char *hint, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (file_rows < 0 || file_rows > G_MAXINT32 || row_size <= 0 ||
      (guint64) file_rows > (G_MAXINT64 - data_offset) / (guint64) row_size) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: %" G_GINT64_FORMAT " rows of %" G_GINT64_FORMAT
                 " bytes cannot be read by rows (1 to 2^31 rows of at least one byte)",
                 path, (gint64) file_rows, (gint64) row_size);
    return NULL;
  }
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, g_strerror (e));
    return NULL;
  }
  struct stat st = { 0 };
  guint64 need = data_offset + (guint64) file_rows * (guint64) row_size;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size < need) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: %s (%" G_GINT64_FORMAT " rows of %" G_GINT64_FORMAT " bytes from byte %"
                 G_GUINT64_FORMAT " need %" G_GUINT64_FORMAT " bytes)",
                 path, S_ISREG (st.st_mode) ? "truncated" : "not a regular file", (gint64) file_rows,
                 (gint64) row_size, data_offset, need);
    close (fd);
    return NULL;
  }
  RowFile *f = g_new0 (RowFile, 1);
  f->ref_count = 1;
  f->fd = fd;
  f->path = g_strdup (path);
  f->hint = g_strdup (hint);
  f->offset = data_offset;
  f->rows = file_rows;
  f->row_size = row_size;
  RowLut *lut = row_lut_new (1);
  for (int v = 0; v < 256; v++)
    lut->v[v] = (float) v;
  KdfTensor *t = on_disk_new (f, lut, file_rows);
  row_file_unref (f);
  row_lut_unref (lut);
  int32_t *idx = t->storage->bytes;
  for (int64_t i = 0; i < file_rows; i++)
    idx[i] = (int32_t) i;
  return t;
}

KdfTensor *
kdf_tensor_on_disk_take (const KdfTensor *t, const int32_t *rows, int64_t n)
{
  g_return_val_if_fail (kdf_tensor_is_on_disk (t), NULL);
  g_return_val_if_fail (n >= 0 && (rows != NULL || n == 0), NULL);
  KdfTensor *o = on_disk_new (t->storage->file, t->storage->lut, n);
  const int32_t *src = t->storage->bytes;
  int32_t *dst = o->storage->bytes;
  for (int64_t i = 0; i < n; i++) {
    if (rows[i] < 0 || rows[i] >= t->shape[0]) {
      g_critical ("kdf_tensor_on_disk_take: row %d outside the %" G_GINT64_FORMAT " rows", rows[i],
                  (gint64) t->shape[0]);
      dst[i] = src[0];
      continue;
    }
    dst[i] = src[rows[i]];
  }
  o->flags = t->flags;
  return o;
}

KdfTensor *
kdf_tensor_on_disk_affine (const KdfTensor *t, const double *shift, const double *scale,
                           gboolean per_col)
{
  g_return_val_if_fail (kdf_tensor_is_on_disk (t) && shift && scale, NULL);
  const RowLut *old = t->storage->lut;
  const int64_t cols = per_col ? t->shape[1] : old->cols;
  RowLut *lut = row_lut_new (cols);
  for (int64_t j = 0; j < cols; j++) {
    const float *o = old->v + (old->cols > 1 ? j * 256 : 0);
    const int64_t k = per_col ? j : 0;
    for (int v = 0; v < 256; v++)
      lut->v[j * 256 + v] = (float) ((o[v] - shift[k]) * scale[k]);
  }
  KdfTensor *o = on_disk_new (t->storage->file, lut, t->shape[0]);
  row_lut_unref (lut);
  memcpy (o->storage->bytes, t->storage->bytes, (gsize) t->shape[0] * sizeof (int32_t));
  o->flags = t->flags;
  return o;
}

/* Reads file rows FROWS (N) of F into RAW (N × row_size bytes), one pread per run of
 * consecutive rows. */
static gboolean
row_file_read (const RowFile *f, const int32_t *frows, int64_t n, guint8 *raw, GError **error)
{
  const int64_t rs = f->row_size;
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && frows[j] == frows[j - 1] + 1)
      j++;
    gsize want = (gsize) ((j - i) * rs), got = 0;
    off_t off = (off_t) (f->offset + (guint64) frows[i] * (guint64) rs);
    while (got < want) {
      ssize_t r = pread (f->fd, raw + i * rs + got, want - got, off + (off_t) got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0) {
        int e = errno;
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: reading rows %d to %d: %s", f->path, frows[i], frows[j - 1],
                     r < 0 ? g_strerror (e)
                           : "the file ends before them (truncated while in use?)");
        return FALSE;
      }
      got += (gsize) r;
    }
    i = j;
  }
  return TRUE;
}

gboolean
kdf_tensor_read_rows (const KdfTensor *t, const int32_t *rows, int64_t n, float *out,
                      GError **error)
{
  g_return_val_if_fail (t != NULL && out != NULL && (rows != NULL || n == 0), FALSE);
  if (t->dtype != KDF_DTYPE_F32 || t->rank < 1) {
    g_autofree char *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "reading rows: data must be f32 with rank >= 1, got %s", d);
    return FALSE;
  }
  const int64_t nrows = t->shape[0];
  for (int64_t i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= nrows) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "gather: row %d out of range (the data has %" G_GINT64_FORMAT " rows)", rows[i],
                   (gint64) nrows);
      return FALSE;
    }
  if (!kdf_tensor_is_on_disk (t)) {
    const int64_t d = nrows > 0 ? kdf_tensor_numel (t) / nrows : 0;
    if (kdf_tensor_is_contiguous (t)) {
      for (int64_t i = 0; i < n; i++)
        memcpy (out + i * d, (const float *) t->data + (int64_t) rows[i] * d,
                (size_t) d * sizeof (float));
      return TRUE;
    }
    for (int64_t i = 0; i < n; i++) {
      g_autoptr (KdfTensor) r = kdf_tensor_slice ((KdfTensor *) t, 0, rows[i], 1);
      if (kdf_tensor_is_contiguous (r))
        memcpy (out + i * d, r->data, (size_t) d * sizeof (float));
      else
        copy_strided (r, (char *) (out + i * d));
    }
    return TRUE;
  }
  const RowFile *f = t->storage->file;
  const RowLut *lut = t->storage->lut;
  const int32_t *index = t->storage->bytes;
  const int64_t d = f->row_size;
  /* in blocks of about 1 MB of bytes: the raw buffer stays small for a whole pass */
  const int64_t block = MAX (1, (1 << 20) / d);
  g_autofree int32_t *frows = g_new (int32_t, MIN (n, block) + 1);
  g_autofree guint8 *raw = g_malloc ((gsize) (MIN (n, block) * d) + 1);
  for (int64_t b = 0; b < n; b += block) {
    const int64_t nb = MIN (block, n - b);
    for (int64_t i = 0; i < nb; i++)
      frows[i] = index[rows[b + i]];
    if (!row_file_read (f, frows, nb, raw, error))
      return FALSE;
    float *o = out + b * d;
    if (lut->cols > 1)
      for (int64_t i = 0; i < nb; i++)
        for (int64_t j = 0; j < d; j++)
          o[i * d + j] = lut->v[j * 256 + raw[i * d + j]];
    else
      for (int64_t k = 0; k < nb * d; k++)
        o[k] = lut->v[raw[k]];
  }
  return TRUE;
}
