/* The `kdflow` program from the outside: exit status, the message on stderr, the run
 * directory. Each bad input must name the culprit and exit 2 (1 for a node that
 * failed while running) without crashing; under the sanitizer build a leak fails
 * the child and so the case. */
#include <glib/gstdio.h>
#include <kdflow/kdflow.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *kdflow;
static const char *srcdir;

typedef struct {
  int status;
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}

static void
remove_tree (const char *path)
{
  GDir *d = g_file_test (path, G_FILE_TEST_IS_SYMLINK) ? NULL : g_dir_open (path, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
    g_dir_close (d);
  }
  g_remove (path);
}

/* Runs kdflow with ARGS (NULL-terminated) and extra environment ENV ("K=V", ...) in
 * directory CWD (NULL: a new temporary directory). */
static Result
run_env_cwd (const char *cwd_arg, const char *const *env, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) kdflow);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  char **envp = g_get_environ ();
  for (const char *const *e = env; e && *e; e++) {
    const char *eq = strchr (*e, '=');
    g_autofree char *key = g_strndup (*e, (gsize) (eq - *e));
    envp = g_environ_setenv (envp, key, eq + 1, TRUE);
  }
  Result r = { 0 };
  int wait_status = 0;
  GError *error = NULL;
  g_autofree char *cwd = cwd_arg ? g_strdup (cwd_arg) : g_dir_make_tmp ("kdf-cli-XXXXXX", NULL);
  if (!g_spawn_sync (cwd, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &r.out,
                     &r.err, &wait_status, &error))
    g_error ("cannot run %s: %s", kdflow, error->message);
  r.status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
  g_strfreev (envp);
  g_ptr_array_free (argv, TRUE);
  if (!cwd_arg)
    remove_tree (cwd); /* the child's default run directory */
  return r;
}

static Result
run_env (const char *const *env, const char *const *args)
{
  return run_env_cwd (NULL, env, args);
}

static Result
run (const char *const *args)
{
  return run_env (NULL, args);
}

static char *
script (const char *name)
{
  return g_build_filename (srcdir, "lua", name, NULL);
}

static void
expect (Result *r, int status, const char *const *needles)
{
  if (r->status != status)
    g_error ("expected exit status %d, got %d\nstdout:\n%s\nstderr:\n%s", status, r->status,
             r->out, r->err);
  for (const char *const *n = needles; n && *n; n++)
    if (!strstr (r->err, *n) && !strstr (r->out, *n))
      g_error ("expected \"%s\" in the output\nstdout:\n%s\nstderr:\n%s", *n, r->out, r->err);
  /* never a crash or a sanitizer report */
  g_assert_null (strstr (r->err, "AddressSanitizer"));
  g_assert_null (strstr (r->err, "runtime error:"));
  g_assert_null (strstr (r->err, "CRITICAL"));
}

typedef struct {
  const char *name;
  const char *script;
  int status;
  const char *needles[5];
} BadCase;

static const BadCase bad_cases[] = {
  { "unknown-kind", "bad/unknown_kind.lua", 2,
    { "unknown_kind.lua:3:", "unknown node kind 'test_sorce' (did you mean 'test_source'" } },
  { "huge-names", "bad/huge_names.lua", 2, { "huge_names.lua:9:", "unknown param 'qqqq" } },
  { "unknown-param", "bad/unknown_param.lua", 2,
    { "unknown_param.lua:3:", "unknown param 'lenght'", "params: n, value, per_tick" } },
  { "param-type", "bad/param_type.lua", 2,
    { "param_type.lua:3:", "param 'n' takes an int, got a string ('three')" } },
  { "param-range", "bad/param_range.lua", 2, { "param 'rate' = 1.5 is out of range [0, 1]" } },
  /* a Lua method or field typo on a kdflow object: "did you mean", the script's line */
  { "method-graph", "bad/method_graph.lua", 2,
    { "method_graph.lua:3:", "graph 'bad' has no method or field 'nod' (did you mean 'node'?)" } },
  { "method-node", "bad/method_node.lua", 2,
    { "method_node.lua:4:", "node 'src' (test_source) has no port or method 'xx' (did you mean 'x'?)" } },
  { "method-port", "bad/method_port.lua", 2,
    { "method_port.lua:5:", "port 'src.x' has no method 'valeu' (did you mean 'value'?)" } },
  { "method-tensor", "bad/method_tensor.lua", 2,
    { "method_tensor.lua:5:", "tensor has no method or field 'shpe' (did you mean 'shape'?)" } },
  { "unknown-port", "bad/unknown_port.lua", 2,
    { "unknown_port.lua:4:", "no input port 'bb' (did you mean 'b'?)" } },
  { "dtype", "bad/dtype.lua", 2, { "dtype.lua:4:", "(f32[N]) to 'test_i32_sink.labels' (i32[N]): dtypes differ" } },
  { "rank", "bad/rank.lua", 2, { "ranks differ" } },
  { "two-edges", "bad/two_edges.lua", 2,
    { "two_edges.lua:6:", "input 'test_add.a' is already fed by 'a.x'" } },
  { "unconnected", "bad/unconnected.lua", 2,
    { "unconnected.lua:5:", "node 'sum' (test_add): required input 'b' is not connected" } },
  { "cycle", "bad/cycle.lua", 2, { "cycle without a delay edge", "alpha -> beta -> alpha" } },
  { "oracle", "bad/oracle.lua", 2,
    { "oracle.lua:4:", "'data.truth' is ground truth", "'method' (test_mask_user) is not an evaluation node" } },
  { "syntax", "bad/syntax.lua", 2, { "syntax.lua:3:" } },
  { "runtime", "bad/runtime.lua", 2, { "runtime.lua:4:", "no port or method 'no_such_method'" } },
  { "fail-tick", "bad/fail_tick.lua", 1,
    { "fail_tick.lua:4:", "node 'breaker' (test_fail)", "tick 3: failing on purpose at tick 3" } },
  { "lua-node-error", "bad/lua_node_error.lua", 1,
    { "node 'oops' (lua)", "tick 0: Lua error:", "lua_node_error.lua:5:" } },
  { "foreign-signature", "bad/foreign_sig.lua", 2,
    { "foreign_sig.lua:3:", "malformed signature \"f(ipipi\"" } },
  { "foreign-library", "bad/foreign_lib.lua", 2, { "cannot open library", "libnot-a-library.so.1" } },
  { "foreign-symbol", "bad/foreign_sym.lua", 2, { "library has no symbol 'cblas_sdto'" } },
  { "runtime-shape", "bad/shape.lua", 2,
    { "node 'sum' (test_add)", "input 'b' is f32[6] from 'b.x', so N = 6, but input 'a' set N = 4" } },
  { "port-declaration", "bad/port_decl.lua", 2,
    { "port_decl.lua:27:", "g:lua: port \"v:f32[N\": port type \"f32[N\": '[' without ']'" } },
  { "label-bound", "bad/label_bound.lua", 2,
    { "label_bound.lua:7:", "node 'lab' (test_labels) [", "label_bound.lua:5], tick 0: input 'labels' row 1 is 4, outside [0, 4)",
      "C = 4 from input 'probs'" } },
  { "int-field", "bad/int_field.lua", 2,
    { "int_field.lua:3:", "node 'test_params' (test_params): param 'big' = ",
      "does not fit its 32-bit integer" } },
};

