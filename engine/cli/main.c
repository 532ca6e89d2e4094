/* The `kdflow` program: run a graph script, draw it, list and describe node kinds.
 *
 * Exit status: 0 success, 1 a node failed while running, 2 usage or graph error.
 * Progress goes to stderr; results to stdout and the run directory. */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <kdflow/dist.h>
#include <kdflow/kdflow.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lua/kdflow-lua.h"
#include "report.h"

static const char usage_text[] =
    "usage:\n"
    "  kdflow run GRAPH.lua [--set key=value]... [--threads N] [--out DIR [--replace]] [--quiet]\n"
    "             [--memory SIZE]\n"
    "  kdflow dot GRAPH.lua [--set key=value]... [-o FILE]\n"
    "  kdflow report RUN_DIR [RUN_DIR]... [--out DIR]\n"
    "  kdflow nodes\n"
    "  kdflow describe KIND\n"
    "  kdflow --version\n"
    "'kdflow COMMAND --help' explains a command.\n";

static const char env_text[] =
    "environment:\n"
    "  KDFLOW_PLUGIN_PATH   directories of node plugins (kdf-<kind>.so), ':'-separated, searched\n"
    "                       before the build tree and the install directory\n"
    "  KDFLOW_PLUGIN_QUIET  set: no warning for a plugin file that fails to load\n"
    "  KDFLOW_MEMORY        the memory budget (as --memory)\n"
    "  KDFLOW_THREADS       the cores a run uses unless --threads says (a number, or all);\n"
    "                       default: the cores the 1-minute load average leaves idle\n"
    "  KDFLOW_DOT_DIR       also write each run graph's drawing there\n"
    "  KDFLOW_DOT_PORTS     all | connected: the ports drawings show (default: every port,\n"
    "                       only the connected ones for graphs of more than 10 nodes)\n"
    "docs: docs/lua.md (graph scripts), docs/nodes.md (node kinds), docs/plugins.md (your own\n"
    "nodes), docs/results.md (what the pipelines measure); in the source tree or\n"
    "share/doc/kdflow once installed.\n";

static const char run_help[] =
    "usage: kdflow run GRAPH.lua [options]\n"
    "Runs a graph script (Lua): the graphs it builds, their ticks, their results.\n"
    "  --set KEY=VALUE  a flag the script reads with kdf.arg (repeatable), e.g.\n"
    "                   --set noise=symmetric --set rate=0.4 --set seed=2; a key no script\n"
    "                   reads is reported at the end\n"
    "  --threads N      worker threads, 1..1024 (default: the cores the machine's load\n"
    "                   leaves idle, at least 1; KDFLOW_THREADS)\n"
    "  --out DIR        the run directory (default runs/<script>-<date>-<time>): metrics.jsonl,\n"
    "                   summary.json, graph.dot and what the nodes write; a non-empty DIR is\n"
    "                   refused\n"
    "  --replace        with --out: empty an earlier run's directory first\n"
    "  --quiet          no progress and no warnings on stderr\n"
    "  --memory SIZE    budget for every size that comes from input (512M, 4G; default\n"
    "                   KDFLOW_MEMORY, else 3/4 of RAM)\n"
    "Exit status: 0 done, 1 the run failed or was interrupted, 2 bad input (script, data,\n"
    "flags), 130 a second Ctrl-C.\n";

static const char dot_help[] =
    "usage: kdflow dot GRAPH.lua [--set key=value]... [-o FILE]\n"
    "Draws the script as Graphviz dot (stdout, or FILE with -o) without running anything:\n"
    "each g:run checks its graph and draws it instead of running it, and the script goes\n"
    "on, so every stage is drawn: one cluster per graph (cluster_<graph>), a checkpoint\n"
    "one stage writes (save) and another reads as a file node between them, a value\n"
    "read from one graph and given to another as an edge. Values read after g:run are\n"
    "placeholders (zeros, symbolic sizes 8); kdf.drawing() is true; print is silent. A\n"
    "script that stops on a placeholder gets the stages before drawn and a note.\n"
    "Render with 'dot -Tsvg'. See docs/lua.md, \"Drawing a script\".\n"
    "  --set KEY=VALUE  as for run\n"
    "  -o FILE          write to FILE\n";

