/* Node classes: the checks every class passes before a node of it is made (plugins at
 * load time, run-time classes when added), so that an author hears about a bad
 * descriptor with its name on it; and the text `kdflow describe` prints. */
#include "config.h"

#include <string.h>

#include "graph-private.h"

static gboolean
class_error (GError **error, KdfErrorCode code, const char *origin, const KdfNodeClass *k,
             const char *format, ...) G_GNUC_PRINTF (5, 6);

static gboolean
class_error (GError **error, KdfErrorCode code, const char *origin, const KdfNodeClass *k,
             const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, KDF_ERROR, code, "%s: node kind '%s': %s", origin,
               k->name ? k->name : "?", what);
  return FALSE;
}

static gboolean
is_snake (const char *s)
{
  if (!s || !*s)
    return FALSE;
  for (const char *c = s; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '_')
      return FALSE;
  return TRUE;
}

static gboolean
check_ports (const char *origin, const KdfNodeClass *k, const KdfPortSpec *ports,
             gboolean output, GError **error)
{
  const char *dir = output ? "output" : "input";
  for (guint i = 0; ports && ports[i].name; i++) {
    const KdfPortSpec *p = &ports[i];
    if (!is_snake (p->name))
      return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                          "%s port '%s': names are snake_case ([A-Za-z0-9_])", dir, p->name);
    KdfPortType type;
    GError *local = NULL;
    if (!kdf_port_type_parse (p->type, &type, &local)) {
      class_error (error, KDF_ERROR_PLUGIN, origin, k, "%s port '%s': %s", dir, p->name,
                   local->message);
      g_error_free (local);
      return FALSE;
    }
    guint allowed = output ? KDF_PORT_ORACLE | KDF_PORT_TEST
                           : KDF_PORT_OPTIONAL | KDF_PORT_MULTI | KDF_PORT_ON_DISK;
    if (p->flags & ~allowed)
      return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                          "%s port '%s': flags 0x%x are not for %ss", dir, p->name,
                          p->flags & ~allowed, dir);
    if (output && *type.bound)
      return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                          "output port '%s': a bound '< %s' is checked on inputs only", p->name,
                          type.bound);
    for (guint j = 0; j < i; j++)
      if (strcmp (ports[j].name, p->name) == 0)
        return class_error (error, KDF_ERROR_PLUGIN, origin, k, "%s port '%s' is declared twice",
                            dir, p->name);
  }
  return TRUE;
}

static gsize
field_size (KdfParamType type)
{
  switch (type) {
  case KDF_PARAM_DOUBLE:
    return sizeof (double);
  case KDF_PARAM_BOOL:
    return sizeof (gboolean);
  case KDF_PARAM_STRING:
    return sizeof (const char *);
  case KDF_PARAM_ENUM:
    return sizeof (int);
  default:
    return 0;
  }
}

static gboolean
check_param (const char *origin, const KdfNodeClass *k, const KdfParamSpec *p, GError **error)
{
  if (!is_snake (p->name))
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s': names are snake_case ([A-Za-z0-9_])", p->name);
  if (strcmp (p->name, "name") == 0)
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "a param may not be called 'name' (it names the node in Lua)");
  if (p->type > KDF_PARAM_ENUM)
    return class_error (error, KDF_ERROR_PLUGIN, origin, k, "param '%s' has an unknown type %d",
                        p->name, (int) p->type);
  /* the field: inside the params struct, and of the param's type */
  gboolean size_ok = p->type == KDF_PARAM_INT ? p->size == sizeof (gint32) || p->size == sizeof (gint64)
                                              : p->size == field_size (p->type);
  if (!size_ok)
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s' (%s) has a field of %" G_GSIZE_FORMAT
                        " bytes, which is not a %s field (declare params with KDF_PARAM_*)",
                        p->name, kdf_param_type_name (p->type), p->size,
                        kdf_param_type_name (p->type));
  if (p->offset + p->size > k->params_size || p->offset % p->size != 0)
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s': its field (offset %" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT
                        " bytes) is not inside the params struct of %" G_GSIZE_FORMAT
                        " bytes (set .params_size = sizeof (your params struct))",
                        p->name, p->offset, p->size, k->params_size);
  gboolean ranged = !(p->min == 0 && p->max == 0);
  gboolean required = (p->flags & KDF_PARAM_REQUIRED) != 0;
  if (p->type == KDF_PARAM_ENUM) {
    if (!p->choices || !p->choices[0].name)
      return class_error (error, KDF_ERROR_PLUGIN, origin, k, "enum param '%s' has no choices",
                          p->name);
    gboolean found = required;
    for (guint c = 0; p->choices[c].name; c++) {
      found |= g_strcmp0 (p->choices[c].name, p->def_string) == 0;
      for (guint d = 0; d < c; d++)
        if (strcmp (p->choices[d].name, p->choices[c].name) == 0)
          return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                              "enum param '%s' lists choice '%s' twice", p->name,
                              p->choices[c].name);
    }
    if (!found)
      return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                          "enum param '%s': the default '%s' is not one of its choices", p->name,
                          p->def_string ? p->def_string : "(null)");
  } else if (p->choices) {
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s' is a %s but has choices", p->name,
                        kdf_param_type_name (p->type));
  }
  if (ranged && (p->min > p->max || p->type == KDF_PARAM_BOOL || p->type == KDF_PARAM_STRING ||
                 p->type == KDF_PARAM_ENUM))
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s' has a range [%g, %g] that does not fit a %s", p->name, p->min,
                        p->max, kdf_param_type_name (p->type));
  if (p->type == KDF_PARAM_INT && p->size == sizeof (gint32) && ranged &&
      (p->min < G_MININT32 || p->max > G_MAXINT32))
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s': the range [%g, %g] does not fit its int field (use int64_t)",
                        p->name, p->min, p->max);
  if (!required && (p->type == KDF_PARAM_INT || p->type == KDF_PARAM_DOUBLE) && ranged &&
      (p->def < p->min || p->def > p->max))
    return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                        "param '%s': the default %g is outside its range [%g, %g]", p->name,
                        p->def, p->min, p->max);
  return TRUE;
}

