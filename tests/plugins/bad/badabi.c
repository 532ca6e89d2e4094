/* A plugin built for another ABI major: the engine must refuse it, loudly. */
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
static const KdfPluginInfo info = { .abi_major = KDF_ABI_MAJOR + 98, .abi_minor = 0,
                                    .name = "badabi", .classes = classes };

KDF_PLUGIN_EXPORT const KdfPluginInfo *kdf_plugin_badabi_describe (void);
const KdfPluginInfo *
kdf_plugin_badabi_describe (void)
{
  return &info;
}
