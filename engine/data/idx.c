/* engine/data: IDX files (the MNIST family's format), plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, a rank byte, RANK big-endian u32 dimensions,
 * then the elements, big-endian, row-major. The whole payload is read with one
 * g_input_stream_read_all into the tensor (60 000 × 784 bytes decompress in a
 * fraction of a second that way; per-row reads would cost several times more).
 * kdf_idx_read_rows streams the payload in blocks of about 1 MB of whole rows and keeps
 * only the rows asked for: a 1 000-row subset of Fashion-MNIST never holds the 47 MB. */
#include "config.h"
#include "../memory-private.h"

#include "data-private.h"
#include "../cancel.h"

#include <string.h>

static const char *
idx_type_name (guint8 t)
{
  switch (t) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return NULL;
  }
}

static gsize
idx_type_size (guint8 t)
{
  switch (t) {
  case 0x08: case 0x09: return 1;
  case 0x0B: return 2;
  case 0x0C: case 0x0D: return 4;
  case 0x0E: return 8;
  default: return 0;
  }
}

/* Reads exactly LEN bytes; a short read is reported as truncation, decompression
 * failures as corrupt gzip. */
static gboolean
read_exact (GInputStream *in, void *buf, gsize len, gboolean gz, const char *path,
            const char *what, GError **error)
{
  gsize got = 0;
  GError *local = NULL;
  /* in 1 MB steps: a node's cancellation (Ctrl-C) stops a long decompression */
  while (got < len) {
    gsize step = MIN (len - got, (gsize) 1 << 20), n = 0;
    if (!kdf_cancel_check (path, error))
      return FALSE;
    if (!g_input_stream_read_all (in, (guint8 *) buf + got, step, &n, NULL, &local)) {
      kdf_data_propagate_io (error, local, path,
                             gz ? "corrupt or truncated gzip data" : "read error");
      return FALSE;
    }
    got += n;
    if (n < step)
      break;
  }
  if (got < len) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: truncated: expected %" G_GSIZE_FORMAT " bytes of %s, the file has only %"
                 G_GSIZE_FORMAT "%s",
                 path, len, what, got, gz ? " (after decompression)" : "");
    return FALSE;
  }
  return TRUE;
}

/* An open IDX file: its stream positioned at the payload, and what the header says. */
typedef struct {
  GInputStream *in;
  gboolean gz;
  guint8 type;
  int rank;
  int64_t shape[KDF_MAX_RANK];
  guint64 numel;
  gsize esize;
} IdxFile;

static void
idx_close (IdxFile *f)
{
  g_clear_object (&f->in);
}

static gboolean
idx_open (const char *path, IdxFile *f, GError **error)
{
  memset (f, 0, sizeof *f);
  f->in = kdf_data_open_stream (path, &f->gz, error);
  if (f->in == NULL)
    return FALSE;
  guint8 head[4];
  if (!read_exact (f->in, head, 4, f->gz, path, "the IDX header", error))
    return FALSE;
  const char *tname = idx_type_name (head[2]);
  if (head[0] != 0 || head[1] != 0 || tname == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: not an IDX file: bad magic %02x %02x %02x %02x (expected 00 00, a type "
                 "byte 08/09/0B/0C/0D/0E and the rank)",
                 path, head[0], head[1], head[2], head[3]);
    return FALSE;
  }
  f->type = head[2];
  f->rank = head[3];
  if (f->rank < 1 || f->rank > KDF_MAX_RANK) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: IDX rank %d is not supported (1 to %d)", path, f->rank, KDF_MAX_RANK);
    return FALSE;
  }
  guint8 dimbuf[4 * KDF_MAX_RANK];
  if (!read_exact (f->in, dimbuf, 4 * (gsize) f->rank, f->gz, path, "the IDX dimensions", error))
    return FALSE;
  f->numel = 1;
  for (int d = 0; d < f->rank; d++) {
    const guint8 *p = dimbuf + 4 * d;
    f->shape[d] = ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
    /* ≤ 2^32 per dim and ≤ 4 dims: guard the product against 64-bit overflow. */
    if (f->shape[d] != 0 && f->numel > G_MAXINT64 / 8 / (guint64) f->shape[d]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: IDX dimensions overflow (corrupt header?)", path);
      return FALSE;
    }
    f->numel *= (guint64) f->shape[d];
  }
  f->esize = idx_type_size (f->type);
  guint64 nbytes = f->numel * f->esize;

  /* A plain file's size is known up front: refuse before allocating anything. */
  if (!f->gz) {
    g_autoptr (GFile) gf = g_file_new_for_path (path);
    g_autoptr (GFileInfo) info =
        g_file_query_info (gf, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, NULL, NULL);
    if (info) {
      guint64 size = g_file_info_get_size (info);
      guint64 want = 4 + 4 * (guint64) f->rank + nbytes;
      if (size != want) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: dimensions disagree with the file size: they need %" G_GUINT64_FORMAT
                     " bytes, the file has %" G_GUINT64_FORMAT,
                     path, want, size);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static KdfDType
idx_dtype (guint8 type)
{
  return type == 0x08 ? KDF_DTYPE_U8
         : (type == 0x0D || type == 0x0E) ? KDF_DTYPE_F32
                                          : KDF_DTYPE_I32;
}

/* NUMEL big-endian elements of TYPE at SRC into DST (of idx_dtype (TYPE)); SRC == DST
 * is allowed when the widths agree (u8, and the 4-byte types). */
static void
convert (guint8 type, const guint8 *src, guint64 numel, void *dst)
{
  switch (type) {
  case 0x08:
    if (dst != src)
      memcpy (dst, src, numel);
    break;
  case 0x09:
    for (guint64 i = 0; i < numel; i++)
      ((int32_t *) dst)[i] = (gint8) src[i];
    break;
  case 0x0B:
    for (guint64 i = 0; i < numel; i++)
      ((int32_t *) dst)[i] = (gint16) (((guint16) src[2 * i] << 8) | src[2 * i + 1]);
    break;
  case 0x0C:
  case 0x0D:
    for (guint64 i = 0; i < numel; i++) {
      guint32 w;
      memcpy (&w, src + 4 * i, 4);
      w = GUINT32_FROM_BE (w);
      memcpy ((guint8 *) dst + 4 * i, &w, 4);
    }
    break;
  default: /* 0x0E */
    for (guint64 i = 0; i < numel; i++) {
      const guint8 *p = src + i * 8;
      guint64 u = 0;
      for (int b = 0; b < 8; b++)
        u = (u << 8) | p[b];
      double v;
      memcpy (&v, &u, 8);
      ((float *) dst)[i] = (float) v;
    }
    break;
  }
}

/* The payload must end the file (for gzip this also makes GIO check the CRC). */
static gboolean
check_end (const IdxFile *f, const char *path, const char *what, GError **error)
{
  guint8 extra;
  gsize got = 0;
  GError *local = NULL;
  if (!g_input_stream_read_all (f->in, &extra, 1, &got, NULL, &local)) {
    kdf_data_propagate_io (error, local, path,
                           f->gz ? "corrupt or truncated gzip data" : "read error");
    return FALSE;
  }
  if (got != 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: dimensions disagree with the file size: the file has data after the %s",
                 path, what);
    return FALSE;
  }
  return TRUE;
}

