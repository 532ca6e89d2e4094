/* `kdflow report RUN_DIR [RUN_DIR...] [--out DIR]`: one self-contained HTML page (inline
 * CSS, no scripts, no network) with SVG images written next to it, for one run or
 * several overlaid.
 *
 * What a run directory holds (engine/rundir.c, nodes/evaluate.c): metrics.jsonl (one
 * JSON object per tick: "graph", "tick", "seconds" and NODE.metric numbers),
 * summary.json (status, command, per graph: seed, ticks, node kinds, last metrics),
 * result-*.json (a pipeline's result and its options), NODE.confusion.npy and
 * NODE.score.npy (evaluate nodes), GRAPH.dot / graph.dot (the drawing).
 *
 * Every plot comes from PLplot's svg driver (docs/design.md says why); the graph
 * drawing from Graphviz when `dot` is on PATH, else the page links the .dot file. */
#include "config.h"

#include "report.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <kdflow/data.h>
#include <kdflow/kdflow.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

static gint
strcmp_ptr (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* ---- what a run directory holds --------------------------------------------- */

typedef struct {
  char *dir;
  char *label;            /* unique among the runs on the page */
  char *id;               /* r1, r2, ...: file name prefix */
  GPtrArray *ticks;       /* JsonObject per metrics.jsonl line */
  GPtrArray *graphs;      /* char *, order of first appearance */
  JsonNode *summary;      /* NULL when summary.json is missing */
  GPtrArray *results;     /* JsonNode per result-*.json */
  GPtrArray *result_names;
} Run;

static void
run_free (Run *r)
{
  g_free (r->dir);
  g_free (r->label);
  g_free (r->id);
  g_ptr_array_unref (r->ticks);
  g_ptr_array_unref (r->graphs);
  if (r->summary)
    json_node_unref (r->summary);
  g_ptr_array_unref (r->results);
  g_ptr_array_unref (r->result_names);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

static JsonNode *
read_json (const char *path, GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_file (p, path, error)) {
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: not a JSON object", path);
    return NULL;
  }
  return json_node_copy (root);
}

static Run *
run_load (const char *dir, GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "run directory '%s' does not exist", dir);
    return NULL;
  }
  g_autofree char *mpath = g_build_filename (dir, "metrics.jsonl", NULL);
  g_autofree char *spath = g_build_filename (dir, "summary.json", NULL);
  if (!g_file_test (mpath, G_FILE_TEST_EXISTS) && !g_file_test (spath, G_FILE_TEST_EXISTS)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "'%s' has neither metrics.jsonl nor summary.json: not a run directory "
                 "(kdflow run --out DIR makes one)", dir);
    return NULL;
  }
  g_autoptr (Run) r = g_new0 (Run, 1);
  r->dir = g_strdup (dir);
  r->ticks = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  r->graphs = g_ptr_array_new_with_free_func (g_free);
  r->results = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  r->result_names = g_ptr_array_new_with_free_func (g_free);
  if (g_file_test (mpath, G_FILE_TEST_EXISTS)) {
    g_autofree char *text = NULL;
    if (!g_file_get_contents (mpath, &text, NULL, error))
      return NULL;
    g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
    g_autoptr (JsonParser) p = json_parser_new ();
    for (int i = 0; lines[i]; i++) {
      if (!*g_strstrip (lines[i]))
        continue;
      g_autoptr (GError) e = NULL;
      JsonNode *root = NULL;
      if (json_parser_load_from_data (p, lines[i], -1, &e))
        root = json_parser_get_root (p);
      if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s:%d: not a JSON object%s%s", mpath,
                     i + 1, e ? ": " : "", e ? e->message : "");
        return NULL;
      }
      JsonObject *o = json_node_get_object (root);
      const char *graph = json_object_get_string_member_with_default (o, "graph", "");
      if (!json_object_has_member (o, "tick")) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s:%d: no \"tick\"", mpath, i + 1);
        return NULL;
      }
      if (!g_ptr_array_find_with_equal_func (r->graphs, graph, g_str_equal, NULL))
        g_ptr_array_add (r->graphs, g_strdup (graph));
      g_ptr_array_add (r->ticks, json_object_ref (o));
    }
  }
  if (g_file_test (spath, G_FILE_TEST_EXISTS) && !(r->summary = read_json (spath, error)))
    return NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  if (!d)
    return NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *n; (n = g_dir_read_name (d));)
    if (g_str_has_prefix (n, "result-") && g_str_has_suffix (n, ".json"))
      g_ptr_array_add (names, g_strdup (n));
  g_ptr_array_sort (names, strcmp_ptr);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
    JsonNode *n = read_json (path, error);
    if (!n)
      return NULL;
    g_ptr_array_add (r->results, n);
    g_ptr_array_add (r->result_names, g_strdup (names->pdata[i]));
  }
  return g_steal_pointer (&r);
}

/* The kind of node NAME in GRAPH, from summary.json; NULL if unknown. */
static const char *
node_kind (const Run *r, const char *graph, const char *name)
{
  if (!r->summary)
    return NULL;
  JsonObject *s = json_node_get_object (r->summary);
  JsonObject *gs = json_object_get_object_member (s, "graphs");
  if (!gs || !json_object_has_member (gs, graph))
    return NULL;
  JsonObject *g = json_object_get_object_member (gs, graph);
  JsonObject *nodes = g ? json_object_get_object_member (g, "nodes") : NULL;
  if (!nodes || !json_object_has_member (nodes, name))
    return NULL;
  JsonObject *n = json_object_get_object_member (nodes, name);
  return n ? json_object_get_string_member_with_default (n, "kind", NULL) : NULL;
}

