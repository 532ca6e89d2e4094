/* The scheduler: ticks, change-driven execution, a GThreadPool ready queue with a
 * core budget, the first error, and the run directory.
 *
 * Only the control thread (the caller of kdf_graph_run) touches the graph's
 * structure, params, schedules and files. Workers run one node each and post that
 * node back on a GAsyncQueue; they never wait on each other. */
#include "config.h"

#include <math.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include <kdflow/dist.h>

#include "graph-private.h"

typedef struct {
  KdfGraph *g;
  const KdfRunOptions *opts;
  GAsyncQueue *done;
  GThreadPool *pool;
  int cores;
  int free_cores;
  gboolean one_at_a_time; /* data-parallel ranks: nodes in one order, on this thread */
  GQueue ready;
  guint in_flight;
  guint finished; /* nodes done (run or skipped) this tick */
  GError *error;
  guint tick, end_tick;
  gint64 t_start;
  gint64 t_last_progress;
  JsonObject *last_metrics; /* "node.key" → last value, for summary.json */
} Run;

/* Nodes that ran faster than this last time run on the control thread: a hand-off
 * to a worker and back costs a few microseconds, more than running them. */
#define INLINE_BELOW_SECONDS 5e-5

static const KdfValue *
edge_value (KdfEdge *e)
{
  return e->delay ? &e->delivered : &e->src->outputs[e->out].value;
}

static gboolean
should_run (KdfNode *n)
{
  if (!n->ever_ran || (n->klass->flags & KDF_NODE_EVERY_TICK))
    return TRUE;
  for (guint i = 0; i < n->n_params; i++)
    if (n->params[i].changed)
      return TRUE;
  for (guint k = 0; k < n->n_inputs; k++)
    for (guint j = 0; j < n->inputs[k].edges->len; j++) {
      KdfEdge *e = n->inputs[k].edges->pdata[j];
      if (edge_value (e)->version != e->seen)
        return TRUE;
    }
  return FALSE;
}

static void
prefix_error (GError *error, KdfNode *n, guint tick)
{
  g_autofree char *where = kdf_node_where (n);
  g_autofree char *origin = n->origin ? g_strdup_printf (" [%s]", n->origin) : g_strdup ("");
  char *msg;
  if (g_str_has_prefix (error->message, where)) /* the run-time checks say where already */
    msg = g_strdup_printf ("%s%s%s", where, origin, error->message + strlen (where));
  else
    msg = g_strdup_printf ("%s%s, tick %u: %s", where, origin, tick, error->message);
  g_free (error->message);
  error->message = msg;
}

/* Runs one node; on a worker or on the control thread. Touches only the node, its
 * inputs' producers' outputs (finished), and atomics. */
static void
run_node (Run *r, KdfNode *n)
{
  KdfGraph *g = r->g;
  gint64 t0 = g_get_monotonic_time ();
  GError *error = NULL;
  kdf_ctx_reset (&n->ctx, n, r->tick, r->end_tick, n->budget);
  for (guint k = 0; k < n->n_outputs; k++)
    n->outputs[k].set_this_run = FALSE;
  g_atomic_int_set (&n->progress_permille, -1);
  KdfNode *outer = kdf_cancel_set_current_node (n);

  gboolean ok = TRUE;
  if (g_cancellable_is_cancelled (g->cancellable)) {
    g_set_error (&error, KDF_ERROR, KDF_ERROR_CANCELLED, "cancelled");
    ok = FALSE;
  }
  if (ok)
    ok = kdf_node_bind_inputs (n, &error);
  if (ok)
    kdf_node_fill_params (n);
  if (ok && !n->initialized) {
    if (n->klass->init)
      ok = n->klass->init (&n->ctx, &n->state, &error);
    n->initialized = ok;
    if (!ok && n->state && n->klass->finalize) {
      /* a failed init hands back whatever it stored; the next run tries again */
      n->klass->finalize (n->state);
      n->state = NULL;
    }
  }
  if (ok) {
    ok = n->klass->run (&n->ctx, n->state, &error);
    if (!ok && !error)
      g_set_error (&error, KDF_ERROR, KDF_ERROR_NODE, "run failed without saying why");
  }
  if (ok)
    ok = kdf_node_check_outputs (n, &error);
  if (ok) {
    for (guint k = 0; k < n->n_inputs; k++)
      for (guint j = 0; j < n->inputs[k].edges->len; j++) {
        KdfEdge *e = n->inputs[k].edges->pdata[j];
        e->seen = edge_value (e)->version;
      }
    n->ever_ran = TRUE;
  } else {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      /* a node that honoured the cancellable: one code for all cancellations */
      error->domain = KDF_ERROR;
      error->code = KDF_ERROR_CANCELLED;
    }
    prefix_error (error, n, r->tick);
    n->error = error;
  }
  kdf_cancel_set_current_node (outer);
  kdf_node_release_inputs (n);
  double dt = (double) (g_get_monotonic_time () - t0) * 1e-6;
  n->stats.calls++;
  n->stats.seconds += dt;
  n->stats.last_seconds = dt;
  n->stats.last_threads = n->budget;
  n->ran_this_tick = TRUE;
}

