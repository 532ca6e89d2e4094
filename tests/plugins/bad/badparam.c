/* A plugin that forgot .params_size: its param fields lie outside a params struct of
 * 0 bytes. The loader must refuse it and name the kind and the param. */
#include <kdflow/kdflow-plugin.h>

typedef struct {
  int bins;
  double cut;
} Params;

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, bins, 10, 1, 1000, "histogram bins"),
  KDF_PARAM_DOUBLE (Params, cut, 0.5, 0, 1, "a threshold"),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfNodeClass klass = {
  .struct_size = sizeof (KdfNodeClass), .name = "badparam_node", .params = params,
  .run = run, /* .params_size forgotten */
};

KDF_PLUGIN (badparam, &klass)
