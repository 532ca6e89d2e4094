/* engine/data: NumPy .npy files, read and written.
 *
 * Format (numpy.lib.format): "\x93NUMPY", major, minor, a little-endian header
 * length (u16 for 1.0, u32 for 2.0 and 3.0), a Python dict literal with 'descr',
 * 'fortran_order' and 'shape' (ASCII; UTF-8 in 3.0), padded with spaces and a newline,
 * then the raw elements. Reading is a bulk read into the tensor when no conversion
 * is needed, else a convert loop over 8 MiB blocks — never per-element I/O. */
#include "config.h"
#include "../memory-private.h"

#include "data-private.h"
#include "../fileio.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define NPY_BLOCK_BYTES ((gsize) 8 << 20)

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

/* ---- the header dict -------------------------------------------------------- */

typedef struct {
  const char *p, *end;
} Cursor;

static void
skip_ws (Cursor *c)
{
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static gboolean
eat (Cursor *c, char ch)
{
  skip_ws (c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return TRUE;
  }
  return FALSE;
}

/* A Python string literal without escapes (all numpy writes in these fields). */
static char *
parse_pystr (Cursor *c)
{
  skip_ws (c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return NULL;
  char q = *c->p++;
  const char *start = c->p;
  while (c->p < c->end && *c->p != q && *c->p != '\\')
    c->p++;
  if (c->p >= c->end || *c->p != q)
    return NULL;
  char *s = g_strndup (start, c->p - start);
  c->p++;
  return s;
}

static gboolean
header_fail (GError **error, const char *path, const char *what)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: malformed .npy header: %s", path, what);
  return FALSE;
}

static gboolean
parse_descr (const char *descr, KdfNpyHeader *h, const char *path, GError **error)
{
  const char *d = descr;
  char order = '=';
  if (*d == '<' || *d == '>' || *d == '|' || *d == '=')
    order = *d++;
  char kind = *d ? *d++ : 0;
  if (kind == 'O') {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: object dtype '%s': the file holds pickled Python objects, which kdflow "
                 "does not read (save a numeric array, e.g. a.astype(np.float32))",
                 path, descr);
    return FALSE;
  }
  char *endp = NULL;
  long size = (*d >= '0' && *d <= '9') ? strtol (d, &endp, 10) : -1;
  gboolean ok = size > 0 && endp && *endp == '\0';
  if (ok) {
    switch (kind) {
    case 'f': ok = size == 4 || size == 8; break;
    case 'i': case 'u': ok = size == 1 || size == 2 || size == 4 || size == 8; break;
    case 'b': ok = size == 1; break;
    default: ok = FALSE;
    }
  }
  if (!ok) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: unsupported dtype '%s' (kdflow reads float f4 f8, signed i1 i2 i4 i8, "
                 "unsigned u1 u2 u4 u8 and bool b1, either byte order)",
                 path, descr);
    return FALSE;
  }
  g_strlcpy (h->descr, descr, sizeof h->descr);
  h->kind = kind;
  h->itemsize = (int) size;
  h->big_endian = order == '>' || ((order == '=' || order == '|') && G_BYTE_ORDER == G_BIG_ENDIAN);
  return TRUE;
}

static gboolean
parse_shape (Cursor *c, KdfNpyHeader *h, const char *path, GError **error)
{
  if (!eat (c, '('))
    return header_fail (error, path, "'shape' is not a tuple");
  h->rank = 0;
  for (;;) {
    skip_ws (c);
    if (eat (c, ')'))
      break;
    if (c->p >= c->end || !g_ascii_isdigit (*c->p))
      return header_fail (error, path, "'shape' holds something other than integers");
    guint64 v = 0;
    while (c->p < c->end && g_ascii_isdigit (*c->p)) {
      guint digit = *c->p++ - '0';
      if (v > ((guint64) G_MAXINT64 - digit) / 10) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: a dimension in the .npy shape overflows 63 bits", path);
        return FALSE;
      }
      v = v * 10 + digit;
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 longs */
      c->p++;
    if (h->rank == KDF_NPY_MAX_RANK)
      return header_fail (error, path, "'shape' has more than 32 dimensions");
    h->shape[h->rank++] = (int64_t) v;
    if (eat (c, ')'))
      break;
    if (!eat (c, ','))
      return header_fail (error, path, "'shape' is not a tuple of integers");
  }
  return TRUE;
}

