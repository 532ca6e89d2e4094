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

/* SHOWN (nullable: all): which ports to draw; a port keeps its index in the id */
static void
append_ports (GString *out, const char *prefix, const KdfPortSpec *ports, guint n,
              const gboolean *shown)
{
  g_string_append_c (out, '{');
  gboolean first = TRUE;
  for (guint i = 0; i < n; i++) {
    if (shown && !shown[i])
      continue;
    if (!first)
      g_string_append_c (out, '|');
    first = FALSE;
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

/* Graphs with more nodes than this are drawn compact by default. */
#define COMPACT_FROM_NODES 10

static KdfDotPorts
resolve_ports (KdfGraph *g, KdfDotPorts ports)
{
  if (ports == KDF_DOT_PORTS_AUTO) {
    const char *env = g_getenv ("KDFLOW_DOT_PORTS");
    if (env && strcmp (env, "all") == 0)
      return KDF_DOT_PORTS_ALL;
    if (env && strcmp (env, "connected") == 0)
      return KDF_DOT_PORTS_CONNECTED;
    return g->nodes->len > COMPACT_FROM_NODES ? KDF_DOT_PORTS_CONNECTED : KDF_DOT_PORTS_ALL;
  }
  return ports;
}

char *
kdf_graph_to_dot (KdfGraph *g)
{
  return kdf_graph_to_dot_ports (g, KDF_DOT_PORTS_AUTO);
}

char *
kdf_graph_to_dot_ports (KdfGraph *g, KdfDotPorts ports)
{
  const gboolean compact = resolve_ports (g, ports) == KDF_DOT_PORTS_CONNECTED;
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
    g_autofree gboolean *in_shown = NULL, *out_shown = NULL;
    guint n_in_shown = n->n_inputs, n_out_shown = n->n_outputs;
    if (compact) {
      /* compact: the ports an edge uses (inputs know theirs; outputs from the edge list) */
      in_shown = g_new0 (gboolean, MAX (n->n_inputs, 1));
      out_shown = g_new0 (gboolean, MAX (n->n_outputs, 1));
      n_in_shown = n_out_shown = 0;
      for (guint p = 0; p < n->n_inputs; p++)
        n_in_shown += in_shown[p] = n->inputs[p].edges->len > 0;
      for (guint k = 0; k < g->edges->len; k++) {
        KdfEdge *e = g->edges->pdata[k];
        if (e->src == n && !out_shown[e->out]) {
          out_shown[e->out] = TRUE;
          n_out_shown++;
        }
      }
    }
    if (n_in_shown) {
      append_ports (out, "i", n->klass->inputs, n->n_inputs, in_shown);
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
    if (compact && n_in_shown + n_out_shown < n->n_inputs + n->n_outputs)
      g_string_append_printf (mid, "\n(%u unconnected ports hidden)",
                              n->n_inputs + n->n_outputs - n_in_shown - n_out_shown);
    append_record_escaped (out, mid->str);
    g_string_free (mid, TRUE);
    if (n_out_shown) {
      g_string_append_c (out, '|');
      append_ports (out, "o", n->klass->outputs, n->n_outputs, out_shown);
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
