/* Process set-up and the engine's own node kinds. */
#include "config.h"

#include <stdlib.h>

#include "graph-private.h"

void kdf_registry_shutdown (void);

void
kdf_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    /* BLIS's OpenMP threads spin-wait by default, which collapses throughput when
     * the machine is shared; the user's own setting wins. */
    g_setenv ("OMP_WAIT_POLICY", "passive", FALSE);
    g_once_init_leave (&done, 1);
  }
}

void
kdf_shutdown (void)
{
  kdf_registry_shutdown ();
  kdf_blas_finalize ();
}

/* ---- constant: a tensor given by the graph (a Lua table, a tensor) ------------- */

static const KdfPortSpec constant_outputs[] = {
  { .name = "value", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .summary = "the tensor" },
  { 0 },
};

static gboolean
constant_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfNode *n = ctx->node;
  kdf_ctx_set_output_tensor (ctx, "value", kdf_tensor_ref (n->class_data));
  return TRUE;
}

static const KdfNodeClass constant_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "constant",
  .summary = "a fixed tensor given by the graph",
  .outputs = constant_outputs,
  .run = constant_run,
};

KdfNode *
kdf_graph_add_constant (KdfGraph *g, const char *name, KdfTensor *value, GError **error)
{
  return kdf_graph_add_node_with_class (g, &constant_class, name, kdf_tensor_ref (value),
                                        (GDestroyNotify) kdf_tensor_unref, error);
}