static gboolean
parse_dict (const char *text, gsize len, KdfNpyHeader *h, const char *path, GError **error)
{
  Cursor c = { text, text + len };
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  if (!eat (&c, '{'))
    return header_fail (error, path, "it does not start with '{'");
  for (;;) {
    if (eat (&c, '}'))
      break;
    g_autofree char *key = parse_pystr (&c);
    if (key == NULL)
      return header_fail (error, path, "expected a quoted key");
    if (!eat (&c, ':'))
      return header_fail (error, path, "expected ':' after a key");
    if (strcmp (key, "descr") == 0) {
      skip_ws (&c);
      if (c.p < c.end && *c.p == '[') {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: unsupported dtype: a structured (record) dtype; kdflow reads plain "
                     "numeric arrays",
                     path);
        return FALSE;
      }
      g_autofree char *descr = parse_pystr (&c);
      if (descr == NULL)
        return header_fail (error, path, "'descr' is not a string");
      if (!parse_descr (descr, h, path, error))
        return FALSE;
      have_descr = TRUE;
    } else if (strcmp (key, "fortran_order") == 0) {
      skip_ws (&c);
      if (c.end - c.p >= 4 && strncmp (c.p, "True", 4) == 0) {
        fortran = TRUE;
        c.p += 4;
      } else if (c.end - c.p >= 5 && strncmp (c.p, "False", 5) == 0) {
        c.p += 5;
      } else {
        return header_fail (error, path, "'fortran_order' is not True or False");
      }
      have_order = TRUE;
    } else if (strcmp (key, "shape") == 0) {
      if (!parse_shape (&c, h, path, error))
        return FALSE;
      have_shape = TRUE;
    } else {
      g_autofree char *msg = g_strdup_printf ("unexpected key '%s'", key);
      return header_fail (error, path, msg);
    }
    if (eat (&c, '}'))
      break;
    if (!eat (&c, ','))
      return header_fail (error, path, "expected ',' or '}' after a value");
  }
  skip_ws (&c);
  if (c.p != c.end && *c.p != '\0')
    return header_fail (error, path, "text after the closing '}'");
  if (!have_descr || !have_order || !have_shape)
    return header_fail (error, path, "'descr', 'fortran_order' and 'shape' are all required");
  /* Fortran and C order coincide below two dimensions. */
  int big_dims = 0;
  for (int d = 0; d < h->rank; d++)
    big_dims += h->shape[d] > 1;
  if (fortran && big_dims > 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: the array is stored in Fortran order; kdflow reads C order only "
                 "(save np.ascontiguousarray(a) instead)",
                 path);
    return FALSE;
  }
  return TRUE;
}

static char *
shape_text (const KdfNpyHeader *h)
{
  GString *s = g_string_new ("(");
  for (int d = 0; d < h->rank; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "", (gint64) h->shape[d]);
  g_string_append (s, h->rank == 1 ? ",)" : ")");
  return g_string_free (s, FALSE);
}