static void
test_bad_case (gconstpointer data)
{
  const BadCase *c = data;
  g_autofree char *path = script (c->script);
  Result r = run ((const char *[]){ "run", path, "--quiet", NULL });
  expect (&r, c->status, c->needles);
  result_clear (&r);
}

static void
test_missing_file (void)
{
  Result r = run ((const char *[]){ "run", "/nonexistent/graph.lua", NULL });
  expect (&r, 2, (const char *[]){ "graph file '/nonexistent/graph.lua' does not exist", NULL });
  result_clear (&r);
}

static void
test_usage (void)
{
  Result r = run ((const char *[]){ NULL });
  expect (&r, 2, (const char *[]){ "no command given", "usage:", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "frobnicate", NULL });
  expect (&r, 2, (const char *[]){ "unknown command 'frobnicate'", NULL });
  result_clear (&r);
  g_autofree char *path = script ("plain.lua");
  r = run ((const char *[]){ "run", path, "--threads", "zero", NULL });
  expect (&r, 2, (const char *[]){ "--threads needs a number from 1 to 1024, got 'zero'", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "run", path, "--set", "novalue", NULL });
  expect (&r, 2, (const char *[]){ "--set needs key=value, got 'novalue'", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", NULL });
  expect (&r, 2, (const char *[]){ "'describe' takes one node kind", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "--version", NULL });
  expect (&r, 0, (const char *[]){ "kdflow 0.1.0 (node ABI 2.1)", NULL });
  result_clear (&r);
  /* "did you mean" for commands and options */
  r = run ((const char *[]){ "rnu", path, NULL });
  expect (&r, 2, (const char *[]){ "unknown command 'rnu' (did you mean 'run'?)", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "run", path, "--thread", "2", NULL });
  expect (&r, 2, (const char *[]){ "unknown option '--thread' for 'run' (did you mean '--threads'?)", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "dot", path, "--out", "x", NULL });
  expect (&r, 2, (const char *[]){ "unknown option '--out' for 'dot'", NULL });
  result_clear (&r);
  /* help at every level: flags, environment, where the docs are; exit 0 */
  r = run ((const char *[]){ "run", "--help", NULL });
  expect (&r, 0, (const char *[]){ "usage: kdflow run GRAPH.lua", "--set KEY=VALUE", "--threads N",
                                   "--out DIR", "--replace", "--quiet", "--memory SIZE",
                                   "KDFLOW_PLUGIN_PATH", "KDFLOW_MEMORY", "docs/lua.md", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "help", "dot", NULL });
  expect (&r, 0, (const char *[]){ "usage: kdflow dot GRAPH.lua", "-o FILE", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "--help", NULL });
  expect (&r, 0, (const char *[]){ "usage: kdflow describe KIND", "docs/nodes.md", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "nodes", "-h", NULL });
  expect (&r, 0, (const char *[]){ "usage: kdflow nodes", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "--help", NULL });
  expect (&r, 0, (const char *[]){ "kdflow COMMAND --help", "KDFLOW_PLUGIN_PATH", NULL });
  result_clear (&r);
}

/* A plugin directory holding the good test plugin and one bad file. */
static char *
plugin_dir_with (const char *bad_name, const char *contents)
{
  char *dir = g_dir_make_tmp ("kdf-plugpath-XXXXXX", NULL);
  g_autofree char *dst = g_build_filename (dir, bad_name, NULL);
  if (contents) {
    g_assert_true (g_file_set_contents (dst, contents, -1, NULL));
  } else {
    g_autofree char *src = g_build_filename (g_getenv ("KDF_TEST_BADPLUGINS"), bad_name, NULL);
    g_assert_cmpint (symlink (src, dst), ==, 0);
  }
  return dir;
}

/* One bad plugin on the path is reported and skipped: the built-in and good kinds keep
 * working (`run` and `nodes` succeed with a warning naming the file), and only a graph
 * (or `describe`) asking for a kind the bad plugin would have provided fails, with its
 * error. */
static void
test_bad_plugin_path (void)
{
  struct {
    const char *file, *contents, *kind, *needle;
  } cases[] = {
    { "kdf-junk.so", "not a shared object\n", "junk", "kdf-junk.so: cannot load" },
    { "kdf-empty.so", "", "empty", "kdf-empty.so: cannot load" },
    { "kdf-nosym.so", NULL, "nosym", "kdf-nosym.so: no symbol 'kdf_plugin_nosym_describe'" },
    { "kdf-badabi.so", NULL, "badabi", "built for kdflow ABI 1.0, this engine has ABI 2.1 (major differs)" },
    { "kdf-badminor.so", NULL, "badminor_node", "built for kdflow ABI 2.2, this engine has ABI 2.1 (minor is newer)" },
    { "kdf-dup.so", NULL, "test_noop", "node kind 'test_noop' is defined twice" },
    { "kdf-badport.so", NULL, "badport_good",
      "kdf-badport.so: node kind 'badport_node': input port 'scores': port type \"f32[N\": '[' without ']'" },
    { "kdf-badparam.so", NULL, "badparam_node", "kdf-badparam.so: node kind 'badparam_node': param 'bins'" },
  };
  g_autofree char *path = script ("plain.lua");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *dir = plugin_dir_with (cases[i].file, cases[i].contents);
    g_autofree char *env = g_strdup_printf ("KDFLOW_PLUGIN_PATH=%s:%s", g_getenv ("KDFLOW_PLUGIN_PATH"), dir);
    /* the rest of the path still works: the good plugin's kinds run */
    Result r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "run", path, "--quiet", NULL });
    expect (&r, 0, (const char *[]){ "sum\t6.0", "warning: skipping a plugin that failed to load", cases[i].needle, NULL });
    result_clear (&r);
    r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "nodes", NULL });
    expect (&r, 0, (const char *[]){ "test_source", cases[i].needle, NULL });
    result_clear (&r);
    /* a graph that asks for the bad plugin's kind gets its error */
    g_autofree char *ask = g_build_filename (dir, "ask.lua", NULL);
    g_autofree char *text = g_strdup_printf ("local kdf = require \"kdflow\"\n"
                                             "local g = kdf.graph { name = \"ask\" }\n"
                                             "g:node(\"%s\", {})\n", cases[i].kind);
    g_assert_true (g_file_set_contents (ask, text, -1, NULL));
    r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "run", ask, "--quiet", NULL });
    g_autofree char *which = g_strdup_printf ("node kind '%s' comes from a plugin that was skipped", cases[i].kind);
    expect (&r, 2, (const char *[]){ "ask.lua:3:", which, cases[i].needle, NULL });
    result_clear (&r);
    r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "describe", cases[i].kind, NULL });
    expect (&r, 2, (const char *[]){ which, NULL });
    result_clear (&r);
    /* silenced on request */
    r = run_env ((const char *[]){ env, "KDFLOW_PLUGIN_QUIET=1", NULL },
                 (const char *[]){ "run", path, "--quiet", NULL });
    expect (&r, 0, (const char *[]){ "sum\t6.0", NULL });
    g_assert_null (strstr (r.err, "skipping"));
    result_clear (&r);
    remove_tree (dir);
  }
  /* Meson's default name (libkdf-x.so) is not loaded, and the warning says why */
  {
    g_autofree char *dir = plugin_dir_with ("libkdf-named.so", "a plugin built with lib in front\n");
    g_autofree char *env2 = g_strdup_printf ("KDFLOW_PLUGIN_PATH=%s:%s", g_getenv ("KDFLOW_PLUGIN_PATH"), dir);
    Result r = run_env ((const char *[]){ env2, NULL }, (const char *[]){ "nodes", NULL });
    expect (&r, 0, (const char *[]){ "test_source", "libkdf-named.so: a plugin file must be named kdf-named.so",
                                     "name_prefix : ''", NULL });
    result_clear (&r);
    remove_tree (dir);
  }
  /* the same file name later on the path is shadowed, not a duplicate */
  g_autofree char *env = g_strdup_printf ("KDFLOW_PLUGIN_PATH=%s:%s", g_getenv ("KDFLOW_PLUGIN_PATH"),
                                          g_getenv ("KDFLOW_PLUGIN_PATH"));
  Result r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "run", path, "--quiet", NULL });
  expect (&r, 0, (const char *[]){ "sum\t6.0", NULL });
  g_assert_null (strstr (r.err, "skipping"));
  result_clear (&r);
}