static const char nodes_help[] =
    "usage: kdflow nodes\n"
    "Lists the node kinds the plugin path provides, with a line on each.\n";

static const char describe_help[] =
    "usage: kdflow describe KIND\n"
    "A node kind's ports (with their types), params (with defaults and ranges) and summary.\n";

static const char *const commands[] = { "run", "dot", "report", "nodes", "describe", "help",
                                        "--version", "--help" };

static int
help (const char *text)
{
  fputs (text, stdout);
  fputs (env_text, stdout);
  return 0;
}

static int
usage_error (const char *fmt, const char *arg)
{
  fprintf (stderr, "kdflow: ");
  fprintf (stderr, fmt, arg);
  fprintf (stderr, "\n%s", usage_text);
  return 2;
}

static KdfRegistry *
registry_or_report (void)
{
  g_autoptr (GError) error = NULL;
  KdfRegistry *reg = kdf_registry_get_default (&error);
  if (!reg)
    fprintf (stderr, "kdflow: %s\n", error->message);
  return reg;
}

static int
cmd_nodes (void)
{
  KdfRegistry *reg = registry_or_report ();
  if (!reg)
    return 2;
  g_autoptr (GPtrArray) names = kdf_registry_list (reg);
  int width = 0;
  for (guint i = 0; i < names->len; i++)
    width = MAX (width, (int) strlen (names->pdata[i]));
  for (guint i = 0; i < names->len; i++) {
    const KdfNodeClass *k = kdf_registry_lookup (reg, names->pdata[i]);
    printf ("%-*s  %s\n", width, (const char *) names->pdata[i], kdf_node_class_get_summary (k));
  }
  if (names->len == 0) {
    const char *const *path = kdf_registry_search_path (reg);
    fprintf (stderr, "kdflow: no node kinds found; searched:");
    for (; *path; path++)
      fprintf (stderr, " %s", *path);
    fprintf (stderr, "\n");
  }
  return 0;
}

static int
cmd_describe (const char *kind)
{
  KdfRegistry *reg = registry_or_report ();
  if (!reg)
    return 2;
  const char *skipped = kdf_registry_skipped_for (reg, kind);
  if (skipped) {
    fprintf (stderr, "kdflow: node kind '%s' comes from a plugin that was skipped: %s\n", kind,
             skipped);
    return 2;
  }
  const KdfNodeClass *k = kdf_registry_lookup (reg, kind);
  if (!k) {
    g_autofree char *hint = kdf_registry_suggest (reg, kind);
    fprintf (stderr, "kdflow: unknown node kind '%s'%s; 'kdflow nodes' lists the kinds found\n",
             kind, hint);
    return 2;
  }
  g_autofree char *text = kdf_node_class_describe (k, kdf_registry_origin (reg, kind));
  fputs (text, stdout);
  return 0;
}

/* The first Ctrl-C stops the run cleanly within 0.2 s: long kernels check between
 * mini-batches or tiles, Lua loops through a debug hook (the run directory keeps every
 * finished tick and says what happened; exit status 1). A second one exits at once
 * with status 130. */
static volatile sig_atomic_t interrupts;

static void
on_interrupt (int sig)
{
  (void) sig;
  if (interrupts++) {
    static const char msg[] = "\nkdflow: interrupted again, exiting\n";
    ssize_t w = write (2, msg, sizeof msg - 1);
    (void) w;
    _exit (130);
  }
  static const char msg[] = "\nkdflow: interrupted, stopping (Ctrl-C again to exit at once)\n";
  ssize_t w = write (2, msg, sizeof msg - 1);
  (void) w;
  kdf_interrupt ();
}