/* Opens PATH, reads and checks the header; returns the stream at the data. */
static GInputStream *
npy_open (const char *path, KdfNpyHeader *h, GError **error)
{
  memset (h, 0, sizeof *h);
  GError *local = NULL;
  if (!kdf_file_check_input (path, NULL, error))
    return NULL;
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) in = g_file_read (file, NULL, &local);
  if (in == NULL) {
    kdf_data_propagate_io (error, local, path, "cannot open");
    return NULL;
  }
  g_autoptr (GFileInfo) info =
      g_file_input_stream_query_info (in, G_FILE_ATTRIBUTE_STANDARD_SIZE, NULL, &local);
  if (info == NULL) {
    kdf_data_propagate_io (error, local, path, "cannot stat");
    return NULL;
  }
  guint64 file_size = g_file_info_get_size (info);

  guint8 pre[12];
  gsize got = 0;
  if (!g_input_stream_read_all (G_INPUT_STREAM (in), pre, 10, &got, NULL, &local)) {
    kdf_data_propagate_io (error, local, path, "read error");
    return NULL;
  }
  if (got < 6 || memcmp (pre, npy_magic, 6) != 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: not a .npy file (bad magic: expected \\x93NUMPY)", path);
    return NULL;
  }
  if (got < 8) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: truncated .npy header (the file ends after %" G_GSIZE_FORMAT " bytes)",
                 path, got);
    return NULL;
  }
  h->version_major = pre[6];
  h->version_minor = pre[7];
  if (h->version_major < 1 || h->version_major > 3 || h->version_minor != 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: .npy format version %d.%d is not supported (1.0, 2.0 or 3.0)", path,
                 h->version_major, h->version_minor);
    return NULL;
  }
  gsize pre_len = h->version_major == 1 ? 10 : 12;
  if (got == 10 && pre_len == 12) {
    gsize more = 0;
    if (!g_input_stream_read_all (G_INPUT_STREAM (in), pre + 10, 2, &more, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "read error");
      return NULL;
    }
    got += more;
  }
  if (got < pre_len) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: truncated .npy header (the file ends after %" G_GSIZE_FORMAT " bytes)",
                 path, got);
    return NULL;
  }
  guint64 hlen = h->version_major == 1
                     ? (guint64) pre[8] | ((guint64) pre[9] << 8)
                     : (guint64) pre[8] | ((guint64) pre[9] << 8) | ((guint64) pre[10] << 16) |
                           ((guint64) pre[11] << 24);
  if (pre_len + hlen > file_size) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: truncated .npy header: it claims %" G_GUINT64_FORMAT
                 " bytes, the file has %" G_GUINT64_FORMAT " after the preamble",
                 path, hlen, file_size - pre_len);
    return NULL;
  }
  g_autofree char *hwhat = g_strdup_printf ("%s: the .npy header", path);
  if (!kdf_memory_check (hlen + 1, hwhat, error))
    return NULL;
  g_autofree char *text = g_malloc (hlen + 1);
  if (!g_input_stream_read_all (G_INPUT_STREAM (in), text, hlen, &got, NULL, &local)) {
    kdf_data_propagate_io (error, local, path, "read error");
    return NULL;
  }
  if (got < hlen) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: truncated .npy header", path);
    return NULL;
  }
  text[hlen] = '\0';
  if (h->version_major < 3) {
    for (guint64 i = 0; i < hlen; i++)
      if ((guint8) text[i] >= 0x80)
        return header_fail (error, path, "non-ASCII bytes in a version 1/2 header"), NULL;
  } else if (!g_utf8_validate (text, hlen, NULL)) {
    return header_fail (error, path, "the version 3.0 header is not UTF-8"), NULL;
  }
  if (!parse_dict (text, hlen, h, path, error))
    return NULL;
  h->data_offset = pre_len + hlen;

  guint64 numel = 1;
  gboolean overflow = FALSE;
  for (int d = 0; d < h->rank; d++) {
    guint64 n = (guint64) h->shape[d];
    if (n != 0 && numel > G_MAXINT64 / (guint64) h->itemsize / n)
      overflow = TRUE;
    else
      numel *= n;
  }
  g_autofree char *st = shape_text (h);
  if (overflow) {
    /* A zero dimension elsewhere would make the product 0 — still a lie about size. */
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: the element count of shape %s overflows", path, st);
    return NULL;
  }
  h->numel = numel;
  guint64 want = numel * (guint64) h->itemsize;
  guint64 have = file_size - h->data_offset;
  if (want != have) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: shape %s of '%s' needs %" G_GUINT64_FORMAT
                 " bytes of data, the file has %" G_GUINT64_FORMAT "%s",
                 path, st, h->descr, want, have, want > have ? " (truncated?)" : "");
    return NULL;
  }
  return G_INPUT_STREAM (g_steal_pointer (&in));
}

gboolean
kdf_npy_read_header (const char *path, KdfNpyHeader *out, GError **error)
{
  g_return_val_if_fail (path != NULL && out != NULL, FALSE);
  g_autoptr (GInputStream) in = npy_open (path, out, error);
  return in != NULL;
}

/* ---- conversion ---------------------------------------------------------------- */

static void
swap_bytes (guint8 *buf, gsize n, int size)
{
  switch (size) {
  case 2: {
    guint16 *w = (guint16 *) buf;
    for (gsize i = 0; i < n; i++)
      w[i] = GUINT16_SWAP_LE_BE (w[i]);
    break;
  }
  case 4: {
    guint32 *w = (guint32 *) buf;
    for (gsize i = 0; i < n; i++)
      w[i] = GUINT32_SWAP_LE_BE (w[i]);
    break;
  }
  case 8: {
    guint64 *w = (guint64 *) buf;
    for (gsize i = 0; i < n; i++)
      w[i] = GUINT64_SWAP_LE_BE (w[i]);
    break;
  }
  default:
    break;
  }
}

