/* engine/data: IDX files (the MNIST family's format), plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, a rank byte, RANK big-endian u32 dimensions,
 * then the elements, big-endian, row-major. The whole payload is read with one
 * g_input_stream_read_all into the tensor (60 000 × 784 bytes decompress in a
 * fraction of a second that way; per-row reads would cost several times more). */
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

KdfTensor *
kdf_idx_read (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  gboolean gz = FALSE;
  g_autoptr (GInputStream) in = kdf_data_open_stream (path, &gz, error);
  if (in == NULL)
    return NULL;

  guint8 head[4];
  if (!read_exact (in, head, 4, gz, path, "the IDX header", error))
    return NULL;
  const char *tname = idx_type_name (head[2]);
  if (head[0] != 0 || head[1] != 0 || tname == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: not an IDX file: bad magic %02x %02x %02x %02x (expected 00 00, a type "
                 "byte 08/09/0B/0C/0D/0E and the rank)",
                 path, head[0], head[1], head[2], head[3]);
    return NULL;
  }
  int rank = head[3];
  if (rank < 1 || rank > KDF_MAX_RANK) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: IDX rank %d is not supported (1 to %d)", path, rank, KDF_MAX_RANK);
    return NULL;
  }
  guint8 dimbuf[4 * KDF_MAX_RANK];
  if (!read_exact (in, dimbuf, 4 * (gsize) rank, gz, path, "the IDX dimensions", error))
    return NULL;
  int64_t shape[KDF_MAX_RANK];
  guint64 numel = 1;
  for (int d = 0; d < rank; d++) {
    const guint8 *p = dimbuf + 4 * d;
    shape[d] = ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
    /* ≤ 2^32 per dim and ≤ 4 dims: guard the product against 64-bit overflow. */
    if (shape[d] != 0 && numel > G_MAXINT64 / 8 / (guint64) shape[d]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: IDX dimensions overflow (corrupt header?)", path);
      return NULL;
    }
    numel *= (guint64) shape[d];
  }
  gsize esize = idx_type_size (head[2]);
  guint64 nbytes = numel * esize;

  /* A plain file's size is known up front: refuse before allocating anything. */
  if (!gz) {
    g_autoptr (GFile) f = g_file_new_for_path (path);
    g_autoptr (GFileInfo) info =
        g_file_query_info (f, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, NULL, NULL);
    if (info) {
      guint64 size = g_file_info_get_size (info);
      guint64 want = 4 + 4 * (guint64) rank + nbytes;
      if (size != want) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: dimensions disagree with the file size: they need %" G_GUINT64_FORMAT
                     " bytes, the file has %" G_GUINT64_FORMAT,
                     path, want, size);
        return NULL;
      }
    }
  }

  KdfDType dtype = head[2] == 0x08 ? KDF_DTYPE_U8
                   : (head[2] == 0x0D || head[2] == 0x0E) ? KDF_DTYPE_F32
                                                          : KDF_DTYPE_I32;
  GError *local = NULL;
  g_autoptr (KdfTensor) t = kdf_tensor_try_new (dtype, rank, shape, &local);
  if (t == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  g_autofree char *dims_text = kdf_tensor_shape_string (t);
  g_autofree char *what = g_strdup_printf ("%s %s data", dims_text, tname);

  if (head[2] == 0x08 || esize == 4) {
    /* Same width as the tensor's elements: read in place, fix byte order after. */
    if (!read_exact (in, t->data, nbytes, gz, path, what, error))
      return NULL;
    if (esize == 4) {
      guint32 *w = t->data;
      for (guint64 i = 0; i < numel; i++)
        w[i] = GUINT32_FROM_BE (w[i]);
    }
  } else {
    /* Narrower or wider than the tensor's elements: through a buffer. */
    g_autofree char *bwhat = g_strdup_printf ("%s: the %s", path, what);
    if (!kdf_memory_check (nbytes, bwhat, error))
      return NULL;
    g_autofree guint8 *buf = g_try_malloc (nbytes ? nbytes : 1);
    if (buf == NULL) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: cannot allocate %" G_GUINT64_FORMAT " bytes", path, nbytes);
      return NULL;
    }
    if (!read_exact (in, buf, nbytes, gz, path, what, error))
      return NULL;
    for (guint64 i = 0; i < numel; i++) {
      const guint8 *p = buf + i * esize;
      if (head[2] == 0x09) {
        kdf_tensor_i32 (t)[i] = (gint8) p[0];
      } else if (head[2] == 0x0B) {
        kdf_tensor_i32 (t)[i] = (gint16) (((guint16) p[0] << 8) | p[1]);
      } else {
        guint64 u = 0;
        for (int b = 0; b < 8; b++)
          u = (u << 8) | p[b];
        double v;
        memcpy (&v, &u, 8);
        kdf_tensor_f32 (t)[i] = (float) v;
      }
    }
  }

  /* The payload must end the file (for gzip this also makes GIO check the CRC). */
  guint8 extra;
  gsize got = 0;
  if (!g_input_stream_read_all (in, &extra, 1, &got, NULL, &local)) {
    kdf_data_propagate_io (error, local, path,
                           gz ? "corrupt or truncated gzip data" : "read error");
    return NULL;
  }
  if (got != 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: dimensions disagree with the file size: the file has data after the %s",
                 path, what);
    return NULL;
  }
  return g_steal_pointer (&t);
}