static int
message_handler (lua_State *L)
{
  /* kdflow error objects and the dot sentinel pass through untouched */
  if (!lua_isstring (L, 1))
    return 1;
  if (g_getenv ("KDFLOW_DEBUG"))
    luaL_traceback (L, L, lua_tostring (L, 1), 1);
  return 1;
}

/* The script's name without directory and .lua: the title of its drawing. */
static char *
script_title (const char *script)
{
  char *base = g_path_get_basename (script);
  if (g_str_has_suffix (base, ".lua"))
    base[strlen (base) - 4] = '\0';
  return base;
}

/* `kdflow dot`: every stage the script built, to DOT_PATH or stdout. STOPPED: the
 * error that ended the script early, or NULL. */
static int
dot_write (lua_State *L, const char *script, const char *dot_path, const char *stopped)
{
  g_autofree char *title = script_title (script);
  g_autofree char *text = kdf_lua_dot_text (L, title, stopped);
  if (!dot_path) {
    fputs (text, stdout);
    return 0;
  }
  g_autoptr (GError) error = NULL;
  if (!g_file_set_contents (dot_path, text, -1, &error)) {
    fprintf (stderr, "kdflow: cannot write %s: %s\n", dot_path, error->message);
    return 2;
  }
  return 0;
}

/* Removes DIR and everything under it (a rank's private run directory). */
static void
remove_tree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name (d))) {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        remove_tree (path);
      else
        g_remove (path);
    }
    g_dir_close (d);
  }
  g_rmdir (dir);
}

/* A rank's private directory is $TMPDIR/kdflow-rank-HOST-PID-XXXXXX. One whose process
 * ended without removing it (SIGKILL) is removed by the next rank that starts on the same
 * host: its PID no longer runs (another host's ranks, sharing $TMPDIR, are left alone). */
static char *
rank_dir_prefix (void)
{
  char host[256] = "";
  if (gethostname (host, sizeof host - 1) != 0 || !*host)
    g_strlcpy (host, "host", sizeof host);
  for (char *c = host; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '.')
      *c = '_';
  return g_strdup_printf ("kdflow-rank-%s-", host);
}

static void
remove_stale_rank_dirs (const char *prefix)
{
  const char *tmp = g_get_tmp_dir ();
  GDir *d = g_dir_open (tmp, 0, NULL);
  if (!d)
    return;
  const char *name;
  while ((name = g_dir_read_name (d))) {
    if (!g_str_has_prefix (name, prefix))
      continue;
    char *end = NULL;
    const long pid = strtol (name + strlen (prefix), &end, 10);
    if (pid <= 0 || !end || *end != '-' || pid == (long) getpid ())
      continue;
    if (kill ((pid_t) pid, 0) == 0 || errno != ESRCH)
      continue; /* running, or not ours to ask about */
    g_autofree char *path = g_build_filename (tmp, name, NULL);
    remove_tree (path);
  }
  g_dir_close (d);
}

