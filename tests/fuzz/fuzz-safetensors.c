/* kdf_model_load on arbitrary bytes: the header, its metadata (architecture and heads)
 * and the tensors. */
#include "fuzz-common.h"

#include <kdflow/nn.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_file (data, size);
  GError *error = NULL;
  KdfModel *m = kdf_model_load (path, &error);
  g_assert ((m == NULL) == (error != NULL));
  kdf_model_unref (m);
  g_clear_error (&error);
  return 0;
}