gboolean
kdf_node_class_check (const KdfNodeClass *k, const char *origin, GError **error)
{
  if (k->struct_size != sizeof (KdfNodeClass)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_ABI,
                 "%s: node class '%s' has struct_size %" G_GSIZE_FORMAT
                 ", expected %" G_GSIZE_FORMAT " (set .struct_size = sizeof (KdfNodeClass))",
                 origin, k->name ? k->name : "?", k->struct_size, sizeof (KdfNodeClass));
    return FALSE;
  }
  if (!k->name || !*k->name || !k->run) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN, "%s: a node class has no %s", origin,
                 !k->run ? "run function" : "name");
    return FALSE;
  }
  for (const char *c = k->name; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '_' && *c != ':')
      return class_error (error, KDF_ERROR_PLUGIN, origin, k, "names are snake_case ([a-z0-9_])");
  if (!check_ports (origin, k, k->inputs, FALSE, error) ||
      !check_ports (origin, k, k->outputs, TRUE, error))
    return FALSE;
  guint n_params = 0;
  for (; k->params && k->params[n_params].name; n_params++) {
    const KdfParamSpec *p = &k->params[n_params];
    if (!check_param (origin, k, p, error))
      return FALSE;
    for (guint j = 0; j < n_params; j++) {
      const KdfParamSpec *q = &k->params[j];
      if (strcmp (q->name, p->name) == 0)
        return class_error (error, KDF_ERROR_PLUGIN, origin, k, "param '%s' is declared twice",
                            p->name);
      if (p->offset < q->offset + q->size && q->offset < p->offset + p->size)
        return class_error (error, KDF_ERROR_PLUGIN, origin, k,
                            "params '%s' and '%s' share bytes of the params struct", q->name,
                            p->name);
    }
  }
  return TRUE;
}

/* ---- describe ------------------------------------------------------------------ */

static void
describe_ports (GString *out, const char *title, const KdfPortSpec *ports)
{
  if (!ports || !ports[0].name)
    return;
  g_string_append_printf (out, "%s:\n", title);
  for (guint i = 0; ports[i].name; i++) {
    const KdfPortSpec *p = &ports[i];
    KdfPortType type;
    g_autofree char *t = kdf_port_type_parse (p->type, &type, NULL)
                             ? kdf_port_type_to_string (&type) : g_strdup (p->type);
    GString *flags = g_string_new (NULL);
    if (p->flags & KDF_PORT_OPTIONAL)
      g_string_append (flags, " optional");
    if (p->flags & KDF_PORT_MULTI)
      g_string_append (flags, " multi");
    if (p->flags & KDF_PORT_ORACLE)
      g_string_append (flags, " oracle");
    if (p->flags & KDF_PORT_ON_DISK)
      g_string_append (flags, " on-disk");
    g_string_append_printf (out, "  %-16s %-14s %s%s%s%s\n", p->name, t,
                            p->summary ? p->summary : "", flags->len ? " (" : "",
                            flags->len ? flags->str + 1 : "", flags->len ? ")" : "");
    g_string_free (flags, TRUE);
  }
}

char *
kdf_node_class_describe (const KdfNodeClass *k, const char *origin)
{
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "%s - %s\n", k->name, k->summary ? k->summary : "");
  if (origin)
    g_string_append_printf (out, "file: %s\n", origin);
  GString *flags = g_string_new (NULL);
  if (k->flags & KDF_NODE_EVERY_TICK)
    g_string_append (flags, ", runs every tick");
  if (k->flags & KDF_NODE_EVALUATOR)
    g_string_append (flags, ", evaluation node (may read oracle values)");
  if (flags->len)
    g_string_append_printf (out, "flags: %s\n", flags->str + 2);
  g_string_free (flags, TRUE);
  describe_ports (out, "inputs", k->inputs);
  describe_ports (out, "outputs", k->outputs);
  if (k->params && k->params[0].name) {
    g_string_append (out, "params:\n");
    for (guint i = 0; k->params[i].name; i++) {
      const KdfParamSpec *p = &k->params[i];
      g_autofree char *def = NULL;
      GString *range = g_string_new (NULL);
      if (p->flags & KDF_PARAM_REQUIRED)
        def = g_strdup ("required");
      else if (p->type == KDF_PARAM_STRING || p->type == KDF_PARAM_ENUM)
        def = g_strdup_printf ("default '%s'", p->def_string ? p->def_string : "");
      else if (p->type == KDF_PARAM_BOOL)
        def = g_strdup_printf ("default %s", p->def ? "true" : "false");
      else
        def = g_strdup_printf ("default %g", p->def);
      if (p->choices) {
        g_string_append (range, " {");
        for (guint c = 0; p->choices[c].name; c++)
          g_string_append_printf (range, "%s%s", c ? "|" : "", p->choices[c].name);
        g_string_append (range, "}");
      } else if (!(p->min == 0 && p->max == 0)) {
        g_string_append_printf (range, " [%g, %g]", p->min, p->max);
      }
      g_string_append_printf (out, "  %-16s %-7s %s%s  %s\n", p->name,
                              kdf_param_type_name (p->type), def, range->str,
                              p->summary ? p->summary : "");
      g_string_free (range, TRUE);
    }
  }
  return g_string_free (out, FALSE);
}

const char *
kdf_node_class_get_summary (const KdfNodeClass *klass)
{
  return klass->summary ? klass->summary : "";
}
