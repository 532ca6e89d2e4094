/* The engine through its C API: building, checking, scheduling, failing, drawing.
 * Node kinds come from the test plugin (tests/plugins/good/testnodes.c); classes that
 * must be refused are made here. */
#include <glib/gstdio.h>
#include <kdflow/data.h>
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>
#include <kdflow/kdflow.h>
#include <math.h>
#include <string.h>

#define assert_contains(haystack, needle)                                                   \
  G_STMT_START                                                                              \
  {                                                                                         \
    const char *h__ = (haystack), *n__ = (needle);                                          \
    if (!h__ || !strstr (h__, n__))                                                         \
      g_error ("expected \"%s\" in \"%s\"", n__, h__ ? h__ : "(null)");                   \
  }                                                                                         \
  G_STMT_END

static KdfNode *
add (KdfGraph *g, const char *kind, const char *name)
{
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_node (g, kind, name, &error);
  g_assert_no_error (error);
  return n;
}

static void
connect (KdfGraph *g, KdfNode *a, const char *out, KdfNode *b, const char *in)
{
  GError *error = NULL;
  kdf_graph_connect (g, a, out, b, in, NULL, &error);
  g_assert_no_error (error);
}

static float
scalar (KdfNode *n, const char *port)
{
  KdfTensor *t = kdf_node_get_output_tensor (n, port);
  g_assert_nonnull (t);
  return (float) kdf_tensor_get_flat (t, 0);
}

static KdfRunOptions
opts_ticks (guint ticks, int threads)
{
  KdfRunOptions o = { 0 };
  o.ticks = ticks;
  o.threads = threads;
  return o;
}

/* ---- running ------------------------------------------------------------------ */

static void
test_basic (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("basic", 1);
  KdfNode *a = add (g, "test_source", "a"), *b = add (g, "test_source", "b");
  KdfNode *s = add (g, "test_add", "sum");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_double (b, "value", 2.5, &error));
  connect (g, a, "x", s, "a");
  connect (g, b, "x", s, "b");
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  KdfTensor *y = kdf_node_get_output_tensor (s, "y");
  g_assert_cmpint (y->shape[0], ==, 4);
  g_assert_cmpfloat (kdf_tensor_f32 (y)[3], ==, 3.5);
  KdfNodeStats st;
  kdf_node_get_stats (s, &st);
  g_assert_cmpuint (st.calls, ==, 1);
  g_assert_cmpuint (kdf_graph_get_tick (g), ==, 1);
}

static void
test_change_driven (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("change", 1);
  KdfNode *a = add (g, "test_source", "a");
  KdfNode *n = add (g, "test_noop", "noop");
  KdfNode *c = add (g, "test_counter", "counter");
  connect (g, a, "x", n, "x");
  GError *error = NULL;
  KdfRunOptions o = opts_ticks (3, 2);
  g_assert_true (kdf_graph_run (g, &o, &error));
  KdfNodeStats st;
  kdf_node_get_stats (a, &st);
  g_assert_cmpuint (st.calls, ==, 1); /* nothing changed: a source runs once */
  kdf_node_get_stats (n, &st);
  g_assert_cmpuint (st.calls, ==, 3); /* every tick */
  kdf_node_get_stats (c, &st);
  g_assert_cmpuint (st.calls, ==, 1);
  /* a param change between runs makes the node and only it run again */
  g_assert_true (kdf_node_set_param_double (c, "step", 5, &error));
  g_assert_true (kdf_graph_run (g, &o, &error));
  kdf_node_get_stats (c, &st);
  g_assert_cmpuint (st.calls, ==, 2);
  g_assert_cmpfloat (scalar (c, "out"), ==, 5);
  kdf_node_get_stats (a, &st);
  g_assert_cmpuint (st.calls, ==, 1);
  g_assert_cmpuint (kdf_graph_get_tick (g), ==, 6); /* ticks continue across runs */
  /* setting the same value again is not a change */
  g_assert_true (kdf_node_set_param_double (c, "step", 5, &error));
  g_assert_true (kdf_graph_run (g, &o, &error));
  kdf_node_get_stats (c, &st);
  g_assert_cmpuint (st.calls, ==, 2);
}

