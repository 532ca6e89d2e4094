/* What a run leaves in its directory: one metrics.jsonl line per tick, summary.json
 * (one entry per graph run into the directory), the annotated graph.dot and
 * <graph>.dot, and a copy of the dot file in KDFLOW_DOT_DIR.
 *
 * The directory never lies: summary.json says "running" from the start of a run (a
 * run killed with SIGKILL is recognisable) and is replaced whole at the end; every
 * file is written through a temporary file and a rename (fileio.c), metrics.jsonl
 * appends aside, which never leave a torn line; and a write that fails fails the run
 * with the file's name. A program that owns the directory (kdf_run_dir_begin: `kdflow
 * run`) keeps its top-level status "running" until kdf_run_dir_end. */
#define _GNU_SOURCE /* nftw */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "graph-private.h"

#include <kdflow/dist.h>

/* ---- summary.json ------------------------------------------------------------- */

static JsonObject *
summary_load (const char *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = NULL;
  if (json_parser_load_from_file (parser, path, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    root = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
  else
    root = json_object_new ();
  if (!json_object_has_member (root, "graphs") ||
      !JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, "graphs")))
    json_object_set_object_member (root, "graphs", json_object_new ());
  return root;
}

static gboolean
summary_save (const char *path, JsonObject *root, GError **error)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  JsonNode *node = json_node_init_object (json_node_alloc (), root);
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, TRUE);
  gsize len = 0;
  g_autofree char *text = json_generator_to_data (gen, &len);
  json_node_unref (node);
  return kdf_file_write_atomic (path, text, len, error);
}

/* Does a program own the directory's top-level status (kdf_run_dir_begin)? */
static gboolean
summary_owned (JsonObject *root)
{
  return json_object_has_member (root, "command");
}

static JsonObject *
graph_entry (KdfGraph *g, const char *status, const GError *error, guint failed_tick,
             double seconds, JsonObject *last_metrics)
{
  JsonObject *entry = json_object_new ();
  json_object_set_int_member (entry, "seed", (gint64) g->seed);
  json_object_set_int_member (entry, "ticks", g->tick);
  json_object_set_string_member (entry, "status", status);
  if (error) {
    json_object_set_string_member (entry, "error", error->message);
    json_object_set_int_member (entry, "failed_tick", failed_tick);
  }
  json_object_set_double_member (entry, "seconds", seconds);
  /* what the numbers ran on: threads (of this rank), ranks of a data-parallel run */
  json_object_set_int_member (entry, "threads", g->threads);
  json_object_set_int_member (entry, "ranks", kdf_dist_size ());
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
  json_object_set_object_member (entry, "metrics",
                                 last_metrics ? json_object_ref (last_metrics) : json_object_new ());
  return entry;
}

/* summary.json holds one entry per graph run into the directory (a script may run
 * several stages), so the existing file is read and updated. */
static gboolean
write_summary (KdfGraph *g, const char *status, const GError *run_error, guint failed_tick,
               double seconds, JsonObject *last_metrics, GError **error)
{
  g_autofree char *path = g_build_filename (g->run_dir, "summary.json", NULL);
  JsonObject *root = summary_load (path);
  JsonObject *graphs = json_object_get_object_member (root, "graphs");
  json_object_set_object_member (graphs, g->name,
                                 graph_entry (g, status, run_error, failed_tick, seconds,
                                              last_metrics));
  if (!summary_owned (root))
    json_object_set_string_member (root, "status", status);
  json_object_set_string_member (root, "last_graph", g->name);
  gboolean ok = summary_save (path, root, error);
  json_object_unref (root);
  return ok;
}

gboolean
kdf_rundir_begin (KdfGraph *g, GError **error)
{
  if (!g->run_dir)
    return TRUE;
  return write_summary (g, "running", NULL, 0, 0.0, NULL, error);
}

/* ---- metrics.jsonl ------------------------------------------------------------ */

gboolean
kdf_rundir_append_metrics (KdfGraph *g, guint tick, double tick_seconds, JsonObject *last,
                           GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "graph");
  json_builder_add_string_value (b, g->name);
  json_builder_set_member_name (b, "tick");
  json_builder_add_int_value (b, tick);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, tick_seconds);
  for (guint k = 0; k < g->tick_metrics->len; k++)
    g_free (g_array_index (g->tick_metrics, KdfMetric, k).key);
  g_array_set_size (g->tick_metrics, 0);
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    for (guint k = 0; k < n->metrics->len; k++) {
      KdfMetric *m = &g_array_index (n->metrics, KdfMetric, k);
      json_builder_set_member_name (b, m->key);
      json_builder_add_double_value (b, m->value);
      if (last)
        json_object_set_double_member (last, m->key, m->value);
      g_array_append_val (g->tick_metrics, *m); /* the key moves there */
    }
    g_array_set_size (n->metrics, 0);
  }
  json_builder_end_object (b);
  if (!g->run_dir)
    return TRUE;
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  g_autofree char *line = g_strconcat (text, "\n", NULL);
  g_autofree char *path = g_build_filename (g->run_dir, "metrics.jsonl", NULL);
  return kdf_file_append_line (path, line, error);
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

