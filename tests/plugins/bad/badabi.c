/* A plugin built for the previous ABI (1.0, before port type strings and params
 * structs): the engine must refuse it, loudly, before it reads any class. */
#include <kdflow/kdflow-plugin.h>

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfNodeClass klass = {
  .struct_size = sizeof (KdfNodeClass), .name = "badabi_node", .run = run,
};
static const KdfNodeClass *const classes[] = { &klass, NULL };
static const KdfPluginInfo info = { .abi_major = 1, .abi_minor = 0, .name = "badabi",
                                    .classes = classes };

KDF_PLUGIN_EXPORT const KdfPluginInfo *kdf_plugin_badabi_describe (void);
const KdfPluginInfo *
kdf_plugin_badabi_describe (void)
{
  return &info;
}
