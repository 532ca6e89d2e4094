/* A plugin whose second class declares a malformed port type. The loader must refuse
 * the file, name the kind and the port, and register neither class (not even the
 * good first one). */
#include <kdflow/kdflow-plugin.h>

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfPortSpec good_in[] = { KDF_PORT ("x", "f32[N]", 0, "fine"), { 0 } };
static const KdfNodeClass good = {
  .struct_size = sizeof (KdfNodeClass), .name = "badport_good", .inputs = good_in, .run = run,
};

static const KdfPortSpec bad_in[] = {
  KDF_PORT ("x", "f32[N]", 0, "fine"),
  KDF_PORT ("scores", "f32[N", 0, "the ']' is missing"),
  { 0 },
};
static const KdfNodeClass bad = {
  .struct_size = sizeof (KdfNodeClass), .name = "badport_node", .inputs = bad_in, .run = run,
};

KDF_PLUGIN (badport, &good, &bad)
