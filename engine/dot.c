/* Graphviz dot: a pure string builder plus an atomic file write.
 *
 * Nodes are records whose fields are the ports (inputs left, outputs right), ids are
 * n0, n1, ... in insertion order so dumps diff cleanly, every label is escaped (an
 * unescaped {, }, |, < or > makes dot fail). After a run, edges carry the dtype and
 * shape of the value they last carried and nodes their time. */
#include "config.h"

#include <string.h>

#include "graph-private.h"

/* Escapes S for a record label field. */
static void
append_record_escaped (GString *out, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '{':
    case '}':
    case '|':
    case '<':
    case '>':
    case '"':
    case '\\':
      g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
      break;
    case '\n':
      g_string_append (out, "\\n");
      break;
    default:
      if ((guchar) *s < 0x20)
        g_string_append_c (out, ' ');
      else
        g_string_append_c (out, *s);
    }
  }
}

/* Escapes S for a quoted string (edge labels, graph name). */
static void
append_quoted_escaped (GString *out, const char *s)
{
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\')
      g_string_append_c (out, '\\');
    if (*s == '\n')
      g_string_append (out, "\\n");
    else if ((guchar) *s < 0x20)
      g_string_append_c (out, ' ');
    else
      g_string_append_c (out, *s);
  }
}

static void
append_ports (GString *out, const char *prefix, const KdfPortSpec *ports, guint n)
{
  g_string_append_c (out, '{');
  for (guint i = 0; i < n; i++) {
    if (i)
      g_string_append_c (out, '|');
    g_string_append_printf (out, "<%s%u> ", prefix, i);
    append_record_escaped (out, ports[i].name);
    if (ports[i].flags & KDF_PORT_ORACLE)
      g_string_append (out, " (oracle)");
  }
  g_string_append_c (out, '}');
}

static char *
format_seconds (double s)
{
  if (s >= 1)
    return g_strdup_printf ("%.2f s", s);
  if (s >= 1e-3)
    return g_strdup_printf ("%.2f ms", s * 1e3);
  return g_strdup_printf ("%.1f us", s * 1e6);
}

char *
kdf_graph_to_dot (KdfGraph *g)
{
  GString *out = g_string_new ("digraph \"");
  append_quoted_escaped (out, g->name);
  g_string_append (out, "\" {\n"
                        "  rankdir=LR;\n"
                        "  node [shape=record, fontname=\"Helvetica\", fontsize=10];\n"
                        "  edge [fontname=\"Helvetica\", fontsize=9];\n");
  g_string_append_printf (out, "  label=\"");
  g_autofree char *title = g_strdup_printf ("%s (seed %" G_GUINT64_FORMAT ", %u ticks run)",
                                            g->name, g->seed, g->tick);
  append_quoted_escaped (out, title);
  g_string_append (out, "\";\n  labelloc=t;\n");

  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    g_string_append_printf (out, "  n%u [label=\"{", n->id);
    if (n->n_inputs) {
      append_ports (out, "i", n->klass->inputs, n->n_inputs);
      g_string_append_c (out, '|');
    }
    /* the middle field: name, kind, set params, time */
    GString *mid = g_string_new (NULL);
    g_string_append_printf (mid, "%s\n(%s)", n->name, n->klass->name);
    guint shown = 0;
    for (guint p = 0; p < n->n_params; p++) {
      if (!n->params[p].is_set)
        continue;
      if (shown++ == 8) {
        g_string_append (mid, "\n...");
        break;
      }
      g_autofree char *v = kdf_param_value_string (&n->params[p]);
      if (strlen (v) > 40)
        strcpy (v + 37, "...");
      g_string_append_printf (mid, "\n%s = %s", n->params[p].spec->name, v);
    }
    if (n->stats.calls) {
      g_autofree char *t = format_seconds (n->stats.seconds);
      g_string_append_printf (mid, "\n%s in %u run%s", t, n->stats.calls,
                              n->stats.calls == 1 ? "" : "s");
    }
    append_record_escaped (out, mid->str);
    g_string_free (mid, TRUE);
    if (n->n_outputs) {
      g_string_append_c (out, '|');
      append_ports (out, "o", n->klass->outputs, n->n_outputs);
    }
    g_string_append (out, "}\"");
    if (n->klass->flags & KDF_NODE_EVALUATOR)
      g_string_append (out, ", style=filled, fillcolor=\"#eef5ff\"");
    else if (n->klass->flags & KDF_NODE_EVERY_TICK)
      g_string_append (out, ", style=filled, fillcolor=\"#fff6e0\"");
    g_string_append (out, "];\n");
  }

  for (guint i = 0; i < g->edges->len; i++) {
    KdfEdge *e = g->edges->pdata[i];
    g_string_append_printf (out, "  n%u:o%u -> n%u:i%u", e->src->id, e->out, e->dst->id, e->in);
    GString *label = g_string_new (NULL);
    const KdfValue *v = &e->src->outputs[e->out].value;
    if (v->p) {
      g_autofree char *d = kdf_value_describe (v);
      g_string_append (label, d);
    }
    if (e->delay)
      g_string_append_printf (label, "%sdelay %u", label->len ? "\n" : "", e->delay);
    GPtrArray *attrs = g_ptr_array_new_with_free_func (g_free);
    if (label->len) {
      GString *q = g_string_new ("label=\"");
      append_quoted_escaped (q, label->str);
      g_string_append_c (q, '"');
      g_ptr_array_add (attrs, g_string_free (q, FALSE));
    }
    if (e->delay)
      g_ptr_array_add (attrs, g_strdup ("style=dashed"));
    if (e->oracle || (e->src->klass->outputs[e->out].flags & KDF_PORT_ORACLE))
      g_ptr_array_add (attrs, g_strdup ("color=\"#c03030\", fontcolor=\"#c03030\""));
    if (attrs->len) {
      g_ptr_array_add (attrs, NULL);
      g_autofree char *joined = g_strjoinv (", ", (char **) attrs->pdata);
      g_string_append_printf (out, " [%s]", joined);
    }
    g_ptr_array_free (attrs, TRUE);
    g_string_free (label, TRUE);
    g_string_append (out, ";\n");
  }
  g_string_append (out, "}\n");
  return g_string_free (out, FALSE);
}

gboolean
kdf_graph_write_dot (KdfGraph *g, const char *path, GError **error)
{
  g_autofree char *text = kdf_graph_to_dot (g);
  GError *local = NULL;
  /* g_file_set_contents writes a temp file and renames it: readers never see half */
  if (!g_file_set_contents (path, text, -1, &local)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "graph '%s': cannot write dot file: %s",
                 g->name, local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}