/* The metric keys of GRAPH's ticks, in order of first appearance. */
static GPtrArray *
metric_keys (const Run *r, const char *graph)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < r->ticks->len; i++) {
    JsonObject *o = r->ticks->pdata[i];
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "graph", ""), graph) != 0)
      continue;
    g_autoptr (GList) members = json_object_get_members (o);
    for (GList *m = members; m; m = m->next) {
      const char *k = m->data;
      if (!strchr (k, '.') || g_hash_table_contains (seen, k))
        continue;
      char *copy = g_strdup (k);
      g_hash_table_add (seen, copy);
      g_ptr_array_add (keys, copy);
    }
  }
  return keys;
}

typedef struct {
  char *label;
  GArray *x, *y; /* double */
  int style;     /* PLplot line style, 1..8 */
} Series;

static void
series_free (Series *s)
{
  g_free (s->label);
  g_array_unref (s->x);
  g_array_unref (s->y);
  g_free (s);
}

/* KEY over GRAPH's ticks (x = tick + 1, the epochs done); NULL if it never appears. */
static Series *
series_of (const Run *r, const char *graph, const char *key, const char *label, int style)
{
  Series *s = g_new0 (Series, 1);
  s->x = g_array_new (FALSE, FALSE, sizeof (double));
  s->y = g_array_new (FALSE, FALSE, sizeof (double));
  s->style = style;
  s->label = g_strdup (label);
  for (guint i = 0; i < r->ticks->len; i++) {
    JsonObject *o = r->ticks->pdata[i];
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "graph", ""), graph) != 0)
      continue;
    JsonNode *v = json_object_get_member (o, key);
    if (!v || !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) == G_TYPE_STRING)
      continue;
    double x = json_object_get_double_member (o, "tick") + 1, y = json_node_get_double (v);
    if (!isfinite (y))
      continue;
    g_array_append_val (s->x, x);
    g_array_append_val (s->y, y);
  }
  if (s->x->len == 0) {
    series_free (s);
    return NULL;
  }
  return s;
}

/* ---- plots (PLplot, svg driver) -------------------------------------------- */

/* cmap0: 0 background, 1 axes and text, 2.. the series (the "tab10" palette). */
static const PLINT pal_r[] = { 255, 0, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23, 200, 240 };
static const PLINT pal_g[] = { 255, 0, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190, 200, 240 };
static const PLINT pal_b[] = { 255, 0, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207, 200, 240 };
#define N_SERIES_COLOURS 10
#define COL_GRID 12
#define COL_LIGHT 13

static void
plot_begin (const char *path, int width, int height)
{
  plsdev ("svg");
  plsfnam (path);
  g_autofree char *geometry = g_strdup_printf ("%dx%d", width, height);
  plsetopt ("geometry", geometry);
  plscmap0 (pal_r, pal_g, pal_b, G_N_ELEMENTS (pal_r));
  plinit ();
  pladv (0);
  plschr (0, 0.8);
  plcol0 (1);
}

static void
plot_end (void)
{
  plend1 ();
}

/* PLplot's text escape is '#': double it in anything that comes from a run. */
static char *
pl_text (const char *s)
{
  GString *out = g_string_new (NULL);
  for (; *s; s++) {
    if (*s == '#')
      g_string_append_c (out, '#');
    g_string_append_c (out, *s);
  }
  return g_string_free (out, FALSE);
}

static void
legend (GPtrArray *labels, const PLINT *colours, const PLINT *styles, gboolean boxes)
{
  int n = (int) labels->len;
  if (n == 0)
    return;
  g_autofree PLINT *opt = g_new0 (PLINT, n);
  g_autofree PLINT *tcol = g_new0 (PLINT, n);
  g_autofree PLFLT *widths = g_new0 (PLFLT, n);
  g_autofree PLFLT *scales = g_new0 (PLFLT, n);
  g_autofree PLINT *patterns = g_new0 (PLINT, n);
  for (int i = 0; i < n; i++) {
    opt[i] = boxes ? PL_LEGEND_COLOR_BOX : PL_LEGEND_LINE;
    tcol[i] = 1;
    widths[i] = boxes ? 1 : 2;
    scales[i] = 0.8;
  }
  PLFLT w, h;
  pllegend (&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
            PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.0, 0.08, 0, 1, 1,
            0, 0, n, opt, 0.6, 0.7, 1.8, 0.0, tcol, (const char *const *) labels->pdata, colours,
            patterns, scales, widths, colours, styles, widths, NULL, NULL, NULL, NULL);
}

static void
minmax (GPtrArray *series, double *x0, double *x1, double *y0, double *y1)
{
  *x0 = *y0 = INFINITY;
  *x1 = *y1 = -INFINITY;
  for (guint i = 0; i < series->len; i++) {
    Series *s = series->pdata[i];
    for (guint j = 0; j < s->x->len; j++) {
      *x0 = MIN (*x0, g_array_index (s->x, double, j));
      *x1 = MAX (*x1, g_array_index (s->x, double, j));
      *y0 = MIN (*y0, g_array_index (s->y, double, j));
      *y1 = MAX (*y1, g_array_index (s->y, double, j));
    }
  }
}

/* Curves over ticks; UNIT_Y: the y range is [0, 1]. */
static void
plot_lines (const char *path, const char *title, const char *ylabel, GPtrArray *series,
            gboolean unit_y)
{
  double x0, x1, y0, y1;
  minmax (series, &x0, &x1, &y0, &y1);
  if (x1 <= x0) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  if (unit_y) {
    y0 = MIN (0, y0);
    y1 = MAX (1, y1);
  } else {
    double pad = y1 > y0 ? 0.05 * (y1 - y0) : 0.5;
    y0 -= pad;
    y1 += pad;
  }
  plot_begin (path, 960, 400);
  plvpor (0.07, 0.56, 0.13, 0.9);
  plwind (x0, x1, y0, y1);
  plcol0 (COL_GRID);
  plbox ("g", 0, 0, "g", 0, 0);
  plcol0 (1);
  plbox ("bcnst", 0, 0, "bcnstv", 0, 0);
  g_autofree char *t = pl_text (title);
  pllab ("tick (epochs done)", ylabel, t);
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  g_autofree PLINT *colours = g_new0 (PLINT, series->len + 1);
  g_autofree PLINT *styles = g_new0 (PLINT, series->len + 1);
  plwidth (2);
  for (guint i = 0; i < series->len; i++) {
    Series *s = series->pdata[i];
    colours[i] = 2 + (int) (i % N_SERIES_COLOURS);
    /* past ten series the colours repeat: the next ten get the next dash pattern */
    styles[i] = 1 + (s->style - 1 + (int) (i / N_SERIES_COLOURS)) % 8;
    plcol0 (colours[i]);
    pllsty (styles[i]);
    plline ((PLINT) s->x->len, (PLFLT *) s->x->data, (PLFLT *) s->y->data);
    if (s->x->len <= 40)
      plpoin ((PLINT) s->x->len, (PLFLT *) s->x->data, (PLFLT *) s->y->data, 17);
    g_ptr_array_add (labels, pl_text (s->label));
  }
  pllsty (1);
  plwidth (1);
  plcol0 (1);
  legend (labels, colours, styles, FALSE);
  plot_end ();
}