static void
test_delay (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("delay", 1);
  KdfNode *c = add (g, "test_counter", "c");
  KdfEdgeOptions eo = { .delay = 1 };
  GError *error = NULL;
  g_assert_true (kdf_graph_connect (g, c, "out", c, "prev", &eo, &error));
  KdfRunOptions o = opts_ticks (5, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (scalar (c, "out"), ==, 5); /* 1 per tick, fed back */

  /* delay 2 with an initial value: ticks 0 and 1 see 10, tick t sees out(t-2) */
  g_autoptr (KdfGraph) g2 = kdf_graph_new ("delay2", 1);
  KdfNode *d = add (g2, "test_counter", "d");
  g_autoptr (KdfTensor) ten = kdf_tensor_new_scalar_f32 (10);
  KdfEdgeOptions eo2 = { .delay = 2, .initial = ten };
  g_assert_true (kdf_graph_connect (g2, d, "out", d, "prev", &eo2, &error));
  KdfRunOptions o1 = opts_ticks (1, 1);
  float want[] = { 11, 11, 12, 12, 13, 13 };
  for (int t = 0; t < 6; t++) {
    g_assert_true (kdf_graph_run (g2, &o1, &error));
    g_assert_cmpfloat (scalar (d, "out"), ==, want[t]);
  }
}

static void
test_cycle (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("cyclic", 1);
  KdfNode *src = add (g, "test_source", "src");
  KdfNode *a = add (g, "test_add", "a"), *b = add (g, "test_add", "b");
  connect (g, src, "x", a, "a");
  connect (g, b, "y", a, "b");
  connect (g, a, "y", b, "a");
  connect (g, src, "x", b, "b");
  GError *error = NULL;
  g_assert_false (kdf_graph_prepare (g, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_CYCLE);
  assert_contains (error->message, "graph 'cyclic'");
  g_assert_true (strstr (error->message, "a -> b -> a") || strstr (error->message, "b -> a -> b"));
  g_clear_error (&error);
  /* the same loop through a delay edge is fine */
  g_autoptr (KdfGraph) g2 = kdf_graph_new ("loop", 1);
  KdfNode *s2 = add (g2, "test_source", "src");
  KdfNode *a2 = add (g2, "test_add", "a"), *b2 = add (g2, "test_add", "b");
  g_autoptr (KdfTensor) init = kdf_tensor_new_1d (KDF_DTYPE_F32, 4);
  KdfEdgeOptions eo = { .delay = 1, .initial = init };
  connect (g2, s2, "x", a2, "a");
  g_assert_true (kdf_graph_connect (g2, b2, "y", a2, "b", &eo, &error));
  connect (g2, a2, "y", b2, "a");
  connect (g2, s2, "x", b2, "b");
  KdfRunOptions o = opts_ticks (3, 1);
  g_assert_true (kdf_graph_run (g2, &o, &error));
  g_assert_no_error (error);
  /* a(t) = 1 + b(t-1), b(t) = a(t) + 1, b(-1) = 0 → a: 1, 3, 5 */
  g_assert_cmpfloat (kdf_tensor_f32 (kdf_node_get_output_tensor (a2, "y"))[0], ==, 5);
}

static void
test_connect_errors (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("wiring", 1);
  KdfNode *src = add (g, "test_source", "src");
  KdfNode *s = add (g, "test_add", "sum");
  KdfNode *lab = add (g, "test_i32_sink", "labels");
  KdfNode *mat = add (g, "test_matrix", "mat");
  KdfNode *orc = add (g, "test_oracle", "truth");
  KdfNode *user = add (g, "test_mask_user", "method");
  KdfNode *ev = add (g, "test_eval", "eval");
  GError *error = NULL;

  g_assert_false (kdf_graph_connect (g, src, "x", s, "aa", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
  assert_contains (error->message, "no input port 'aa' (did you mean 'a'");
  assert_contains (error->message, "input ports: a, b");
  g_clear_error (&error);
  g_assert_false (kdf_graph_connect (g, src, "y", s, "a", NULL, &error));
  assert_contains (error->message, "no output port 'y'");
  g_clear_error (&error);

  g_assert_false (kdf_graph_connect (g, src, "x", lab, "labels", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_LINK);
  assert_contains (error->message, "'src.x' (f32[N]) to 'labels.labels' (i32[N]): dtypes differ");
  g_clear_error (&error);
  g_assert_false (kdf_graph_connect (g, src, "x", mat, "x", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_LINK);
  assert_contains (error->message, "ranks differ");
  g_clear_error (&error);

  connect (g, src, "x", s, "a");
  g_assert_false (kdf_graph_connect (g, src, "x", s, "a", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
  assert_contains (error->message, "already fed by 'src.x'");
  g_clear_error (&error);

  g_assert_false (kdf_graph_connect (g, orc, "truth", user, "mask", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_ORACLE);
  assert_contains (error->message, "'truth.truth' is ground truth");
  assert_contains (error->message, "'method' (test_mask_user) is not an evaluation node");
  g_clear_error (&error);
  /* into an evaluator, or deliberately, it is allowed */
  connect (g, orc, "truth", ev, "truth");
  connect (g, orc, "mask", ev, "flagged");
  KdfEdgeOptions deliberate = { .oracle = TRUE };
  g_assert_true (kdf_graph_connect (g, orc, "truth", user, "mask", &deliberate, &error));
}

static void
test_prepare_errors (void)
{
  GError *error = NULL;
  {
    g_autoptr (KdfGraph) g = kdf_graph_new ("unconnected", 1);
    KdfNode *src = add (g, "test_source", "src");
    KdfNode *s = add (g, "test_add", "sum");
    connect (g, src, "x", s, "a");
    g_assert_false (kdf_graph_prepare (g, &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
    assert_contains (error->message, "node 'sum' (test_add): required input 'b' is not connected");
    g_clear_error (&error);
  }
  {
    g_autoptr (KdfGraph) g = kdf_graph_new ("required", 1);
    add (g, "test_params", "p");
    g_assert_false (kdf_graph_prepare (g, &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
    assert_contains (error->message, "param 'path' is required");
    g_clear_error (&error);
  }
  {
    g_autoptr (KdfGraph) g = kdf_graph_new ("delay-no-initial", 1);
    KdfNode *a = add (g, "test_source", "src");
    KdfNode *s = add (g, "test_add", "sum");
    KdfEdgeOptions eo = { .delay = 1 };
    connect (g, a, "x", s, "a");
    g_assert_true (kdf_graph_connect (g, s, "y", s, "b", &eo, &error));
    g_assert_false (kdf_graph_prepare (g, &error));
    assert_contains (error->message, "required input 'b' is fed by a delay edge");
    g_clear_error (&error);
  }
}

static void
test_params (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("params", 1);
  KdfNode *p = add (g, "test_params", "p");
  GError *error = NULL;
  g_assert_false (kdf_node_set_param_int (p, "cuont", 3, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  assert_contains (error->message, "unknown param 'cuont' (did you mean 'count'?)");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_string (p, "count", "three", &error));
  assert_contains (error->message, "param 'count' takes an int, got a string ('three')");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_double (p, "count", 2.5, &error));
  assert_contains (error->message, "param 'count' is an int, got 2.5");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_int (p, "count", 11, &error));
  assert_contains (error->message, "param 'count' = 11 is out of range [1, 10]");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_double (p, "flag", 1, &error));
  assert_contains (error->message, "param 'flag' takes a bool, got a number (1)");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_string (p, "mode", "fsat", &error));
  assert_contains (error->message, "'fsat' is not one of 'fast', 'slow' (did you mean 'fast'?)");
  g_clear_error (&error);
  g_assert_false (kdf_node_set_param_int (p, "mode", 1, &error)); /* not by index either */
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  g_clear_error (&error);
  /* the defaults reach the params struct; the enum as the node's C value (7) */
  g_assert_true (kdf_node_set_param_string (p, "path", "abc", &error));
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  float *v = kdf_tensor_f32 (kdf_node_get_output_tensor (p, "v"));
  g_assert_cmpfloat (v[0], ==, 3);
  g_assert_cmpfloat (v[1], ==, 0.5);
  g_assert_cmpfloat (v[2], ==, 0);
  g_assert_cmpfloat (v[3], ==, 7);
  g_assert_cmpfloat (v[4], ==, 3);
  g_assert_true (kdf_node_set_param_int (p, "count", 7, &error));
  g_assert_true (kdf_node_set_param_double (p, "rate", 1, &error)); /* ints are fine doubles */
  g_assert_true (kdf_node_set_param_bool (p, "flag", TRUE, &error));
  g_assert_true (kdf_node_set_param_string (p, "mode", "slow", &error));
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  v = kdf_tensor_f32 (kdf_node_get_output_tensor (p, "v"));
  g_assert_cmpfloat (v[0], ==, 7);
  g_assert_cmpfloat (v[1], ==, 1);
  g_assert_cmpfloat (v[2], ==, 1);
  g_assert_cmpfloat (v[3], ==, 42); /* MODE_SLOW, not the choice's index 1 */
  g_assert_cmpfloat (v[4], ==, 3);
  /* and back: the value follows the choice */
  g_assert_true (kdf_node_set_param_string (p, "mode", "fast", &error));
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_cmpfloat (kdf_tensor_f32 (kdf_node_get_output_tensor (p, "v"))[3], ==, 7);
}

static gboolean
huge (gpointer data, guint tick, double *value, GError **error)
{
  *value = 8589934592.0; /* 2^33 */
  return TRUE;
}

/* An int param stored in an `int` field takes exactly the values that fit 32 bits,
 * with the node and the param named; an int64_t field takes more. */
static void
test_int_fields (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("ints", 1);
  KdfNode *p = add (g, "test_params", "p");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_string (p, "path", "x", &error));
  g_assert_true (kdf_node_set_param_int (p, "big", G_MAXINT32, &error));
  g_assert_true (kdf_node_set_param_int (p, "big", G_MININT32, &error));
  g_assert_no_error (error);
  const gint64 too_big[] = { (gint64) G_MAXINT32 + 1, (gint64) G_MININT32 - 1, G_GINT64_CONSTANT (1) << 40 };
  for (guint i = 0; i < G_N_ELEMENTS (too_big); i++) {
    g_assert_false (kdf_node_set_param_int (p, "big", too_big[i], &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
    assert_contains (error->message, "graph 'ints', node 'p' (test_params): param 'big' = ");
    assert_contains (error->message, "does not fit its 32-bit integer");
    g_clear_error (&error);
  }
  g_assert_false (kdf_node_set_param_double (p, "big", 3e9, &error));
  assert_contains (error->message, "param 'big' = 3e+09 does not fit its 32-bit integer");
  g_clear_error (&error);
  /* an int64_t field takes 2^40 */
  g_assert_true (kdf_node_set_param_int (p, "wide", G_GINT64_CONSTANT (1) << 40, &error));
  g_assert_no_error (error);
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  float *v = kdf_tensor_f32 (kdf_node_get_output_tensor (p, "v"));
  g_assert_cmpfloat (v[5], ==, (float) G_MININT32); /* the last value that was accepted */
  g_assert_cmpfloat (v[6], ==, 1099511627776.0f);
  /* a schedule is held to the same rule, at the tick it leaves the field */
  g_assert_true (kdf_node_set_param_schedule (p, "big", huge, NULL, NULL, "huge", &error));
  g_assert_false (kdf_graph_run (g, &o, &error)); /* tick 1 */
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  assert_contains (error->message, "node 'p' (test_params): param 'big' (schedule huge at tick 1)");
  assert_contains (error->message, "does not fit its 32-bit integer");
  g_clear_error (&error);
}

static gboolean
ramp (gpointer data, guint tick, double *value, GError **error)
{
  *value = 0.25 * tick;
  return TRUE;
}

static void
test_schedule (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("schedule", 1);
  KdfNode *p = add (g, "test_params", "p");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_string (p, "path", "x", &error));
  g_assert_true (kdf_node_set_param_schedule (p, "rate", ramp, NULL, NULL, "ramp", &error));
  g_assert_false (kdf_node_set_param_schedule (p, "mode", ramp, NULL, NULL, "ramp", &error));
  assert_contains (error->message, "only numeric and bool params can be schedules");
  g_clear_error (&error);
  KdfRunOptions o = opts_ticks (4, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_cmpfloat (kdf_tensor_f32 (kdf_node_get_output_tensor (p, "v"))[1], ==, 0.75);
  KdfNodeStats st;
  kdf_node_get_stats (p, &st);
  g_assert_cmpuint (st.calls, ==, 4); /* the value changed each tick */
  /* at tick 4 the ramp leaves [0, 1]: validated like a constant, the tick named */
  KdfRunOptions o2 = opts_ticks (2, 1);
  g_assert_false (kdf_graph_run (g, &o2, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PARAM);
  assert_contains (error->message, "param 'rate' (schedule ramp at tick 5) = 1.25 is out of range");
  g_clear_error (&error);
}

static char *
read_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;
  g_file_get_contents (path, &text, NULL, NULL);
  return text;
}

static void
test_fail_at_tick (void)
{
  g_autofree char *dir = g_dir_make_tmp ("kdf-test-XXXXXX", NULL);
  g_autofree char *run_dir = g_build_filename (dir, "run", NULL);
  g_autoptr (KdfGraph) g = kdf_graph_new ("failing", 1);
  KdfNode *f = add (g, "test_fail", "breaker");
  KdfNode *c = add (g, "test_counter", "c");
  KdfEdgeOptions eo = { .delay = 1 };
  GError *error = NULL;
  g_assert_true (kdf_graph_connect (g, c, "out", c, "prev", &eo, &error));
  g_assert_true (kdf_node_set_param_int (f, "at_tick", 2, &error));
  kdf_node_set_origin (f, "graphs/x.lua:12");
  KdfRunOptions o = opts_ticks (5, 2);
  o.run_dir = run_dir;
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_NODE);
  assert_contains (error->message,
                   "graph 'failing', node 'breaker' (test_fail) [graphs/x.lua:12], tick 2: "
                   "failing on purpose at tick 2");
  g_clear_error (&error);
  g_assert_cmpuint (kdf_graph_get_tick (g), ==, 2);
  /* outputs of the last completed tick stay */
  g_assert_cmpfloat (scalar (f, "tick"), ==, 1);
  /* the run directory holds ticks 0 and 1 and says what failed */
  g_autofree char *metrics = read_file (run_dir, "metrics.jsonl");
  g_assert_nonnull (metrics);
  g_auto (GStrv) lines = g_strsplit (g_strchomp (metrics), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  assert_contains (lines[1], "\"tick\":1");
  assert_contains (lines[1], "\"breaker.tick\":1");
  g_autofree char *summary = read_file (run_dir, "summary.json");
  assert_contains (summary, "\"status\" : \"failed\"");
  assert_contains (summary, "failing on purpose");
  g_autofree char *dot = read_file (run_dir, "graph.dot");
  assert_contains (dot, "breaker");
}

static void
test_runtime_shape (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("shapes", 1);
  KdfNode *a = add (g, "test_source", "a"), *b = add (g, "test_source", "b");
  KdfNode *s = add (g, "test_add", "sum");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_int (b, "n", 5, &error));
  connect (g, a, "x", s, "a");
  connect (g, b, "x", s, "b");
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  assert_contains (error->message, "node 'sum' (test_add), tick 0: input 'b' is f32[5] from 'b.x', "
                                   "so N = 5, but input 'a' set N = 4");
  g_clear_error (&error);

  g_autoptr (KdfGraph) g2 = kdf_graph_new ("plugin-bug", 1);
  add (g2, "test_bad_output", "bad");
  g_assert_false (kdf_graph_run (g2, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  assert_contains (error->message, "output 'y' expects f32[N], got i32[3]");
  g_clear_error (&error);
}

static void
test_budget (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("budget", 1);
  KdfNode *x = add (g, "test_budget", "x"), *y = add (g, "test_budget", "y");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_int (x, "sleep_ms", 30, &error));
  g_assert_true (kdf_node_set_param_int (y, "sleep_ms", 30, &error));
  KdfRunOptions o = opts_ticks (1, 2);
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (kdf_graph_run (g, &o, &error));
  gint64 dt = g_get_monotonic_time () - t0;
  /* two parallel branches on two cores: one BLIS thread each */
  g_assert_cmpfloat (scalar (x, "threads"), ==, 1);
  g_assert_cmpfloat (scalar (y, "threads"), ==, 1);
  g_test_message ("two 30 ms nodes on 2 cores took %.1f ms", dt / 1000.0);
  /* a node alone gets every core */
  g_autoptr (KdfGraph) g1 = kdf_graph_new ("alone", 1);
  KdfNode *z = add (g1, "test_budget", "z");
  g_assert_true (kdf_graph_run (g1, &o, &error));
  g_assert_cmpfloat (scalar (z, "threads"), ==, 2);
  /* a chain: each node alone in turn */
  KdfNode *w = add (g1, "test_budget", "w");
  connect (g1, z, "threads", w, "x");
  g_assert_true (kdf_graph_run (g1, &o, &error));
  g_assert_cmpfloat (scalar (w, "threads"), ==, 2);
}

static gpointer
cancel_soon (gpointer data)
{
  g_usleep (50000);
  kdf_graph_cancel (data);
  return NULL;
}

static void
test_cancel (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("cancel", 1);
  KdfNode *x = add (g, "test_budget", "slow");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_int (x, "sleep_ms", 20000, &error));
  GThread *t = g_thread_new ("canceller", cancel_soon, g);
  KdfRunOptions o = opts_ticks (1, 2);
  gint64 t0 = g_get_monotonic_time ();
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
  g_clear_error (&error);
  g_thread_join (t);
  /* the graph can run again afterwards */
  g_assert_true (kdf_node_set_param_int (x, "sleep_ms", 0, &error));
  kdf_graph_run (g, &o, &error);
  g_assert_no_error (error);
}

/* Long kernels called from a node stop when the node's run is cancelled (Ctrl-C
 * cancels every running graph): model prediction between batches, confident learning
 * between passes. The node cancels its own graph, then calls each kernel. */
static GError *kernel_errors[3];
static char *kernel_idx_path;

static gboolean
kernels_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  enum { N = 64, C = 3 };
  float probs[N * C];
  int32_t labels[N];
  uint8_t issues[N];
  for (int i = 0; i < N; i++) {
    labels[i] = i % C;
    for (int j = 0; j < C; j++)
      probs[i * C + j] = j == (i * 7) % C ? 0.8f : 0.1f;
  }
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:4-8-3", 1, error);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, N, 4);
  memset (kdf_tensor_f32 (x), 0, N * 4 * sizeof (float));
  g_cancellable_cancel (kdf_ctx_cancellable (ctx));
  KdfTensor *logits = NULL;
  if (kdf_model_predict (m, x, 16, 1, &logits, NULL, &kernel_errors[0]))
    kdf_tensor_unref (logits);
  kdf_confident_learning_f32 (issues, probs, labels, N, C, NULL, NULL, &kernel_errors[1]);
  KdfTensor *idx = kdf_idx_read (kernel_idx_path, &kernel_errors[2]);
  if (idx)
    kdf_tensor_unref (idx);
  if (kernel_errors[0]) {
    g_propagate_error (error, g_error_copy (kernel_errors[0]));
    return FALSE;
  }
  return TRUE;
}

static const KdfPortSpec kernels_out[] = { KDF_PORT ("r", "f32[*]", 0, NULL), { 0 } };
static const KdfNodeClass kernels_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "kernels", .outputs = kernels_out,
  .run = kernels_run,
};

static void
test_cancel_kernels (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("kernels", 1);
  GError *error = NULL;
  /* an IDX file of 16 bytes (u8, one dimension) */
  g_autofree char *dir = g_dir_make_tmp ("kdf-kernels-XXXXXX", NULL);
  kernel_idx_path = g_build_filename (dir, "x.idx", NULL);
  static const guint8 idx_bytes[] = { 0, 0, 8, 1, 0, 0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8,
                                      9, 10, 11, 12, 13, 14, 15, 16 };
  g_assert_true (g_file_set_contents (kernel_idx_path, (const char *) idx_bytes,
                                      sizeof idx_bytes, NULL));
  kdf_graph_add_node_with_class (g, &kernels_class, "k", NULL, NULL, &error);
  g_assert_no_error (error);
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_error (kernel_errors[0], KDF_ERROR, KDF_ERROR_CANCELLED);
  g_assert_error (kernel_errors[1], KDF_ERROR, KDF_ERROR_CANCELLED);
  g_assert_error (kernel_errors[2], KDF_ERROR, KDF_ERROR_CANCELLED);
  g_clear_error (&kernel_errors[0]);
  g_clear_error (&kernel_errors[1]);
  g_clear_error (&kernel_errors[2]);
  /* outside a node nothing is cancelled */
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:4-8-3", 1, &error);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, 8, 4);
  memset (kdf_tensor_f32 (x), 0, 8 * 4 * sizeof (float));
  g_autoptr (KdfTensor) logits = NULL;
  g_assert_true (kdf_model_predict (m, x, 4, 1, &logits, NULL, &error));
  g_assert_no_error (error);
  g_autoptr (KdfTensor) idx = kdf_idx_read (kernel_idx_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (idx->shape[0], ==, 16);
  g_unlink (kernel_idx_path);
  g_rmdir (dir);
  g_clear_pointer (&kernel_idx_path, g_free);
}

/* A node class defined in the test: draws numbers from the node's RNG. */
static gboolean
draw_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *t = kdf_tensor_new_1d (KDF_DTYPE_F32, 3);
  for (int i = 0; i < 3; i++)
    kdf_tensor_f32 (t)[i] = (float) g_rand_double (kdf_ctx_rng (ctx));
  kdf_ctx_set_output_tensor (ctx, "r", t);
  return TRUE;
}

static const KdfPortSpec draw_out[] = { KDF_PORT ("r", "f32[*]", 0, NULL), { 0 } };
static const KdfNodeClass draw_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "draw", .outputs = draw_out, .run = draw_run,
  .flags = KDF_NODE_EVERY_TICK,
};

static void
draws (guint64 seed, const char *name, guint ticks, float *out)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("rng", seed);
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_node_with_class (g, &draw_class, name, NULL, NULL, &error);
  KdfRunOptions o = opts_ticks (ticks, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  memcpy (out, kdf_tensor_f32 (kdf_node_get_output_tensor (n, "r")), 3 * sizeof (float));
}

static void
test_rng (void)
{
  float a[3], b[3], c[3], d[3], e[3];
  draws (7, "n", 2, a);
  draws (7, "n", 2, b);
  draws (8, "n", 2, c);
  draws (7, "m", 2, d);
  draws (7, "n", 3, e);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_true (memcmp (a, c, sizeof a) != 0); /* seed matters */
  g_assert_true (memcmp (a, d, sizeof a) != 0); /* node name matters */
  g_assert_true (memcmp (a, e, sizeof a) != 0); /* tick matters */
}

static void
test_oracle_runtime (void)
{
  /* a node that is no evaluator gets ground truth through a constant (no oracle
   * port to check at connect time): refused when the value arrives */
  g_autoptr (KdfGraph) g = kdf_graph_new ("sneaky", 1);
  g_autoptr (KdfTensor) truth = kdf_tensor_new_1d (KDF_DTYPE_U8, 4);
  kdf_tensor_set_oracle (truth, TRUE);
  GError *error = NULL;
  KdfNode *c = kdf_graph_add_constant (g, "truth", truth, &error);
  KdfNode *u = add (g, "test_mask_user", "method");
  connect (g, c, "value", u, "mask");
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_ORACLE);
  assert_contains (error->message, "input 'mask' received ground truth (an oracle tensor) from 'truth.value'");
  g_clear_error (&error);
}

/* ---- dot ---------------------------------------------------------------------- */

static KdfGraph *
dot_graph (void)
{
  KdfGraph *g = kdf_graph_new ("dot \"demo\" {x|y}", 3);
  KdfNode *a = add (g, "test_source", "a");
  KdfNode *s = add (g, "test_add", "sum.1");
  KdfNode *c = add (g, "test_counter", "c");
  KdfNode *o = add (g, "test_oracle", "truth");
  KdfNode *e = add (g, "test_eval", "eval");
  KdfNode *p = add (g, "test_params", "p");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_string (p, "path", "a|b{c}<d>\"e\"\\f", &error));
  connect (g, a, "x", s, "a");
  connect (g, a, "x", s, "b");
  KdfEdgeOptions eo = { .delay = 1 };
  g_assert_true (kdf_graph_connect (g, c, "out", c, "prev", &eo, &error));
  connect (g, o, "truth", e, "truth");
  connect (g, o, "mask", e, "flagged");
  return g;
}

static void
check_renders (const char *path)
{
  if (!*KDF_TEST_DOT) {
    g_test_message ("graphviz is not installed: dot -Tsvg not checked");
    return;
  }
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  const char *argv[] = { KDF_TEST_DOT, "-Tsvg", path, NULL };
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               &err, &status, NULL));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("dot -Tsvg %s failed: %s", path, err);
  assert_contains (out, "<svg");
}

static void
test_dot (void)
{
  g_autoptr (KdfGraph) g = dot_graph ();
  g_autofree char *dot = kdf_graph_to_dot (g);
  /* the golden file pins the layout of a graph that has not run */
  g_autofree char *golden_path = g_build_filename (g_getenv ("KDF_TEST_SRCDIR"), "golden",
                                                   "unrun.dot", NULL);
  g_autofree char *golden = NULL;
  if (g_getenv ("KDF_UPDATE_GOLDEN")) /* after a deliberate change of the dot layout */
    g_assert_true (g_file_set_contents (golden_path, dot, -1, NULL));
  g_assert_true (g_file_get_contents (golden_path, &golden, NULL, NULL));
  g_assert_cmpstr (dot, ==, golden);
  /* a small graph shows every port by default; the compact form only the ports an edge
   * uses, ids unchanged, and says how many it hides */
  g_autofree char *all = kdf_graph_to_dot_ports (g, KDF_DOT_PORTS_ALL);
  g_assert_cmpstr (all, ==, golden);
  g_autofree char *compact = kdf_graph_to_dot_ports (g, KDF_DOT_PORTS_CONNECTED);
  assert_contains (compact, "n1 [label=\"{{<i0> a|<i1> b}|sum.1\\n(test_add)\\n"
                            "(1 unconnected ports hidden)}\"];");
  assert_contains (compact, "n4 [label=\"{{<i0> truth|<i1> flagged}|eval\\n(test_eval)}\"");
  assert_contains (compact, "{<o0> truth (oracle)|<o1> mask}");
  g_assert_null (strstr (compact, "<o0> y"));
  g_assert_null (strstr (compact, "<o0> v"));
  assert_contains (compact, "n0:o0 -> n1:i1;");
  g_setenv ("KDFLOW_DOT_PORTS", "connected", TRUE);
  g_autofree char *env_compact = kdf_graph_to_dot (g);
  g_unsetenv ("KDFLOW_DOT_PORTS");
  g_assert_cmpstr (env_compact, ==, compact);
  /* a graph of more than 10 nodes is compact by default */
  {
    g_autoptr (KdfGraph) big = kdf_graph_new ("big", 1);
    KdfNode *sum = add (big, "test_add", "sum");
    for (int k = 0; k < 10; k++) {
      g_autofree char *name = g_strdup_printf ("src%d", k);
      KdfNode *src = add (big, "test_source", name);
      if (k < 2)
        connect (big, src, "x", sum, k ? "b" : "a");
    }
    g_autofree char *bd = kdf_graph_to_dot (big);
    assert_contains (bd, "(1 unconnected ports hidden)");
    g_assert_null (strstr (bd, "<o0> y"));
    g_setenv ("KDFLOW_DOT_PORTS", "all", TRUE);
    g_autofree char *bd_all = kdf_graph_to_dot (big);
    g_unsetenv ("KDFLOW_DOT_PORTS");
    assert_contains (bd_all, "<o0> y");
  }
  g_autofree char *dir = g_dir_make_tmp ("kdf-dot-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "g.dot", NULL);
  GError *error = NULL;
  g_assert_true (kdf_graph_write_dot (g, path, &error));
  check_renders (path);
  g_assert_true (g_file_set_contents (path, compact, -1, NULL));
  check_renders (path);
  /* after a run: shapes on edges, times on nodes */
  KdfRunOptions o = opts_ticks (2, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_autofree char *ran = kdf_graph_to_dot (g);
  assert_contains (ran, "n0:o0 -> n1:i0 [label=\"f32[4]\"]");
  assert_contains (ran, "label=\"f32[]\\ndelay 1\", style=dashed");
  assert_contains (ran, " in 2 runs");
  assert_contains (ran, "color=\"#c03030\"");
  g_assert_true (kdf_graph_write_dot (g, path, &error));
  check_renders (path);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_dot_dir (void)
{
  g_autofree char *dir = g_dir_make_tmp ("kdf-dotdir-XXXXXX", NULL);
  g_setenv ("KDFLOW_DOT_DIR", dir, TRUE);
  g_autoptr (KdfGraph) g = kdf_graph_new ("every run", 1);
  add (g, "test_source", "a");
  KdfRunOptions o = opts_ticks (1, 1);
  GError *error = NULL;
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_unsetenv ("KDFLOW_DOT_DIR");
  g_autofree char *text = read_file (dir, "every_run.dot");
  g_assert_nonnull (text);
  assert_contains (text, "digraph \"every run\"");
}

/* ---- plugins ------------------------------------------------------------------ */

static char *
bad_plugin (const char *name)
{
  return g_build_filename (g_getenv ("KDF_TEST_BADPLUGINS"), name, NULL);
}

static void
test_bad_plugins (void)
{
  GError *error = NULL;
  KdfRegistry *reg = kdf_registry_get_default (&error);
  g_assert_no_error (error);

  g_autofree char *dir = g_dir_make_tmp ("kdf-plugins-XXXXXX", NULL);
  g_autofree char *junk = g_build_filename (dir, "kdf-junk.so", NULL);
  g_assert_true (g_file_set_contents (junk, "this is not an ELF file\n", -1, NULL));
  g_assert_false (kdf_registry_load_file (reg, junk, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PLUGIN);
  assert_contains (error->message, junk);
  assert_contains (error->message, "cannot load");
  g_clear_error (&error);
  g_unlink (junk);
  g_rmdir (dir);

  g_autofree char *nosym = bad_plugin ("kdf-nosym.so");
  g_assert_false (kdf_registry_load_file (reg, nosym, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PLUGIN);
  assert_contains (error->message, "no symbol 'kdf_plugin_nosym_describe'");
  g_clear_error (&error);

  g_autofree char *badabi = bad_plugin ("kdf-badabi.so");
  g_assert_false (kdf_registry_load_file (reg, badabi, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_ABI);
  assert_contains (error->message, "built for kdflow ABI 1.0, this engine has ABI 2.1 (major differs)");
  g_clear_error (&error);
  g_assert_null (kdf_registry_lookup (reg, "badabi_node"));

  g_autofree char *badminor = bad_plugin ("kdf-badminor.so");
  g_assert_false (kdf_registry_load_file (reg, badminor, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_ABI);
  assert_contains (error->message, "built for kdflow ABI 2.2, this engine has ABI 2.1 (minor is newer)");
  g_clear_error (&error);
  g_assert_null (kdf_registry_lookup (reg, "badminor_node"));

  /* a malformed class: the file is refused with the kind and the port named, and no
   * class of it is registered, not even the well-formed one before it */
  g_autofree char *badport = bad_plugin ("kdf-badport.so");
  g_assert_false (kdf_registry_load_file (reg, badport, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PLUGIN);
  assert_contains (error->message, "kdf-badport.so: node kind 'badport_node': input port 'scores': "
                                   "port type \"f32[N\": '[' without ']'");
  g_clear_error (&error);
  g_assert_null (kdf_registry_lookup (reg, "badport_good"));
  g_assert_null (kdf_registry_lookup (reg, "badport_node"));

  g_autofree char *badparam = bad_plugin ("kdf-badparam.so");
  g_assert_false (kdf_registry_load_file (reg, badparam, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PLUGIN);
  assert_contains (error->message, "kdf-badparam.so: node kind 'badparam_node': param 'bins'");
  assert_contains (error->message, "params struct of 0 bytes (set .params_size");
  g_clear_error (&error);
  g_assert_null (kdf_registry_lookup (reg, "badparam_node"));

  g_autofree char *dup = bad_plugin ("kdf-dup.so");
  g_assert_false (kdf_registry_load_file (reg, dup, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_KIND);
  assert_contains (error->message, "node kind 'test_noop' is defined twice: in ");
  assert_contains (error->message, "kdf-testnodes.so and in ");
  assert_contains (error->message, "kdf-dup.so");
  g_clear_error (&error);
  /* the original stays */
  assert_contains (kdf_registry_origin (reg, "test_noop"), "kdf-testnodes.so");

  g_autoptr (KdfGraph) g = kdf_graph_new ("kinds", 1);
  g_assert_null (kdf_graph_add_node (g, "test_sorce", NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_KIND);
  assert_contains (error->message, "unknown node kind 'test_sorce' (did you mean 'test_source'");
  g_clear_error (&error);
}

/* ---- foreign kernels ---------------------------------------------------------- */

static void
test_foreign (void)
{
  const char *lib = g_getenv ("KDF_TEST_KERNELS");
  g_autoptr (KdfGraph) g = kdf_graph_new ("foreign", 1);
  GError *error = NULL;
  float xs[] = { 1, 2, 3, 4, 5, 6 }, ws[] = { 1, 0, -1 };
  g_autoptr (KdfTensor) x = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 2, 3 }, xs);
  g_autoptr (KdfTensor) w = kdf_tensor_new_from_data (KDF_DTYPE_F32, 1, (int64_t[]){ 3 }, ws);
  KdfNode *cx = kdf_graph_add_constant (g, "x", x, &error);
  KdfNode *cw = kdf_graph_add_constant (g, "w", w, &error);
  static const char *const ins[] = { "x:f32[N,D]", "w:f32[D]", NULL };
  static const char *const outs[] = { "y:f32[N]", NULL };
  static const char *const dims[] = { "N", "D", NULL };
  static const char *const scalars[] = { "bias", NULL };
  KdfForeignSpec spec = { lib, "kdf_test_matvec", "v(ppll d p)", ins, outs, dims, scalars, NULL };
  /* "v(ppll d p)" has two spaces: malformed */
  g_assert_null (kdf_graph_add_foreign (g, "mv", &spec, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_FOREIGN);
  assert_contains (error->message, "more than one space");
  g_clear_error (&error);
  spec.signature = "v(pppl ld)";
  g_assert_null (kdf_graph_add_foreign (g, "mv", &spec, &error));
  assert_contains (error->message, "has 3 input and 0 output pointers, but 2 inputs and 1 outputs");
  g_clear_error (&error);
  spec.signature = "v(ppld p)";
  KdfNode *mv = kdf_graph_add_foreign (g, "mv", &spec, &error);
  g_assert_null (mv);
  assert_contains (error->message, "has 1 integer arguments, but dims lists 2");
  g_clear_error (&error);
  spec.signature = "v(ppqld p)";
  g_assert_null (kdf_graph_add_foreign (g, "mv", &spec, &error));
  assert_contains (error->message, "unknown argument type 'q'");
  g_clear_error (&error);
  /* a malformed port declaration, named */
  static const char *const bad_ins[] = { "x:f32[N,D", "w:f32[D]", NULL };
  spec.signature = "v(pplld p)";
  spec.inputs = bad_ins;
  g_assert_null (kdf_graph_add_foreign (g, "mv", &spec, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_FOREIGN);
  assert_contains (error->message, "port \"x:f32[N,D\": port type \"f32[N,D\": '[' without ']'");
  g_clear_error (&error);
  spec.inputs = ins;
  mv = kdf_graph_add_foreign (g, "mv", &spec, &error);
  g_assert_no_error (error);
  connect (g, cx, "value", mv, "x");
  connect (g, cw, "value", mv, "w");
  g_assert_true (kdf_node_set_param_double (mv, "bias", 0.5, &error));
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_no_error (error);
  KdfTensor *y = kdf_node_get_output_tensor (mv, "y");
  g_assert_cmpfloat (kdf_tensor_f32 (y)[0], ==, 1 - 3 + 0.5);
  g_assert_cmpfloat (kdf_tensor_f32 (y)[1], ==, 4 - 6 + 0.5);

  /* an int status: non-zero fails the node */
  static const char *const ins2[] = { "y:f32[N]", NULL };
  static const char *const none[] = { NULL };
  static const char *const dims2[] = { "N", NULL };
  KdfForeignSpec check = { lib, "kdf_test_check_nonneg", "i(pi)", ins2, none, dims2, NULL, NULL };
  KdfNode *ck = kdf_graph_add_foreign (g, "check", &check, &error);
  g_assert_no_error (error);
  connect (g, mv, "y", ck, "y");
  g_assert_false (kdf_graph_run (g, &o, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_NODE);
  assert_contains (error->message, "node 'check' (foreign:kdf_test_check_nonneg), tick 1: foreign "
                                   "kernel kdf_test_check_nonneg returned status 7");
  g_clear_error (&error);

  /* a real system library: BLAS's sdot */
  g_autoptr (KdfGraph) g2 = kdf_graph_new ("blas", 1);
  KdfNode *a = add (g2, "test_source", "a");
  g_assert_true (kdf_node_set_param_double (a, "value", 3, &error));
  static const char *const dot_in[] = { "x:f32[N]", "y:f32[N]", NULL };
  static const char *const dot_dims[] = { "N", "1", "1", NULL };
  KdfForeignSpec sdot = { "libblas.so.3", "cblas_sdot", "f(ipipi)", dot_in, none, dot_dims, NULL,
                          "dot" };
  KdfNode *d = kdf_graph_add_foreign (g2, "sdot", &sdot, &error);
  g_assert_no_error (error);
  connect (g2, a, "x", d, "x");
  connect (g2, a, "x", d, "y");
  g_assert_true (kdf_graph_run (g2, &o, &error));
  g_assert_cmpfloat (scalar (d, "dot"), ==, 36);

  /* missing library, missing symbol */
  KdfForeignSpec missing = sdot;
  missing.library = "libdoes-not-exist.so.9";
  g_assert_null (kdf_graph_add_foreign (g2, "m1", &missing, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_FOREIGN);
  assert_contains (error->message, "cannot open library");
  assert_contains (error->message, "libdoes-not-exist.so.9");
  g_clear_error (&error);
  missing = sdot;
  missing.symbol = "cblas_sdot_nonexistent";
  g_assert_null (kdf_graph_add_foreign (g2, "m2", &missing, &error));
  assert_contains (error->message, "library has no symbol 'cblas_sdot_nonexistent'");
  g_clear_error (&error);
}

/* ---- node classes: what the engine refuses when a node is added ----------------- */

static gboolean
nop_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

typedef struct {
  int a;
  double b;
} TwoParams;
static const KdfParamSpec two_params[] = {
  KDF_PARAM_INT (TwoParams, a, 1, 0, 10, "a"),
  KDF_PARAM_DOUBLE (TwoParams, b, 0.5, 0, 1, "b"),
  { 0 },
};

typedef struct {
  union {
    int lo;
    int hi;
  };
} SharedParams;
static const KdfParamSpec shared_params[] = {
  KDF_PARAM_INT (SharedParams, lo, 0, 0, 10, "lo"),
  KDF_PARAM_INT (SharedParams, hi, 0, 0, 10, "hi"),
  { 0 },
};

typedef enum { KNOB_LOW = 7, KNOB_HIGH = 42 } Knob;
typedef struct {
  Knob knob;
} KnobParams;
static const KdfChoice knobs[] = { { "low", KNOB_LOW }, { "high", KNOB_HIGH }, { 0 } };
static const KdfParamSpec knob_default_params[] = {
  KDF_PARAM_ENUM (KnobParams, knob, "medium", knobs, "not among the choices"),
  { 0 },
};
static const KdfParamSpec knob_ok_params[] = {
  KDF_PARAM_ENUM (KnobParams, knob, "high", knobs, "fine"),
  { 0 },
};

typedef struct {
  int n;
} IntParams;
static const KdfParamSpec int_range_params[] = {
  KDF_PARAM_INT (IntParams, n, 0, 0, 1e10, "a range an int cannot hold"),
  { 0 },
};

static const KdfPortSpec port_open[] = { KDF_PORT ("scores", "f32[N", 0, NULL), { 0 } };
static const KdfPortSpec port_float[] = { KDF_PORT ("scores", "float", 0, NULL), { 0 } };
static const KdfPortSpec port_rank5[] = { KDF_PORT ("scores", "f32[A,B,C,D,E]", 0, NULL), { 0 } };
static const KdfPortSpec port_null[] = { KDF_PORT ("scores", NULL, 0, NULL), { 0 } };
static const KdfPortSpec port_bound_out[] = { KDF_PORT ("labels", "i32[N] < C", 0, NULL), { 0 } };
static const KdfPortSpec port_ok[] = { KDF_PORT ("scores", "f32[N]", 0, NULL), { 0 } };

typedef struct {
  const char *kind;
  const KdfPortSpec *inputs, *outputs;
  const KdfParamSpec *params;
  gsize params_size;
  const char *needles[3];
} BadClass;

static const BadClass bad_classes[] = {
  { "params_too_small", NULL, NULL, two_params, sizeof (int),
    { "param 'b': its field (offset 8, 8 bytes) is not inside the params struct of 4 bytes" } },
  { "params_size_forgotten", NULL, NULL, two_params, 0,
    { "param 'a': its field (offset 0, 4 bytes) is not inside the params struct of 0 bytes",
      "set .params_size = sizeof (your params struct)" } },
  { "params_shared", NULL, NULL, shared_params, sizeof (SharedParams),
    { "params 'lo' and 'hi' share bytes of the params struct" } },
  { "enum_default", NULL, NULL, knob_default_params, sizeof (KnobParams),
    { "enum param 'knob': the default 'medium' is not one of its choices" } },
  { "int_range", NULL, NULL, int_range_params, sizeof (IntParams),
    { "param 'n': the range [0, 1e+10] does not fit its int field" } },
  { "port_open", port_open, NULL, NULL, 0,
    { "input port 'scores': port type \"f32[N\": '[' without ']'" } },
  { "port_float", port_float, NULL, NULL, 0,
    { "input port 'scores': port type \"float\": unknown dtype" } },
  { "port_rank5", NULL, port_rank5, NULL, 0,
    { "output port 'scores': port type \"f32[A,B,C,D,E]\": rank 5, at most 4" } },
  { "port_null", port_null, NULL, NULL, 0, { "input port 'scores': port type \"(null)\": no type" } },
  { "port_bound_out", NULL, port_bound_out, NULL, 0,
    { "output port 'labels': a bound '< C' is checked on inputs only" } },
};

static void
test_bad_classes (void)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("classes", 1);
  for (guint i = 0; i < G_N_ELEMENTS (bad_classes); i++) {
    const BadClass *c = &bad_classes[i];
    KdfNodeClass *k = g_new0 (KdfNodeClass, 1);
    k->struct_size = sizeof (KdfNodeClass);
    k->name = c->kind;
    k->inputs = c->inputs;
    k->outputs = c->outputs;
    k->params = c->params;
    k->params_size = c->params_size;
    k->run = nop_run;
    GError *error = NULL;
    /* the graph frees the class with the node (if a broken check let it in) */
    KdfNode *n = kdf_graph_add_node_with_class (g, k, NULL, k, g_free, &error);
    if (n)
      g_error ("class '%s' was accepted", c->kind);
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PLUGIN);
    g_autofree char *kind = g_strdup_printf ("node kind '%s'", c->kind);
    assert_contains (error->message, kind);
    for (guint j = 0; j < G_N_ELEMENTS (c->needles) && c->needles[j]; j++)
      assert_contains (error->message, c->needles[j]);
    g_clear_error (&error);
  }
  g_assert_cmpuint (kdf_graph_n_nodes (g), ==, 0);

  /* the well-formed neighbours of those classes are accepted */
  static const KdfNodeClass ok_two = { .struct_size = sizeof (KdfNodeClass), .name = "ok_two",
                                       .params = two_params, .params_size = sizeof (TwoParams),
                                       .inputs = port_ok, .run = nop_run };
  static const KdfNodeClass ok_knob = { .struct_size = sizeof (KdfNodeClass), .name = "ok_knob",
                                        .params = knob_ok_params,
                                        .params_size = sizeof (KnobParams), .run = nop_run };
  GError *error = NULL;
  g_assert_nonnull (kdf_graph_add_node_with_class (g, &ok_two, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (kdf_graph_add_node_with_class (g, &ok_knob, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* An enum param reaches a run-time class as the node's own C value too. */
static gboolean
knob_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const KnobParams *p = kdf_ctx_params (ctx);
  kdf_ctx_set_output_tensor (ctx, "v", kdf_tensor_new_scalar_f32 ((float) p->knob));
  return TRUE;
}

static void
test_enum_values (void)
{
  static const KdfPortSpec out[] = { KDF_PORT ("v", "f32[]", 0, "the knob's C value"), { 0 } };
  static const KdfNodeClass knob_class = {
    .struct_size = sizeof (KdfNodeClass), .name = "knob", .outputs = out,
    .params = knob_ok_params, .params_size = sizeof (KnobParams), .run = knob_run };
  g_autoptr (KdfGraph) g = kdf_graph_new ("knobs", 1);
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_node_with_class (g, &knob_class, "k", NULL, NULL, &error);
  g_assert_no_error (error);
  KdfRunOptions o = opts_ticks (1, 1);
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_cmpfloat (scalar (n, "v"), ==, KNOB_HIGH); /* the default */
  g_assert_true (kdf_node_set_param_string (n, "knob", "low", &error));
  g_assert_true (kdf_graph_run (g, &o, &error));
  g_assert_cmpfloat (scalar (n, "v"), ==, KNOB_LOW);
  g_assert_no_error (error);
}

/* ---- port types ------------------------------------------------------------------ */

static void
test_port_types (void)
{
  /* canonical strings round-trip */
  const char *canonical[] = { "f32[N,C]", "i32[N] < C", "i32[N] < 10", "u8[N]", "any", "any[N]",
                              "model", "loss", "f32[]", "f32", "f32[*]", "f32[N,3,28,28]",
                              "i32", "u8[*,*]" };
  for (guint i = 0; i < G_N_ELEMENTS (canonical); i++) {
    KdfPortType t;
    GError *error = NULL;
    if (!kdf_port_type_parse (canonical[i], &t, &error))
      g_error ("\"%s\" does not parse: %s", canonical[i], error->message);
    g_autofree char *back = kdf_port_type_to_string (&t);
    g_assert_cmpstr (back, ==, canonical[i]);
  }
  /* other spellings print canonically */
  struct {
    const char *text, *canon;
  } spellings[] = {
    { " f32[ N , C ] ", "f32[N,C]" },
    { "i32[N]<C", "i32[N] < C" },
    { "i32[N]   <   C ", "i32[N] < C" },
    { "f32[ ]", "f32[]" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (spellings); i++) {
    KdfPortType t;
    g_assert_true (kdf_port_type_parse (spellings[i].text, &t, NULL));
    g_autofree char *back = kdf_port_type_to_string (&t);
    g_assert_cmpstr (back, ==, spellings[i].canon);
  }
  /* what the fields say */
  KdfPortType t;
  g_assert_true (kdf_port_type_parse ("i32[N] < C", &t, NULL));
  g_assert_cmpint (t.kind, ==, KDF_VALUE_TENSOR);
  g_assert_cmpint (t.dtype, ==, KDF_DTYPE_I32);
  g_assert_cmpint (t.rank, ==, 1);
  g_assert_cmpstr (t.shape, ==, "N");
  g_assert_cmpstr (t.bound, ==, "C");
  g_assert_true (kdf_port_type_parse ("f32", &t, NULL));
  g_assert_cmpint (t.rank, ==, -1);
  g_assert_cmpint (t.dtype, ==, KDF_DTYPE_F32);
  g_assert_cmpstr (t.bound, ==, "");
  g_assert_true (kdf_port_type_parse ("f32[]", &t, NULL));
  g_assert_cmpint (t.rank, ==, 0);
  g_assert_cmpstr (t.shape, ==, "");
  g_assert_true (kdf_port_type_parse ("any", &t, NULL));
  g_assert_cmpint (t.kind, ==, KDF_VALUE_TENSOR);
  g_assert_cmpint (t.dtype, ==, KDF_DTYPE_ANY);
  g_assert_cmpint (t.rank, ==, -1);
  g_assert_true (kdf_port_type_parse ("f32[N, 3,*]", &t, NULL));
  g_assert_cmpint (t.rank, ==, 3);
  g_assert_cmpstr (t.shape, ==, "N,3,*");
  g_assert_true (kdf_port_type_parse ("model", &t, NULL));
  g_assert_cmpint (t.kind, ==, KDF_VALUE_MODEL);
  g_assert_true (kdf_port_type_parse ("loss", &t, NULL));
  g_assert_cmpint (t.kind, ==, KDF_VALUE_LOSS);

  /* errors: KDF_ERROR_PORT, the text quoted, what is wrong */
  struct {
    const char *text, *needle;
  } bad[] = {
    { "f32[N", "port type \"f32[N\": '[' without ']'" },
    { "float", "port type \"float\": unknown dtype" },
    { "f32[A,B,C,D,E]", "port type \"f32[A,B,C,D,E]\": rank 5, at most 4" },
    { "", "no dtype" },
    { "[N]", "no dtype" },
    { "f32[N]x", "text after ']'" },
    { "f32[N-1]", "dim 1 is 'N-1', not a symbol, an integer or *" },
    { "f32[N,]", "dim 2 is ''" },
    { "f32[N] < C", "a bound '< C' needs dtype i32" },
    { "u8[N] < 4", "a bound '< C' needs dtype i32" },
    { "i32[N] <", "the bound after '<' must be a symbol or an integer" },
    { "i32[N] < C D", "the bound after '<' must be a symbol or an integer" },
    { "Model", "unknown dtype" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    GError *error = NULL;
    if (kdf_port_type_parse (bad[i].text, &t, &error))
      g_error ("\"%s\" parsed", bad[i].text);
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
    assert_contains (error->message, bad[i].needle);
    g_clear_error (&error);
  }
  GError *error = NULL;
  g_assert_false (kdf_port_type_parse (NULL, &t, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
  g_clear_error (&error);

  /* declarations "name:type", "name:type?" */
  char *name = NULL;
  gboolean optional = TRUE;
  g_assert_true (kdf_port_decl_parse ("scores:f32[N]", &name, &t, &optional, &error));
  g_assert_cmpstr (name, ==, "scores");
  g_assert_false (optional);
  g_assert_cmpint (t.rank, ==, 1);
  g_clear_pointer (&name, g_free);
  g_assert_true (kdf_port_decl_parse (" w : i32[N] < C ?", &name, &t, &optional, &error));
  g_assert_cmpstr (name, ==, "w");
  g_assert_true (optional);
  g_assert_cmpstr (t.bound, ==, "C");
  g_clear_pointer (&name, g_free);
  struct {
    const char *decl, *needle;
  } bad_decls[] = {
    { "scores", "port \"scores\": expected \"name:type\"" },
    { "1x:f32", "the name '1x' must be snake_case" },
    { "v:float", "port \"v:float\": port type \"float\": unknown dtype" },
    { "v:f32[N", "port \"v:f32[N\": port type \"f32[N\": '[' without ']'" },
    { "v:f32[A,B,C,D,E]", "rank 5, at most 4" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_decls); i++) {
    g_assert_false (kdf_port_decl_parse (bad_decls[i].decl, &name, &t, &optional, &error));
    g_assert_null (name);
    g_assert_error (error, KDF_ERROR, KDF_ERROR_PORT);
    assert_contains (error->message, bad_decls[i].needle);
    g_clear_error (&error);
  }
}

/* ---- label bounds ("i32[N] < C") --------------------------------------------------- */

static KdfGraph *
labels_graph (const char *name, const int32_t *labels, const int32_t *small, KdfNode **out)
{
  KdfGraph *g = kdf_graph_new (name, 1);
  GError *error = NULL;
  g_autoptr (KdfTensor) probs = kdf_tensor_new_2d (KDF_DTYPE_F32, 3, 4); /* N = 3, C = 4 */
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 3 }, labels);
  KdfNode *cp = kdf_graph_add_constant (g, "probs", probs, &error);
  KdfNode *cy = kdf_graph_add_constant (g, "y", y, &error);
  g_assert_no_error (error);
  KdfNode *n = add (g, "test_labels", "lab");
  connect (g, cp, "value", n, "probs");
  connect (g, cy, "value", n, "labels");
  if (small) {
    g_autoptr (KdfTensor) s = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 3 }, small);
    KdfNode *cs = kdf_graph_add_constant (g, "s", s, &error);
    connect (g, cs, "value", n, "small");
  }
  *out = n;
  return g;
}

static void
test_label_bounds (void)
{
  KdfRunOptions o = opts_ticks (1, 1);
  GError *error = NULL;
  KdfNode *n;
  {
    g_autoptr (KdfGraph) g = labels_graph ("in-range", (int32_t[]){ 0, 3, 1 }, (int32_t[]){ 2, 0, 1 }, &n);
    g_assert_true (kdf_graph_run (g, &o, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (scalar (n, "sum"), ==, 4);
    /* the port types as the application sees them */
    guint flags = 99;
    const KdfPortType *t = kdf_node_input_type (n, "labels", &flags);
    g_assert_nonnull (t);
    g_autofree char *ts = kdf_port_type_to_string (t);
    g_assert_cmpstr (ts, ==, "i32[N] < C");
    g_assert_cmpuint (flags, ==, 0);
    t = kdf_node_input_type (n, "small", &flags);
    g_autofree char *ss = kdf_port_type_to_string (t);
    g_assert_cmpstr (ss, ==, "i32[N] < 3");
    g_assert_cmpuint (flags, ==, KDF_PORT_OPTIONAL);
    g_assert_null (kdf_node_input_type (n, "sum", NULL));
    t = kdf_node_output_type (n, "sum", NULL);
    g_assert_nonnull (t);
    g_assert_cmpint (t->rank, ==, 0);
    g_assert_null (kdf_node_output_type (n, "labels", NULL));
  }
  {
    g_autoptr (KdfGraph) g = labels_graph ("too-big", (int32_t[]){ 0, 3, 4 }, NULL, &n);
    g_assert_false (kdf_graph_run (g, &o, &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
    assert_contains (error->message, "graph 'too-big', node 'lab' (test_labels), tick 0: "
                                     "input 'labels' row 2 is 4, outside [0, 4)");
    assert_contains (error->message, "C = 4 from input 'probs'");
    g_clear_error (&error);
    g_assert_null (kdf_node_get_output_tensor (n, "sum")); /* run() never saw the labels */
  }
  {
    g_autoptr (KdfGraph) g = labels_graph ("negative", (int32_t[]){ -1, 0, 0 }, NULL, &n);
    g_assert_false (kdf_graph_run (g, &o, &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
    assert_contains (error->message, "input 'labels' row 0 is -1, outside [0, 4)");
    g_clear_error (&error);
  }
  {
    /* an integer bound */
    g_autoptr (KdfGraph) g = labels_graph ("literal", (int32_t[]){ 0, 1, 2 }, (int32_t[]){ 0, 2, 3 }, &n);
    g_assert_false (kdf_graph_run (g, &o, &error));
    g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
    assert_contains (error->message, "node 'lab' (test_labels), tick 0: input 'small' row 2 is 3, outside [0, 3)");
    g_clear_error (&error);
  }
  {
    /* a bound no input binds is not checked */
    static const KdfPortSpec in[] = { KDF_PORT ("labels", "i32[N] < K", 0, NULL), { 0 } };
    static const KdfNodeClass unbound = { .struct_size = sizeof (KdfNodeClass), .name = "unbound",
                                          .inputs = in, .run = nop_run };
    g_autoptr (KdfGraph) g = kdf_graph_new ("unbound", 1);
    g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 2 },
                                                        (int32_t[]){ 0, 99 });
    KdfNode *c = kdf_graph_add_constant (g, "y", y, &error);
    KdfNode *u = kdf_graph_add_node_with_class (g, &unbound, "u", NULL, NULL, &error);
    g_assert_no_error (error);
    connect (g, c, "value", u, "labels");
    g_assert_true (kdf_graph_run (g, &o, &error));
    g_assert_no_error (error);
  }
}

/* ---- warnings -------------------------------------------------------------------- */

static void
collect_warning (const char *message, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup (message));
}

/* Runs a graph with a warning node into RUN_DIR (may be NULL). */
static void
run_warner (const char *run_dir, gboolean quiet, GPtrArray *collected)
{
  g_autoptr (KdfGraph) g = kdf_graph_new ("warned", 1);
  KdfNode *w = add (g, "test_warn", "w");
  GError *error = NULL;
  g_assert_true (kdf_node_set_param_string (w, "message", "the tipping point was not reached", &error));
  g_assert_true (kdf_node_set_param_int (w, "count", 2, &error));
  KdfRunOptions o = opts_ticks (2, 1);
  o.run_dir = run_dir;
  o.quiet = quiet;
  if (collected) {
    o.warning = collect_warning;
    o.user_data = collected;
  }
  g_assert_true (kdf_graph_run (g, &o, &error)); /* a warning never fails the node */
  g_assert_no_error (error);
}

/* The children of test_warnings: no callback, stderr as the user sees it. */
static void
test_warnings_loud (void)
{
  if (g_test_subprocess ())
    run_warner (NULL, FALSE, NULL);
}

static void
test_warnings_quiet (void)
{
  if (g_test_subprocess ())
    run_warner (NULL, TRUE, NULL);
}

static void
test_warnings (void)
{
  g_autofree char *dir = g_dir_make_tmp ("kdf-warn-XXXXXX", NULL);
  g_autofree char *run_dir = g_build_filename (dir, "run", NULL);
  g_autoptr (GPtrArray) got = g_ptr_array_new_with_free_func (g_free);
  run_warner (run_dir, FALSE, got);
  g_assert_cmpuint (got->len, ==, 4);
  g_assert_cmpstr (got->pdata[0], ==, "graph 'warned', node 'w' (test_warn), tick 0: "
                                      "the tipping point was not reached (1)");
  g_assert_cmpstr (got->pdata[1], ==, "graph 'warned', node 'w' (test_warn), tick 0: "
                                      "the tipping point was not reached (2)");
  g_assert_cmpstr (got->pdata[3], ==, "graph 'warned', node 'w' (test_warn), tick 1: "
                                      "the tipping point was not reached (2)");
  /* and in summary.json */
  g_autofree char *summary = read_file (run_dir, "summary.json");
  g_assert_nonnull (summary);
  assert_contains (summary, "\"status\" : \"ok\"");
  assert_contains (summary, "\"warnings\" : [");
  assert_contains (summary, "\"graph 'warned', node 'w' (test_warn), tick 1: the tipping point "
                            "was not reached (2)\"");
  /* quiet: still recorded */
  g_autofree char *run_dir2 = g_build_filename (dir, "run2", NULL);
  run_warner (run_dir2, TRUE, NULL);
  g_autofree char *summary2 = read_file (run_dir2, "summary.json");
  assert_contains (summary2, "tick 0: the tipping point was not reached (1)");

  /* without a callback: on stderr, unless quiet */
  g_test_trap_subprocess ("/graph/warnings/subprocess/loud", 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*warning: graph 'warned', node 'w' (test_warn), tick 1: the "
                             "tipping point was not reached (2)*");
  g_test_trap_subprocess ("/graph/warnings/subprocess/quiet", 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr_unmatched ("*tipping point*");
}

/* kdf_threads_default: KDFLOW_THREADS decides when set; else the idle cores by the
 * load average, decided once. Each case in a subprocess (the value is per process). */
static void
threads_case (const char *env)
{
  if (env)
    g_setenv ("KDFLOW_THREADS", env, TRUE);
  else
    g_unsetenv ("KDFLOW_THREADS");
  double load = -2;
  const int t = kdf_threads_default (&load);
  const int cores = (int) g_get_num_processors ();
  g_print ("threads=%d cores=%d load=%.2f\n", t, cores, load);
  if (env && strcmp (env, "3") == 0)
    g_assert_cmpint (t, ==, 3);
  else if (env && strcmp (env, "all") == 0)
    g_assert_cmpint (t, ==, cores);
  else
    g_assert_cmpint (t, ==, kdf_threads_idle (load, cores, 1));
  /* decided once: a later change of the environment does not move it */
  g_setenv ("KDFLOW_THREADS", "7", TRUE);
  g_assert_cmpint (kdf_threads_default (NULL), ==, t);
}

static void threads_three (void) { threads_case ("3"); }
static void threads_all (void) { threads_case ("all"); }
static void threads_bad (void) { threads_case ("lots"); }
static void threads_load (void) { threads_case (NULL); }

/* The idle cores for a load average, shared among a machine's ranks. */
static void
test_threads_idle (void)
{
  static const struct { double load; int cores, ranks, want; } cases[] = {
    { 0.0, 2, 1, 2 },  { 0.49, 2, 1, 2 }, { 0.5, 2, 1, 1 }, { 1.5, 2, 1, 1 },
    { 23.0, 2, 1, 1 }, { -1.0, 2, 1, 2 }, { -1.0, 8, 3, 2 }, { 0.0, 8, 2, 4 },
    { 3.2, 8, 2, 2 },  { 2.6, 8, 2, 2 },  { 0.0, 1, 4, 1 },  { 7.0, 8, 4, 1 },
    { 0.0, 0, 1, 1 },  { 1e300, 4, 1, 1 }, { 0.0, 4, 0, 4 },
  };
  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++) {
    const int got = kdf_threads_idle (cases[k].load, cases[k].cores, cases[k].ranks);
    if (got != cases[k].want)
      g_error ("load %g, %d cores, %d ranks: %d threads, want %d", cases[k].load,
               cases[k].cores, cases[k].ranks, got, cases[k].want);
  }
  const double load = kdf_machine_load ();
  g_assert_true (load == -1.0 || load >= 0.0);
}

static void
test_threads_default (void)
{
  const char *cases[] = { "three", "all", "bad", "load" };
  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++) {
    g_autofree char *path = g_strdup_printf ("/graph/threads-default/subprocess/%s", cases[k]);
    g_test_trap_subprocess (path, 0, G_TEST_SUBPROCESS_INHERIT_STDERR * 0);
    g_test_trap_assert_passed ();
    g_test_trap_assert_stdout ("*threads=*");
    if (strcmp (cases[k], "bad") == 0)
      g_test_trap_assert_stderr ("*KDFLOW_THREADS='lots' is neither a number*");
    else
      g_test_trap_assert_stderr_unmatched ("*KDFLOW_THREADS*");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kdf_init ();
  g_test_add_func ("/graph/basic", test_basic);
  g_test_add_func ("/graph/change-driven", test_change_driven);
  g_test_add_func ("/graph/delay", test_delay);
  g_test_add_func ("/graph/cycle", test_cycle);
  g_test_add_func ("/graph/connect-errors", test_connect_errors);
  g_test_add_func ("/graph/prepare-errors", test_prepare_errors);
  g_test_add_func ("/graph/params", test_params);
  g_test_add_func ("/graph/int-fields", test_int_fields);
  g_test_add_func ("/graph/enum-values", test_enum_values);
  g_test_add_func ("/graph/schedule", test_schedule);
  g_test_add_func ("/graph/fail-at-tick", test_fail_at_tick);
  g_test_add_func ("/graph/runtime-shape", test_runtime_shape);
  g_test_add_func ("/graph/budget", test_budget);
  g_test_add_func ("/graph/cancel", test_cancel);
  g_test_add_func ("/graph/rng", test_rng);
  g_test_add_func ("/graph/oracle-runtime", test_oracle_runtime);
  g_test_add_func ("/graph/dot", test_dot);
  g_test_add_func ("/graph/dot-dir", test_dot_dir);
  g_test_add_func ("/graph/bad-plugins", test_bad_plugins);
  g_test_add_func ("/graph/foreign", test_foreign);
  g_test_add_func ("/graph/bad-classes", test_bad_classes);
  g_test_add_func ("/graph/port-types", test_port_types);
  g_test_add_func ("/graph/cancel-kernels", test_cancel_kernels);
  g_test_add_func ("/graph/label-bounds", test_label_bounds);
  g_test_add_func ("/graph/warnings", test_warnings);
  g_test_add_func ("/graph/warnings/subprocess/loud", test_warnings_loud);
  g_test_add_func ("/graph/warnings/subprocess/quiet", test_warnings_quiet);
  g_test_add_func ("/graph/threads-default", test_threads_default);
  g_test_add_func ("/graph/threads-idle", test_threads_idle);
  g_test_add_func ("/graph/threads-default/subprocess/three", threads_three);
  g_test_add_func ("/graph/threads-default/subprocess/all", threads_all);
  g_test_add_func ("/graph/threads-default/subprocess/bad", threads_bad);
  g_test_add_func ("/graph/threads-default/subprocess/load", threads_load);
  int rc = g_test_run ();
  kdf_shutdown ();
  return rc;
}
