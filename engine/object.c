/* The refcounted header shared by models and loss terms, and the error domain. */
#include "config.h"

#include <kdflow/base.h>

G_DEFINE_QUARK (kdf-error-quark, kdf_error)

const char *
kdf_value_kind_name (KdfValueKind kind)
{
  switch (kind) {
  case KDF_VALUE_TENSOR:
    return "tensor";
  case KDF_VALUE_MODEL:
    return "model";
  case KDF_VALUE_LOSS:
    return "loss";
  default:
    return "?";
  }
}

void
kdf_object_init (KdfObject *obj, KdfValueKind kind, void (*free_func) (KdfObject *),
                 char *(*describe) (const KdfObject *))
{
  obj->ref_count = 1;
  obj->kind = kind;
  obj->free = free_func;
  obj->describe = describe;
}

gpointer
kdf_object_ref (gpointer obj)
{
  g_return_val_if_fail (obj != NULL, NULL);
  g_atomic_int_inc (&((KdfObject *) obj)->ref_count);
  return obj;
}

void
kdf_object_unref (gpointer obj)
{
  KdfObject *o = obj;
  if (o && g_atomic_int_dec_and_test (&o->ref_count)) {
    if (o->free)
      o->free (o);
    else
      g_free (o);
  }
}

char *
kdf_object_describe (gconstpointer obj)
{
  const KdfObject *o = obj;
  if (o->describe)
    return o->describe (o);
  return g_strdup (kdf_value_kind_name (o->kind));
}