static void
test_api (void)
{
  g_autofree char *path = script ("api.lua");
  Result r = run ((const char *[]){ "run", path, "--quiet", "--set", "epochs=7", "--set", "rate=0.25",
                                    "--set", "flag=yes", "--set", "word=abc", "--set", "unused=1", NULL });
  expect (&r, 0, (const char *[]){ "api ok", "warning: --set unused was never read", NULL });
  result_clear (&r);
  /* a --set key close to one the script read gets a hint */
  r = run ((const char *[]){ "run", path, "--quiet", "--set", "epochs=7", "--set", "rate=0.25",
                             "--set", "flag=yes", "--set", "word=abc", "--set", "rates=1", NULL });
  expect (&r, 0, (const char *[]){ "warning: --set rates was never read by", "(did you mean 'rate'?)", NULL });
  result_clear (&r);
}

static char *
slurp (const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  char *text = NULL;
  g_file_get_contents (p, &text, NULL, NULL);
  return text;
}

/* More threads than idle cores (here more than cores, whatever the load): a warning
 * naming the count, the idle cores and the flag to change; none for one thread, none
 * with --quiet. */
static void
test_threads_warning (void)
{
  g_autofree char *path = script ("plain.lua");
  g_autofree char *many = g_strdup_printf ("%u", g_get_num_processors () + 1);
  g_autofree char *env = g_strdup_printf ("KDFLOW_THREADS=%s", many);
  g_autofree char *said = g_strdup_printf ("warning: %s threads, ", many);
  Result r = run ((const char *[]){ "run", path, "--threads", many, NULL });
  expect (&r, 0, (const char *[]){ "sum\t6.0", said, "idle core", "--threads ", NULL });
  result_clear (&r);
  r = run_env ((const char *[]){ env, NULL }, (const char *[]){ "run", path, NULL });
  expect (&r, 0, (const char *[]){ "sum\t6.0", said, "KDFLOW_THREADS=", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "run", path, "--threads", "1", NULL });
  expect (&r, 0, (const char *[]){ "sum\t6.0", NULL });
  g_assert_null (strstr (r.err, "warning:"));
  result_clear (&r);
  r = run ((const char *[]){ "run", path, "--threads", many, "--quiet", NULL });
  expect (&r, 0, NULL);
  g_assert_null (strstr (r.err, "warning:"));
  result_clear (&r);
}

