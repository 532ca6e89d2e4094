/* bench/detect: otsu_threshold, loss_ranking and confident_learning on synthetic
 * 60 000 × 10 and 1 000 000 × 10 probabilities (BENCHMARKS.md item 4).
 *
 * Data: softmax of Gaussian logits N(0,1) with +2.5 on the true class, 20 % of the
 * labels flipped to another class uniformly; seeded, so every run times the same
 * input (bench-data.c, shared with bench-dist-detect). Each kernel runs
 * single-threaded (and CL once more with 2 threads); the best of several runs is
 * reported.
 * cleanlab 2.9's find_label_issues takes 0.05–0.19 s at 60k × 10 on this machine
 * class (BENCHMARKS.md); the speed-up below is against the fast end, 0.05 s.
 * The last line of output is key=value pairs for scripts. */
#include "bench-data.h"

#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <stdio.h>

#define CLEANLAB_60K_S 0.05

typedef enum { OTSU_REF, OTSU_EXACT, RANK_GLOBAL, RANK_CLASS, CL_F32, CL_F64, CL_F32_T2, N_KERNELS } Kernel;

static const char *kernel_names[] = {
  "otsu (blind, 1000 bins, reference)", "otsu (blind, 1000 bins, exact)",
  "loss_ranking (global, keep 0.8)", "loss_ranking (per class, keep 0.8)",
  "confident_learning (f32)", "confident_learning (f64)",
  "confident_learning (f32, 2 threads)",
};

/* Runs K once; returns seconds and a detection F1 (or NaN) for the table. */
static double
run (Kernel k, const Data *d, uint8_t *mask, double *f1)
{
  GError *error = NULL;
  gboolean ok = TRUE;
  int64_t t0 = g_get_monotonic_time ();
  switch (k) {
  case OTSU_REF:
  case OTSU_EXACT: {
    KdfOtsuOptions o;
    kdf_otsu_options_init (&o);
    o.criterion = KDF_OTSU_CRITERION_BLIND;
    o.exact = k == OTSU_EXACT;
    KdfOtsuResult r;
    ok = kdf_otsu_threshold (d->self, d->n, &o, &r, mask, NULL, &error);
    for (int64_t i = 0; ok && i < d->n; i++)
      mask[i] = !mask[i]; /* low agreement = predicted noisy */
    break;
  }
  case RANK_GLOBAL:
  case RANK_CLASS: {
    KdfRankOptions o;
    rank_options (&o, d, k == RANK_CLASS);
    ok = kdf_loss_rank (d->loss, d->n, &o, mask, NULL, NULL, &error);
    for (int64_t i = 0; ok && i < d->n; i++)
      mask[i] = !mask[i];
    break;
  }
  case CL_F32:
    ok = kdf_confident_learning_f32 (mask, d->p, d->y, d->n, d->c, NULL, NULL, &error);
    break;
  case N_KERNELS:
    break;
  case CL_F32_T2: {
    KdfClOptions o;
    kdf_cl_options_init (&o);
    o.threads = 2;
    ok = kdf_confident_learning_f32 (mask, d->p, d->y, d->n, d->c, &o, NULL, &error);
    break;
  }
  case CL_F64:
    ok = kdf_confident_learning_f64 (mask, d->p64, d->y, d->n, d->c, NULL, NULL, &error);
    break;
  }
  double s = (double) (g_get_monotonic_time () - t0) / 1e6;
  if (!ok) {
    fprintf (stderr, "bench-detect: %s\n", error->message);
    g_error_free (error);
    return NAN;
  }
  KdfDetectionMetrics m;
  kdf_eval_detection (&m, mask, d->flipped, d->n);
  *f1 = m.f1;
  return s;
}

static double
best_of (Kernel k, const Data *d, int reps, double *f1)
{
  uint8_t *mask = g_new (uint8_t, d->n);
  double best = INFINITY;
  for (int r = 0; r < reps; r++)
    best = MIN (best, run (k, d, mask, f1));
  g_free (mask);
  return best;
}

int
main (void)
{
  const int64_t sizes[2] = { 60000, 1000000 };
  const int reps[2] = { 9, 3 };
  double t[2][N_KERNELS], f1[2][N_KERNELS];
  printf ("bench/detect: synthetic softmax(N(0,1) + 2.5·onehot), 20%% flipped, C = 10, "
          "1 thread unless noted, best of 9 (60k) / 3 (1M)\n\n");
  printf ("%-38s %12s %12s %8s %8s\n", "kernel", "60k×10 (s)", "1M×10 (s)", "F1 60k", "F1 1M");
  for (int s = 0; s < 2; s++) {
    Data d;
    make_data (&d, sizes[s], 10, 20260101u + (guint32) s);
    for (int k = 0; k < N_KERNELS; k++)
      t[s][k] = best_of ((Kernel) k, &d, reps[s], &f1[s][k]);
    free_data (&d);
  }
  for (int k = 0; k < N_KERNELS; k++)
    printf ("%-38s %12.5f %12.5f %8.3f %8.3f\n", kernel_names[k], t[0][k], t[1][k], f1[0][k],
            f1[1][k]);
  printf ("\ncleanlab 2.9 find_label_issues at 60k×10: %.2f–0.19 s (BENCHMARKS.md; not run "
          "here: cleanlab is not a Debian package)\n\n", CLEANLAB_60K_S);
  printf ("cl_60k_s=%.5f cl_1m_s=%.5f cl64_60k_s=%.5f cl64_1m_s=%.5f otsu_60k_s=%.5f "
          "otsu_1m_s=%.5f otsu_exact_1m_s=%.5f rank_60k_s=%.5f rank_1m_s=%.5f "
          "rank_per_class_1m_s=%.5f cl_2t_60k_s=%.5f cl_2t_1m_s=%.5f speedup_vs_cleanlab_60k=%.1f "
          "speedup_2t_vs_cleanlab_60k=%.1f threads=1\n",
          t[0][CL_F32], t[1][CL_F32], t[0][CL_F64], t[1][CL_F64], t[0][OTSU_REF], t[1][OTSU_REF],
          t[1][OTSU_EXACT], t[0][RANK_GLOBAL], t[1][RANK_GLOBAL], t[1][RANK_CLASS],
          t[0][CL_F32_T2], t[1][CL_F32_T2], CLEANLAB_60K_S / t[0][CL_F32],
          CLEANLAB_60K_S / t[0][CL_F32_T2]);
  return 0;
}
