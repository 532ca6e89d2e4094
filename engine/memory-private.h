/* engine/memory.c inside the library: tensor storage accounting and input files. */
#pragma once

#include <glib.h>

/* Adds DELTA bytes to the tensor storage alive (negative when freed). */
void kdf_memory_account (gint64 delta);

/* PATH must be a regular file (not a FIFO, a device or a directory, which would block
 * or make no sense as data); *SIZE its size. FALSE with a KDF_ERROR_IO error naming PATH. */
gboolean kdf_file_check_input (const char *path, guint64 *size, GError **error);
