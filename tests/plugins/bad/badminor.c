/* A plugin built for a newer minor ABI than the engine's: refused too (it may use
 * reserved fields this engine does not know). */
#include <kdflow/kdflow-plugin.h>

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfNodeClass klass = {
  .struct_size = sizeof (KdfNodeClass), .name = "badminor_node", .run = run,
};
static const KdfNodeClass *const classes[] = { &klass, NULL };
static const KdfPluginInfo info = { .abi_major = KDF_ABI_MAJOR, .abi_minor = KDF_ABI_MINOR + 1,
                                    .name = "badminor", .classes = classes };

KDF_PLUGIN_EXPORT const KdfPluginInfo *kdf_plugin_badminor_describe (void);
const KdfPluginInfo *
kdf_plugin_badminor_describe (void)
{
  return &info;
}