static void
test_run_directory (void)
{
  g_autofree char *dir = g_dir_make_tmp ("kdf-out-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "run1", NULL);
  g_autofree char *dotdir = g_build_filename (dir, "dots", NULL);
  g_autofree char *env = g_strdup_printf ("KDFLOW_DOT_DIR=%s", dotdir);
  g_autofree char *path = script ("plain.lua");
  Result r = run_env ((const char *[]){ env, NULL },
                      (const char *[]){ "run", path, "--out", out, "--threads", "1", NULL });
  expect (&r, 0, (const char *[]){ "sum\t6.0", "plain: epoch 2/2", "run directory: ", NULL });
  result_clear (&r);
  g_autofree char *metrics = slurp (out, "metrics.jsonl");
  g_autofree char *summary = slurp (out, "summary.json");
  g_autofree char *dot = slurp (out, "graph.dot");
  g_autofree char *dot2 = slurp (dotdir, "plain.dot");
  g_assert_nonnull (metrics);
  g_assert_nonnull (strstr (metrics, "\"tick\":1"));
  g_assert_nonnull (summary);
  g_assert_nonnull (strstr (summary, "\"status\" : \"ok\""));
  g_assert_nonnull (dot);
  g_assert_nonnull (strstr (dot, "f32[3]") == NULL ? "no edges here" : dot);
  g_assert_nonnull (dot2);
  g_assert_nonnull (strstr (summary, "\"exit_status\" : 0"));
  /* a relative --out: kdf.run_dir() is absolute, so a path a script builds from it is
   * the file it names (it was doubled: run/run/teacher.safetensors) */
  {
    g_autofree char *rel = script ("run_dir_paths.lua");
    r = run_env_cwd (dir, NULL, (const char *[]){ "run", rel, "--out", "rel-run", "--quiet", NULL });
    expect (&r, 0, (const char *[]){ "checkpoint at", NULL });
    result_clear (&r);
    g_autofree char *ckpt = g_build_filename (dir, "rel-run", "teacher.safetensors", NULL);
    g_assert_true (g_file_test (ckpt, G_FILE_TEST_IS_REGULAR));
  }
  /* a script of two graphs: stages.dot in the run directory, and beside the graphs'
   * drawings in KDFLOW_DOT_DIR as <script>.stages.dot */
  {
    g_autofree char *out2 = g_build_filename (dir, "stages-run", NULL);
    g_autofree char *path2 = script ("two_stages.lua");
    r = run_env ((const char *[]){ env, NULL },
                 (const char *[]){ "run", path2, "--out", out2, "--quiet", "--threads", "1", NULL });
    expect (&r, 0, (const char *[]){ "sum\t12.0", NULL });
    result_clear (&r);
    g_autofree char *stages = slurp (out2, "stages.dot");
    g_autofree char *stages2 = slurp (dotdir, "two_stages.stages.dot");
    g_autofree char *first = slurp (dotdir, "first.dot");
    g_autofree char *second = slurp (dotdir, "second.dot");
    g_assert_nonnull (stages);
    g_assert_nonnull (strstr (stages, "cluster_first"));
    g_assert_nonnull (strstr (stages, "cluster_second"));
    g_assert_cmpstr (stages, ==, stages2);
    g_assert_nonnull (first);
    g_assert_nonnull (second);
  }
  /* running again into the same directory is refused: the earlier run's files would
   * mix with the new run's */
  g_autofree char *stale = g_build_filename (out, "stale.npy", NULL);
  g_assert_true (g_file_set_contents (stale, "old", -1, NULL));
  r = run ((const char *[]){ "run", path, "--out", out, "--quiet", NULL });
  expect (&r, 2, (const char *[]){ "exists and is not empty", "--replace", NULL });
  result_clear (&r);
  g_assert_true (g_file_test (stale, G_FILE_TEST_EXISTS));
  /* --replace: nothing of the earlier run survives, metrics start afresh */
  r = run ((const char *[]){ "run", path, "--out", out, "--quiet", "--replace", NULL });
  expect (&r, 0, NULL);
  result_clear (&r);
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_autofree char *again = slurp (out, "metrics.jsonl");
  g_auto (GStrv) again_lines = g_strsplit (g_strchomp (again), "\n", -1);
  g_assert_cmpuint (g_strv_length (again_lines), ==, 2);
  /* through a symbolic link to the run directory too */
  g_autofree char *link = g_build_filename (dir, "link", NULL);
  g_assert_cmpint (symlink (out, link), ==, 0);
  g_assert_true (g_file_set_contents (stale, "old", -1, NULL));
  r = run ((const char *[]){ "run", path, "--out", link, "--quiet", "--replace", NULL });
  expect (&r, 0, NULL);
  result_clear (&r);
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (link, G_FILE_TEST_IS_SYMLINK));
  /* --replace deletes only a run directory's contents (one with summary.json) */
  g_autofree char *mine = g_build_filename (dir, "mine", NULL);
  g_autofree char *precious = g_build_filename (mine, "thesis.tex", NULL);
  g_assert_cmpint (g_mkdir (mine, 0755), ==, 0);
  g_assert_true (g_file_set_contents (precious, "x", -1, NULL));
  r = run ((const char *[]){ "run", path, "--out", mine, "--quiet", "--replace", NULL });
  expect (&r, 2, (const char *[]){ "no kdflow run directory", NULL });
  result_clear (&r);
  g_assert_true (g_file_test (precious, G_FILE_TEST_EXISTS));
  /* an empty directory is fine without --replace */
  g_autofree char *empty = g_build_filename (dir, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty, 0755), ==, 0);
  r = run ((const char *[]){ "run", path, "--out", empty, "--quiet", NULL });
  expect (&r, 0, NULL);
  result_clear (&r);

  /* a failing run keeps the ticks before the failure */
  g_autofree char *out2 = g_build_filename (dir, "run2", NULL);
  g_autofree char *fail = script ("bad/fail_tick.lua");
  r = run ((const char *[]){ "run", fail, "--out", out2, "--quiet", NULL });
  expect (&r, 1, NULL);
  g_assert_null (strstr (r.out, "not reached"));
  result_clear (&r);
  g_autofree char *m2 = slurp (out2, "metrics.jsonl");
  g_auto (GStrv) lines = g_strsplit (g_strchomp (m2), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3); /* ticks 0, 1, 2 */
  g_autofree char *s2 = slurp (out2, "summary.json");
  g_assert_nonnull (strstr (s2, "\"failed_tick\" : 3"));
  g_assert_nonnull (strstr (s2, "\"exit_status\" : 1"));
  g_assert_nonnull (strstr (s2, "\"status\" : \"failed\""));
}

