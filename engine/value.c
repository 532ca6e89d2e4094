/* Values on edges: a tensor or a refcounted object (model, loss term) with the
 * version stamp of the output that produced it. */
#include "config.h"

#include "graph-private.h"

/* ---- values ------------------------------------------------------------------- */

static gpointer
value_ref (KdfValueKind kind, gpointer p)
{
  if (!p)
    return NULL;
  return kind == KDF_VALUE_TENSOR ? (gpointer) kdf_tensor_ref (p) : kdf_object_ref (p);
}

static void
value_unref (KdfValueKind kind, gpointer p)
{
  if (!p)
    return;
  if (kind == KDF_VALUE_TENSOR)
    kdf_tensor_unref (p);
  else
    kdf_object_unref (p);
}

void
kdf_value_set (KdfValue *dst, const KdfValue *src)
{
  gpointer old = dst->p;
  KdfValueKind old_kind = dst->kind;
  dst->p = value_ref (src->kind, src->p);
  dst->kind = src->kind;
  dst->version = src->version;
  value_unref (old_kind, old);
}

void
kdf_value_clear (KdfValue *v)
{
  value_unref (v->kind, v->p);
  v->p = NULL;
  v->version = 0;
}

char *
kdf_value_describe (const KdfValue *v)
{
  if (!v->p)
    return g_strdup ("none");
  if (v->kind == KDF_VALUE_TENSOR)
    return kdf_tensor_describe (v->p);
  return kdf_object_describe (v->p);
}