/* Histogram of SCORES (agreement-like when HAVE_SPLIT: groups 1..4 of otsu_threshold as
 * colours, θ, μ_lo, μ_hi as vertical lines). */
static void
plot_histogram (const char *path, const char *title, const char *xlabel, const float *v,
                int64_t n, gboolean have_split, double theta, double mu_lo, double mu_hi)
{
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite (v[i])) {
      lo = MIN (lo, v[i]);
      hi = MAX (hi, v[i]);
    }
  if (!isfinite (lo)) {
    lo = 0;
    hi = 1;
  }
  if (have_split) {
    lo = MIN (lo, MIN (theta, mu_lo));
    hi = MAX (hi, MAX (theta, mu_hi));
  }
  if (hi <= lo)
    hi = lo + 1;
  enum { BINS = 50 };
  double counts[BINS] = { 0 }, width = (hi - lo) / BINS;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite (v[i]))
      continue;
    int b = (int) ((v[i] - lo) / width);
    counts[CLAMP (b, 0, BINS - 1)] += 1;
  }
  double top = 1;
  for (int b = 0; b < BINS; b++)
    top = MAX (top, counts[b]);
  plot_begin (path, 960, 400);
  plvpor (0.07, 0.56, 0.13, 0.9);
  plwind (lo, hi, 0, top * 1.05);
  plcol0 (COL_GRID);
  plbox ("", 0, 0, "g", 0, 0);
  for (int b = 0; b < BINS; b++) {
    if (counts[b] == 0)
      continue;
    double c = lo + (b + 0.5) * width;
    int group = !have_split ? 1 : c >= mu_hi ? 1 : c >= theta ? 2 : c >= mu_lo ? 3 : 4;
    PLFLT xs[4] = { lo + b * width, lo + (b + 1) * width, lo + (b + 1) * width, lo + b * width };
    PLFLT ys[4] = { 0, 0, counts[b], counts[b] };
    plcol0 (2 + group - 1);
    plfill (4, xs, ys);
    plcol0 (1);
    plline (4, xs, ys);
  }
  plcol0 (1);
  plbox ("bcnst", 0, 0, "bcnstv", 0, 0);
  g_autofree char *t = pl_text (title);
  pllab (xlabel, "rows", t);
  if (have_split) {
    plwidth (2);
    pllsty (2);
    plcol0 (7);
    pljoin (mu_lo, 0, mu_lo, top * 1.05);
    pljoin (mu_hi, 0, mu_hi, top * 1.05);
    pllsty (1);
    plcol0 (1);
    pljoin (theta, 0, theta, top * 1.05);
    plwidth (1);
    g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
    g_ptr_array_add (labels, g_strdup ("group 1: a >= mu_hi"));
    g_ptr_array_add (labels, g_strdup ("group 2: theta <= a < mu_hi"));
    g_ptr_array_add (labels, g_strdup ("group 3: mu_lo <= a < theta"));
    g_ptr_array_add (labels, g_strdup ("group 4: a < mu_lo (noisy)"));
    g_ptr_array_add (labels, g_strdup_printf ("theta = %.3f", theta));
    g_ptr_array_add (labels, g_strdup_printf ("mu_lo, mu_hi = %.3f, %.3f", mu_lo, mu_hi));
    PLINT colours[] = { 2, 3, 4, 5, 1, 7 }, styles[] = { 1, 1, 1, 1, 1, 2 };
    /* the groups as boxes, the lines as lines: two legends would overlap, so one with
     * line entries for all (a thick line in the group's colour reads as its swatch) */
    legend (labels, colours, styles, FALSE);
  }
  plot_end ();
}

/* Confusion matrix (C×C counts, rows = true class) as an image with the counts. */
static void
plot_confusion (const char *path, const char *title, const int32_t *m, int c)
{
  double zmax = 1;
  for (int i = 0; i < c * c; i++)
    zmax = MAX (zmax, m[i]);
  int side = CLAMP (60 + 42 * c, 300, 900);
  plot_begin (path, side, side);
  PLFLT pos[] = { 0, 1 }, r[] = { 1, 0.12 }, g[] = { 1, 0.35 }, b[] = { 1, 0.65 };
  plscmap1l (1, 2, pos, r, g, b, NULL);
  plvpor (0.13, 0.95, 0.1, 0.9);
  /* true class 0 at the top: the window's y runs downwards */
  plwind (-0.5, c - 0.5, c - 0.5, -0.5);
  for (int truth = 0; truth < c; truth++)
    for (int pred = 0; pred < c; pred++) {
      PLFLT xs[4] = { pred - 0.5, pred + 0.5, pred + 0.5, pred - 0.5 };
      PLFLT ys[4] = { truth - 0.5, truth - 0.5, truth + 0.5, truth + 0.5 };
      plcol1 (m[truth * c + pred] / zmax);
      plfill (4, xs, ys);
    }
  plcol0 (1);
  plbox ("bcnt", 1, 0, "bcntv", 1, 0);
  g_autofree char *t = pl_text (title);
  pllab ("predicted class", "true class", t);
  plschr (0, c > 12 ? 0.5 : 0.7);
  for (int truth = 0; truth < c; truth++)
    for (int pred = 0; pred < c; pred++) {
      int v = m[truth * c + pred];
      char text[16];
      g_snprintf (text, sizeof text, "%d", v);
      plcol0 (v > 0.55 * zmax ? 0 : 1);
      plptex (pred, truth + 0.15, 1, 0, 0.5, text);
    }
  plot_end ();
}

