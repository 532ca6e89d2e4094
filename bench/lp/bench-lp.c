/* bench/lp: k-NN + label propagation (BENCHMARKS item 3), kdflow's side.
 *
 *   bench-lp prepare OUT [--n 60000] [--dim 256] [--noise 0.4] [--seed 1] [--data DIR]
 *     Fashion-MNIST's first N training images, pixels scaled to [0, 1], projected to
 *     DIM features by a seeded Gaussian matrix (entries N(0, 1/DIM)) — a random
 *     projection, not a trained network's features. Writes OUT/features.npy (f32 N×DIM),
 *     OUT/clean.npy (i32 N) and OUT/seeds.npy (i32 N: each label replaced with
 *     probability NOISE by another class uniformly).
 *
 *   bench-lp run OUT [--k 20] [--iters 20] [--threads 1] [--tile 1024] [--repeat 1]
 *     Reads OUT/features.npy and OUT/seeds.npy, runs kdf_label_propagation (exact k-NN
 *     by inner product on L2-normalised features, γ = 3, α = 0.99, CG with `iters`
 *     iterations at most and tol 1e-6) REPEAT times and writes OUT/knn_kdflow.npy
 *     (i32 N×k) and OUT/labels_kdflow.npy. Prints one line of key=value pairs: the best
 *     wall time of the whole call and of its k-NN, graph and solve parts, the working
 *     memory the kernel measured, and the process's peak RSS (getrusage, features
 *     included — the number to put beside another process's peak RSS). */
#include <kdflow/data.h>
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double
peak_rss_mb (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return (double) ru.ru_maxrss / 1024.0;
}

static int
fail (GError *error)
{
  fprintf (stderr, "bench-lp: %s\n", error->message);
  g_error_free (error);
  return 2;
}

static int
prepare (const char *out, int64_t n, int64_t dim, double noise, guint32 seed, const char *dir)
{
  GError *error = NULL;
  KdfDataset *ds = kdf_dataset_load_fashion_mnist (dir, &error);
  if (ds == NULL)
    return fail (error);
  if (!kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error))
    return fail (error);
  const int64_t total = ds->x->shape[0], d = ds->x->shape[1];
  n = MIN (n, total);
  g_autoptr (KdfTensor) x = kdf_tensor_contiguous (ds->x);
  const float *px = kdf_tensor_f32 (x);
  GRand *rng = g_rand_new_with_seed (seed);
  float *proj = g_new (float, d * dim);
  for (int64_t e = 0; e < d * dim; e += 2) {
    double u = 1.0 - g_rand_double (rng), v = g_rand_double (rng), r = sqrt (-2.0 * log (u));
    proj[e] = (float) (r * cos (2 * G_PI * v) / sqrt ((double) dim));
    if (e + 1 < d * dim)
      proj[e + 1] = (float) (r * sin (2 * G_PI * v) / sqrt ((double) dim));
  }
  g_autoptr (KdfTensor) f = kdf_tensor_new_2d (KDF_DTYPE_F32, n, dim);
  kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, n, dim, d, 1.0f, px, d, 1, proj, dim, 1, 0.0f,
             kdf_tensor_f32 (f), dim, 1, 1);
  g_autoptr (KdfTensor) clean = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) seeds = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous (ds->labels);
  const int c = ds->n_classes;
  int64_t flipped = 0;
  for (int64_t i = 0; i < n; i++) {
    const int32_t t = kdf_tensor_i32 (y)[i];
    kdf_tensor_i32 (clean)[i] = t;
    const gboolean flip = g_rand_double (rng) < noise;
    kdf_tensor_i32 (seeds)[i] = flip ? (t + g_rand_int_range (rng, 1, c)) % c : t;
    flipped += flip;
  }
  g_rand_free (rng);
  g_free (proj);
  g_mkdir_with_parents (out, 0755);
  g_autofree char *pf = g_build_filename (out, "features.npy", NULL);
  g_autofree char *pc = g_build_filename (out, "clean.npy", NULL);
  g_autofree char *ps = g_build_filename (out, "seeds.npy", NULL);
  if (!kdf_npy_write (pf, f, &error) || !kdf_npy_write (pc, clean, &error) ||
      !kdf_npy_write (ps, seeds, &error))
    return fail (error);
  printf ("prepared n=%" G_GINT64_FORMAT " dim=%" G_GINT64_FORMAT " flipped=%" G_GINT64_FORMAT
          " out=%s\n", (gint64) n, (gint64) dim, (gint64) flipped, out);
  kdf_dataset_unref (ds);
  return 0;
}

