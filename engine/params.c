/* Param slots: setting and validating params (constants and schedules), their
 * printable values, and filling a node's params struct before each run. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "graph-private.h"

/* ---- slots ------------------------------------------------------------------- */

void
kdf_param_slot_init (KdfParamSlot *p, const KdfParamSpec *spec)
{
  memset (p, 0, sizeof *p);
  p->spec = spec;
  p->num = spec->def;
  p->str = g_strdup (spec->def_string);
  if (spec->type == KDF_PARAM_ENUM)
    for (int c = 0; spec->choices[c].name; c++)
      if (g_strcmp0 (spec->choices[c].name, spec->def_string) == 0)
        p->choice = spec->choices[c].value;
}

void
kdf_param_slot_clear (KdfParamSlot *p)
{
  g_free (p->str);
  if (p->func_destroy)
    p->func_destroy (p->func_data);
  g_free (p->func_desc);
  memset (p, 0, sizeof *p);
}

void
kdf_node_fill_params (KdfNode *n)
{
  char *block = n->params_block;
  if (!block)
    return;
  for (guint i = 0; i < n->n_params; i++) {
    const KdfParamSlot *p = &n->params[i];
    const KdfParamSpec *s = p->spec;
    char *field = block + s->offset;
    switch (s->type) {
    case KDF_PARAM_INT:
      if (s->size == sizeof (gint64)) {
        gint64 v = (gint64) p->num;
        memcpy (field, &v, sizeof v);
      } else {
        gint32 v = (gint32) p->num;
        memcpy (field, &v, sizeof v);
      }
      break;
    case KDF_PARAM_DOUBLE:
      memcpy (field, &p->num, sizeof (double));
      break;
    case KDF_PARAM_BOOL: {
      gboolean v = p->num != 0;
      memcpy (field, &v, sizeof v);
      break;
    }
    case KDF_PARAM_STRING: {
      const char *v = p->str ? p->str : "";
      memcpy (field, &v, sizeof v);
      break;
    }
    case KDF_PARAM_ENUM: {
      int v = p->choice;
      memcpy (field, &v, sizeof v);
      break;
    }
    }
  }
}

/* ---- params ------------------------------------------------------------------- */

const char *
kdf_param_type_name (KdfParamType t)
{
  static const char *names[] = { "int", "double", "bool", "string", "enum" };
  return t <= KDF_PARAM_ENUM ? names[t] : "?";
}

static char *
choices_string (const KdfParamSpec *s)
{
  GString *str = g_string_new (NULL);
  for (int c = 0; s->choices && s->choices[c].name; c++)
    g_string_append_printf (str, "%s'%s'", c ? ", " : "", s->choices[c].name);
  return g_string_free (str, FALSE);
}

static KdfParamSlot *
find_param (KdfNode *n, const char *name, GError **error)
{
  for (guint i = 0; i < n->n_params; i++)
    if (strcmp (n->params[i].spec->name, name) == 0)
      return &n->params[i];
  g_autofree const char **names = g_new0 (const char *, n->n_params + 1);
  for (guint i = 0; i < n->n_params; i++)
    names[i] = n->params[i].spec->name;
  g_autofree char *hint = kdf_suggest (name, names, n->n_params);
  g_autofree char *where = kdf_node_where (n);
  GString *all = g_string_new (NULL);
  for (guint i = 0; i < n->n_params; i++)
    g_string_append_printf (all, "%s%s", i ? ", " : "", names[i]);
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: unknown param '%s'%s; params: %s", where,
               name, hint, n->n_params ? all->str : "none");
  g_string_free (all, TRUE);
  return NULL;
}

gboolean
kdf_node_has_param (KdfNode *n, const char *name)
{
  for (guint i = 0; i < n->n_params; i++)
    if (strcmp (n->params[i].spec->name, name) == 0)
      return TRUE;
  return FALSE;
}

gboolean
kdf_param_validate_number (KdfNode *n, KdfParamSlot *p, double v, const char *how, GError **error)
{
  const KdfParamSpec *s = p->spec;
  g_autofree char *where = kdf_node_where (n);
  if (!isfinite (v)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: param '%s'%s is %g, not a finite number",
                 where, s->name, how, v);
    return FALSE;
  }
  if (s->type == KDF_PARAM_INT && v != floor (v)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s: param '%s'%s is an int, got %g", where, s->name, how, v);
    return FALSE;
  }
  if (s->type == KDF_PARAM_BOOL && v != 0 && v != 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: param '%s'%s is a bool, got %g", where,
                 s->name, how, v);
    return FALSE;
  }
  if (s->type == KDF_PARAM_INT &&
      (s->size == sizeof (gint32) ? v < G_MININT32 || v > G_MAXINT32
                                  : fabs (v) > 9007199254740992.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s: param '%s'%s = %g does not fit its %s-bit integer", where, s->name, how,
                 v, s->size == sizeof (gint32) ? "32" : "53");
    return FALSE;
  }
  if (!(s->min == 0 && s->max == 0) && (v < s->min || v > s->max)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s: param '%s'%s = %g is out of range [%g, %g]", where, s->name, how, v,
                 s->min, s->max);
    return FALSE;
  }
  return TRUE;
}

