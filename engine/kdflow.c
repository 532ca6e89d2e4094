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

const char *
kdf_node_abi (void)
{
  return G_STRINGIFY (KDF_ABI_MAJOR) "." G_STRINGIFY (KDF_ABI_MINOR);
}

void
kdf_shutdown (void)
{
  kdf_registry_shutdown ();
  kdf_blas_finalize ();
}

/* ---- constant: a tensor given by the graph (a Lua table, a tensor) ------------- */

static const KdfPortSpec constant_outputs[] = {
  KDF_PORT ("value", "any", 0, "the tensor"),
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

/* ---- constant_model, constant_loss: a model or loss term given by the graph ------- */

static const KdfPortSpec constant_model_outputs[] = {
  KDF_PORT ("value", "model", 0, "the model"),
  { 0 },
};
static const KdfPortSpec constant_loss_outputs[] = {
  KDF_PORT ("value", "loss", 0, "the loss term"),
  { 0 },
};

static gboolean
constant_object_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfObject *o = ctx->node->class_data;
  if (o->kind == KDF_VALUE_MODEL)
    kdf_ctx_set_output_model (ctx, "value", kdf_object_ref (o));
  else
    kdf_ctx_set_output_loss (ctx, "value", kdf_object_ref (o));
  return TRUE;
}

static const KdfNodeClass constant_model_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "constant_model",
  .summary = "a fixed model given by the graph",
  .outputs = constant_model_outputs,
  .run = constant_object_run,
};
static const KdfNodeClass constant_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "constant_loss",
  .summary = "a fixed loss term given by the graph",
  .outputs = constant_loss_outputs,
  .run = constant_object_run,
};

KdfNode *
kdf_graph_add_constant_object (KdfGraph *g, const char *name, gpointer object, GError **error)
{
  KdfObject *o = object;
  g_return_val_if_fail (o && (o->kind == KDF_VALUE_MODEL || o->kind == KDF_VALUE_LOSS), NULL);
  return kdf_graph_add_node_with_class (g, o->kind == KDF_VALUE_MODEL ? &constant_model_class
                                                                      : &constant_loss_class,
                                        name, kdf_object_ref (o), kdf_object_unref, error);
}