/* ---- the page --------------------------------------------------------------- */

static const char css[] =
    "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;font-size:.9em}th{background:#f3f3f3}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;display:block;"
    "margin:.5em 0;border:1px solid #eee}code{background:#f5f5f5;padding:0 .2em}"
    ".note{color:#666;font-size:.9em}.graph{overflow:auto;max-height:900px;border:1px solid "
    "#eee}.graph img{max-width:none;border:0}\n";

static void
h (GString *out, const char *text)
{
  g_autofree char *e = g_markup_escape_text (text ? text : "", -1);
  g_string_append (out, e);
}

static void
img (GString *out, const char *file, const char *alt)
{
  g_autofree char *f = g_markup_escape_text (file, -1);
  g_autofree char *a = g_markup_escape_text (alt, -1);
  g_string_append_printf (out, "<img src=\"%s\" alt=\"%s\">\n", f, a);
}

static void
json_value_text (GString *out, JsonNode *v)
{
  if (JSON_NODE_HOLDS_VALUE (v)) {
    GType t = json_node_get_value_type (v);
    if (t == G_TYPE_STRING)
      h (out, json_node_get_string (v));
    else if (t == G_TYPE_BOOLEAN)
      g_string_append (out, json_node_get_boolean (v) ? "true" : "false");
    else {
      double d = json_node_get_double (v);
      if (d == floor (d) && fabs (d) < 1e15)
        g_string_append_printf (out, "%.0f", d);
      else
        g_string_append_printf (out, "%.4g", d);
    }
  } else {
    g_autofree char *s = json_to_string (v, FALSE);
    h (out, s);
  }
}

static void
object_table (GString *out, JsonObject *o)
{
  g_string_append (out, "<table>\n");
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *m = members; m; m = m->next) {
    g_string_append (out, "<tr><th>");
    h (out, m->data);
    g_string_append (out, "</th><td>");
    json_value_text (out, json_object_get_member (o, m->data));
    g_string_append (out, "</td></tr>\n");
  }
  g_string_append (out, "</table>\n");
}

/* The last value of KEY in GRAPH's ticks; NAN if none. */
static double
last_value (const Run *r, const char *graph, const char *key)
{
  for (guint i = r->ticks->len; i-- > 0;) {
    JsonObject *o = r->ticks->pdata[i];
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "graph", ""), graph) != 0)
      continue;
    JsonNode *v = json_object_get_member (o, key);
    if (v && JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) != G_TYPE_STRING)
      return json_node_get_double (v);
  }
  return NAN;
}

static gboolean
is_accuracy_key (const Run *r, const char *graph, const char *key, char **node)
{
  if (!g_str_has_suffix (key, ".accuracy"))
    return FALSE;
  g_autofree char *n = g_strndup (key, strlen (key) - strlen (".accuracy"));
  const char *kind = node_kind (r, graph, n);
  /* evaluate nodes judge; other nodes' accuracy (teacher_forward) repeats theirs */
  if (kind && strcmp (kind, "evaluate") != 0)
    return FALSE;
  *node = g_steal_pointer (&n);
  return TRUE;
}

/* The graph of a node that wrote NODE.*.npy: the last graph with NODE in it. */
static const char *
graph_of_node (const Run *r, const char *node)
{
  for (guint i = r->graphs->len; i-- > 0;)
    if (node_kind (r, r->graphs->pdata[i], node))
      return r->graphs->pdata[i];
  return r->graphs->len ? r->graphs->pdata[r->graphs->len - 1] : "";
}