static void
test_nodes_describe (void)
{
  Result r = run ((const char *[]){ "nodes", NULL });
  expect (&r, 0, (const char *[]){ "test_source", "a constant vector", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "test_params", NULL });
  expect (&r, 0,
          (const char *[]){ "count            int     default 3 [1, 10]", "default 'fast' {fast|slow}",
                            "path             string  required", NULL });
  result_clear (&r);
  /* port types print as their canonical strings */
  r = run ((const char *[]){ "describe", "test_labels", NULL });
  expect (&r, 0,
          (const char *[]){ "  probs            f32[N,C]       binds N and C\n",
                            "  labels           i32[N] < C     labels in [0, C)\n",
                            "  small            i32[N] < 3     labels in [0, 3) (optional)\n",
                            "  sum              f32[]          the sum of the labels\n", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "test_noop", NULL });
  expect (&r, 0,
          (const char *[]){ "  x                any            anything, any number of edges (optional multi)\n",
                            "flags: runs every tick", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "test_oracle", NULL });
  expect (&r, 0, (const char *[]){ "  truth            u8[N]          the true mask (oracle)\n", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "score_histogram", NULL });
  expect (&r, 0,
          (const char *[]){ "  counts           i32[B]         samples per bin\n",
                            "  quantiles        f32[5]         ", "  edges            f32[*]         ",
                            "  auto_range       bool    default false", NULL });
  result_clear (&r);
  r = run ((const char *[]){ "describe", "test_parms", NULL });
  expect (&r, 2, (const char *[]){ "unknown node kind 'test_parms' (did you mean 'test_params'", NULL });
  result_clear (&r);
}

/* kdf_ctx_warning through the command line: on stderr with graph, node and tick,
 * silent under --quiet, and in summary.json either way. */
static const char *warn_line = "warning: graph 'warned', node 'w' (test_warn), tick 1: the tipping "
                               "point was not reached (1)";

