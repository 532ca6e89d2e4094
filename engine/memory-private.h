/* engine/memory.c inside the library: tensor storage accounting and input files. */
#pragma once

#include <glib.h>

/* Adds DELTA bytes to the tensor storage alive (negative when freed). */
void kdf_memory_account (gint64 delta);

/* PATH must be a regular file (not a FIFO, a device or a directory, which would block
 * or make no sense as data); *SIZE its size. FALSE with a KDF_ERROR_IO error naming PATH. */
/* 0 if the JSON TEXT nests arrays and objects at most MAX_DEPTH deep; otherwise 1 + the
 * offset of the bracket that goes deeper (json-glib's parser recurses per level: deep
 * input overflows the stack of the thread that parses it). */
gsize kdf_json_too_deep (const char *text, gsize len, int max_depth);

gboolean kdf_file_check_input (const char *path, guint64 *size, GError **error);