/* Range helpers through 64-bit values, so no comparison is "always true" for a type. */
static inline gboolean
s_in (gint64 v, gint64 lo, gint64 hi)
{
  return v >= lo && v <= hi;
}
static inline gboolean
u_le (guint64 v, guint64 hi)
{
  return v <= hi;
}

typedef struct {
  gsize bad;          /* index in the block of the first bad element */
  const char *reason; /* why */
  double value;
} ConvFail;

#define FLOAT_LOOP(ST)                                                                    \
  do {                                                                                    \
    const ST *s = (const ST *) src;                                                       \
    if (dt == KDF_DTYPE_F32) {                                                            \
      float *d = dst;                                                                     \
      for (gsize i = 0; i < n; i++) {                                                     \
        double v = s[i];                                                                  \
        if (fabs (v) > FLT_MAX && isfinite (v)) {                                         \
          *f = (ConvFail) { i, "outside the f32 range", v };                              \
          return FALSE;                                                                   \
        }                                                                                 \
        d[i] = (float) v;                                                                 \
      }                                                                                   \
    } else {                                                                              \
      double hi = dt == KDF_DTYPE_I32 ? 2147483647.0 : 255.0;                             \
      double lo = dt == KDF_DTYPE_I32 ? -2147483648.0 : 0.0;                              \
      for (gsize i = 0; i < n; i++) {                                                     \
        double v = s[i];                                                                  \
        if (!(v >= lo && v <= hi)) {                                                      \
          *f = (ConvFail) { i, isnan (v) ? "not a number" : "out of range", v };                   \
          return FALSE;                                                                   \
        }                                                                                 \
        if (v != floor (v)) {                                                             \
          *f = (ConvFail) { i, "not an integer", v };                                     \
          return FALSE;                                                                   \
        }                                                                                 \
        if (dt == KDF_DTYPE_I32)                                                          \
          ((int32_t *) dst)[i] = (int32_t) v;                                             \
        else                                                                              \
          ((uint8_t *) dst)[i] = (uint8_t) v;                                             \
      }                                                                                   \
    }                                                                                     \
  } while (0)

#define SIGNED_LOOP(ST)                                                                   \
  do {                                                                                    \
    const ST *s = (const ST *) src;                                                       \
    if (dt == KDF_DTYPE_F32) {                                                            \
      float *d = dst;                                                                     \
      for (gsize i = 0; i < n; i++)                                                       \
        d[i] = (float) s[i];                                                              \
    } else if (dt == KDF_DTYPE_I32) {                                                     \
      int32_t *d = dst;                                                                   \
      for (gsize i = 0; i < n; i++) {                                                     \
        if (!s_in (s[i], G_MININT32, G_MAXINT32)) {                                       \
          *f = (ConvFail) { i, "out of the i32 range", (double) s[i] };                   \
          return FALSE;                                                                   \
        }                                                                                 \
        d[i] = (int32_t) s[i];                                                            \
      }                                                                                   \
    } else {                                                                              \
      uint8_t *d = dst;                                                                   \
      for (gsize i = 0; i < n; i++) {                                                     \
        if (!s_in (s[i], 0, 255)) {                                                       \
          *f = (ConvFail) { i, "out of the u8 range", (double) s[i] };                    \
          return FALSE;                                                                   \
        }                                                                                 \
        d[i] = (uint8_t) s[i];                                                            \
      }                                                                                   \
    }                                                                                     \
  } while (0)

#define UNSIGNED_LOOP(ST)                                                                 \
  do {                                                                                    \
    const ST *s = (const ST *) src;                                                       \
    if (dt == KDF_DTYPE_F32) {                                                            \
      float *d = dst;                                                                     \
      for (gsize i = 0; i < n; i++)                                                       \
        d[i] = (float) s[i];                                                              \
    } else {                                                                              \
      guint64 hi = dt == KDF_DTYPE_I32 ? G_MAXINT32 : 255;                                \
      for (gsize i = 0; i < n; i++) {                                                     \
        if (!u_le (s[i], hi)) {                                                           \
          *f = (ConvFail) { i, dt == KDF_DTYPE_I32 ? "out of the i32 range"               \
                                                   : "out of the u8 range",               \
                            (double) s[i] };                                              \
          return FALSE;                                                                   \
        }                                                                                 \
        if (dt == KDF_DTYPE_I32)                                                          \
          ((int32_t *) dst)[i] = (int32_t) s[i];                                          \
        else                                                                              \
          ((uint8_t *) dst)[i] = (uint8_t) s[i];                                          \
      }                                                                                   \
    }                                                                                     \
  } while (0)