static void
worker (gpointer data, gpointer user_data)
{
  Run *r = user_data;
  KdfNode *n = data;
  run_node (r, n);
  g_async_queue_push (r->done, n);
}

/* A node is done (ran, skipped or failed): release its cores, record the first
 * error, and make its successors ready. */
/* A node's warnings, on the control thread: to the application, or stderr. */
static void
flush_warnings (Run *r, KdfNode *n)
{
  for (guint i = 0; i < n->warnings->len; i++) {
    KdfWarning *w = n->warnings->pdata[i];
    g_autofree char *where = kdf_node_where (n);
    char *msg = g_strdup_printf ("%s, tick %u: %s", where, w->tick, w->message);
    if (r->opts->warning)
      r->opts->warning (msg, r->opts->user_data);
    else if (!r->opts->quiet)
      g_printerr ("warning: %s\n", msg);
    g_ptr_array_add (r->g->warnings, msg);
    g_free (w->message);
    g_free (w);
  }
  g_ptr_array_set_size (n->warnings, 0);
}

static void
complete (Run *r, KdfNode *n, gboolean was_dispatched)
{
  flush_warnings (r, n);
  if (was_dispatched) {
    r->free_cores += n->budget;
    r->in_flight--;
  }
  r->finished++;
  if (n->error) {
    if (!r->error) {
      r->error = n->error;
      n->error = NULL;
      g_cancellable_cancel (r->g->cancellable);
    } else {
      g_clear_error (&n->error);
    }
  }
  for (guint k = 0; k < n->out_edges->len; k++) {
    KdfEdge *e = n->out_edges->pdata[k];
    if (--e->dst->pending == 0)
      g_queue_push_tail (&r->ready, e->dst);
  }
}

static void
report_progress (Run *r, KdfNode *last, gboolean tick_done)
{
  if (!r->opts->progress)
    return;
  KdfProgress p = { 0 };
  p.tick = r->tick;
  p.ticks_total = r->end_tick;
  p.nodes_done = r->finished;
  p.nodes_total = r->g->nodes->len;
  p.node = last ? last->name : NULL;
  p.node_fraction = -1;
  /* the busiest reporting node in flight */
  for (guint i = 0; i < r->g->nodes->len && !tick_done; i++) {
    KdfNode *n = r->g->nodes->pdata[i];
    int pm = g_atomic_int_get (&n->progress_permille);
    if (pm >= 0 && !n->ran_this_tick) {
      p.node = n->name;
      p.node_fraction = pm / 1000.0;
    }
  }
  p.elapsed = (double) (g_get_monotonic_time () - r->t_start) * 1e-6;
  p.tick_done = tick_done;
  r->opts->progress (&p, r->opts->user_data);
  r->t_last_progress = g_get_monotonic_time ();
}

static void
dispatch_ready (Run *r)
{
  while (!g_queue_is_empty (&r->ready)) {
    KdfNode *n = g_queue_peek_head (&r->ready);
    if (r->error || !should_run (n)) {
      g_queue_pop_head (&r->ready);
      complete (r, n, FALSE);
      continue;
    }
    gboolean control = (n->klass->flags & KDF_NODE_CONTROL_THREAD) != 0;
    if (!control && r->free_cores < 1)
      return; /* wait for cores */
    g_queue_pop_head (&r->ready);
    for (guint i = 0; i < n->n_params; i++)
      n->params[i].changed = FALSE;
    if (control) {
      n->budget = 1;
      run_node (r, n);
      complete (r, n, FALSE);
      continue;
    }
    /* Split the free cores between this node and the others ready now (all of them to
     * the one node that runs when ranks call collectives in the same order). */
    guint waiting = r->one_at_a_time ? 1 : g_queue_get_length (&r->ready) + 1;
    n->budget = MAX (1, r->free_cores / (int) waiting);
    r->free_cores -= n->budget;
    r->in_flight++;
    if (r->cores == 1 || r->one_at_a_time ||
        (n->ever_ran && n->stats.last_seconds < INLINE_BELOW_SECONDS)) {
      run_node (r, n);
      complete (r, n, TRUE);
    } else {
      g_thread_pool_push (r->pool, n, NULL);
    }
  }
}

