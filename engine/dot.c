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

/* G's nodes and edges, each line starting with INDENT, node ids PREFIX n<id> */
static void
append_graph_body (GString *out, KdfGraph *g, const char *prefix, gboolean compact,
                   const char *indent)
{
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    g_string_append_printf (out, "%s%sn%u [label=\"{", indent, prefix, n->id);
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
    g_string_append_printf (out, "%s%sn%u:o%u -> %sn%u:i%u", indent, prefix, e->src->id, e->out,
                            prefix, e->dst->id, e->in);
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
  append_graph_body (out, g, "", compact, "  ");
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

/* ---- several graphs: the stages of a script ----------------------------------- */

typedef struct {
  guint node;   /* node id in its graph */
  char *param;  /* the param naming the file */
  char *path;   /* as given, "./" prefixes dropped */
  gboolean writes;
} DotFile;

typedef struct {
  guint serial;
  char *name;
  char *label;
  char *body;      /* nodes and edges, ids s<index>_n<id> */
  GPtrArray *files; /* DotFile* */
} DotStage;

typedef struct {
  guint src_serial, src_node, dst_serial, dst_node;
  char *src_port;
} DotCarry;

struct _KdfDotBook {
  GPtrArray *stages;  /* DotStage*, in the order of their first drawing */
  GPtrArray *carries; /* DotCarry* */
};

static void
dot_file_free (gpointer p)
{
  DotFile *f = p;
  g_free (f->param);
  g_free (f->path);
  g_free (f);
}

static void
dot_stage_free (gpointer p)
{
  DotStage *s = p;
  g_free (s->name);
  g_free (s->label);
  g_free (s->body);
  g_ptr_array_unref (s->files);
  g_free (s);
}

static void
dot_carry_free (gpointer p)
{
  DotCarry *c = p;
  g_free (c->src_port);
  g_free (c);
}

KdfDotBook *
kdf_dot_book_new (void)
{
  KdfDotBook *b = g_new0 (KdfDotBook, 1);
  b->stages = g_ptr_array_new_with_free_func (dot_stage_free);
  b->carries = g_ptr_array_new_with_free_func (dot_carry_free);
  return b;
}

void
kdf_dot_book_free (KdfDotBook *b)
{
  if (!b)
    return;
  g_ptr_array_unref (b->stages);
  g_ptr_array_unref (b->carries);
  g_free (b);
}

guint
kdf_dot_book_n_stages (KdfDotBook *b)
{
  return b->stages->len;
}

static const char *
path_key (const char *path)
{
  while (g_str_has_prefix (path, "./"))
    path += 2;
  return path;
}

/* The files G's nodes name: a string param called "save" writes its file; every
 * other non-empty string param may read one (kdf_dot_book_to_dot keeps the ones a
 * writer or a "checkpoint" param makes files). */
static GPtrArray *
graph_files (KdfGraph *g)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (dot_file_free);
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    for (guint p = 0; p < n->n_params; p++) {
      const KdfParamSlot *slot = &n->params[p];
      if (!slot->is_set || slot->spec->type != KDF_PARAM_STRING || !slot->str || !*slot->str)
        continue;
      DotFile *f = g_new0 (DotFile, 1);
      f->node = n->id;
      f->param = g_strdup (slot->spec->name);
      f->path = g_strdup (path_key (slot->str));
      f->writes = strcmp (slot->spec->name, "save") == 0;
      g_ptr_array_add (files, f);
    }
  }
  return files;
}

void
kdf_dot_book_add (KdfDotBook *b, KdfGraph *g, const char *label, KdfDotPorts ports)
{
  DotStage *s = NULL;
  guint index = 0;
  for (; index < b->stages->len; index++) {
    DotStage *t = b->stages->pdata[index];
    if (t->serial == g->serial) {
      s = t;
      break;
    }
  }
  if (!s) {
    s = g_new0 (DotStage, 1);
    s->serial = g->serial;
    s->name = g_strdup (g->name);
    g_ptr_array_add (b->stages, s);
  } else {
    g_free (s->label);
    g_free (s->body);
    g_ptr_array_unref (s->files);
  }
  s->label = g_strdup (label ? label : "");
  g_autofree char *prefix = g_strdup_printf ("s%u_", index);
  GString *body = g_string_new (NULL);
  append_graph_body (body, g, prefix, resolve_ports (g, ports) == KDF_DOT_PORTS_CONNECTED,
                     "    ");
  s->body = g_string_free (body, FALSE);
  s->files = graph_files (g);
}

void
kdf_dot_book_carry (KdfDotBook *b, guint src_serial, guint src_node, const char *src_port,
                    guint dst_serial, guint dst_node)
{
  if (src_serial == dst_serial)
    return;
  DotCarry *c = g_new0 (DotCarry, 1);
  c->src_serial = src_serial;
  c->src_node = src_node;
  c->src_port = g_strdup (src_port);
  c->dst_serial = dst_serial;
  c->dst_node = dst_node;
  g_ptr_array_add (b->carries, c);
}

static gint
stage_index (KdfDotBook *b, guint serial)
{
  for (guint i = 0; i < b->stages->len; i++)
    if (((DotStage *) b->stages->pdata[i])->serial == serial)
      return (gint) i;
  return -1;
}

