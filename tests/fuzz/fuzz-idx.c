/* kdf_idx_read on arbitrary bytes (plain and gzip-compressed IDX). */
#include "fuzz-common.h"

#include <kdflow/data.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_file (data, size);
  GError *error = NULL;
  KdfTensor *t = kdf_idx_read (path, &error);
  g_assert ((t == NULL) == (error != NULL));
  kdf_tensor_unref (t);
  g_clear_error (&error);
  return 0;
}
