/* engine/data: the seeded RNG and stream helpers every reader and noise model uses. */
#include "config.h"
#include "../memory-private.h"

#include "data-private.h"

#include <math.h>
#include <string.h>

GRand *
kdf_data_rand_new (guint64 seed)
{
  /* Both halves of the seed matter: g_rand_new_with_seed takes only 32 bits. */
  guint32 words[2] = { (guint32) (seed & 0xffffffffu), (guint32) (seed >> 32) };
  return g_rand_new_with_seed_array (words, 2);
}

double
kdf_data_rand_normal (GRand *rand, double *cache, gboolean *have)
{
  if (*have) {
    *have = FALSE;
    return *cache;
  }
  /* 1 − u keeps the log argument in (0, 1]. */
  double u1 = 1.0 - g_rand_double (rand);
  double u2 = g_rand_double (rand);
  double r = sqrt (-2.0 * log (u1));
  double theta = 2.0 * G_PI * u2;
  *cache = r * sin (theta);
  *have = TRUE;
  return r * cos (theta);
}

void
kdf_data_choose (GRand *rand, int32_t *a, int64_t n, int64_t k)
{
  g_return_if_fail (k <= n && n <= G_MAXINT32);
  for (int64_t i = 0; i < k; i++) {
    int64_t j = g_rand_int_range (rand, (gint32) i, (gint32) n);
    int32_t tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
}

void
kdf_data_propagate_io (GError **error, GError *src, const char *path, const char *what)
{
  if (g_error_matches (src, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: file not found", path);
  else
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s%s%s", path, what ? what : "",
                 what ? ": " : "", src->message);
  g_error_free (src);
}

GInputStream *
kdf_data_open_stream (const char *path, gboolean *is_gzip, GError **error)
{
  GError *local = NULL;
  if (!kdf_file_check_input (path, NULL, error))
    return NULL;
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) raw = g_file_read (file, NULL, &local);
  if (raw == NULL) {
    kdf_data_propagate_io (error, local, path, "cannot open");
    return NULL;
  }
  /* Peek at the magic without consuming it: a buffered stream in front of the file. */
  g_autoptr (GInputStream) buffered =
      g_buffered_input_stream_new_sized (G_INPUT_STREAM (raw), 64 << 10);
  gssize got = g_buffered_input_stream_fill (G_BUFFERED_INPUT_STREAM (buffered), 2, NULL,
                                             &local);
  if (got < 0) {
    kdf_data_propagate_io (error, local, path, "cannot read");
    return NULL;
  }
  gsize avail = 0;
  const guint8 *peek =
      g_buffered_input_stream_peek_buffer (G_BUFFERED_INPUT_STREAM (buffered), &avail);
  gboolean gz = avail >= 2 && peek[0] == 0x1f && peek[1] == 0x8b;
  if (is_gzip)
    *is_gzip = gz;
  if (!gz)
    return g_steal_pointer (&buffered);
  g_autoptr (GZlibDecompressor) dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  return g_converter_input_stream_new (buffered, G_CONVERTER (dec));
}

int
kdf_data_resolve_class (const char *s, int n_classes, const char *const *names)
{
  g_autofree char *t = g_strstrip (g_strdup (s));
  if (names)
    for (int c = 0; c < n_classes && names[c]; c++)
      if (g_ascii_strcasecmp (t, names[c]) == 0)
        return c;
  char *end = NULL;
  if (*t == '\0')
    return -1;
  gint64 v = g_ascii_strtoll (t, &end, 10);
  if (*end != '\0' || v < 0 || v >= n_classes)
    return -1;
  return (int) v;
}

int64_t
kdf_data_rate_count (double rate, int64_t n)
{
  /* rate·n is computed in binary floating point; 1e-7 is far below one sample yet
   * above the rounding error of rate·n for any n below 10^8. */
  return (int64_t) floor (rate * (double) n + 1e-7);
}