static gboolean
run_section (GString *out, Run *r, const char *out_dir, gboolean have_dot, int *n_images,
             GError **error)
{
  g_string_append_printf (out, "<h2 id=\"%s\">Run ", r->id);
  h (out, r->label);
  g_string_append (out, "</h2>\n<p class=\"note\">");
  h (out, r->dir);
  g_string_append (out, "</p>\n");

  /* status and the command */
  if (r->summary) {
    JsonObject *s = json_node_get_object (r->summary);
    g_string_append (out, "<table>\n<tr><th>status</th><td>");
    h (out, json_object_get_string_member_with_default (s, "status", "?"));
    if (json_object_has_member (s, "error")) {
      g_string_append (out, ": ");
      h (out, json_object_get_string_member_with_default (s, "error", ""));
    }
    g_string_append (out, "</td></tr>\n<tr><th>command</th><td><code>");
    h (out, json_object_get_string_member_with_default (s, "command", ""));
    g_string_append (out, "</code></td></tr>\n");
    JsonObject *gs = json_object_get_object_member (s, "graphs");
    g_autoptr (GList) graphs = gs ? json_object_get_members (gs) : NULL;
    for (GList *gl = graphs; gl; gl = gl->next) {
      JsonObject *g = json_object_get_object_member (gs, gl->data);
      if (!g)
        continue;
      /* summary.json's seconds are the last g:run's; the ticks' own add up */
      double seconds = 0;
      for (guint t = 0; t < r->ticks->len; t++) {
        JsonObject *o = r->ticks->pdata[t];
        if (g_strcmp0 (json_object_get_string_member_with_default (o, "graph", ""),
                       gl->data) == 0)
          seconds += json_object_get_double_member_with_default (o, "seconds", 0);
      }
      g_string_append (out, "<tr><th>graph ");
      h (out, gl->data);
      g_string_append_printf (
          out, "</th><td>seed %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT " ticks (%.1f s in "
               "them), %s</td></tr>\n",
          json_object_get_int_member_with_default (g, "seed", 0),
          json_object_get_int_member_with_default (g, "ticks", 0), seconds,
          json_object_get_string_member_with_default (g, "status", "?"));
    }
    g_string_append (out, "</table>\n");
  }

  /* detection precision / recall */
  g_string_append (out, "<h3>Detection precision / recall</h3>\n");
  gboolean any_detection = FALSE;
  for (guint gi = 0; gi < r->graphs->len; gi++) {
    const char *graph = r->graphs->pdata[gi];
    g_autoptr (GPtrArray) keys = metric_keys (r, graph);
    g_autoptr (GPtrArray) series = g_ptr_array_new_with_free_func ((GDestroyNotify) series_free);
    GString *rows = g_string_new (NULL);
    for (guint k = 0; k < keys->len; k++) {
      const char *key = keys->pdata[k];
      if (!g_str_has_suffix (key, ".precision"))
        continue;
      g_autofree char *node = g_strndup (key, strlen (key) - strlen (".precision"));
      const char *what[] = { "precision", "recall", "f1", "auroc" };
      double last[4];
      for (int w = 0; w < 4; w++) {
        g_autofree char *kk = g_strdup_printf ("%s.%s", node, what[w]);
        g_autofree char *label = g_strdup_printf ("%s %s", node, what[w]);
        Series *s = series_of (r, graph, kk, label, 1);
        if (s)
          g_ptr_array_add (series, s);
        last[w] = last_value (r, graph, kk);
      }
      g_string_append (rows, "<tr><td>");
      h (rows, graph);
      g_string_append (rows, "</td><td>");
      h (rows, node);
      g_string_append (rows, "</td>");
      for (int w = 0; w < 4; w++)
        g_string_append_printf (rows, isnan (last[w]) ? "<td class=\"n\">—</td>"
                                                      : "<td class=\"n\">%.4f</td>", last[w]);
      g_autofree char *fk = g_strdup_printf ("%s.flagged", node);
      g_autofree char *nk = g_strdup_printf ("%s.noisy", node);
      g_string_append_printf (rows, "<td class=\"n\">%.0f</td><td class=\"n\">%.0f</td></tr>\n",
                              last_value (r, graph, fk), last_value (r, graph, nk));
    }
    if (series->len) {
      any_detection = TRUE;
      g_autofree char *file = g_strdup_printf ("%s-detection-%u.svg", r->id, gi);
      g_autofree char *path = g_build_filename (out_dir, file, NULL);
      g_autofree char *title = g_strdup_printf ("%s: %s, noisy-label detection", r->label, graph);
      plot_lines (path, title, "against the oracle noise mask", series, TRUE);
      img (out, file, title);
      (*n_images)++;
      g_string_append (out, "<table><tr><th>graph</th><th>node</th><th>precision</th>"
                            "<th>recall</th><th>F1</th><th>AUROC</th><th>flagged</th>"
                            "<th>noisy</th></tr>\n");
      g_string_append (out, rows->str);
      g_string_append (out, "</table>\n");
    }
    g_string_free (rows, TRUE);
  }
  if (!any_detection)
    g_string_append (out, "<p class=\"note\">This run detects no noisy labels (no node reports "
                          "precision).</p>\n");

  /* score histograms (NODE.score.npy) and confusion matrices (NODE.confusion.npy) */
  g_autoptr (GDir) d = g_dir_open (r->dir, 0, error);
  if (!d)
    return FALSE;
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  for (const char *n; (n = g_dir_read_name (d));)
    if (g_str_has_suffix (n, ".score.npy") || g_str_has_suffix (n, ".confusion.npy") ||
        g_str_has_suffix (n, ".dot"))
      g_ptr_array_add (files, g_strdup (n));
  g_ptr_array_sort (files, strcmp_ptr);

  g_string_append (out, "<h3>Score histogram, threshold and groups</h3>\n");
  gboolean any_hist = FALSE;
  for (guint i = 0; i < files->len; i++) {
    const char *f = files->pdata[i];
    if (!g_str_has_suffix (f, ".score.npy"))
      continue;
    g_autofree char *node = g_strndup (f, strlen (f) - strlen (".score.npy"));
    g_autofree char *path = g_build_filename (r->dir, f, NULL);
    g_autoptr (KdfTensor) t = kdf_npy_read (path, KDF_DTYPE_F32, error);
    if (!t)
      return FALSE;
    const char *graph = graph_of_node (r, node);
    float *v = kdf_tensor_f32 (t);
    int64_t n = kdf_tensor_numel (t);
    /* an otsu_threshold node in the graph: its split, on the agreement scale. evaluate
     * saves a clean_score negated (higher = noisier), so scores in [-1, 0] beside an
     * agreement threshold in [0, 1] are shown as the agreement they were. */
    double theta = NAN, mu_lo = NAN, mu_hi = NAN;
    g_autofree char *otsu = NULL;
    g_autoptr (GPtrArray) keys = metric_keys (r, graph);
    for (guint k = 0; k < keys->len && !otsu; k++)
      if (g_str_has_suffix (keys->pdata[k], ".threshold")) {
        const char *key = keys->pdata[k];
        g_autofree char *nn = g_strndup (key, strlen (key) - strlen (".threshold"));
        const char *kind = node_kind (r, graph, nn);
        if (!kind || strcmp (kind, "otsu_threshold") == 0)
          otsu = g_steal_pointer (&nn);
      }
    gboolean have_split = FALSE;
    const char *xlabel = "score (higher = more likely noisy)";
    if (otsu) {
      g_autofree char *k1 = g_strdup_printf ("%s.threshold", otsu);
      g_autofree char *k2 = g_strdup_printf ("%s.mean_lo", otsu);
      g_autofree char *k3 = g_strdup_printf ("%s.mean_hi", otsu);
      theta = last_value (r, graph, k1);
      mu_lo = last_value (r, graph, k2);
      mu_hi = last_value (r, graph, k3);
      have_split = isfinite (theta) && isfinite (mu_lo) && isfinite (mu_hi);
      gboolean negated = n > 0;
      for (int64_t j = 0; j < n; j++)
        negated = negated && v[j] <= 0 && v[j] >= -1;
      if (have_split && negated && theta >= 0) {
        for (int64_t j = 0; j < n; j++)
          v[j] = -v[j];
        xlabel = "agreement a (higher = label more likely clean)";
      }
    }
    g_autofree char *file = g_strdup_printf ("%s-hist-%s.svg", r->id, node);
    g_autofree char *ipath = g_build_filename (out_dir, file, NULL);
    g_autofree char *title = g_strdup_printf ("%s: %s, last tick", r->label, node);
    plot_histogram (ipath, title, xlabel, v, n, have_split, theta, mu_lo, mu_hi);
    img (out, file, title);
    (*n_images)++;
    any_hist = TRUE;
    if (have_split) {
      g_string_append (out, "<table><tr><th>split</th><th>theta</th><th>mu_lo</th><th>mu_hi</th>"
                            "<th>group 1</th><th>group 2</th><th>group 3</th><th>group 4</th>"
                            "</tr>\n<tr><td>");
      h (out, otsu);
      g_string_append_printf (out, "</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f</td>"
                                   "<td class=\"n\">%.4f</td>", theta, mu_lo, mu_hi);
      for (int gi = 1; gi <= 4; gi++) {
        g_autofree char *k = g_strdup_printf ("%s.group%d", otsu, gi);
        double c = last_value (r, graph, k);
        g_string_append_printf (out, isnan (c) ? "<td>—</td>" : "<td class=\"n\">%.0f</td>", c);
      }
      g_string_append (out, "</tr></table>\n<p class=\"note\">The histogram holds the scores "
                            "of the last tick; the split is the threshold node's last one "
                            "(Blind KD: computed once, at the tipping epoch).</p>\n");
    }
  }
  if (!any_hist)
    g_string_append (out, "<p class=\"note\">This run saved no per-row scores "
                          "(<code>NODE.score.npy</code>).</p>\n");

  g_string_append (out, "<h3>Confusion matrix</h3>\n");
  gboolean any_conf = FALSE;
  for (guint i = 0; i < files->len; i++) {
    const char *f = files->pdata[i];
    if (!g_str_has_suffix (f, ".confusion.npy"))
      continue;
    g_autofree char *node = g_strndup (f, strlen (f) - strlen (".confusion.npy"));
    g_autofree char *path = g_build_filename (r->dir, f, NULL);
    g_autoptr (KdfTensor) t = kdf_npy_read (path, KDF_DTYPE_I32, error);
    if (!t)
      return FALSE;
    if (t->rank != 2 || t->shape[0] != t->shape[1] || t->shape[0] < 1 || t->shape[0] > 1000) {
      g_autofree char *shape = kdf_tensor_shape_string (t);
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: a confusion matrix must be square, C×C with 1 ≤ C ≤ 1000; got %s", path,
                   shape);
      return FALSE;
    }
    g_autofree char *file = g_strdup_printf ("%s-confusion-%s.svg", r->id, node);
    g_autofree char *ipath = g_build_filename (out_dir, file, NULL);
    g_autofree char *title = g_strdup_printf ("%s: %s", r->label, node);
    plot_confusion (ipath, title, kdf_tensor_i32 (t), (int) t->shape[0]);
    img (out, file, title);
    (*n_images)++;
    any_conf = TRUE;
  }
  if (!any_conf)
    g_string_append (out, "<p class=\"note\">This run saved no confusion matrix.</p>\n");

  /* the graph drawings: every distinct .dot (graph.dot repeats the last graph's); a
   * script that ran several graphs left stages.dot, all of them in one drawing with
   * what passes between them: that one is drawn, each graph's own is linked */
  g_string_append (out, "<h3>Graph</h3>\n");
  g_autoptr (GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  gboolean any_dot = FALSE;
  gboolean staged = FALSE;
  for (guint i = 0; i < files->len; i++)
    staged = staged || strcmp (files->pdata[i], "stages.dot") == 0;
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  if (staged)
    g_ptr_array_add (order, (gpointer) "stages.dot");
  for (guint i = 0; i < files->len; i++)
    if (!staged || strcmp (files->pdata[i], "stages.dot") != 0)
      g_ptr_array_add (order, files->pdata[i]);
  for (guint i = 0; i < order->len; i++) {
    const char *f = order->pdata[i];
    if (!g_str_has_suffix (f, ".dot"))
      continue;
    const gboolean draw = !staged || strcmp (f, "stages.dot") == 0;
    g_autofree char *path = g_build_filename (r->dir, f, NULL);
    g_autofree char *text = NULL;
    if (!g_file_get_contents (path, &text, NULL, error))
      return FALSE;
    if (g_ptr_array_find_with_equal_func (seen, text, g_str_equal, NULL))
      continue;
    g_ptr_array_add (seen, g_steal_pointer (&text));
    g_autofree char *stem = g_strndup (f, strlen (f) - 4);
    g_autofree char *copy = g_strdup_printf ("%s-%s.dot", r->id, stem);
    g_autofree char *copy_path = g_build_filename (out_dir, copy, NULL);
    if (!g_file_set_contents (copy_path, seen->pdata[seen->len - 1], -1, error))
      return FALSE;
    any_dot = TRUE;
    if (have_dot && draw) {
      g_autofree char *svg = g_strdup_printf ("%s-%s.svg", r->id, stem);
      g_autofree char *svg_path = g_build_filename (out_dir, svg, NULL);
      const char *argv[] = { "dot", "-Tsvg", copy_path, "-o", svg_path, NULL };
      int wait_status = 0;
      g_autofree char *err = NULL;
      if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                         NULL, NULL, NULL, &err, &wait_status, error))
        return FALSE;
      if (!g_spawn_check_wait_status (wait_status, NULL)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "dot -Tsvg %s failed: %s", path,
                     err ? err : "");
        return FALSE;
      }
      g_string_append (out, "<div class=\"graph\">");
      img (out, svg, f);
      g_string_append (out, "</div>\n");
      (*n_images)++;
    }
    g_string_append (out, draw ? "<p class=\"note\">Graphviz source: <a href=\""
                               : "<p class=\"note\">One stage's drawing (Graphviz source): <a href=\"");
    h (out, copy);
    g_string_append (out, "\">");
    h (out, f);
    g_string_append (out, "</a></p>\n");
  }
  if (!any_dot)
    g_string_append (out, "<p class=\"note\">This run holds no graph drawing.</p>\n");
  else if (!have_dot)
    g_string_append (out, "<p class=\"note\">Graphviz's <code>dot</code> is not on PATH: the "
                          "drawing is linked as its source.</p>\n");

  /* parameters */
  g_string_append (out, "<h3>Parameters</h3>\n");
  if (r->results->len == 0)
    g_string_append (out, "<p class=\"note\">No result-*.json: the command above is the "
                          "parameters; each node's params are in the graph drawing.</p>\n");
  for (guint i = 0; i < r->results->len; i++) {
    JsonObject *res = json_node_get_object (r->results->pdata[i]);
    g_string_append (out, "<p>");
    h (out, r->result_names->pdata[i]);
    g_string_append (out, "</p>\n");
    JsonObject *opts = json_object_get_object_member (res, "options");
    if (opts)
      object_table (out, opts);
    /* the result itself, without the options */
    g_autoptr (JsonObject) rest = json_object_new ();
    g_autoptr (GList) members = json_object_get_members (res);
    for (GList *m = members; m; m = m->next)
      if (strcmp (m->data, "options") != 0)
        json_object_set_member (rest, m->data, json_node_copy (json_object_get_member (res, m->data)));
    g_string_append (out, "<p>result</p>\n");
    object_table (out, rest);
  }
  return TRUE;
}