gboolean
kdf_rundir_write (KdfGraph *g, const GError *run_error, guint failed_tick, double seconds,
                  JsonObject *last_metrics, GError **error)
{
  gboolean ok = TRUE;
  if (g->run_dir) {
    g_autofree char *dot = g_build_filename (g->run_dir, "graph.dot", NULL);
    g_autofree char *safe = file_safe (g->name);
    g_autofree char *base = g_strdup_printf ("%s.dot", safe);
    g_autofree char *named = g_build_filename (g->run_dir, base, NULL);
    ok = kdf_graph_write_dot (g, dot, error) && kdf_graph_write_dot (g, named, error);
    /* the summary says what happened even when a dot file could not be written */
    GError *local = NULL;
    GError *shown = run_error ? g_error_copy (run_error) : NULL;
    if (!ok && !shown)
      shown = g_error_copy (*error);
    gboolean ok2 = write_summary (g, shown ? "failed" : "ok", shown, failed_tick, seconds,
                                  last_metrics, &local);
    g_clear_error (&shown);
    if (!ok2) {
      if (ok)
        g_propagate_error (error, local);
      else
        g_clear_error (&local);
      ok = FALSE;
    }
  }
  const char *dot_dir = g_getenv ("KDFLOW_DOT_DIR");
  if (dot_dir && *dot_dir) {
    GError *local = NULL;
    g_mkdir_with_parents (dot_dir, 0755);
    g_autofree char *safe = file_safe (g->name);
    g_autofree char *base = g_strdup_printf ("%s.dot", safe);
    g_autofree char *path = g_build_filename (dot_dir, base, NULL);
    /* a debugging aid: its failure does not fail the run */
    if (!kdf_graph_write_dot (g, path, &local))
      g_printerr ("warning: KDFLOW_DOT_DIR: %s\n", local->message);
    g_clear_error (&local);
  }
  return ok;
}

/* ---- the directory as a whole (kdflow run --out, --replace) -------------------- */

static int
remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  if (ftw->level == 0) /* the directory itself stays */
    return 0;
  return remove (path) == 0 ? 0 : errno;
}

gboolean
kdf_run_dir_begin (const char *dir, const char *command, gboolean replace, GError **error)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && !g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "run directory %s: exists and is not a directory",
                 dir);
    return FALSE;
  }
  g_autofree char *summary = g_build_filename (dir, "summary.json", NULL);
  GDir *d = g_dir_open (dir, 0, NULL);
  gboolean empty = d == NULL || g_dir_read_name (d) == NULL;
  if (d)
    g_dir_close (d);
  if (!empty && !replace) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                 "run directory %s exists and is not empty (an earlier run's files would mix "
                 "with this one's); choose another --out, or add --replace to delete its "
                 "contents first",
                 dir);
    return FALSE;
  }
  if (!empty) {
    /* only what a run made: a directory without summary.json is someone's files */
    if (!g_file_test (summary, G_FILE_TEST_IS_REGULAR)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                   "run directory %s has no summary.json, so it is no kdflow run directory; "
                   "not deleting its contents (--replace), choose another --out",
                   dir);
      return FALSE;
    }
    /* the directory itself may be a symbolic link: walk what it points to (FTW_PHYS
     * would stop at the link), without following links inside */
    char *real = realpath (dir, NULL);
    int err = real ? nftw (real, remove_entry, 16, FTW_DEPTH | FTW_PHYS) : errno;
    free (real);
    if (err != 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "run directory %s: cannot delete the earlier run's files (--replace): %s", dir,
                   g_strerror (err > 0 ? err : errno));
      return FALSE;
    }
  }
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "cannot create run directory %s: %s", dir,
                 g_strerror (errno));
    return FALSE;
  }
  JsonObject *root = json_object_new ();
  json_object_set_string_member (root, "status", "running");
  json_object_set_string_member (root, "command", command ? command : "");
  if (kdf_dist_active ()) {
    /* a data-parallel run (mpirun): how many ranks trained, over what */
    json_object_set_int_member (root, "ranks", kdf_dist_size ());
    json_object_set_string_member (root, "mpi", kdf_dist_library ());
  }
  json_object_set_object_member (root, "graphs", json_object_new ());
  gboolean ok = summary_save (summary, root, error);
  json_object_unref (root);
  return ok;
}

gboolean
kdf_run_dir_end (const char *dir, int exit_status, const char *message, GError **error)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  g_autofree char *path = g_build_filename (dir, "summary.json", NULL);
  JsonObject *root = summary_load (path);
  json_object_set_string_member (root, "status", exit_status == 0 ? "ok" : "failed");
  json_object_set_int_member (root, "exit_status", exit_status);
  if (message)
    json_object_set_string_member (root, "error", message);
  else if (json_object_has_member (root, "error"))
    json_object_remove_member (root, "error");
  gboolean ok = summary_save (path, root, error);
  json_object_unref (root);
  return ok;
}
