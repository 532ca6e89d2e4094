/* Files that are either whole or absent: every file of a run directory is written to
 * a temporary file next to it (".NAME.XXXXXX") and renamed over NAME once complete, so
 * a reader — or a run killed half-way — never sees a torn file. GLib's g_file_replace
 * writes a new file in place (only a replaced one goes through a temporary file), and
 * g_file_set_contents reports no file name on failure; hence these.
 *
 * Every failure (ENOSPC, EACCES, EROFS, EIO) is an error naming the file. The data is
 * not fsync'ed: the rename makes the file atomic against the death of the process,
 * which is what a run directory must survive; power loss is the file system's matter.
 *
 * This file calls no other file of the engine. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

struct _KdfAtomicFile {
  char *path;
  char *tmp;
  int fd;
};

static void
set_io_error (GError **error, const char *path, const char *what, int err)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "cannot %s %s: %s", what, path, g_strerror (err));
}

KdfAtomicFile *
kdf_atomic_open (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  char *tmp = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  /* 0666 less the umask, as any new file */
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "cannot write %s: cannot create a temporary file next to it: %s", path,
                 g_strerror (err));
    g_free (tmp);
    return NULL;
  }
  KdfAtomicFile *f = g_new0 (KdfAtomicFile, 1);
  f->path = g_strdup (path);
  f->tmp = tmp;
  f->fd = fd;
  return f;
}

gboolean
kdf_atomic_write (KdfAtomicFile *f, const void *data, gsize len, GError **error)
{
  const char *p = data;
  while (len > 0) {
    ssize_t w = write (f->fd, p, MIN (len, (gsize) 1 << 30));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      set_io_error (error, f->path, "write", w < 0 ? errno : ENOSPC);
      return FALSE;
    }
    p += w;
    len -= (gsize) w;
  }
  return TRUE;
}

static void
atomic_free (KdfAtomicFile *f)
{
  g_free (f->path);
  g_free (f->tmp);
  g_free (f);
}

void
kdf_atomic_abort (KdfAtomicFile *f)
{
  if (!f)
    return;
  if (f->fd >= 0)
    close (f->fd);
  g_unlink (f->tmp);
  atomic_free (f);
}

gboolean
kdf_atomic_commit (KdfAtomicFile *f, GError **error)
{
  int fd = f->fd;
  f->fd = -1;
  if (close (fd) != 0) {
    set_io_error (error, f->path, "write", errno);
    kdf_atomic_abort (f);
    return FALSE;
  }
  if (g_rename (f->tmp, f->path) != 0) {
    set_io_error (error, f->path, "rename a temporary file to", errno);
    kdf_atomic_abort (f);
    return FALSE;
  }
  atomic_free (f);
  return TRUE;
}

gboolean
kdf_file_write_atomic (const char *path, const void *data, gsize len, GError **error)
{
  g_return_val_if_fail (path != NULL && (data != NULL || len == 0), FALSE);
  KdfAtomicFile *f = kdf_atomic_open (path, error);
  if (!f)
    return FALSE;
  if (!kdf_atomic_write (f, data, len, error)) {
    kdf_atomic_abort (f);
    return FALSE;
  }
  return kdf_atomic_commit (f, error);
}

gboolean
kdf_file_append_line (const char *path, const char *line, GError **error)
{
  int fd = g_open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    set_io_error (error, path, "append to", errno);
    return FALSE;
  }
  off_t before = lseek (fd, 0, SEEK_END);
  gsize len = strlen (line);
  const char *p = line;
  gboolean ok = TRUE;
  int err = 0;
  while (ok && len > 0) {
    ssize_t w = write (fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      err = w < 0 ? errno : ENOSPC;
      ok = FALSE;
    } else {
      p += w;
      len -= (gsize) w;
    }
  }
  if (!ok && before >= 0) {
    /* no torn last line: what was there before stays, whole */
    int r = ftruncate (fd, before);
    (void) r;
  }
  if (close (fd) != 0 && ok) {
    err = errno;
    ok = FALSE;
  }
  if (!ok)
    set_io_error (error, path, "append to", err);
  return ok;
}