static void
run_warn (gboolean quiet)
{
  g_autofree char *path = script ("warn.lua");
  g_autofree char *dir = g_dir_make_tmp ("kdf-warn-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "run", NULL);
  Result r = run ((const char *[]){ "run", path, "--out", out, quiet ? "--quiet" : NULL, NULL });
  expect (&r, 0, (const char *[]){ "warn ok", quiet ? NULL : warn_line, NULL });
  if (quiet && strstr (r.err, "tipping point")) {
    g_autofree char *err = g_strdelimit (g_strdup (r.err), "\n", ' ');
    g_test_fail_printf ("--quiet printed a warning: %s", err);
  }
  result_clear (&r);
  g_autofree char *summary = slurp (out, "summary.json");
  g_assert_nonnull (summary);
  g_assert_nonnull (strstr (summary, "\"warnings\" : ["));
  g_assert_nonnull (strstr (summary, warn_line + strlen ("warning: ")));
  remove_tree (dir);
}

static void
test_warnings_stderr (void)
{
  run_warn (FALSE);
}

static void
test_warnings_quiet (void)
{
  run_warn (TRUE);
}

static void
test_dot_command (void)
{
  g_autofree char *path = script ("api.lua");
  g_autofree char *dir = g_dir_make_tmp ("kdf-dotcmd-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "api.dot", NULL);
  /* nothing runs: api.lua's first assert on a value after g:run fails on the
   * placeholder, so the script stops there with the graph so far drawn and a note */
  Result r = run ((const char *[]){ "dot", path, "-o", file, "--set", "epochs=7", "--set", "rate=0.25",
                                    "--set", "flag=yes", "--set", "word=abc", NULL });
  expect (&r, 0, (const char *[]){ "stopped under 'kdflow dot' after 1 stage", NULL });
  g_assert_null (strstr (r.out, "api ok"));
  result_clear (&r);
  g_autofree char *text = slurp (dir, "api.dot");
  g_assert_nonnull (text);
  g_assert_nonnull (strstr (text, "digraph \"api\""));
  g_assert_nonnull (strstr (text, "subgraph \"cluster_api\""));
  g_assert_nonnull (strstr (text, "INCOMPLETE"));
  g_assert_nonnull (strstr (text, "(foreign:cblas_sdot)"));
  g_assert_nonnull (strstr (text, "(lua)"));
  if (*KDF_TEST_DOT) {
    g_autofree char *out = NULL, *err = NULL;
    int status;
    const char *argv[] = { KDF_TEST_DOT, "-Tsvg", file, NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                 &out, &err, &status, NULL));
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  /* to stdout, and a graph error still fails */
  g_autofree char *cyc = script ("bad/cycle.lua");
  r = run ((const char *[]){ "dot", cyc, NULL });
  expect (&r, 2, (const char *[]){ "alpha -> beta -> alpha", NULL });
  result_clear (&r);
}

/* Every pipeline in graphs/ builds, passes prepare() and renders (kdflow dot). */
static void
test_graphs_dot (void)
{
  g_autofree char *root = g_path_get_dirname (srcdir);
  g_autofree char *graphs = g_build_filename (root, "graphs", NULL);
  GDir *dir = g_dir_open (graphs, 0, NULL);
  g_autofree char *tmp = g_dir_make_tmp ("kdf-graphs-XXXXXX", NULL);
  int n = 0;
  const char *name;
  while (dir && (name = g_dir_read_name (dir))) {
    if (!g_str_has_suffix (name, ".lua"))
      continue;
    g_autofree char *path = g_build_filename (graphs, name, NULL);
    g_autofree char *out = g_strdup_printf ("%s/%s.dot", tmp, name);
    Result r = run_env_cwd (root, NULL, (const char *[]){ "dot", path, "-o", out, NULL });
    if (r.status != 0)
      g_error ("kdflow dot %s failed (%d): %s", name, r.status, r.err);
    result_clear (&r);
    if (*KDF_TEST_DOT) {
      g_autofree char *svg = NULL, *err = NULL;
      int status;
      const char *argv[] = { KDF_TEST_DOT, "-Tsvg", out, NULL };
      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   &svg, &err, &status, NULL));
      if (!g_spawn_check_wait_status (status, NULL))
        g_error ("dot -Tsvg of %s failed: %s", name, err);
    }
    n++;
  }
  if (dir)
    g_dir_close (dir);
  if (n == 0)
    g_test_skip ("no graphs in graphs/");
  else
    g_test_message ("%d graphs drawn", n);
}

/* `kdflow dot` draws every stage of every pipeline: one cluster per graph the script
 * runs, named after it, in order; the checkpoint a stage writes (save) and a later one
 * reads (checkpoint) as a file node between them; a value carried from one graph into
 * another as an edge; and nothing trains (no file appears, it takes well under a
 * second). Every Lua script in graphs/ must have a case here. */
typedef struct {
  const char *graph;
  const char *sets[3];     /* --set values, NULL-terminated */
  const char *stages[13];  /* the clusters, in order, NULL-terminated */
  const char *file;        /* a checkpoint between stages (its path ends so), or NULL */
  int writer, reader;      /* the stages that write and read it */
  const char *carried;     /* a value ("node.port") carried between stages, or NULL */
  int from, to;
  const char *shows;       /* text the drawing must hold, or NULL */
} StageCase;

static const StageCase stage_cases[] = {
  { "aml_kd", { NULL }, { "teacher", "aml_kd", NULL }, "teacher.safetensors", 0, 1, NULL, 0, 0 },
  { "blind_kd", { NULL }, { "blind_kd", NULL }, NULL, 0, 0, NULL, 0, 0 },
  { "blind_kd", { "teacher=train", NULL }, { "teacher", "blind_kd_frozen", NULL },
    "teacher.safetensors", 0, 1, NULL, 0, 0 },
  { "ce", { NULL }, { "ce", NULL }, NULL, 0, 0, NULL, 0, 0 },
  { "clean", { NULL }, { "clean", NULL }, NULL, 0, 0, NULL, 0, 0 },
  { "cl_filter", { NULL }, { "cl_folds", "cl_filter", NULL }, NULL, 0, 0, "out_of_sample.out", 0,
    1 },
  { "find_label_errors", { NULL }, { "cifar10-confident_learning", NULL }, NULL, 0, 0, NULL, 0, 0 },
  { "find_label_errors", { "set=all", NULL },
    { "mnist_confident_learning-confident_learning", "mnist_otsu-otsu",
      "mnist_loss_ranking-loss_ranking", "cifar10_confident_learning-confident_learning",
      "cifar10_otsu-otsu", "cifar10_loss_ranking-loss_ranking",
      "20news_confident_learning-confident_learning", "20news_otsu-otsu",
      "20news_loss_ranking-loss_ranking", "imdb_confident_learning-confident_learning",
      "imdb_otsu-otsu", "imdb_loss_ranking-loss_ranking", NULL },
    NULL, 0, 0, NULL, 0, 0 },
  { "kd", { NULL }, { "teacher", "kd", NULL }, "teacher.safetensors", 0, 1, NULL, 0, 0 },
  { "sd_pll", { NULL },
    { "features", "round0", "sd_round1", "sd_round2", "sd_round3", "pll_gce", "pll_soft", NULL },
    NULL, 0, 0, "train.probs", 1, 2, "arch = linear:F-C:nobias" },
  { "sd_pll", { "features=teacher", NULL },
    { "teacher", "features", "round0", "sd_round1", "sd_round2", "sd_round3", "pll_gce",
      "pll_soft", NULL },
    "teacher.safetensors", 0, 1, "features_train.features", 1, 2 },
  { "train_teacher", { NULL }, { "teacher", NULL }, NULL, 0, 0, NULL, 0, 0 },
  /* kdf.drawing(): the sizes a script reads from its data stay symbolic */
  { "universal_kd", { NULL }, { "probe", "teacher", "universal_kd", NULL }, "teacher.safetensors", 1,
    2, NULL, 0, 0, "arch = mlp:D-1024-1024-C" },
};

