/* bench/scale/allreduce: the time of kdflow's gradient allreduce (kdf_dist_allreduce_f32,
 * MPI_Allreduce of floats, in place) between the ranks of mpirun, for given numbers of
 * floats — the parameter counts of the students. Prints, from rank 0, one line per
 * size: floats, bytes, median microseconds of REPS allreduces.
 *
 *   mpirun -np 2 build/bench/scale/allreduce [REPS] N...                           */
#include <kdflow/dist.h>
#include <kdflow/kdflow.h>

#include <stdio.h>
#include <stdlib.h>

static int
cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  kdf_init ();
  GError *error = NULL;
  if (!kdf_dist_init (&argc, &argv, &error)) {
    fprintf (stderr, "allreduce: %s\n", error->message);
    return 2;
  }
  if (argc < 3) {
    fprintf (stderr, "usage: mpirun -np N allreduce REPS FLOATS...\n");
    return 2;
  }
  const int reps = atoi (argv[1]);
  if (kdf_dist_rank () == 0)
    printf ("# %d ranks, %s; floats bytes median_us\n", kdf_dist_size (), kdf_dist_library ());
  for (int a = 2; a < argc; a++) {
    const int64_t n = atoll (argv[a]);
    float *buf = g_new0 (float, n);
    double *t = g_new (double, reps);
    for (int r = 0; r < reps + 3; r++) {
      if (!kdf_dist_barrier (&error))
        break;
      gint64 t0 = g_get_monotonic_time ();
      if (!kdf_dist_allreduce_f32 (buf, n, KDF_DIST_SUM, &error))
        break;
      if (r >= 3) /* three warm-up rounds */
        t[r - 3] = (double) (g_get_monotonic_time () - t0);
    }
    if (error) {
      fprintf (stderr, "allreduce: %s\n", error->message);
      kdf_dist_abort (1);
      return 1;
    }
    qsort (t, reps, sizeof *t, cmp);
    if (kdf_dist_rank () == 0)
      printf ("%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %.1f\n", (gint64) n, (gint64) n * 4,
              t[reps / 2]);
    g_free (buf);
    g_free (t);
  }
  kdf_dist_finalize ();
  kdf_shutdown ();
  return 0;
}