static gboolean
evaluate_schedules (Run *r, GError **error)
{
  for (guint i = 0; i < r->g->nodes->len; i++) {
    KdfNode *n = r->g->nodes->pdata[i];
    for (guint k = 0; k < n->n_params; k++) {
      KdfParamSlot *p = &n->params[k];
      if (!p->func)
        continue;
      double v = 0;
      GError *local = NULL;
      if (!p->func (p->func_data, r->tick, &v, &local)) {
        g_autofree char *where = kdf_node_where (n);
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s, tick %u: schedule for param '%s': %s",
                     where, r->tick, p->spec->name, local ? local->message : "failed");
        g_clear_error (&local);
        return FALSE;
      }
      g_autofree char *how = g_strdup_printf (" (schedule %s at tick %u)", p->func_desc, r->tick);
      if (!kdf_param_validate_number (n, p, v, how, error))
        return FALSE;
      if (!n->ever_ran || p->num != v)
        p->changed = TRUE;
      p->num = v;
    }
  }
  return TRUE;
}

static void
deliver_delayed (KdfGraph *g)
{
  for (guint i = 0; i < g->edges->len; i++) {
    KdfEdge *e = g->edges->pdata[i];
    if (!e->delay)
      continue;
    KdfValue *head = g_queue_peek_head (&e->history);
    kdf_value_set (&e->delivered,
                   g_queue_get_length (&e->history) == e->delay ? head : &e->initial);
  }
}

static void
record_delayed (KdfGraph *g)
{
  for (guint i = 0; i < g->edges->len; i++) {
    KdfEdge *e = g->edges->pdata[i];
    if (!e->delay)
      continue;
    KdfValue *snap = g_new0 (KdfValue, 1);
    kdf_value_set (snap, &e->src->outputs[e->out].value);
    g_queue_push_tail (&e->history, snap);
    while (g_queue_get_length (&e->history) > e->delay) {
      KdfValue *old = g_queue_pop_head (&e->history);
      kdf_value_clear (old);
      g_free (old);
    }
  }
}

/* ---- run ---------------------------------------------------------------------- */

static int default_threads;
static double default_load = -1.0;

double
kdf_machine_load (void)
{
  g_autofree char *text = NULL;
  double l1 = -1.0;
  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL) || sscanf (text, "%lf", &l1) != 1 ||
      !(l1 >= 0.0))
    return -1.0;
  return l1;
}

int
kdf_threads_idle (double load, int cores, int local_ranks)
{
  cores = MAX (cores, 1);
  int t = cores;
  if (load >= 0.0)
    t = (int) CLAMP (cores - floor (load + 0.5), 1.0, (double) cores);
  return MAX (1, t / MAX (local_ranks, 1));
}

int
kdf_threads_default (double *load)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    const int cores = (int) MAX (g_get_num_processors (), 1);
    int t = cores;
    const int ranks_here = kdf_dist_local_size ();
    const char *env = g_getenv ("KDFLOW_THREADS");
    char *end = NULL;
    long v = env ? strtol (env, &end, 10) : 0;
    if (env && strcmp (env, "all") == 0) {
      t = cores;
    } else if (env && *env && end && !*end && v >= 1 && v <= 1024) {
      t = (int) v;
    } else {
      if (env && *env)
        g_printerr ("kdflow: warning: KDFLOW_THREADS='%s' is neither a number from 1 to 1024 "
                    "nor 'all'; ignored\n", env);
      default_load = kdf_machine_load ();
      /* ranks of a data-parallel job on this machine share its cores */
      t = kdf_threads_idle (default_load, cores, ranks_here);
    }
    default_threads = t;
    g_once_init_leave (&once, 1);
  }
  if (load)
    *load = default_load;
  return default_threads;
}