static gboolean
dir_is_empty (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  gboolean empty = d && !g_dir_read_name (d);
  if (d)
    g_dir_close (d);
  return empty;
}

static void
check_stages (const StageCase *c, const char *root, const char *tmp)
{
  g_autofree char *file = g_strdup_printf ("%s.lua", c->graph);
  g_autofree char *path = g_build_filename (root, "graphs", file, NULL);
  g_autofree char *cwd = g_build_filename (tmp, "cwd", NULL);
  g_mkdir (cwd, 0755);
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "dot");
  g_ptr_array_add (args, path);
  for (const char *const *s = c->sets; *s; s++) {
    g_ptr_array_add (args, (gpointer) "--set");
    g_ptr_array_add (args, (gpointer) *s);
  }
  g_ptr_array_add (args, NULL);
  gint64 t0 = g_get_monotonic_time ();
  Result r = run_env_cwd (cwd, NULL, (const char *const *) args->pdata);
  double seconds = (double) (g_get_monotonic_time () - t0) * 1e-6;
  g_ptr_array_free (args, TRUE);
  g_autofree char *what = g_strdup_printf ("kdflow dot graphs/%s.lua%s%s", c->graph,
                                           c->sets[0] ? " --set " : "", c->sets[0] ? c->sets[0] : "");
  if (r.status != 0)
    g_error ("%s: exit %d: %s", what, r.status, r.err);
  if (strstr (r.err, "stopped") || strstr (r.out, "INCOMPLETE"))
    g_error ("%s: the script stopped before its last stage: %s", what, r.err);
  /* nothing ran: no run directory, no checkpoint, no output file; and it is quick */
  if (!dir_is_empty (cwd))
    g_error ("%s wrote files into its working directory: something ran", what);
  g_remove (cwd);
  if (seconds > 10)
    g_error ("%s took %.1f s: something ran", what, seconds);
  g_test_message ("%s: %.3f s", what, seconds);
  /* the clusters, in order, and no others */
  guint n = 0;
  const char *at = r.out;
  for (; c->stages[n]; n++) {
    g_autofree char *head = g_strdup_printf ("  subgraph \"cluster_%s\" {\n    label=\"%s\\n",
                                             c->stages[n], c->stages[n]);
    const char *found = strstr (at, head);
    if (!found)
      g_error ("%s: no cluster '%s' (after the previous one)\n%s", what, c->stages[n], r.out);
    at = found + 1;
  }
  guint clusters = 0;
  for (const char *p = r.out; (p = strstr (p, "  subgraph \"cluster_")); p++)
    clusters++;
  if (clusters != n)
    g_error ("%s: %u clusters, expected %u", what, clusters, n);
  if (c->file) {
    /* fK [shape=note, ... label=".../teacher.safetensors"]; sW_nI -> fK [label="save"...];
     * fK -> sR_nJ [label="checkpoint"...] */
    g_autofree char *pattern = g_strdup_printf (
        "\n  (f[0-9]+) \\[shape=note[^\n]*label=\"[^\"]*%s\"\\];.*"
        "\n  s%d_n[0-9]+ -> \\1 \\[label=\"save\".*\n  \\1 -> s%d_n[0-9]+ \\[label=\"checkpoint\"",
        c->file, c->writer, c->reader);
    if (!g_regex_match_simple (pattern, r.out, G_REGEX_DOTALL, 0))
      g_error ("%s: no edge from stage %d through the file %s to stage %d\n%s", what, c->writer,
               c->file, c->reader, r.out);
  }
  if (c->carried) {
    g_autofree char *pattern = g_strdup_printf (
        "\n  s%d_n[0-9]+ -> s%d_n[0-9]+ \\[lhead=\"cluster_%s\", label=\"%s\"", c->from, c->to,
        c->stages[c->to], c->carried);
    if (!g_regex_match_simple (pattern, r.out, 0, 0))
      g_error ("%s: no edge carrying %s from stage %d to stage %d\n%s", what, c->carried, c->from,
               c->to, r.out);
  }
  if (c->shows && !strstr (r.out, c->shows))
    g_error ("%s: the drawing does not show '%s'", what, c->shows);
  /* and Graphviz draws it (it loses some edges between records, with an error) */
  if (*KDF_TEST_DOT) {
    g_autofree char *dotfile = g_build_filename (tmp, "stages.dot", NULL);
    g_assert_true (g_file_set_contents (dotfile, r.out, -1, NULL));
    g_autofree char *svg = NULL, *err = NULL;
    int status;
    const char *argv[] = { KDF_TEST_DOT, "-Tsvg", dotfile, NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                 &svg, &err, &status, NULL));
    if (!g_spawn_check_wait_status (status, NULL) || strstr (err, "Error"))
      g_error ("%s: dot -Tsvg failed: %s", what, err);
    for (guint i = 0; c->stages[i]; i++) {
      /* Graphviz writes '-' as &#45; */
      g_auto (GStrv) parts = g_strsplit (c->stages[i], "-", -1);
      g_autofree char *escaped = g_strjoinv ("&#45;", parts);
      if (!strstr (svg, escaped))
        g_error ("%s: the SVG has no '%s'", what, c->stages[i]);
    }
    g_remove (dotfile);
  }
  result_clear (&r);
}

