/* Cancellation: kdf_interrupt (from a signal handler), the graphs running now, and
 * which node runs on the calling thread.
 *
 * kdf_interrupt may only do async-signal-safe things: it sets a flag and writes one
 * byte into a pipe. A watcher thread (started by the first run) sleeps in read() on
 * that pipe and cancels every running graph's GCancellable at once, so a node running
 * on the control thread itself (--threads 1, or a node that ran fast last time) sees
 * the cancellation between its mini-batches or tiles as promptly as one on a worker.
 *
 * Long kernels reach the running node's cancellable through the thread-local set
 * around each init and run (kdf_sched_current_cancellable), so their public
 * signatures need no extra argument.
 *
 * This file calls no other file of the engine: graph.c, sched.c and the kernels all
 * call into it. */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <unistd.h>

#include "graph-private.h"

static volatile gint interrupted;
static int wake_fds[2] = { -1, -1 };

static GMutex running_lock;
static GPtrArray *running_graphs; /* KdfGraph*, not owned: between enter and leave */

static __thread KdfNode *current_node;

static gpointer
watcher (gpointer data)
{
  (void) data;
  for (;;) {
    char c;
    ssize_t r = read (wake_fds[0], &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return NULL;
    g_mutex_lock (&running_lock);
    for (guint i = 0; running_graphs && i < running_graphs->len; i++)
      g_cancellable_cancel (((KdfGraph *) running_graphs->pdata[i])->cancellable);
    g_mutex_unlock (&running_lock);
  }
}

static void
start_watcher (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    int fds[2];
    if (g_unix_open_pipe (fds, FD_CLOEXEC, NULL)) {
      g_unix_set_fd_nonblocking (fds[1], TRUE, NULL); /* a signal handler never blocks */
      wake_fds[0] = fds[0];
      g_atomic_int_set (&wake_fds[1], fds[1]);
      g_thread_unref (g_thread_new ("kdf-interrupt", watcher, NULL));
    }
    g_once_init_leave (&done, 1);
  }
}

void
kdf_interrupt (void)
{
  /* async-signal-safe: an atomic store and a write(2) */
  int saved = errno;
  g_atomic_int_set (&interrupted, 1);
  int fd = g_atomic_int_get (&wake_fds[1]);
  if (fd >= 0) {
    ssize_t r = write (fd, "!", 1);
    (void) r;
  }
  errno = saved;
}

gboolean
kdf_interrupted (void)
{
  return g_atomic_int_get (&interrupted) != 0;
}

/* A run begins: G joins the graphs an interrupt cancels. FALSE if G runs already. */
gboolean
kdf_cancel_enter (KdfGraph *g)
{
  if (!g_atomic_int_compare_and_exchange (&g->running, 0, 1))
    return FALSE;
  g_cancellable_reset (g->cancellable); /* only the run that owns G resets it */
  start_watcher ();
  g_mutex_lock (&running_lock);
  if (!running_graphs)
    running_graphs = g_ptr_array_new ();
  g_ptr_array_add (running_graphs, g);
  g_mutex_unlock (&running_lock);
  /* an interrupt that came before this run (or between its checks) still counts */
  if (kdf_interrupted ())
    g_cancellable_cancel (g->cancellable);
  return TRUE;
}

void
kdf_cancel_leave (KdfGraph *g)
{
  g_mutex_lock (&running_lock);
  g_ptr_array_remove_fast (running_graphs, g);
  if (running_graphs->len == 0)
    g_clear_pointer (&running_graphs, g_ptr_array_unref);
  g_mutex_unlock (&running_lock);
  g_atomic_int_set (&g->running, 0);
}

KdfNode *
kdf_cancel_set_current_node (KdfNode *n)
{
  KdfNode *old = current_node;
  current_node = n;
  return old;
}

KdfNode *
kdf_sched_current_node (void)
{
  return current_node;
}

GCancellable *
kdf_sched_current_cancellable (void)
{
  return current_node ? current_node->graph->cancellable : NULL;
}

gboolean
kdf_cancel_check (const char *what, GError **error)
{
  GCancellable *c = kdf_sched_current_cancellable ();
  if (c && g_cancellable_is_cancelled (c)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_CANCELLED, "%s: cancelled", what);
    return FALSE;
  }
  return TRUE;
}

gboolean
kdf_graph_check_idle (KdfGraph *g, const char *what, GError **error)
{
  if (!g_atomic_int_get (&g->running))
    return TRUE;
  KdfNode *by = current_node;
  if (by && by->graph == g) {
    g_autofree char *where = kdf_node_where (by);
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                 "%s: cannot %s graph '%s' while it runs (a node may neither change nor run "
                 "its own graph)",
                 where, what, g->name);
  } else {
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE, "graph '%s': cannot %s graph '%s' while it runs",
                 g->name, what, g->name);
  }
  return FALSE;
}
