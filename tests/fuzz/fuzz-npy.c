/* kdf_npy_read on arbitrary bytes, in every dtype it converts to. */
#include "fuzz-common.h"

#include <kdflow/data.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_file (data, size);
  static const KdfDType dtypes[] = { KDF_DTYPE_ANY, KDF_DTYPE_F32, KDF_DTYPE_I32, KDF_DTYPE_U8 };
  KdfDType dt = dtypes[size % G_N_ELEMENTS (dtypes)];
  GError *error = NULL;
  KdfTensor *t = kdf_npy_read (path, dt, &error);
  g_assert ((t == NULL) == (error != NULL));
  kdf_tensor_unref (t);
  g_clear_error (&error);
  return 0;
}