static void
test_graphs_dot_stages (void)
{
  g_autofree char *root = g_path_get_dirname (srcdir);
  g_autofree char *graphs = g_build_filename (root, "graphs", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("kdf-stages-XXXXXX", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (stage_cases); i++)
    check_stages (&stage_cases[i], root, tmp);
  /* every pipeline has a case */
  GDir *dir = g_dir_open (graphs, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir))) {
    if (!g_str_has_suffix (name, ".lua"))
      continue;
    gboolean covered = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS (stage_cases) && !covered; i++) {
      g_autofree char *file = g_strdup_printf ("%s.lua", stage_cases[i].graph);
      covered = strcmp (file, name) == 0;
    }
    if (!covered)
      g_error ("graphs/%s has no case in stage_cases (test-cli.c)", name);
  }
  if (dir)
    g_dir_close (dir);
  g_remove (tmp);
}

/* A script whose own code cannot go on with a placeholder: the stages before it are
 * drawn, the drawing and stderr say where it stopped, exit 0; a graph error in a later
 * stage still fails. */
static void
test_dot_stopped (void)
{
  g_autofree char *dir = g_dir_make_tmp ("kdf-dotstop-XXXXXX", NULL);
  g_autofree char *stop = g_build_filename (dir, "stop.lua", NULL);
  g_assert_true (g_file_set_contents (stop,
      "local kdf = require 'kdflow'\n"
      "local g = kdf.graph { name = 'first' }\n"
      "local a = g:node('test_source', { n = 2, value = 4 })\n"
      "g:run()\n"
      "assert(a.x:value():sum() == 8, 'needs the real sum')\n"
      "local g2 = kdf.graph { name = 'second' }\n"
      "g2:node('test_source', { n = 2 })\n"
      "g2:run()\n", -1, NULL));
  Result r = run ((const char *[]){ "dot", stop, NULL });
  expect (&r, 0, (const char *[]){ "stopped under 'kdflow dot' after 1 stage", "needs the real sum",
                                   NULL });
  g_assert_nonnull (strstr (r.out, "subgraph \"cluster_first\""));
  g_assert_null (strstr (r.out, "cluster_second"));
  g_assert_nonnull (strstr (r.out, "INCOMPLETE: the script stopped"));
  result_clear (&r);
  g_autofree char *cyc = g_build_filename (dir, "cycle2.lua", NULL);
  g_assert_true (g_file_set_contents (cyc,
      "local kdf = require 'kdflow'\n"
      "local g = kdf.graph { name = 'first' }\n"
      "g:node('test_source', { n = 2 })\n"
      "g:run()\n"
      "local g2 = kdf.graph { name = 'second' }\n"
      "local src = g2:node('test_source', { name = 'src' })\n"
      "local a = g2:node('test_add', { name = 'alpha', a = src.x })\n"
      "local b = g2:node('test_add', { name = 'beta', a = a.y, b = src.x })\n"
      "g2:connect(b.y, a.b)\n"
      "g2:run()\n", -1, NULL));
  r = run ((const char *[]){ "dot", cyc, NULL });
  expect (&r, 2, (const char *[]){ "alpha -> beta -> alpha", NULL });
  g_assert_null (strstr (r.out, "subgraph"));
  result_clear (&r);
  g_remove (stop);
  g_remove (cyc);
  g_remove (dir);
}

static void
test_plain_lua (void)
{
  const char *lua = "/usr/bin/lua5.4";
  if (KDF_TEST_SANITIZED) {
    g_test_skip ("the sanitizer runtime cannot be loaded into the plain lua5.4 interpreter");
    return;
  }
  if (!g_file_test (lua, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("lua5.4 is not installed");
    return;
  }
  g_autofree char *cpath = g_strdup_printf ("%s/../engine/lua/?.so", g_getenv ("KDF_TEST_BUILDDIR"));
  const char *code = "local kdf = require 'kdflow'\n"
                     "local g = kdf.graph { name = 'plain' }\n"
                     "local a = g:node('test_source', { n = 2, value = 4 })\n"
                     "g:run { ticks = 1 }\n"
                     "print('lua5.4', a.x:value():sum())\n";
  const char *argv[] = { lua, "-e", code, NULL };
  char **envp = g_environ_setenv (g_get_environ (), "LUA_CPATH", cpath, TRUE);
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, NULL));
  g_strfreev (envp);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("lua5.4 failed: %s", err);
  g_assert_nonnull (strstr (out, "lua5.4\t8.0"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kdflow = g_getenv ("KDFLOW");
  srcdir = g_getenv ("KDF_TEST_SRCDIR");
  if (!kdflow || !srcdir) {
    g_printerr ("KDFLOW and KDF_TEST_SRCDIR must be set (meson test sets them)\n");
    return 1;
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
    g_autofree char *name = g_strdup_printf ("/cli/bad/%s", bad_cases[i].name);
    g_test_add_data_func (name, &bad_cases[i], test_bad_case);
  }
  g_test_add_func ("/cli/bad/missing-file", test_missing_file);
  g_test_add_func ("/cli/bad/usage", test_usage);
  g_test_add_func ("/cli/bad/plugin-path", test_bad_plugin_path);
  g_test_add_func ("/cli/api", test_api);
  g_test_add_func ("/cli/run-directory", test_run_directory);
  g_test_add_func ("/cli/threads-warning", test_threads_warning);
  g_test_add_func ("/cli/nodes-describe", test_nodes_describe);
  g_test_add_func ("/cli/dot", test_dot_command);
  g_test_add_func ("/cli/plain-lua", test_plain_lua);
  g_test_add_func ("/cli/graphs-dot", test_graphs_dot);
  g_test_add_func ("/cli/graphs-dot-stages", test_graphs_dot_stages);
  g_test_add_func ("/cli/dot-stopped", test_dot_stopped);
  /* a suite of its own, so that it runs after the others */
  g_test_add_func ("/cli/warnings/stderr", test_warnings_stderr);
  g_test_add_func ("/cli/warnings/quiet", test_warnings_quiet);
  return g_test_run ();
}
