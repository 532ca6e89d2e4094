/* bench/data: how long reading the data sets takes (wall time, best of N). Not a test:
 * timings are measured here and reported in docs/results.md, never asserted.
 *   ninja -C build bench/data/bench-load && build/bench/data/bench-load [REPEATS]
 */
#include <kdflow/data.h>
#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
  int repeats = argc > 1 ? atoi (argv[1]) : 5;
  if (repeats < 1)
    repeats = 1;
  if (!g_file_test (KDF_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS)) {
    fprintf (stderr, "bench-load: Debian's dataset-fashion-mnist is not installed\n");
    return 77;
  }
  double best = 1e30, total = 0;
  for (int r = 0; r < repeats; r++) {
    GError *error = NULL;
    gint64 t0 = g_get_monotonic_time ();
    KdfDataset *ds = kdf_dataset_load_fashion_mnist (NULL, &error);
    double secs = (double) (g_get_monotonic_time () - t0) * 1e-6;
    if (!ds) {
      fprintf (stderr, "bench-load: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
    kdf_dataset_unref (ds);
    best = MIN (best, secs);
    total += secs;
  }
  printf ("fashion-mnist (60 000 + 10 000 gzip IDX images, to f32): best %.3f s, mean %.3f s "
          "over %d\n", best, total / repeats, repeats);
  return 0;
}
