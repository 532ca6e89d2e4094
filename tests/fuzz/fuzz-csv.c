/* kdf_csv_read on arbitrary bytes, with and without a label column and header. */
#include "fuzz-common.h"

#include <kdflow/data.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_file (data, size);
  static const char *const labels[] = { NULL, "-1", "label", "0" };
  KdfCsvOptions opts = { .header = (KdfCsvHeader) (size % 3), .label_column = labels[(size / 3) % 4] };
  KdfTensor *x = NULL, *y = NULL;
  char **names = NULL;
  GError *error = NULL;
  gboolean ok = kdf_csv_read (path, &opts, &x, &y, &names, &error);
  g_assert (ok == (error == NULL));
  g_assert (!ok || x != NULL);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
  g_strfreev (names);
  g_clear_error (&error);
  return 0;
}