static KdfTensor *
new_tensor (const IdxFile *f, const int64_t *shape, const char *path, GError **error)
{
  GError *local = NULL;
  KdfTensor *t = kdf_tensor_try_new (idx_dtype (f->type), f->rank, shape, &local);
  if (t == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
  }
  return t;
}

static char *
payload_what (const IdxFile *f)
{
  g_autoptr (GString) dims = g_string_new ("[");
  for (int d = 0; d < f->rank; d++)
    g_string_append_printf (dims, "%s%" G_GINT64_FORMAT, d ? "," : "", (gint64) f->shape[d]);
  g_string_append_c (dims, ']');
  return g_strdup_printf ("%s %s data", dims->str, idx_type_name (f->type));
}

gboolean
kdf_idx_read_shape (const char *path, int *rank, int64_t *shape, GError **error)
{
  g_return_val_if_fail (path != NULL && rank != NULL && shape != NULL, FALSE);
  IdxFile f;
  gboolean ok = idx_open (path, &f, error);
  if (ok) {
    *rank = f.rank;
    memcpy (shape, f.shape, sizeof f.shape);
  }
  idx_close (&f);
  return ok;
}

KdfTensor *
kdf_idx_read_rows (const char *path, const int32_t *rows, int64_t n_rows, GError **error)
{
  g_return_val_if_fail (path != NULL && n_rows >= 0 && (rows != NULL || n_rows == 0), NULL);
  IdxFile f;
  KdfTensor *out = NULL;
  g_autoptr (KdfTensor) t = NULL;
  g_autofree guint8 *buf = NULL;
  if (!idx_open (path, &f, error)) {
    idx_close (&f);
    return NULL;
  }
  g_autofree char *what = payload_what (&f);
  const int64_t n = f.shape[0];
  const guint64 row_elems = n ? f.numel / (guint64) n : 0;
  const gsize row_bytes = (gsize) (row_elems * f.esize);
  for (int64_t i = 0; i < n_rows; i++)
    if (rows[i] < 0 || rows[i] >= n || (i > 0 && rows[i] <= rows[i - 1])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: row %d is not in the file's %" G_GINT64_FORMAT " rows (or the rows are "
                   "not increasing)", path, rows[i], (gint64) n);
      goto out;
    }
  int64_t shape[KDF_MAX_RANK];
  memcpy (shape, f.shape, sizeof shape);
  shape[0] = n_rows;
  if (!(t = new_tensor (&f, shape, path, error)))
    goto out;
  /* the payload in blocks of whole rows (about 1 MB), each decompressed into one buffer;
   * the rows asked for are converted out of it, the rest is dropped */
  const int64_t block = row_bytes ? MAX ((int64_t) 1, (int64_t) ((1 << 20) / row_bytes)) : n;
  buf = g_malloc (MAX ((gsize) block * row_bytes, 1));
  const gsize out_row = row_elems * (idx_dtype (f.type) == KDF_DTYPE_U8 ? 1 : 4);
  int64_t next = 0; /* the next of ROWS to fill */
  for (int64_t r0 = 0; r0 < n && row_bytes; r0 += block) {
    const int64_t nr = MIN (block, n - r0);
    if (!read_exact (f.in, buf, (gsize) nr * row_bytes, f.gz, path, what, error))
      goto out;
    for (; next < n_rows && rows[next] < r0 + nr; next++)
      convert (f.type, buf + (gsize) (rows[next] - r0) * row_bytes, row_elems,
               (guint8 *) t->data + (gsize) next * out_row);
  }
  if (!check_end (&f, path, what, error))
    goto out;
  out = g_steal_pointer (&t);