/* Converts N native-order elements of the file's type at SRC into DST of DT. */
static gboolean
convert (const KdfNpyHeader *h, const guint8 *src, gsize n, KdfDType dt, void *dst,
         ConvFail *f)
{
  switch (h->kind) {
  case 'f':
    if (h->itemsize == 4)
      FLOAT_LOOP (float);
    else
      FLOAT_LOOP (double);
    return TRUE;
  case 'i':
    switch (h->itemsize) {
    case 1: SIGNED_LOOP (int8_t); break;
    case 2: SIGNED_LOOP (int16_t); break;
    case 4: SIGNED_LOOP (int32_t); break;
    default: SIGNED_LOOP (int64_t); break;
    }
    return TRUE;
  case 'u':
    switch (h->itemsize) {
    case 1: UNSIGNED_LOOP (uint8_t); break;
    case 2: UNSIGNED_LOOP (uint16_t); break;
    case 4: UNSIGNED_LOOP (uint32_t); break;
    default: UNSIGNED_LOOP (uint64_t); break;
    }
    return TRUE;
  case 'b': {
    /* numpy stores bools as 0/1 bytes; anything nonzero reads as true. */
    for (gsize i = 0; i < n; i++) {
      int v = src[i] != 0;
      if (dt == KDF_DTYPE_F32)
        ((float *) dst)[i] = (float) v;
      else if (dt == KDF_DTYPE_I32)
        ((int32_t *) dst)[i] = v;
      else
        ((uint8_t *) dst)[i] = (uint8_t) v;
    }
    return TRUE;
  }
  default:
    g_assert_not_reached ();
  }
}

static KdfDType
natural_dtype (const KdfNpyHeader *h)
{
  if (h->kind == 'f')
    return KDF_DTYPE_F32;
  if (h->kind == 'b' || (h->kind == 'u' && h->itemsize == 1))
    return KDF_DTYPE_U8;
  return KDF_DTYPE_I32;
}

/* The header matched the file size, so this means the file shrank while we read. */
static KdfTensor *
set_truncated (GError **error, const char *path)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: truncated .npy data", path);
  return NULL;
}

KdfTensor *
kdf_npy_read (const char *path, KdfDType dtype, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (dtype == KDF_DTYPE_ANY || kdf_dtype_size (dtype) > 0, NULL);
  KdfNpyHeader h;
  g_autoptr (GInputStream) in = npy_open (path, &h, error);
  if (in == NULL)
    return NULL;
  if (h.rank > KDF_MAX_RANK) {
    g_autofree char *st = shape_text (&h);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: the array has rank %d (shape %s); kdflow tensors have rank at most %d",
                 path, h.rank, st, KDF_MAX_RANK);
    return NULL;
  }
  if (dtype == KDF_DTYPE_ANY)
    dtype = natural_dtype (&h);

  GError *local = NULL;
  g_autoptr (KdfTensor) t = kdf_tensor_try_new (dtype, h.rank, h.shape, &local);
  if (t == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  gboolean swap = h.big_endian != (G_BYTE_ORDER == G_BIG_ENDIAN) && h.itemsize > 1;
  gboolean same = (dtype == KDF_DTYPE_F32 && h.kind == 'f' && h.itemsize == 4) ||
                  (dtype == KDF_DTYPE_I32 && h.kind == 'i' && h.itemsize == 4) ||
                  (dtype == KDF_DTYPE_U8 && h.kind == 'u' && h.itemsize == 1);
  guint64 nbytes = h.numel * (guint64) h.itemsize;
  gsize got = 0;

  if (same) {
    if (!g_input_stream_read_all (in, t->data, nbytes, &got, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "read error");
      return NULL;
    }
    if (got < nbytes)
      return set_truncated (error, path);
    if (swap)
      swap_bytes (t->data, h.numel, h.itemsize);
    return g_steal_pointer (&t);
  }

  gsize per_block = MAX (NPY_BLOCK_BYTES / h.itemsize, 1);
  gsize block_elems = MIN ((guint64) per_block, h.numel);
  g_autofree guint8 *buf = g_malloc (MAX (block_elems * h.itemsize, 1));
  gsize out_size = kdf_dtype_size (dtype);
  for (guint64 done = 0; done < h.numel;) {
    gsize n = MIN ((guint64) block_elems, h.numel - done);
    if (!g_input_stream_read_all (in, buf, n * h.itemsize, &got, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "read error");
      return NULL;
    }
    if (got < n * h.itemsize)
      return set_truncated (error, path);
    if (swap)
      swap_bytes (buf, n, h.itemsize);
    ConvFail f = { 0 };
    if (!convert (&h, buf, n, dtype, (guint8 *) t->data + done * out_size, &f)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: cannot convert '%s' to %s: element %" G_GUINT64_FORMAT
                   " (row-major) is %.17g, %s",
                   path, h.descr, kdf_dtype_name (dtype), done + f.bad, f.value, f.reason);
      return NULL;
    }
    done += n;
  }
  return g_steal_pointer (&t);
}