static gboolean
wrong_type (KdfNode *n, KdfParamSlot *p, const char *got, GError **error)
{
  g_autofree char *where = kdf_node_where (n);
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: param '%s' takes %s %s, got %s", where,
               p->spec->name, p->spec->type == KDF_PARAM_INT ? "an" : "a",
               kdf_param_type_name (p->spec->type), got);
  return FALSE;
}

static void
param_drop_schedule (KdfParamSlot *p)
{
  if (p->func_destroy)
    p->func_destroy (p->func_data);
  p->func = NULL;
  p->func_data = NULL;
  p->func_destroy = NULL;
  g_clear_pointer (&p->func_desc, g_free);
}

static gboolean
set_number (KdfNode *n, const char *name, double v, gboolean is_bool, GError **error)
{
  KdfParamSlot *p = find_param (n, name, error);
  if (!p)
    return FALSE;
  KdfParamType type = p->spec->type;
  if (is_bool ? type != KDF_PARAM_BOOL : type != KDF_PARAM_INT && type != KDF_PARAM_DOUBLE) {
    g_autofree char *got = is_bool ? g_strdup_printf ("a bool (%s)", v ? "true" : "false")
                                   : g_strdup_printf ("a number (%g)", v);
    return wrong_type (n, p, got, error);
  }
  if (!kdf_param_validate_number (n, p, v, "", error))
    return FALSE;
  param_drop_schedule (p);
  if (!p->is_set || p->num != v)
    p->changed = TRUE;
  p->num = v;
  p->is_set = TRUE;
  return TRUE;
}

gboolean
kdf_node_set_param_int (KdfNode *n, const char *name, gint64 v, GError **error)
{
  return set_number (n, name, (double) v, FALSE, error);
}

gboolean
kdf_node_set_param_double (KdfNode *n, const char *name, double v, GError **error)
{
  return set_number (n, name, v, FALSE, error);
}

gboolean
kdf_node_set_param_bool (KdfNode *n, const char *name, gboolean v, GError **error)
{
  return set_number (n, name, v ? 1 : 0, TRUE, error);
}

gboolean
kdf_node_set_param_string (KdfNode *n, const char *name, const char *v, GError **error)
{
  KdfParamSlot *p = find_param (n, name, error);
  if (!p)
    return FALSE;
  const KdfParamSpec *s = p->spec;
  if (s->type != KDF_PARAM_STRING && s->type != KDF_PARAM_ENUM) {
    g_autofree char *got = g_strdup_printf ("a string ('%s')", v);
    return wrong_type (n, p, got, error);
  }
  int choice = 0;
  if (s->type == KDF_PARAM_ENUM) {
    int found = -1;
    guint n_choices = 0;
    for (int c = 0; s->choices[c].name; c++, n_choices++)
      if (strcmp (s->choices[c].name, v) == 0)
        found = c;
    if (found >= 0)
      choice = s->choices[found].value;
    if (found < 0) {
      g_autofree char *all = choices_string (s);
      g_autofree const char **names = g_new0 (const char *, n_choices + 1);
      for (guint c = 0; c < n_choices; c++)
        names[c] = s->choices[c].name;
      g_autofree char *hint = kdf_suggest (v, names, n_choices);
      g_autofree char *where = kdf_node_where (n);
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "%s: param '%s' = '%s' is not one of %s%s", where, s->name, v, all, hint);
      return FALSE;
    }
  }
  if (!p->is_set || g_strcmp0 (p->str, v) != 0)
    p->changed = TRUE;
  g_free (p->str);
  p->str = g_strdup (v);
  p->choice = choice;
  p->is_set = TRUE;
  return TRUE;
}

gboolean
kdf_node_set_param_schedule (KdfNode *n, const char *name, KdfScheduleFunc func, gpointer data,
                             GDestroyNotify destroy, const char *description, GError **error)
{
  KdfParamSlot *p = find_param (n, name, error);
  if (!p || p->spec->type == KDF_PARAM_STRING || p->spec->type == KDF_PARAM_ENUM) {
    if (p) {
      g_autofree char *where = kdf_node_where (n);
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "%s: param '%s' is a %s; only numeric and bool params can be schedules",
                   where, name, kdf_param_type_name (p->spec->type));
    }
    if (destroy)
      destroy (data);
    return FALSE;
  }
  param_drop_schedule (p);
  p->func = func;
  p->func_data = data;
  p->func_destroy = destroy;
  p->func_desc = g_strdup (description ? description : "schedule");
  p->is_set = TRUE;
  p->changed = TRUE;
  return TRUE;
}

char *
kdf_param_value_string (const KdfParamSlot *p)
{
  if (p->func && p->func_desc)
    return g_strdup (p->func_desc);
  switch (p->spec->type) {
  case KDF_PARAM_INT:
    return g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) p->num);
  case KDF_PARAM_DOUBLE:
    return g_strdup_printf ("%g", p->num);
  case KDF_PARAM_BOOL:
    return g_strdup (p->num ? "true" : "false");
  default:
    return g_strdup (p->str ? p->str : "");
  }
}

