/* Defines a node kind that the test plugin defines too. */
#include <kdflow/kdflow-plugin.h>

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfNodeClass klass = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_noop", .summary = "a second test_noop",
  .run = run,
};

KDF_PLUGIN (dup, &klass)
