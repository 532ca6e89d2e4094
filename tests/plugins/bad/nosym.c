/* A shared object without the describe symbol its file name promises. */
#include <kdflow/kdflow-plugin.h>

KDF_PLUGIN_EXPORT int kdf_plugin_something_else (void);
int
kdf_plugin_something_else (void)
{
  return 42;
}