char *
kdf_dot_book_to_dot (KdfDotBook *b, const char *title, const char *note)
{
  GString *out = g_string_new ("digraph \"");
  append_quoted_escaped (out, title);
  g_string_append (out, "\" {\n"
                        "  rankdir=LR;\n"
                        "  compound=true;\n"
                        "  node [shape=record, fontname=\"Helvetica\", fontsize=10];\n"
                        "  edge [fontname=\"Helvetica\", fontsize=9];\n"
                        "  label=\"");
  GString *head = g_string_new (title);
  g_string_append_printf (head, ": %u stage%s", b->stages->len, b->stages->len == 1 ? "" : "s");
  if (note && *note)
    g_string_append_printf (head, "\n%s", note);
  append_quoted_escaped (out, head->str);
  g_string_free (head, TRUE);
  g_string_append (out, "\";\n  labelloc=t;\n");
  if (note && *note) {
    /* the note also as a comment, for whoever reads the text */
    g_auto (GStrv) lines = g_strsplit (note, "\n", -1);
    for (char **l = lines; *l; l++)
      g_string_append_printf (out, "  // %s\n", *l);
  }
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GPtrArray *cluster_ids = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < b->stages->len; i++) {
    DotStage *s = b->stages->pdata[i];
    /* cluster_<graph>; a name seen before gets _2, _3, ... */
    g_autofree char *id = g_strdup_printf ("cluster_%s", s->name);
    for (guint k = 2; g_hash_table_contains (names, id); k++) {
      g_free (id);
      id = g_strdup_printf ("cluster_%s_%u", s->name, k);
    }
    g_hash_table_add (names, g_strdup (id));
    g_ptr_array_add (cluster_ids, g_strdup (id));
    g_string_append (out, "  subgraph \"");
    append_quoted_escaped (out, id);
    g_string_append (out, "\" {\n    label=\"");
    g_autofree char *label = *s->label ? g_strdup_printf ("%s\n%s", s->name, s->label)
                                       : g_strdup (s->name);
    append_quoted_escaped (out, label);
    g_string_append (out, "\";\n    style=rounded;\n    color=\"#808080\";\n");
    g_string_append (out, s->body);
    g_string_append (out, "  }\n");
  }
  g_hash_table_unref (names);

  /* files: one node per path that a stage writes and a node reads, or that a
   * "checkpoint" param reads */
  GPtrArray *paths = g_ptr_array_new ();
  for (guint i = 0; i < b->stages->len; i++) {
    DotStage *s = b->stages->pdata[i];
    for (guint k = 0; k < s->files->len; k++) {
      DotFile *f = s->files->pdata[k];
      if (f->writes || g_ptr_array_find_with_equal_func (paths, f->path, g_str_equal, NULL))
        continue;
      gboolean written = FALSE;
      for (guint j = 0; j < b->stages->len && !written; j++) {
        DotStage *w = b->stages->pdata[j];
        for (guint m = 0; m < w->files->len && !written; m++) {
          DotFile *x = w->files->pdata[m];
          written = x->writes && strcmp (x->path, f->path) == 0;
        }
      }
      if (written || strcmp (f->param, "checkpoint") == 0)
        g_ptr_array_add (paths, f->path);
    }
  }
  for (guint p = 0; p < paths->len; p++) {
    const char *path = paths->pdata[p];
    g_string_append_printf (out, "  f%u [shape=note, style=filled, fillcolor=\"#f4f4f4\", label=\"", p);
    append_quoted_escaped (out, path);
    g_string_append (out, "\"];\n");
    for (guint i = 0; i < b->stages->len; i++) {
      DotStage *s = b->stages->pdata[i];
      for (guint k = 0; k < s->files->len; k++) {
        DotFile *f = s->files->pdata[k];
        if (strcmp (f->path, path) != 0)
          continue;
        if (f->writes)
          g_string_append_printf (out, "  s%u_n%u -> f%u [label=\"", i, f->node, p);
        else
          g_string_append_printf (out, "  f%u -> s%u_n%u [label=\"", p, i, f->node);
        append_quoted_escaped (out, f->param);
        g_string_append (out, "\", style=bold, color=\"#606060\"];\n");
      }
    }
  }
  g_ptr_array_unref (paths);

  /* values carried from one graph into another's constant nodes: one edge per value
   * and receiving graph, to the graph's cluster (a value bound to several inputs
   * would otherwise draw a fan of edges) */
  GHashTable *drawn = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < b->carries->len; i++) {
    DotCarry *c = b->carries->pdata[i];
    gint from = stage_index (b, c->src_serial), to = stage_index (b, c->dst_serial);
    if (from < 0 || to < 0)
      continue;
    char *key = g_strdup_printf ("%d/%u/%s/%d", from, c->src_node, c->src_port, to);
    if (!g_hash_table_add (drawn, key))
      continue;
    g_string_append_printf (out, "  s%d_n%u -> s%d_n%u [lhead=\"", from, c->src_node, to,
                            c->dst_node);
    append_quoted_escaped (out, cluster_ids->pdata[to]);
    g_string_append (out, "\", label=\"");
    append_quoted_escaped (out, c->src_port);
    /* not a layout constraint: the stages keep their order (a value of the first
     * graph feeds every later one in sd_pll), and Graphviz loses a record-to-record
     * edge that the ranks make flat */
    g_string_append (out, "\", constraint=false, style=bold, color=\"#2060a0\", "
                          "fontcolor=\"#2060a0\"];\n");
  }
  g_hash_table_unref (drawn);
  g_ptr_array_unref (cluster_ids);
  g_string_append (out, "}\n");
  return g_string_free (out, FALSE);
}
