/* Whole-or-absent files (fileio.c): what the run directory, the .npy writer and the
 * dot writer use. kdf_file_write_atomic is public (kdflow.h). */
#pragma once

#include <kdflow/kdflow.h>

G_BEGIN_DECLS

typedef struct _KdfAtomicFile KdfAtomicFile;

/* A temporary file next to PATH; NULL with an error naming PATH. */
G_GNUC_INTERNAL KdfAtomicFile *kdf_atomic_open (const char *path, GError **error);
/* FALSE with an error naming the file (the caller then aborts). */
G_GNUC_INTERNAL gboolean kdf_atomic_write (KdfAtomicFile *f, const void *data, gsize len,
                                           GError **error);
/* Closes and renames over PATH; frees F either way. */
G_GNUC_INTERNAL gboolean kdf_atomic_commit (KdfAtomicFile *f, GError **error);
/* Removes the temporary file and frees F (NULL is fine). */
G_GNUC_INTERNAL void kdf_atomic_abort (KdfAtomicFile *f);
/* Appends LINE (with its newline) to PATH; on failure PATH is truncated back to its
 * length before, so it never ends in a torn line, and the error names PATH. */
G_GNUC_INTERNAL gboolean kdf_file_append_line (const char *path, const char *line,
                                               GError **error);

G_END_DECLS
