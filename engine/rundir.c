/* What a run leaves in its directory: one metrics.jsonl line per tick, summary.json
 * (one entry per graph run into the directory), the annotated graph.dot and
 * <graph>.dot, and a copy of the dot file in KDFLOW_DOT_DIR. */
#include "config.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "graph-private.h"

/* ---- the run directory -------------------------------------------------------- */

void
kdf_rundir_append_metrics (KdfGraph *g, guint tick, double tick_seconds, JsonObject *last)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "graph");
  json_builder_add_string_value (b, g->name);
  json_builder_set_member_name (b, "tick");
  json_builder_add_int_value (b, tick);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, tick_seconds);
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    for (guint k = 0; k < n->metrics->len; k++) {
      KdfMetric *m = &g_array_index (n->metrics, KdfMetric, k);
      json_builder_set_member_name (b, m->key);
      json_builder_add_double_value (b, m->value);
      if (last)
        json_object_set_double_member (last, m->key, m->value);
      g_free (m->key);
    }
    g_array_set_size (n->metrics, 0);
  }
  json_builder_end_object (b);
  if (!g->run_dir)
    return;
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *line = json_generator_to_data (gen, NULL);
  g_autofree char *path = g_build_filename (g->run_dir, "metrics.jsonl", NULL);
  FILE *f = fopen (path, "a");
  if (f) {
    fprintf (f, "%s\n", line);
    fclose (f);
  } else {
    g_warning ("cannot append to %s", path);
  }
}

static char *
file_safe (const char *name)
{
  char *s = g_strdup (name);
  for (char *c = s; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_' && *c != '.')
      *c = '_';
  return s;
}

/* summary.json holds one entry per graph run into the directory (a script may run
 * several stages), so the existing file is read and updated. */
static void
write_summary (KdfGraph *g, const GError *error, guint failed_tick, double seconds,
               JsonObject *last_metrics)
{
  g_autofree char *path = g_build_filename (g->run_dir, "summary.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = NULL;
  if (json_parser_load_from_file (parser, path, NULL) && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    root = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
  else
    root = json_object_new ();
  if (!json_object_has_member (root, "graphs"))
    json_object_set_object_member (root, "graphs", json_object_new ());
  JsonObject *graphs = json_object_get_object_member (root, "graphs");
  JsonObject *entry = json_object_new ();
  json_object_set_int_member (entry, "seed", (gint64) g->seed);
  json_object_set_int_member (entry, "ticks", g->tick);
  json_object_set_string_member (entry, "status", error ? "failed" : "ok");
  if (error) {
    json_object_set_string_member (entry, "error", error->message);
    json_object_set_int_member (entry, "failed_tick", failed_tick);
  }
  json_object_set_double_member (entry, "seconds", seconds);
  JsonArray *warnings = json_array_new ();
  for (guint i = 0; i < g->warnings->len; i++)
    json_array_add_string_element (warnings, g->warnings->pdata[i]);
  json_object_set_array_member (entry, "warnings", warnings);
  JsonObject *nodes = json_object_new ();
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    JsonObject *o = json_object_new ();
    json_object_set_string_member (o, "kind", n->klass->name);
    json_object_set_int_member (o, "calls", n->stats.calls);
    json_object_set_double_member (o, "seconds", n->stats.seconds);
    json_object_set_object_member (nodes, n->name, o);
  }
  json_object_set_object_member (entry, "nodes", nodes);
  json_object_set_object_member (entry, "metrics", json_object_ref (last_metrics));
  json_object_set_object_member (graphs, g->name, entry);
  json_object_set_string_member (root, "status", error ? "failed" : "ok");
  json_object_set_string_member (root, "last_graph", g->name);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  JsonNode *node = json_node_init_object (json_node_alloc (), root);
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  json_node_unref (node);
  json_object_unref (root);
  g_autoptr (GError) write_error = NULL;
  if (!g_file_set_contents (path, text, -1, &write_error))
    g_warning ("%s", write_error->message);
}

void
kdf_rundir_write (KdfGraph *g, const GError *run_error, guint failed_tick, double seconds,
                  JsonObject *last_metrics)
{
  g_autoptr (GError) error = NULL;
  if (g->run_dir) {
    g_autofree char *dot = g_build_filename (g->run_dir, "graph.dot", NULL);
    g_autofree char *safe = file_safe (g->name);
    g_autofree char *base = g_strdup_printf ("%s.dot", safe);
    g_autofree char *named = g_build_filename (g->run_dir, base, NULL);
    if (!kdf_graph_write_dot (g, dot, &error) || !kdf_graph_write_dot (g, named, &error)) {
      g_warning ("%s", error->message);
      g_clear_error (&error);
    }
    write_summary (g, run_error, failed_tick, seconds, last_metrics);
  }
  const char *dot_dir = g_getenv ("KDFLOW_DOT_DIR");
  if (dot_dir && *dot_dir) {
    g_mkdir_with_parents (dot_dir, 0755);
    g_autofree char *safe = file_safe (g->name);
    g_autofree char *base = g_strdup_printf ("%s.dot", safe);
    g_autofree char *path = g_build_filename (dot_dir, base, NULL);
    if (!kdf_graph_write_dot (g, path, &error))
      g_warning ("KDFLOW_DOT_DIR: %s", error->message);
  }
}