KdfTensor *
kdf_npy_read_rows (const char *path, KdfDType dtype, const int32_t *rows, int64_t n_rows,
                   GError **error)
{
  g_return_val_if_fail (path != NULL && n_rows >= 0 && (rows != NULL || n_rows == 0), NULL);
  g_return_val_if_fail (dtype == KDF_DTYPE_ANY || kdf_dtype_size (dtype) > 0, NULL);
  KdfNpyHeader h;
  g_autoptr (GInputStream) in = npy_open (path, &h, error);
  if (in == NULL)
    return NULL;
  if (h.rank < 1 || h.rank > KDF_MAX_RANK) {
    g_autofree char *st = shape_text (&h);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: the array has shape %s; rows are read from arrays of rank 1 to %d", path,
                 st, KDF_MAX_RANK);
    return NULL;
  }
  const int64_t n = h.shape[0];
  for (int64_t i = 0; i < n_rows; i++)
    if (rows[i] < 0 || rows[i] >= n || (i > 0 && rows[i] <= rows[i - 1])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: row %d is not in the file's %" G_GINT64_FORMAT " rows (or the rows are "
                   "not increasing)", path, rows[i], (gint64) n);
      return NULL;
    }
  if (dtype == KDF_DTYPE_ANY)
    dtype = natural_dtype (&h);
  int64_t shape[KDF_MAX_RANK];
  memcpy (shape, h.shape, sizeof shape);
  shape[0] = n_rows;
  GError *local = NULL;
  g_autoptr (KdfTensor) t = kdf_tensor_try_new (dtype, h.rank, shape, &local);
  if (t == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  const guint64 row_elems = n ? h.numel / (guint64) n : 0;
  const gsize row_bytes = (gsize) row_elems * h.itemsize;
  const gsize out_row = (gsize) row_elems * kdf_dtype_size (dtype);
  const gboolean swap = h.big_endian != (G_BYTE_ORDER == G_BIG_ENDIAN) && h.itemsize > 1;
  /* runs of consecutive rows, each read with one seek, through a buffer of about
   * NPY_BLOCK_BYTES of whole rows; only the rows asked for are read */
  const int64_t block = row_bytes ? MAX ((int64_t) 1, (int64_t) (NPY_BLOCK_BYTES / row_bytes)) : 1;
  g_autofree guint8 *buf = g_malloc (MAX ((gsize) MIN (block, MAX (n_rows, 1)) * row_bytes, 1));
  for (int64_t i = 0; i < n_rows && row_bytes;) {
    int64_t run = 1;
    while (i + run < n_rows && run < block && rows[i + run] == rows[i] + run)
      run++;
    goffset at = (goffset) h.data_offset + (goffset) rows[i] * (goffset) row_bytes;
    if (!g_seekable_seek (G_SEEKABLE (in), at, G_SEEK_SET, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "cannot seek");
      return NULL;
    }
    gsize got = 0;
    if (!g_input_stream_read_all (in, buf, (gsize) run * row_bytes, &got, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "read error");
      return NULL;
    }
    if (got < (gsize) run * row_bytes)
      return set_truncated (error, path);
    if (swap)
      swap_bytes (buf, (gsize) run * row_elems, h.itemsize);
    ConvFail f = { 0 };
    if (!convert (&h, buf, (gsize) run * row_elems, dtype, (guint8 *) t->data + (gsize) i * out_row,
                  &f)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: cannot convert '%s' to %s: element %" G_GUINT64_FORMAT
                   " (row-major) is %.17g, %s",
                   path, h.descr, kdf_dtype_name (dtype),
                   (guint64) rows[i] * row_elems + f.bad, f.value, f.reason);
      return NULL;
    }
    i += run;
  }
  return g_steal_pointer (&t);
}

