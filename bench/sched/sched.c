/* bench/sched: what the engine costs per node and per foreign call.
 *
 *  - a chain of 1000 no-op plugin nodes, and a 1000-node diamond lattice (250 layers
 *    of 4, each node fed by two nodes of the layer before), run for many ticks at 1
 *    and 2 threads: microseconds per node per tick;
 *  - one libffi call of a small kernel against a direct call of the same function
 *    through a pointer: nanoseconds per call.
 *
 * Usage: bench-sched [ticks]   (prints a table; the last line is key=value pairs) */
#include <ffi.h>
#include <kdflow/kdflow.h>
#include <stdio.h>
#include <stdlib.h>

static KdfGraph *
chain (int n)
{
  KdfGraph *g = kdf_graph_new ("chain", 1);
  KdfNode *prev = NULL;
  GError *error = NULL;
  for (int i = 0; i < n; i++) {
    KdfNode *node = kdf_graph_add_node (g, "test_noop", NULL, &error);
    if (!node)
      g_error ("%s", error->message);
    if (prev && !kdf_graph_connect (g, prev, "y", node, "x", NULL, &error))
      g_error ("%s", error->message);
    prev = node;
  }
  return g;
}

static KdfGraph *
lattice (int layers, int width)
{
  KdfGraph *g = kdf_graph_new ("lattice", 1);
  GError *error = NULL;
  KdfNode **prev = g_new0 (KdfNode *, width), **cur = g_new0 (KdfNode *, width);
  for (int l = 0; l < layers; l++) {
    for (int j = 0; j < width; j++) {
      cur[j] = kdf_graph_add_node (g, "test_noop", NULL, &error);
      if (!cur[j])
        g_error ("%s", error->message);
      if (l > 0) {
        if (!kdf_graph_connect (g, prev[j], "y", cur[j], "x", NULL, &error) ||
            !kdf_graph_connect (g, prev[(j + 1) % width], "y", cur[j], "x", NULL, &error))
          g_error ("%s", error->message);
      }
    }
    KdfNode **t = prev;
    prev = cur;
    cur = t;
  }
  g_free (prev);
  g_free (cur);
  return g;
}

/* seconds per node per tick, best of REPS runs of TICKS ticks */
static double
time_graph (KdfGraph *g, int threads, int ticks, int reps)
{
  KdfRunOptions o = { 0 };
  o.threads = threads;
  o.ticks = 2;
  GError *error = NULL;
  if (!kdf_graph_run (g, &o, &error)) /* warm-up: plugin init, first-run dispatch */
    g_error ("%s", error->message);
  double best = 1e30;
  o.ticks = (guint) ticks;
  for (int r = 0; r < reps; r++) {
    gint64 t0 = g_get_monotonic_time ();
    if (!kdf_graph_run (g, &o, &error))
      g_error ("%s", error->message);
    double dt = (double) (g_get_monotonic_time () - t0) * 1e-6;
    best = MIN (best, dt);
  }
  return best / ((double) ticks * kdf_graph_n_nodes (g));
}

/* the kernel both ways: y[i] = x[i] * w[0] */
static void
scale (const float *x, const float *w, int64_t n, float *y)
{
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] * w[0];
}

static void (*volatile scale_ptr) (const float *, const float *, int64_t, float *) = scale;

int
main (int argc, char **argv)
{
  int ticks = argc > 1 ? atoi (argv[1]) : 200;
  g_setenv ("KDFLOW_PLUGIN_PATH", KDF_BENCH_PLUGIN_DIR, FALSE);
  kdf_init ();

  KdfGraph *c = chain (1000), *l = lattice (250, 4);
  double chain1 = time_graph (c, 1, ticks, 5), chain2 = time_graph (c, 2, ticks, 5);
  double lat1 = time_graph (l, 1, ticks, 5), lat2 = time_graph (l, 2, ticks, 5);
  kdf_graph_unref (c);
  kdf_graph_unref (l);

  /* foreign call against a direct call */
  float x[4] = { 1, 2, 3, 4 }, w[1] = { 2 }, y[4];
  ffi_cif cif;
  ffi_type *types[] = { &ffi_type_pointer, &ffi_type_pointer, &ffi_type_sint64, &ffi_type_pointer };
  if (ffi_prep_cif (&cif, FFI_DEFAULT_ABI, 4, &ffi_type_void, types) != FFI_OK)
    g_error ("ffi_prep_cif failed");
  const float *px = x, *pw = w;
  float *py = y;
  int64_t n = 4;
  void *args[] = { &px, &pw, &n, &py };
  const int calls = 20000000;
  double best_ffi = 1e30, best_direct = 1e30;
  for (int r = 0; r < 5; r++) {
    gint64 t0 = g_get_monotonic_time ();
    for (int i = 0; i < calls; i++)
      ffi_call (&cif, FFI_FN (scale), NULL, args);
    gint64 t1 = g_get_monotonic_time ();
    for (int i = 0; i < calls; i++)
      scale_ptr (px, pw, n, py);
    gint64 t2 = g_get_monotonic_time ();
    best_ffi = MIN (best_ffi, (double) (t1 - t0) * 1e3 / calls);
    best_direct = MIN (best_direct, (double) (t2 - t1) * 1e3 / calls);
  }

  printf ("kdflow scheduler and foreign-call overhead (%d ticks, best of 5)\n", ticks);
  printf ("%-34s %12s %12s\n", "graph", "1 thread", "2 threads");
  printf ("%-34s %9.3f us %9.3f us   per node per tick\n", "chain of 1000 no-op nodes", chain1 * 1e6, chain2 * 1e6);
  printf ("%-34s %9.3f us %9.3f us   per node per tick\n", "lattice 250 x 4 (1000 nodes)", lat1 * 1e6, lat2 * 1e6);
  printf ("%-34s %9.2f ns\n", "libffi call (4 args)", best_ffi);
  printf ("%-34s %9.2f ns\n", "direct call through a pointer", best_direct);
  printf ("%-34s %9.2f ns\n", "extra cost of a foreign call", best_ffi - best_direct);
  printf ("us_per_node_chain=%.3f us_per_node_chain_2t=%.3f us_per_node_lattice=%.3f "
          "us_per_node_lattice_2t=%.3f ffi_call_ns=%.2f direct_call_ns=%.2f ffi_extra_ns=%.2f "
          "ticks=%d\n",
          chain1 * 1e6, chain2 * 1e6, lat1 * 1e6, lat2 * 1e6, best_ffi, best_direct,
          best_ffi - best_direct, ticks);
  kdf_shutdown ();
  return 0;
}