static gboolean
write_report (GPtrArray *runs, const char *out_dir, int *n_images, GError **error)
{
  g_autofree char *dot_path = g_find_program_in_path ("dot");
  gboolean have_dot = dot_path != NULL;
  GString *out = g_string_new (NULL);
  g_string_append (out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                        "<title>kdflow report</title>\n<style>");
  g_string_append (out, css);
  g_string_append (out, "</style></head><body>\n<h1>kdflow report</h1>\n<p>Runs:</p><ul>\n");
  for (guint i = 0; i < runs->len; i++) {
    Run *r = runs->pdata[i];
    g_string_append_printf (out, "<li><a href=\"#%s\">", r->id);
    h (out, r->label);
    g_string_append (out, "</a> <span class=\"note\">");
    h (out, r->dir);
    g_string_append (out, "</span></li>\n");
  }
  g_string_append (out, "</ul>\n");

  /* learning curves, every run overlaid; line style = run */
  g_string_append (out, "<h2 id=\"curves\">Learning curves</h2>\n");
  g_autoptr (GPtrArray) loss = g_ptr_array_new_with_free_func ((GDestroyNotify) series_free);
  g_autoptr (GPtrArray) acc = g_ptr_array_new_with_free_func ((GDestroyNotify) series_free);
  GString *final = g_string_new (NULL);
  for (guint i = 0; i < runs->len; i++) {
    Run *r = runs->pdata[i];
    int style = 1 + (int) (i % 8);
    for (guint gi = 0; gi < r->graphs->len; gi++) {
      const char *graph = r->graphs->pdata[gi];
      g_autoptr (GPtrArray) keys = metric_keys (r, graph);
      for (guint k = 0; k < keys->len; k++) {
        const char *key = keys->pdata[k];
        char *node = NULL;
        const char *prefix = runs->len > 1 ? r->label : "";
        /* the run's label, then the graph's name unless the label says it already */
        if (strcmp (prefix, graph) == 0 && r->graphs->len == 1)
          prefix = "";
        g_autofree char *label =
            r->graphs->len > 1 || runs->len > 1
                ? g_strdup_printf ("%s%s%s: %s", prefix, *prefix ? " " : "", graph, key)
                : g_strdup (key);
        if (g_str_has_suffix (key, ".loss")) {
          Series *s = series_of (r, graph, key, label, style);
          if (s)
            g_ptr_array_add (loss, s);
        } else if (is_accuracy_key (r, graph, key, &node)) {
          g_autofree char *nn = node;
          Series *s = series_of (r, graph, key, label, style);
          if (s) {
            g_ptr_array_add (acc, s);
            g_string_append (final, "<tr><td>");
            h (final, r->label);
            g_string_append (final, "</td><td>");
            h (final, graph);
            g_string_append (final, "</td><td>");
            h (final, nn);
            double best = -1;
            guint best_at = 0;
            for (guint j = 0; j < s->y->len; j++)
              if (g_array_index (s->y, double, j) > best) {
                best = g_array_index (s->y, double, j);
                best_at = j;
              }
            g_string_append_printf (final, "</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f "
                                           "(tick %.0f)</td></tr>\n",
                                    g_array_index (s->y, double, s->y->len - 1), best,
                                    g_array_index (s->x, double, best_at));
          }
        }
      }
    }
  }
  if (runs->len > 1)
    g_string_append (out, "<p class=\"note\">Line style tells the runs apart (solid: the first "
                          "run given).</p>\n");
  if (loss->len) {
    g_autofree char *path = g_build_filename (out_dir, "curves-loss.svg", NULL);
    plot_lines (path, "Training loss", "loss", loss, FALSE);
    img (out, "curves-loss.svg", "training loss per tick");
    (*n_images)++;
  } else
    g_string_append (out, "<p class=\"note\">No node reports a loss (NODE.loss).</p>\n");
  if (acc->len) {
    g_autofree char *path = g_build_filename (out_dir, "curves-accuracy.svg", NULL);
    plot_lines (path, "Accuracy (evaluate nodes: test and noisy validation)", "accuracy", acc,
                TRUE);
    img (out, "curves-accuracy.svg", "accuracy per tick");
    (*n_images)++;
    g_string_append (out, "<table><tr><th>run</th><th>graph</th><th>evaluated by</th>"
                          "<th>last tick</th><th>best tick</th></tr>\n");
    g_string_append (out, final->str);
    g_string_append (out, "</table>\n<p class=\"note\">\"Best tick\" is the best of that curve "
                          "itself; a run's model selection uses the noisy-validation curve "
                          "only (its result-*.json says which tick it chose).</p>\n");
  } else
    g_string_append (out, "<p class=\"note\">No evaluate node reports an accuracy.</p>\n");
  g_string_free (final, TRUE);

  for (guint i = 0; i < runs->len; i++)
    if (!run_section (out, runs->pdata[i], out_dir, have_dot, n_images, error)) {
      g_string_free (out, TRUE);
      return FALSE;
    }
  g_string_append (out, "<p class=\"note\">Written by <code>kdflow report</code> ("
                        KDF_PACKAGE_VERSION "); plots by PLplot, the graph by Graphviz.</p>\n"
                        "</body></html>\n");
  g_autofree char *index = g_build_filename (out_dir, "index.html", NULL);
  gboolean ok = g_file_set_contents (index, out->str, (gssize) out->len, error);
  g_string_free (out, TRUE);
  return ok;
}