static int
cmd_script (gboolean dot_mode, const char *script, char **sets, int threads, const char *out,
            gboolean replace, gboolean quiet, const char *dot_path, const char *command)
{
  if (!g_file_test (script, G_FILE_TEST_EXISTS)) {
    fprintf (stderr, "kdflow: graph file '%s' does not exist\n", script);
    return 2;
  }
  if (!g_file_test (script, G_FILE_TEST_IS_REGULAR)) {
    fprintf (stderr, "kdflow: graph file '%s' is not a regular file\n", script);
    return 2;
  }
  g_autofree char *run_dir = NULL;
  if (!dot_mode) {
    if (out)
      run_dir = g_strdup (out);
    else {
      g_autofree char *base = g_path_get_basename (script);
      if (g_str_has_suffix (base, ".lua"))
        base[strlen (base) - 4] = '\0';
      g_autoptr (GDateTime) now = g_date_time_new_now_local ();
      g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
      run_dir = g_strdup_printf ("runs/%s-%s", base, stamp);
      /* two runs in one second: a fresh directory each */
      for (int k = 2; g_file_test (run_dir, G_FILE_TEST_EXISTS); k++) {
        g_free (run_dir);
        run_dir = g_strdup_printf ("runs/%s-%s-%d", base, stamp, k);
      }
    }
  }
  /* data-parallel ranks (mpirun): rank 0 owns the run directory, the others run the
   * same script silently into a private directory removed at the end */
  g_autofree char *rank_tmp = NULL;
  if (!dot_mode && kdf_dist_rank () > 0) {
    g_autoptr (GError) tmp_error = NULL;
    g_autofree char *prefix = rank_dir_prefix ();
    remove_stale_rank_dirs (prefix);
    g_autofree char *tmpl = g_strdup_printf ("%s%ld-XXXXXX", prefix, (long) getpid ());
    rank_tmp = g_dir_make_tmp (tmpl, &tmp_error);
    if (!rank_tmp) {
      fprintf (stderr, "kdflow: rank %d: %s\n", kdf_dist_rank (), tmp_error->message);
      return 2;
    }
    g_free (run_dir);
    run_dir = g_build_filename (rank_tmp, "run", NULL);
    quiet = TRUE;
    replace = FALSE;
  }
  const char *env_threads = g_getenv ("KDFLOW_THREADS");
  if (threads == 0 && !(env_threads && *env_threads) && !quiet && !dot_mode) {
    /* the default follows the machine's load: say so when it is not every core */
    double load = -1.0;
    const int t = kdf_threads_default (&load);
    const int cores = (int) g_get_num_processors ();
    if (t < cores && load >= 0.0)
      fprintf (stderr, "kdflow: the machine is busy (load %.1f on %d cores): %d thread%s "
               "(--threads N or KDFLOW_THREADS to choose)\n", load, cores, t, t == 1 ? "" : "s");
  } else if (!quiet && !dot_mode) {
    /* a count chosen by hand beyond the idle cores: BLIS's threads spin at each barrier
     * for one the kernel has descheduled (docs/results.md "A busy machine") */
    const int t = threads > 0 ? threads : kdf_threads_default (NULL);
    const double load = kdf_machine_load ();
    const int cores = (int) g_get_num_processors ();
    const int idle = kdf_threads_idle (load, cores, kdf_dist_local_size ());
    if (t > 1 && load >= 0.0 && t > idle)
      fprintf (stderr, "kdflow: warning: %d threads, %d idle core%s (load %.1f on %d cores): "
               "threads that wait for one another can make each step, and Ctrl-C, several "
               "times slower; %s%d or leave it to the default\n", t, idle, idle == 1 ? "" : "s",
               load, cores, threads > 0 ? "--threads " : "KDFLOW_THREADS=", idle);
  }
  lua_State *L = kdf_lua_newstate ();
  luaL_openlibs (L);
  luaL_getsubtable (L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction (L, luaopen_kdflow);
  lua_setfield (L, -2, "kdflow");
  lua_pop (L, 1);
  KdfLuaConfig config = { threads, run_dir, quiet, dot_mode, command, replace };
  kdf_lua_configure (L, &config);
  kdf_lua_set_args (L, sets);

  int status = 0;
  g_autofree char *failure = NULL;
  /* the run directory is fresh (or --replace emptied an earlier run's) and its
   * summary.json says "running" before the script starts */
  g_autoptr (GError) dir_error = NULL;
  if (run_dir && !kdf_lua_claim_run_dir (L, run_dir, &dir_error)) {
    fprintf (stderr, "kdflow: %s\n", dir_error->message);
    kdf_lua_closestate (L);
    return 2;
  }
  if (!dot_mode) {
    struct sigaction sa = { 0 };
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESTART;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    kdf_lua_install_interrupt_hook (L);
  }
  lua_pushcfunction (L, message_handler);
  int rc = luaL_loadfile (L, script);
  if (rc != LUA_OK) {
    fprintf (stderr, "kdflow: %s\n", lua_tostring (L, -1));
    status = 2;
  } else if (lua_pcall (L, 0, 0, 1) != LUA_OK) {
    failure = kdf_lua_error_message (L, -1);
    if (dot_mode && kdf_lua_dot_n_stages (L) > 0 && !kdf_lua_is_kdflow_error (L, -1)) {
      /* the script's own code stopped, e.g. on a placeholder value it could not use:
       * draw the stages so far and say where the drawing ends */
      fprintf (stderr, "kdflow: warning: %s stopped under 'kdflow dot' after %u stage%s: %s; "
               "the drawing shows the stages before it\n", script, kdf_lua_dot_n_stages (L),
               kdf_lua_dot_n_stages (L) == 1 ? "" : "s", failure);
      status = dot_write (L, script, dot_path, failure);
    } else {
      status = kdf_lua_error_status (L, -1);
      fprintf (stderr, "kdflow: %s\n", failure);
    }
  } else if (dot_mode && kdf_lua_dot_n_stages (L) > 0) {
    status = dot_write (L, script, dot_path, NULL);
  } else if (dot_mode) {
    /* the script never ran a graph: draw the last one it built */
    KdfGraph *g = kdf_lua_last_graph (L);
    if (!g) {
      fprintf (stderr, "kdflow: %s built no graph\n", script);
      status = 2;
    } else {
      g_autoptr (GError) error = NULL;
      if (!kdf_graph_prepare (g, &error)) {
        fprintf (stderr, "kdflow: %s\n", error->message);
        status = 2;
      } else if (dot_path) {
        if (!kdf_graph_write_dot (g, dot_path, &error)) {
          fprintf (stderr, "kdflow: %s\n", error->message);
          status = 2;
        }
      } else {
        g_autofree char *dot = kdf_graph_to_dot (g);
        fputs (dot, stdout);
      }
    }
  }
  /* a script that ran several graphs: all of them in one drawing, beside each graph's */
  if (!dot_mode && run_dir && kdf_lua_dot_n_stages (L) > 1 &&
      g_file_test (run_dir, G_FILE_TEST_IS_DIR)) {
    g_autofree char *title = script_title (script);
    g_autofree char *text = kdf_lua_dot_text (L, title, NULL);
    g_autofree char *path = g_build_filename (run_dir, "stages.dot", NULL);
    g_autoptr (GError) error = NULL;
    if (!g_file_set_contents (path, text, -1, &error))
      fprintf (stderr, "kdflow: warning: cannot write %s: %s\n", path, error->message);
    /* and beside the graphs' drawings KDFLOW_DOT_DIR collects, as SCRIPT.stages.dot */
    const char *dot_dir = g_getenv ("KDFLOW_DOT_DIR");
    if (dot_dir && *dot_dir && kdf_dist_rank () == 0) {
      g_autofree char *base = g_strdup_printf ("%s.stages.dot", title);
      g_autofree char *copy = g_build_filename (dot_dir, base, NULL);
      g_autoptr (GError) copy_error = NULL;
      g_mkdir_with_parents (dot_dir, 0755);
      if (!g_file_set_contents (copy, text, -1, &copy_error))
        fprintf (stderr, "kdflow: warning: KDFLOW_DOT_DIR: %s\n", copy_error->message);
    }
  }
  if (status == 0 && !dot_mode && interrupts > 0) {
    /* Ctrl-C came after the last cancellable step: the work is done, but the user
     * asked to stop and was told "stopping", so the run does not claim success */
    failure = g_strdup ("interrupted (after the script's last step had finished)");
    fprintf (stderr, "kdflow: %s\n", failure);
    status = 1;
  }
  if (status == 0) {
    g_auto (GStrv) unread = kdf_lua_unread_args (L);
    for (char **k = unread; *k; k++) {
      char *tab = strchr (*k, '\t');
      const char *hint = tab ? tab + 1 : "";
      if (tab)
        *tab = '\0';
      fprintf (stderr, "kdflow: warning: --set %s was never read by %s%s\n", *k, script, hint);
    }
  }
  /* summary.json: the script's outcome, whole; a write that fails fails the run */
  if (!dot_mode && !kdf_lua_end_run_dirs (L, status, failure, &dir_error)) {
    fprintf (stderr, "kdflow: %s\n", dir_error->message);
    if (status == 0)
      status = 1;
  }
  kdf_lua_closestate (L);
  if (!dot_mode && !quiet && run_dir && g_file_test (run_dir, G_FILE_TEST_IS_DIR))
    fprintf (stderr, "kdflow: run directory: %s\n", run_dir);
  if (rank_tmp)
    remove_tree (rank_tmp);
  return status;
}

static int real_main (int argc, char **argv);

int
main (int argc, char **argv)
{
  kdf_init ();
  /* under mpirun: one rank of a data-parallel run (kdflow/dist.h) */
  g_autoptr (GError) dist_error = NULL;
  if (!kdf_dist_init (&argc, &argv, &dist_error)) {
    fprintf (stderr, "kdflow: %s\n", dist_error->message);
    return 2;
  }
  if (kdf_dist_rank () > 0 && !freopen ("/dev/null", "w", stdout))
    fprintf (stderr, "kdflow: rank %d: cannot silence stdout\n", kdf_dist_rank ());
  int status = real_main (argc, argv);
  fflush (stdout);
  /* A rank that failed ends the job: the others may be waiting for it in a collective.
   * It exits without MPI_Finalize, which mpirun takes as the job's failure: it ends the
   * other ranks and reports this rank's exit status as its own (MPI_Abort would do the
   * same, but when every rank fails at once — a bad --set — Open MPI's abort report
   * itself fails with an ORTE_ERROR_LOG line). */
  if (status != 0 && kdf_dist_active ()) {
    if (kdf_dist_rank () > 0)
      fprintf (stderr, "kdflow: rank %d of %d failed (exit %d): ending the job\n",
               kdf_dist_rank (), kdf_dist_size (), status);
    _exit (status);
  }
  kdf_dist_finalize ();
  return status;
}

static int
real_main (int argc, char **argv)
{
  if (argc < 2)
    return usage_error ("%s", "no command given");
  const char *cmd = argv[1];
  int status;
  if (strcmp (cmd, "--version") == 0) {
    printf ("kdflow %s (node ABI %s)\n", KDF_VERSION, kdf_node_abi ());
    return 0;
  }
  if (strcmp (cmd, "--help") == 0 || strcmp (cmd, "-h") == 0 || strcmp (cmd, "help") == 0) {
    if (argc >= 3 && strcmp (cmd, "help") == 0) {
      const char *on = argv[2];
      if (strcmp (on, "run") == 0)
        return help (run_help);
      if (strcmp (on, "dot") == 0)
        return help (dot_help);
      if (strcmp (on, "nodes") == 0)
        return help (nodes_help);
      if (strcmp (on, "report") == 0)
        return help (kdf_cli_report_help ());
      if (strcmp (on, "describe") == 0)
        return help (describe_help);
    }
    return help (usage_text);
  }
  gboolean sub_help = argc == 3 && (strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0);
  if (sub_help && strcmp (cmd, "nodes") == 0)
    return help (nodes_help);
  if (sub_help && strcmp (cmd, "describe") == 0)
    return help (describe_help);
  if (strcmp (cmd, "report") == 0) {
    status = kdf_cli_report (argc - 2, argv + 2);
  } else if (strcmp (cmd, "nodes") == 0) {
    if (argc != 2)
      return usage_error ("'nodes' takes no arguments, got '%s'", argv[2]);
    status = cmd_nodes ();
  } else if (strcmp (cmd, "describe") == 0) {
    if (argc != 3)
      return usage_error ("%s", "'describe' takes one node kind");
    status = cmd_describe (argv[2]);
  } else if (strcmp (cmd, "run") == 0 || strcmp (cmd, "dot") == 0) {
    gboolean dot_mode = cmd[0] == 'd';
    const char *script = NULL, *out = NULL, *dot_path = NULL;
    gboolean quiet = FALSE, replace = FALSE;
    int threads = 0;
    GPtrArray *sets = g_ptr_array_new ();
    status = -1;
    for (int i = 2; i < argc && status < 0; i++) {
      const char *a = argv[i];
      gboolean has_value = i + 1 < argc;
      if (strcmp (a, "--set") == 0 || strcmp (a, "-s") == 0) {
        if (!has_value || !strchr (argv[i + 1], '=') || argv[i + 1][0] == '=')
          status = usage_error ("--set needs key=value, got '%s'", has_value ? argv[i + 1] : "");
        else
          g_ptr_array_add (sets, argv[++i]);
      } else if (g_str_has_prefix (a, "--set=")) {
        if (!strchr (a + 6, '=') || a[6] == '=')
          status = usage_error ("--set needs key=value, got '%s'", a + 6);
        else
          g_ptr_array_add (sets, (char *) a + 6);
      } else if (!dot_mode && strcmp (a, "--threads") == 0) {
        char *end = NULL;
        long t = has_value ? strtol (argv[i + 1], &end, 10) : 0;
        if (!has_value || *end || t < 1 || t > 1024)
          status = usage_error ("--threads needs a number from 1 to 1024, got '%s'",
                                has_value ? argv[i + 1] : "");
        threads = (int) t;
        i++;
      } else if (strcmp (a, "--memory") == 0) {
        guint64 bytes = 0;
        g_autoptr (GError) merr = NULL;
        if (!has_value)
          status = usage_error ("%s", "--memory needs a size (like 512M or 4G)");
        else if (!kdf_memory_parse_size (argv[i + 1], &bytes, &merr))
          status = usage_error ("--memory: %s", merr->message);
        else
          kdf_memory_set_budget (bytes);
        i++;
      } else if (!dot_mode && strcmp (a, "--out") == 0) {
        if (!has_value)
          status = usage_error ("%s", "--out needs a directory");
        out = has_value ? argv[++i] : NULL;
      } else if (!dot_mode && strcmp (a, "--quiet") == 0) {
        quiet = TRUE;
      } else if (!dot_mode && strcmp (a, "--replace") == 0) {
        replace = TRUE;
      } else if (dot_mode && strcmp (a, "-o") == 0) {
        if (!has_value)
          status = usage_error ("%s", "-o needs a file");
        dot_path = has_value ? argv[++i] : NULL;
      } else if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
        status = help (dot_mode ? dot_help : run_help);
      } else if (a[0] == '-' && a[1]) {
        static const char *const run_opts[] = { "--set", "--threads", "--out", "--replace",
                                                 "--quiet", "--memory", "--help" };
        static const char *const dot_opts[] = { "--set", "-o", "--memory", "--help" };
        g_autofree char *hint = dot_mode ? kdf_suggest (a, dot_opts, G_N_ELEMENTS (dot_opts))
                                         : kdf_suggest (a, run_opts, G_N_ELEMENTS (run_opts));
        g_autofree char *what = g_strdup_printf ("unknown option '%s' for '%s'%s", a, cmd, hint);
        status = usage_error ("%s", what);
      } else if (!script) {
        script = a;
      } else {
        status = usage_error ("only one graph script, got another: '%s'", a);
      }
    }
    g_ptr_array_add (sets, NULL);
    if (status < 0) {
      if (!script)
        status = usage_error ("'%s' needs a graph script (GRAPH.lua)", cmd);
      else {
        g_autofree char *command = g_strjoinv (" ", argv);
        status = cmd_script (dot_mode, script, (char **) sets->pdata, threads, out, replace, quiet,
                             dot_path, command);
      }
    }
    g_ptr_array_free (sets, TRUE);
  } else {
    g_autofree char *hint = kdf_suggest (cmd, commands, G_N_ELEMENTS (commands));
    g_autofree char *what = g_strdup_printf ("unknown command '%s'%s", cmd, hint);
    status = usage_error ("%s", what);
  }
  kdf_shutdown ();
  return status;
}
