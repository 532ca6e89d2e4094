/* bench/detect/bench-dist-detect: the sharded detection kernels (kdflow/detect.h,
 * "sharded forms") on the synthetic probabilities of bench-detect (bench-data.c:
 * 60 000 × 10 and 1 000 000 × 10, 20 % flipped labels). Run it alone (one rank: the
 * sharded kernels are the plain ones) and under `mpirun -np 2`; every rank checks that
 * its flags equal the one-process kernel's, rank 0 prints the best wall time of each
 * kernel over the runs (all ranks start together: a barrier before each run, the
 * slowest rank's time).
 *   build/bench/detect/bench-dist-detect
 *   mpirun --allow-run-as-root --oversubscribe -np 2 build/bench/detect/bench-dist-detect */
#include "bench-data.h"

#include <kdflow/detect.h>
#include <kdflow/dist.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { OTSU, RANK_GLOBAL, RANK_CLASS, CL_F32, AGREEMENT, N_KERNELS } Kernel;
static const char *const names[N_KERNELS] = {
  "otsu (blind, 1000 bins, normalize)", "loss_ranking (global, keep 0.8)",
  "loss_ranking (per class, keep 0.8)", "confident_learning (f32)", "agreement",
};

/* One run of kernel K, sharded (SHARDED) or the plain kernel; the flags into FLAGS. */
static void
run_kernel (Kernel k, gboolean sharded, const Data *d, uint8_t *flags, float *scratch)
{
  GError *error = NULL;
  gboolean ok = FALSE;
  switch (k) {
  case OTSU: {
    KdfOtsuOptions o;
    kdf_otsu_options_init (&o);
    o.criterion = KDF_OTSU_CRITERION_BLIND;
    o.normalize = TRUE;
    KdfOtsuResult r;
    ok = (sharded ? kdf_otsu_threshold_sharded : kdf_otsu_threshold) (d->loss, d->n, &o, &r, flags,
                                                                      NULL, &error);
    break;
  }
  case RANK_GLOBAL:
  case RANK_CLASS: {
    KdfRankOptions o;
    rank_options (&o, d, k == RANK_CLASS);
    ok = (sharded ? kdf_loss_rank_sharded : kdf_loss_rank) (d->loss, d->n, &o, flags, NULL, NULL,
                                                            &error);
    break;
  }
  case CL_F32:
    ok = (sharded ? kdf_confident_learning_sharded_f32 : kdf_confident_learning_f32) (
      flags, d->p, d->y, d->n, d->c, NULL, NULL, &error);
    break;
  case AGREEMENT:
    ok = (sharded ? kdf_agreement_sharded : kdf_agreement) (scratch, NULL, d->p, d->p, d->y, d->n,
                                                            d->c, &error);
    for (int64_t i = 0; i < d->n; i++)
      flags[i] = scratch[i] < 0.5f;
    break;
  default:
    break;
  }
  if (!ok) {
    fprintf (stderr, "bench-dist-detect: %s: %s\n", names[k], error ? error->message : "failed");
    kdf_dist_abort (1);
    exit (1);
  }
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (!kdf_dist_init (&argc, &argv, &error)) {
    fprintf (stderr, "bench-dist-detect: %s\n", error->message);
    return 1;
  }
  const gboolean root = kdf_dist_rank () == 0;
  if (root)
    printf ("ranks: %d (%s)\n\n| kernel | rows | best of | time | flags = one process |\n"
            "|---|---:|---:|---:|---|\n", kdf_dist_size (), kdf_dist_library ());
  /* what one collective costs here (a detection call makes 5–9) */
  {
    double best = INFINITY;
    for (int rep = 0; rep < 200; rep++) {
      int64_t x = rep;
      /* nanoseconds: g_get_monotonic_time's microseconds round a call to 0 */
      struct timespec a, b;
      clock_gettime (CLOCK_MONOTONIC, &a);
      kdf_dist_allreduce_i64 (&x, 1, KDF_DIST_SUM, NULL);
      clock_gettime (CLOCK_MONOTONIC, &b);
      double t = (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9;
      kdf_dist_allreduce_f64 (&t, 1, KDF_DIST_MAX, NULL);
      best = MIN (best, t);
    }
    kdf_dist_barrier (NULL);
    gint64 t0 = g_get_monotonic_time ();
    for (int rep = 0; rep < 200; rep++) {
      int64_t x = rep;
      kdf_dist_allreduce_i64 (&x, 1, KDF_DIST_SUM, NULL);
    }
    double mean = (double) (g_get_monotonic_time () - t0) / 1e6 / 200;
    if (root)
      printf ("| one 8-byte allreduce | | 200 | best %.1f µs, mean %.1f µs | |\n", best * 1e6,
              mean * 1e6);
  }
  const int64_t sizes[2] = { 60000, 1000000 };
  for (int s = 0; s < 2; s++) {
    Data d;
    make_data (&d, sizes[s], 10, 42);
    uint8_t *ref = g_new (uint8_t, d.n), *got = g_new (uint8_t, d.n);
    float *scratch = g_new (float, d.n);
    const int reps = s == 0 ? 9 : 3;
    for (int k = 0; k < N_KERNELS; k++) {
      run_kernel (k, FALSE, &d, ref, scratch);
      double best = INFINITY;
      for (int rep = 0; rep < reps; rep++) {
        kdf_dist_barrier (NULL);
        gint64 t0 = g_get_monotonic_time ();
        run_kernel (k, TRUE, &d, got, scratch);
        double t = (double) (g_get_monotonic_time () - t0) / 1e6;
        kdf_dist_allreduce_f64 (&t, 1, KDF_DIST_MAX, NULL);
        best = MIN (best, t);
      }
      int64_t same = memcmp (ref, got, (size_t) d.n) == 0;
      kdf_dist_allreduce_i64 (&same, 1, KDF_DIST_MIN, NULL);
      if (root)
        printf ("| %s | %" G_GINT64_FORMAT " | %d | %.1f ms | %s |\n", names[k], d.n, reps,
                best * 1e3, same ? "yes" : "NO");
      if (!same) {
        kdf_dist_abort (1);
        return 1;
      }
    }
    g_free (ref);
    g_free (got);
    g_free (scratch);
    free_data (&d);
  }
  kdf_dist_finalize ();
  return 0;
}
