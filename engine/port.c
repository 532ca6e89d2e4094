/* Port types: the one parser and the one printer of "f32[N,C]", "i32[N] < C",
 * "model", "loss", and of the declarations "name:TYPE?" of Lua nodes and foreign
 * kernels. Everything else (class validation, run-time checks, dot, describe) works on
 * the parsed KdfPortType. */
#include "config.h"

#include <string.h>

#include <kdflow/base.h>

static gboolean
is_symbol (const char *s)
{
  if (!(g_ascii_isalpha (s[0]) || s[0] == '_'))
    return FALSE;
  for (const char *c = s; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '_')
      return FALSE;
  return TRUE;
}

static gboolean
is_integer (const char *s)
{
  if (!*s || strlen (s) > 18)
    return FALSE;
  for (const char *c = s; *c; c++)
    if (!g_ascii_isdigit (*c))
      return FALSE;
  return TRUE;
}

static gboolean
type_error (GError **error, const char *text, const char *what)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
               "port type \"%s\": %s (expected \"model\", \"loss\", or a dtype f32, i32, u8 "
               "or any with an optional shape such as \"f32[N,C]\", and optionally \"< C\")",
               text, what);
  return FALSE;
}

gboolean
kdf_port_type_parse (const char *text, KdfPortType *type, GError **error)
{
  g_return_val_if_fail (type != NULL, FALSE);
  memset (type, 0, sizeof *type);
  type->rank = -1;
  if (!text)
    return type_error (error, "(null)", "no type");
  g_autofree char *s = g_strstrip (g_strdup (text));
  if (strcmp (s, "model") == 0 || strcmp (s, "loss") == 0) {
    type->kind = strcmp (s, "model") == 0 ? KDF_VALUE_MODEL : KDF_VALUE_LOSS;
    type->dtype = KDF_DTYPE_ANY;
    return TRUE;
  }
  type->kind = KDF_VALUE_TENSOR;
  /* the bound: "... < C" */
  char *lt = strchr (s, '<');
  if (lt) {
    *lt = '\0';
    g_autofree char *bound = g_strstrip (g_strdup (lt + 1));
    if (!is_symbol (bound) && !is_integer (bound))
      return type_error (error, text, "the bound after '<' must be a symbol or an integer");
    if (strlen (bound) >= sizeof type->bound)
      return type_error (error, text, "the bound's name is too long");
    g_strlcpy (type->bound, bound, sizeof type->bound);
    g_strstrip (s);
  }
  char *open = strchr (s, '[');
  g_autofree char *dtype = g_strstrip (g_strndup (s, open ? (gsize) (open - s) : strlen (s)));
  if (strcmp (dtype, "any") == 0)
    type->dtype = KDF_DTYPE_ANY;
  else if (!kdf_dtype_from_name (dtype, &type->dtype))
    return type_error (error, text, *dtype ? "unknown dtype" : "no dtype");
  if (*type->bound && type->dtype != KDF_DTYPE_I32)
    return type_error (error, text, "a bound '< C' needs dtype i32");
  if (!open)
    return TRUE; /* any rank */
  char *close = strchr (open, ']');
  if (!close)
    return type_error (error, text, "'[' without ']'");
  if (*g_strstrip (close + 1))
    return type_error (error, text, "text after ']'");
  *close = '\0';
  g_autofree char *body = g_strstrip (g_strdup (open + 1));
  if (!*body) {
    type->rank = 0;
  } else {
    g_auto (GStrv) dims = g_strsplit (body, ",", -1);
    guint rank = g_strv_length (dims);
    if (rank > KDF_MAX_RANK) {
      g_autofree char *why = g_strdup_printf ("rank %u, at most %d", rank, KDF_MAX_RANK);
      return type_error (error, text, why);
    }
    GString *canon = g_string_new (NULL);
    for (guint d = 0; d < rank; d++) {
      const char *dim = g_strstrip (dims[d]);
      if (!is_symbol (dim) && !is_integer (dim) && strcmp (dim, "*") != 0) {
        g_string_free (canon, TRUE);
        g_autofree char *why = g_strdup_printf (
            "dim %u is '%s', not a symbol, an integer or *", d + 1, dim);
        return type_error (error, text, why);
      }
      g_string_append_printf (canon, "%s%s", d ? "," : "", dim);
    }
    if (canon->len >= sizeof type->shape) {
      g_string_free (canon, TRUE);
      return type_error (error, text, "the shape is too long");
    }
    g_strlcpy (type->shape, canon->str, sizeof type->shape);
    g_string_free (canon, TRUE);
    type->rank = (int) rank;
  }
  return TRUE;
}

char *
kdf_port_type_to_string (const KdfPortType *type)
{
  g_return_val_if_fail (type != NULL, NULL);
  if (type->kind != KDF_VALUE_TENSOR)
    return g_strdup (kdf_value_kind_name (type->kind));
  GString *s = g_string_new (kdf_dtype_name (type->dtype));
  if (type->rank >= 0)
    g_string_append_printf (s, "[%s]", type->shape);
  if (*type->bound)
    g_string_append_printf (s, " < %s", type->bound);
  return g_string_free (s, FALSE);
}

gboolean
kdf_port_decl_parse (const char *decl, char **name, KdfPortType *type, gboolean *optional,
                     GError **error)
{
  g_return_val_if_fail (decl != NULL && name != NULL && type != NULL, FALSE);
  *name = NULL;
  const char *colon = strchr (decl, ':');
  if (!colon) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "port \"%s\": expected \"name:type\", e.g. \"scores:f32[N]\"", decl);
    return FALSE;
  }
  g_autofree char *n = g_strstrip (g_strndup (decl, (gsize) (colon - decl)));
  g_autofree char *t = g_strstrip (g_strdup (colon + 1));
  gboolean opt = g_str_has_suffix (t, "?");
  if (opt)
    t[strlen (t) - 1] = '\0';
  if (!is_symbol (n)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "port \"%s\": the name '%s' must be snake_case (letters, digits, '_')", decl, n);
    return FALSE;
  }
  GError *local = NULL;
  if (!kdf_port_type_parse (t, type, &local)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "port \"%s\": %s", decl, local->message);
    g_error_free (local);
    return FALSE;
  }
  if (optional)
    *optional = opt;
  *name = g_steal_pointer (&n);
  return TRUE;
}