out:
  idx_close (&f);
  return out;
}

/* A gzip payload of NBYTES as the header claims, read into a buffer that grows with
 * what the stream delivers (doubling, from 1 MB): the claim is only checked against
 * the data at the end of the stream, so a few bytes of gzip claiming gigabytes fail as
 * truncated without allocating (and zeroing) them first. NULL with an error. */
static guint8 *
read_gz_payload (GInputStream *in, guint64 nbytes, const char *path, const char *what,
                 GError **error)
{
  gsize cap = (gsize) MIN (nbytes, (guint64) 1 << 20), got = 0;
  guint8 *buf = g_try_malloc (MAX (cap, (gsize) 1));
  if (buf == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: cannot allocate %" G_GSIZE_FORMAT " bytes",
                 path, cap);
    return NULL;
  }
  while (got < nbytes) {
    if (got == cap) {
      cap = (gsize) MIN (nbytes, (guint64) cap * 2);
      guint8 *more = g_try_realloc (buf, cap);
      if (more == NULL) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: cannot allocate %" G_GSIZE_FORMAT " bytes", path, cap);
        g_free (buf);
        return NULL;
      }
      buf = more;
    }
    /* in 1 MB steps: a node's cancellation (Ctrl-C) stops a long decompression */
    gsize step = MIN (cap - got, (gsize) 1 << 20), n = 0;
    GError *local = NULL;
    if (!kdf_cancel_check (path, error)) {
      g_free (buf);
      return NULL;
    }
    if (!g_input_stream_read_all (in, buf + got, step, &n, NULL, &local)) {
      kdf_data_propagate_io (error, local, path, "corrupt or truncated gzip data");
      g_free (buf);
      return NULL;
    }
    got += n;
    if (n < step)
      break;
  }
  if (got < nbytes) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: truncated: expected %" G_GUINT64_FORMAT " bytes of %s, the file has only %"
                 G_GSIZE_FORMAT " (after decompression)", path, nbytes, what, got);
    g_free (buf);
    return NULL;
  }
  return buf;
}

KdfTensor *
kdf_idx_read (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  IdxFile f;
  KdfTensor *out = NULL;
  g_autoptr (KdfTensor) t = NULL;
  g_autofree char *what = NULL;
  g_autofree char *bwhat = NULL;
  g_autofree guint8 *buf = NULL;
  if (!idx_open (path, &f, error))
    goto out;
  const guint64 nbytes = f.numel * f.esize;
  what = payload_what (&f);
  if (f.gz) {
    /* the whole payload first (it may be shorter than the header says), then the tensor */
    bwhat = g_strdup_printf ("%s: the %s", path, what);
    if (!kdf_memory_check (nbytes, bwhat, error))
      goto out;
    if (!(buf = read_gz_payload (f.in, nbytes, path, what, error)))
      goto out;
    if (!(t = new_tensor (&f, f.shape, path, error)))
      goto out;
    convert (f.type, buf, f.numel, t->data);
    g_clear_pointer (&buf, g_free); /* before check_end: not both at the end of a large read */
  } else if (!(t = new_tensor (&f, f.shape, path, error))) {
    goto out;
  } else if (f.type == 0x08 || f.esize == 4) {
    /* Same width as the tensor's elements: read in place, fix byte order after. */
    if (!read_exact (f.in, t->data, nbytes, f.gz, path, what, error))
      goto out;
    convert (f.type, t->data, f.numel, t->data);
  } else {
    /* Narrower or wider than the tensor's elements: through a buffer. */
    bwhat = g_strdup_printf ("%s: the %s", path, what);
    if (!kdf_memory_check (nbytes, bwhat, error))
      goto out;
    buf = g_try_malloc (nbytes ? nbytes : 1);
    if (buf == NULL) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: cannot allocate %" G_GUINT64_FORMAT " bytes", path, nbytes);
      goto out;
    }
    if (!read_exact (f.in, buf, nbytes, f.gz, path, what, error))
      goto out;
    convert (f.type, buf, f.numel, t->data);
  }
  if (!check_end (&f, path, what, error))
    goto out;
  out = g_steal_pointer (&t);
out:
  idx_close (&f);
  return out;
}
