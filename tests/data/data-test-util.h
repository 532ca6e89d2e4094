/* Helpers shared by the engine/data tests: temp dirs, files, gzip, error checks. */
#pragma once

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <kdflow/data.h>
#include <string.h>

/* A fresh temp dir; removed (with its files) by tmpdir_free. */
static inline char *
tmpdir_new (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("kdf-data-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static inline void
tmpdir_free (char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, name, NULL);
    g_remove (p);
    g_free (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
  g_free (dir);
}

static inline char *
write_file (const char *dir, const char *name, const void *data, gsize len)
{
  char *p = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents (p, data, (gssize) len, &error);
  g_assert_no_error (error);
  return p;
}

/* gzip-compresses DATA in memory through GIO. */
static inline GBytes *
gzip_bytes (const void *data, gsize len)
{
  GZlibCompressor *comp = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  GOutputStream *mem = g_memory_output_stream_new_resizable ();
  GOutputStream *out = g_converter_output_stream_new (mem, G_CONVERTER (comp));
  GError *error = NULL;
  g_output_stream_write_all (out, data, len, NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_close (out, NULL, &error);
  g_assert_no_error (error);
  GBytes *b = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
  g_object_unref (out);
  g_object_unref (mem);
  g_object_unref (comp);
  return b;
}

/* Asserts ERROR is KDF_ERROR/CODE and its message contains every NULL-terminated
 * needle; frees it. */
static inline void
assert_error (GError **error, int code, ...)
{
  g_assert_nonnull (*error);
  g_test_message ("expected error: %s", (*error)->message);
  g_assert_error (*error, KDF_ERROR, code);
  va_list ap;
  va_start (ap, code);
  const char *needle;
  while ((needle = va_arg (ap, const char *)))
    if (strstr ((*error)->message, needle) == NULL)
      g_error ("message '%s' lacks '%s'", (*error)->message, needle);
  va_end (ap);
  g_clear_error (error);
}

/* Debian's numpy: /usr/bin/python3, not the python3 on PATH. */
#define KDF_TEST_PYTHON "/usr/bin/python3"

static inline gboolean
have_numpy (void)
{
  const char *argv[] = { KDF_TEST_PYTHON, "-c", "import numpy", NULL };
  int status = 0;
  if (!g_file_test (KDF_TEST_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return FALSE;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

/* Runs SCRIPT with Debian's python3 in DIR; fails the test (showing stderr) if it
 * exits non-zero. */
static inline void
run_python (const char *dir, const char *script)
{
  const char *argv[] = { KDF_TEST_PYTHON, "-c", script, NULL };
  char *out = NULL, *err = NULL;
  int status = 0;
  GError *error = NULL;
  g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("python failed:\n%s\n--- stdout:\n%s\n--- stderr:\n%s", script, out, err);
  g_free (out);
  g_free (err);
}