gboolean
kdf_graph_run (KdfGraph *g, const KdfRunOptions *opts, GError **error)
{
  KdfRunOptions defaults = { 0 };
  if (!opts)
    opts = &defaults;
  /* a node that runs its own graph would recurse until the stack overflows */
  if (!kdf_graph_check_idle (g, "run", error))
    return FALSE;
  if (!kdf_graph_prepare (g, error))
    return FALSE;
  if (opts->run_dir) {
    if (g_mkdir_with_parents (opts->run_dir, 0755) != 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "graph '%s': cannot create run directory %s: %s",
                   g->name, opts->run_dir, g_strerror (errno));
      return FALSE;
    }
  }
  Run r = { 0 };
  r.g = g;
  r.opts = opts;
  r.cores = opts->threads > 0 ? opts->threads : kdf_threads_default (NULL);
  r.one_at_a_time = kdf_dist_active ();
  g->threads = r.cores;
  r.done = g_async_queue_new ();
  r.t_start = g_get_monotonic_time ();
  r.last_metrics = json_object_new ();
  g_queue_init (&r.ready);
  GError *pool_error = NULL;
  r.pool = g_thread_pool_new (worker, &r, r.cores, FALSE, &pool_error);
  if (!r.pool) {
    g_propagate_prefixed_error (error, pool_error, "graph '%s': ", g->name);
    g_async_queue_unref (r.done);
    json_object_unref (r.last_metrics);
    return FALSE;
  }
  if (!kdf_cancel_enter (g)) { /* another thread started a run of G meanwhile */
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE, "graph '%s': cannot run graph '%s' while it runs",
                 g->name, g->name);
    g_thread_pool_free (r.pool, FALSE, TRUE);
    g_async_queue_unref (r.done);
    json_object_unref (r.last_metrics);
    return FALSE;
  }
  g->run_dir = opts->run_dir;
  g->has_run = TRUE;
  /* summary.json says "running" before anything else happens */
  if (!kdf_rundir_begin (g, &r.error))
    g_prefix_error (&r.error, "graph '%s': ", g->name);
  guint ticks = opts->ticks ? opts->ticks : 1;
  r.end_tick = g->tick + ticks;

  for (r.tick = g->tick; r.tick < r.end_tick && !r.error; r.tick++) {
    gint64 t_tick = g_get_monotonic_time ();
    if (kdf_interrupted ()) {
      g_set_error (&r.error, KDF_ERROR, KDF_ERROR_CANCELLED,
                   "graph '%s', tick %u: interrupted", g->name, r.tick);
      break;
    }
    if (!evaluate_schedules (&r, &r.error))
      break;
    deliver_delayed (g);
    r.free_cores = r.cores;
    r.finished = 0;
    for (guint i = 0; i < g->order->len; i++) {
      KdfNode *n = g->order->pdata[i];
      n->pending = (gint) n->n_in_edges;
      n->ran_this_tick = FALSE;
      if (n->pending == 0)
        g_queue_push_tail (&r.ready, n);
    }
    while (r.finished < g->nodes->len) {
      dispatch_ready (&r);
      if (r.finished == g->nodes->len)
        break;
      /* wake up now and then: progress, and an interrupt from a signal handler */
      KdfNode *n = g_async_queue_timeout_pop (r.done, 200000);
      if (kdf_interrupted ())
        g_cancellable_cancel (g->cancellable);
      if (n)
        complete (&r, n, TRUE);
      if (opts->progress && g_get_monotonic_time () - r.t_last_progress > 200000)
        report_progress (&r, n, FALSE);
      if (!n && g_cancellable_is_cancelled (g->cancellable) && !r.error) {
        /* cancelled from outside: stop dispatching, let in-flight nodes drain */
        g_set_error (&r.error, KDF_ERROR, KDF_ERROR_CANCELLED,
                     "graph '%s', tick %u: cancelled", g->name, r.tick);
      }
    }
    if (r.error)
      break;
    record_delayed (g);
    g->tick = r.tick + 1;
    if (!kdf_rundir_append_metrics (g, r.tick,
                                    (double) (g_get_monotonic_time () - t_tick) * 1e-6,
                                    r.last_metrics, &r.error)) {
      g_prefix_error (&r.error, "graph '%s', tick %u: ", g->name, r.tick);
      break;
    }
    report_progress (&r, NULL, TRUE);
  }
  g_thread_pool_free (r.pool, FALSE, TRUE);
  g_async_queue_unref (r.done);
  kdf_cancel_leave (g);
  if (r.error) {
    /* metrics the failing tick recorded are dropped: a tick is all or nothing */
    for (guint i = 0; i < g->nodes->len; i++) {
      KdfNode *n = g->nodes->pdata[i];
      for (guint k = 0; k < n->metrics->len; k++)
        g_free (g_array_index (n->metrics, KdfMetric, k).key);
      g_array_set_size (n->metrics, 0);
    }
  }
  GError *write_error = NULL;
  if (!kdf_rundir_write (g, r.error, r.tick, (double) (g_get_monotonic_time () - r.t_start) * 1e-6,
                         r.last_metrics, &write_error)) {
    if (!r.error) {
      r.error = write_error;
      if (!g_str_has_prefix (r.error->message, "graph '"))
        g_prefix_error (&r.error, "graph '%s': ", g->name);
    } else {
      char *msg = g_strdup_printf ("%s (and: %s)", r.error->message, write_error->message);
      g_free (r.error->message);
      r.error->message = msg;
      g_error_free (write_error);
    }
  }
  g->run_dir = NULL;
  json_object_unref (r.last_metrics);
  if (r.error) {
    g_propagate_error (error, r.error);
    return FALSE;
  }
  return TRUE;
}

void
kdf_graph_cancel (KdfGraph *g)
{
  g_cancellable_cancel (g->cancellable);
}