static int
run (const char *out, int k, int iters, int threads, int tile, int repeat)
{
  GError *error = NULL;
  g_autofree char *pf = g_build_filename (out, "features.npy", NULL);
  g_autofree char *ps = g_build_filename (out, "seeds.npy", NULL);
  g_autofree char *pc = g_build_filename (out, "clean.npy", NULL);
  g_autoptr (KdfTensor) f = kdf_npy_read (pf, KDF_DTYPE_F32, &error);
  if (f == NULL)
    return fail (error);
  g_autoptr (KdfTensor) seeds = kdf_npy_read (ps, KDF_DTYPE_I32, &error);
  if (seeds == NULL)
    return fail (error);
  g_autoptr (KdfTensor) clean = kdf_npy_read (pc, KDF_DTYPE_I32, &error);
  if (clean == NULL)
    return fail (error);
  const int64_t n = f->shape[0], d = f->shape[1];
  int c = 0;
  for (int64_t i = 0; i < n; i++)
    c = MAX (c, kdf_tensor_i32 (seeds)[i] + 1);
  const double rss_data = peak_rss_mb ();

  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = k;
  opt.iters = iters;
  opt.knn.threads = threads;
  opt.knn.tile = tile;
  KdfLpInput in = { .x = kdf_tensor_f32 (f), .n = n, .d = d, .c = c,
                    .seeds = kdf_tensor_i32 (seeds) };
  g_autoptr (KdfTensor) labels = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) nb = kdf_tensor_new_2d (KDF_DTYPE_I32, n, k);
  KdfLpResult best = { 0 };
  double best_total = INFINITY;
  for (int r = 0; r < repeat; r++) {
    KdfLpResult res;
    gint64 t0 = g_get_monotonic_time ();
    if (!kdf_label_propagation (kdf_tensor_i32 (labels), NULL, NULL, kdf_tensor_i32 (nb), &in,
                                &opt, &res, &error))
      return fail (error);
    const double total = (double) (g_get_monotonic_time () - t0) / 1e6;
    fprintf (stderr, "bench-lp: run %d: %.3f s (k-NN %.3f s)\n", r + 1, total, res.seconds_knn);
    if (total < best_total) {
      best_total = total;
      best = res;
    }
  }
  int64_t right = 0, seeds_right = 0;
  for (int64_t i = 0; i < n; i++) {
    right += kdf_tensor_i32 (labels)[i] == kdf_tensor_i32 (clean)[i];
    seeds_right += kdf_tensor_i32 (seeds)[i] == kdf_tensor_i32 (clean)[i];
  }
  g_autofree char *pk = g_build_filename (out, "knn_kdflow.npy", NULL);
  g_autofree char *pl = g_build_filename (out, "labels_kdflow.npy", NULL);
  if (!kdf_npy_write (pk, nb, &error) || !kdf_npy_write (pl, labels, &error))
    return fail (error);
  printf ("n=%" G_GINT64_FORMAT " d=%" G_GINT64_FORMAT " k=%d threads=%d tile=%d total_s=%.3f "
          "knn_s=%.3f graph_s=%.3f solve_s=%.3f cg_iters=%d residual=%.3g ledger_mb=%.1f "
          "bound_mb=%.1f rss_data_mb=%.1f rss_peak_mb=%.1f seed_acc=%.4f lp_acc=%.4f\n",
          (gint64) n, (gint64) d, k, threads, tile, best_total, best.seconds_knn,
          best.seconds_graph, best.seconds_solve, best.solve.iterations, best.solve.residual,
          (double) best.peak_bytes / 1e6, (double) kdf_lp_workspace_bytes (n, d, c, &opt) / 1e6,
          rss_data, peak_rss_mb (), (double) seeds_right / n, (double) right / n);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 3 || (strcmp (argv[1], "prepare") && strcmp (argv[1], "run"))) {
    fprintf (stderr, "usage: bench-lp prepare OUT [--n N] [--dim D] [--noise R] [--seed S] "
                     "[--data DIR]\n       bench-lp run OUT [--k K] [--iters I] [--threads T] "
                     "[--tile T] [--repeat R]\n");
    return 2;
  }
  int64_t n = 60000, dim = 256;
  double noise = 0.4;
  guint32 seed = 1;
  const char *dir = NULL;
  int k = 20, iters = 20, threads = 1, tile = 1024, repeat = 1;
  for (int a = 3; a + 1 < argc; a += 2) {
    const char *o = argv[a], *v = argv[a + 1];
    if (!strcmp (o, "--n"))
      n = atoll (v);
    else if (!strcmp (o, "--dim"))
      dim = atoll (v);
    else if (!strcmp (o, "--noise"))
      noise = atof (v);
    else if (!strcmp (o, "--seed"))
      seed = (guint32) atol (v);
    else if (!strcmp (o, "--data"))
      dir = v;
    else if (!strcmp (o, "--k"))
      k = atoi (v);
    else if (!strcmp (o, "--iters"))
      iters = atoi (v);
    else if (!strcmp (o, "--threads"))
      threads = atoi (v);
    else if (!strcmp (o, "--tile"))
      tile = atoi (v);
    else if (!strcmp (o, "--repeat"))
      repeat = atoi (v);
    else {
      fprintf (stderr, "bench-lp: unknown option %s\n", o);
      return 2;
    }
  }
  if (!strcmp (argv[1], "prepare"))
    return prepare (argv[2], n, dim, noise, seed, dir);
  return run (argv[2], k, iters, threads, tile, MAX (repeat, 1));
}