/* ---- writing --------------------------------------------------------------------- */

static gboolean
write_npy (const char *path, const char *descr, int rank, const int64_t *shape,
           const void *data, GError **error)
{
  KdfNpyHeader h = { 0 };
  g_autofree char *fake_path = g_strdup (path);
  if (!parse_descr (descr, &h, fake_path, error))
    return FALSE;
  if (rank < 0 || rank > KDF_NPY_MAX_RANK) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s: rank %d cannot be written", path, rank);
    return FALSE;
  }
  h.rank = rank;
  guint64 numel = 1;
  for (int d = 0; d < rank; d++) {
    h.shape[d] = shape[d];
    numel *= (guint64) shape[d];
  }
  g_autofree char *st = shape_text (&h);
  GString *dict = g_string_new (NULL);
  g_string_printf (dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, st);
  /* numpy pads so the data starts at a multiple of 64 bytes; the header ends in \n. */
  gsize pre_len = 10;
  if (pre_len + dict->len + 1 > 65535)
    pre_len = 12;
  while ((pre_len + dict->len + 1) % 64 != 0)
    g_string_append_c (dict, ' ');
  g_string_append_c (dict, '\n');

  guint8 pre[12];
  memcpy (pre, npy_magic, 6);
  pre[6] = pre_len == 10 ? 1 : 2;
  pre[7] = 0;
  guint32 hl = (guint32) dict->len;
  pre[8] = hl & 0xff;
  pre[9] = (hl >> 8) & 0xff;
  pre[10] = (hl >> 16) & 0xff;
  pre[11] = (hl >> 24) & 0xff;

  /* a temporary file renamed over PATH when whole: a reader (or a run killed half-way)
   * never sees a torn .npy, the first write of a file included */
  KdfAtomicFile *out = kdf_atomic_open (path, error);
  gboolean ok = out != NULL;
  if (ok)
    ok = kdf_atomic_write (out, pre, pre_len, error) &&
         kdf_atomic_write (out, dict->str, dict->len, error);
  g_string_free (dict, TRUE);

  gboolean swap = h.big_endian != (G_BYTE_ORDER == G_BIG_ENDIAN) && h.itemsize > 1;
  guint64 nbytes = numel * (guint64) h.itemsize;
  if (ok && !swap) {
    ok = kdf_atomic_write (out, data, nbytes, error);
  } else if (ok) {
    g_autofree guint8 *buf = g_malloc (MIN (nbytes, NPY_BLOCK_BYTES) + 1);
    for (guint64 off = 0; ok && off < nbytes; off += NPY_BLOCK_BYTES) {
      gsize len = MIN (nbytes - off, NPY_BLOCK_BYTES);
      memcpy (buf, (const guint8 *) data + off, len);
      swap_bytes (buf, len / h.itemsize, h.itemsize);
      ok = kdf_atomic_write (out, buf, len, error);
    }
  }
  if (!ok) {
    kdf_atomic_abort (out);
    return FALSE;
  }
  return kdf_atomic_commit (out, error);
}

gboolean
kdf_npy_write (const char *path, const KdfTensor *t, GError **error)
{
  g_return_val_if_fail (path != NULL && t != NULL, FALSE);
  const char *descr = t->dtype == KDF_DTYPE_F32   ? "<f4"
                      : t->dtype == KDF_DTYPE_I32 ? "<i4"
                                                  : "|u1";
  g_autoptr (KdfTensor) c = kdf_tensor_is_contiguous (t) ? NULL : kdf_tensor_copy (t);
  const KdfTensor *src = c ? c : t;
  return write_npy (path, descr, src->rank, src->shape, src->data, error);
}

gboolean
kdf_npy_write_raw (const char *path, const char *descr, int rank, const int64_t *shape,
                   const void *data, GError **error)
{
  g_return_val_if_fail (path != NULL && descr != NULL, FALSE);
  g_return_val_if_fail (rank == 0 || shape != NULL, FALSE);
  return write_npy (path, descr, rank, shape, data, error);
}