static const char report_help[] =
    "usage: kdflow report RUN_DIR [RUN_DIR...] [--out DIR]\n"
    "Writes DIR/index.html, a page that needs no network (inline CSS, no scripts), and its\n"
    "SVG images beside it: learning curves (training loss, test and noisy-validation\n"
    "accuracy per tick, every run overlaid), then per run the noisy-label detection\n"
    "precision / recall / F1 / AUROC per tick, the score histogram with the threshold and\n"
    "its four groups (a run with an otsu_threshold node, e.g. blind_kd), the confusion\n"
    "matrix, the graph drawing (Graphviz 'dot', if on PATH) and the parameters.\n"
    "  --out DIR   where to write (default: RUN_DIR/report for one run, ./report for\n"
    "              several); made if missing, its files rewritten\n"
    "docs: docs/results.md (what the numbers mean), docs/design.md (the report).\n";

const char *
kdf_cli_report_help (void)
{
  return report_help;
}

int
kdf_cli_report (int argc, char **argv)
{
  const char *out = NULL;
  g_autoptr (GPtrArray) dirs = g_ptr_array_new ();
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--out") == 0 || strcmp (a, "-o") == 0) {
      if (i + 1 >= argc) {
        fprintf (stderr, "kdflow report: --out needs a directory\n%s", report_help);
        return 2;
      }
      out = argv[++i];
    } else if (g_str_has_prefix (a, "--out=")) {
      out = a + 6;
    } else if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      fputs (report_help, stdout);
      return 0;
    } else if (a[0] == '-' && a[1]) {
      static const char *const opts[] = { "--out", "--help" };
      g_autofree char *hint = kdf_suggest (a, opts, G_N_ELEMENTS (opts));
      fprintf (stderr, "kdflow report: unknown option '%s'%s\n%s", a, hint, report_help);
      return 2;
    } else
      g_ptr_array_add (dirs, (char *) a);
  }
  if (dirs->len == 0) {
    fprintf (stderr, "kdflow report: needs a run directory\n%s", report_help);
    return 2;
  }
  g_autoptr (GPtrArray) runs = g_ptr_array_new_with_free_func ((GDestroyNotify) run_free);
  g_autoptr (GHashTable) labels = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < dirs->len; i++) {
    g_autoptr (GError) error = NULL;
    Run *r = run_load (dirs->pdata[i], &error);
    if (!r) {
      fprintf (stderr, "kdflow report: %s\n", error->message);
      return 2;
    }
    g_autofree char *trimmed = g_strdup (r->dir);
    while (strlen (trimmed) > 1 && g_str_has_suffix (trimmed, "/"))
      trimmed[strlen (trimmed) - 1] = '\0';
    r->label = g_path_get_basename (trimmed);
    if (g_hash_table_contains (labels, r->label)) {
      char *l = g_strdup_printf ("%s (%u)", r->label, i + 1);
      g_free (r->label);
      r->label = l;
    }
    g_hash_table_add (labels, r->label);
    r->id = g_strdup_printf ("r%u", i + 1);
    g_ptr_array_add (runs, r);
  }
  g_autofree char *out_dir = out ? g_strdup (out)
                                 : dirs->len == 1 ? g_build_filename (dirs->pdata[0], "report", NULL)
                                                  : g_strdup ("report");
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    fprintf (stderr, "kdflow report: cannot make '%s': %s\n", out_dir, g_strerror (errno));
    return 2;
  }
  /* PLplot exits on a file it cannot open: find out first */
  g_autofree char *probe = g_build_filename (out_dir, "index.html", NULL);
  FILE *f = fopen (probe, "a");
  if (!f) {
    fprintf (stderr, "kdflow report: cannot write in '%s': %s\n", out_dir, g_strerror (errno));
    return 2;
  }
  fclose (f);
  int n_images = 0;
  g_autoptr (GError) error = NULL;
  if (!write_report (runs, out_dir, &n_images, &error)) {
    fprintf (stderr, "kdflow report: %s\n", error->message);
    return 2;
  }
  g_autofree char *index = g_build_filename (out_dir, "index.html", NULL);
  printf ("%s\n", index);
  fprintf (stderr, "kdflow report: %u run%s, %d images: %s\n", runs->len,
           runs->len == 1 ? "" : "s", n_images, index);
  return 0;
}
