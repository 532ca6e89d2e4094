/* Benchmark 1 (BENCHMARKS.md): training throughput of engine/nn against PyTorch.
 *
 * One epoch of MLP 784-512-512-10 on 60 000 Fashion-MNIST images (batch 128, SGD
 * momentum 0.9, lr 0.01, no weight decay) at 1 and 2 threads, one epoch of the
 * METHODS §3 teacher CNN on the first --cnn-samples images at 1 thread, and the
 * GEMM-only time of the MLP epoch (the same sgemm calls, shapes, strides and betas
 * as the training step, and nothing else) measured in the same run. kdflow runs
 * in-process; bench/ref/torch_epoch.py runs under /usr/bin/python3 (Debian's torch,
 * which calls BLIS through libblas.so.3) on the same data, written once to a
 * temporary directory. Measurements alternate kdflow / torch over --pairs pairs;
 * the table gives the medians and the ratios, the last line key=value pairs.
 *
 *   bench/train_epoch/run [--pairs 3] [--cnn-samples 6000] [--skip-torch]
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <kdflow/nn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef TORCH_SCRIPT
#define TORCH_SCRIPT "bench/ref/torch_epoch.py"
#endif

static const char *mlp_arch = "mlp:784-512-512-10";
static const char *cnn_arch = "cnn:1x28x28-c32-p2-c64-p2-f256-10";

/* ---- data -------------------------------------------------------------------------- */

static guint8 *
read_idx_gz (const char *path, gsize want_header, gsize *len)
{
  g_autoptr (GFile) f = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) fin = g_file_read (f, NULL, NULL);
  if (!fin)
    return NULL;
  g_autoptr (GZlibDecompressor) dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) in = g_converter_input_stream_new (G_INPUT_STREAM (fin), G_CONVERTER (dec));
  GByteArray *all = g_byte_array_new ();
  guint8 buf[1 << 16];
  gssize got;
  while ((got = g_input_stream_read (in, buf, sizeof buf, NULL, NULL)) > 0)
    g_byte_array_append (all, buf, (guint) got);
  if (got < 0 || all->len < want_header) {
    g_byte_array_unref (all);
    return NULL;
  }
  *len = all->len - want_header;
  guint8 *out = g_memdup2 (all->data + want_header, *len);
  g_byte_array_unref (all);
  return out;
}

/* Fashion-MNIST train set as x (60000×784 in [0,1]) and y; random data of the same
 * shape if the Debian package is absent (said in the output). */
static gboolean
load_data (KdfTensor **x, KdfTensor **y)
{
  const int64_t n = 60000;
  *x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, 784);
  *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  gsize li = 0, ll = 0;
  g_autofree guint8 *img = read_idx_gz ("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 16, &li);
  g_autofree guint8 *lab = read_idx_gz ("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", 8, &ll);
  if (img && lab && li == (gsize) n * 784 && ll == (gsize) n) {
    for (int64_t i = 0; i < n * 784; i++)
      kdf_tensor_f32 (*x)[i] = img[i] / 255.0f;
    for (int64_t i = 0; i < n; i++)
      kdf_tensor_i32 (*y)[i] = lab[i];
    return TRUE;
  }
  GRand *r = g_rand_new_with_seed (1);
  for (int64_t i = 0; i < n * 784; i++)
    kdf_tensor_f32 (*x)[i] = (float) g_rand_double (r);
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_i32 (*y)[i] = g_rand_int_range (r, 0, 10);
  g_rand_free (r);
  return FALSE;
}

/* ---- kdflow ----------------------------------------------------------------------- */

static double
kdflow_epoch (const char *arch, KdfTensor *x, KdfTensor *y, int threads, double *loss)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch (arch, 1, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.01, 0.9, 0.0, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  KdfTrainConfig cfg = { .batch = 128 };
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg, &err);
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (1);
  /* warm-up: a few batches so first-touch page faults and BLIS's pools are not timed
   * (the torch script does the same) */
  g_autoptr (KdfTensor) head = kdf_tensor_slice (x, 0, 0, MIN (5 * 128, x->shape[0]));
  if (!kdf_trainer_epoch (tr, head, &ce, 1, r, threads, NULL, NULL, &err))
    g_error ("%s", err->message);
  KdfEpochResult res = { 0 };
  gint64 t0 = g_get_monotonic_time ();
  if (!kdf_trainer_epoch (tr, x, &ce, 1, r, threads, &res, NULL, &err))
    g_error ("%s", err->message);
  double s = (g_get_monotonic_time () - t0) / 1e6;
  g_rand_free (r);
  *loss = res.loss;
  return s;
}

/* The MLP epoch's GEMMs alone: per batch the three forward GEMMs and the five
 * backward ones (no input gradient for the first layer), with the strides and betas
 * of kdf_linear_forward / kdf_linear_backward. */
static double
gemm_epoch (int64_t n_samples, int threads)
{
  const int64_t B = 128, D[4] = { 784, 512, 512, 10 };
  /* 64-byte aligned like the model's buffers (kdf_tensor storage) */
#define ALLOC(nf) ((float *) kdf_tensor_f32 (bufs[nb++] = kdf_tensor_new_1d (KDF_DTYPE_F32, (nf))))
  KdfTensor *bufs[16];
  int nb = 0;
  float *x = ALLOC (B * D[0]), *w[3], *dw[3], *h[4], *dh[4];
  GRand *r = g_rand_new_with_seed (2);
  for (int64_t i = 0; i < B * D[0]; i++)
    x[i] = (float) g_rand_double (r);
  for (int l = 0; l < 3; l++) {
    w[l] = ALLOC (D[l] * D[l + 1]);
    dw[l] = ALLOC (D[l] * D[l + 1]);
    for (int64_t i = 0; i < D[l] * D[l + 1]; i++)
      w[l][i] = (float) g_rand_double_range (r, -0.05, 0.05);
  }
  h[0] = x;
  dh[0] = NULL;
  for (int l = 1; l < 4; l++) {
    h[l] = ALLOC (B * D[l]);
    dh[l] = ALLOC (B * D[l]);
    for (int64_t i = 0; i < B * D[l]; i++)
      dh[l][i] = (float) g_rand_double_range (r, -0.01, 0.01);
  }
  g_rand_free (r);
  gint64 t0 = g_get_monotonic_time ();
  for (int64_t s = 0; s < n_samples; s += B) {
    const int64_t n = MIN (B, n_samples - s);
    for (int l = 0; l < 3; l++)
      kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, n, D[l + 1], D[l], 1.0f, h[l], D[l], 1, w[l], 1, D[l],
                 0.0f, h[l + 1], D[l + 1], 1, threads);
    for (int l = 2; l >= 0; l--) {
      kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, D[l + 1], D[l], n, 1.0f, dh[l + 1], 1, D[l + 1], h[l],
                 D[l], 1, 0.0f, dw[l], D[l], 1, threads);
      if (l > 0)
        kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, n, D[l], D[l + 1], 1.0f, dh[l + 1], D[l + 1], 1,
                   w[l], D[l], 1, 1.0f, dh[l], D[l], 1, threads);
    }
  }
  double sec = (g_get_monotonic_time () - t0) / 1e6;
  for (int i = 0; i < nb; i++)
    kdf_tensor_unref (bufs[i]);
#undef ALLOC
  return sec;
}

/* ---- torch -------------------------------------------------------------------------- */

static double
torch_epoch (const char *python, const char *script, const char *dir, const char *model,
             int64_t n, int threads, double *loss)
{
  g_autofree char *ns = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) n);
  g_autofree char *ts = g_strdup_printf ("%d", threads);
  const char *argv[] = { python, script, "--data", dir, "--model", model, "--n", ns,
                         "--threads", ts, NULL };
  g_auto (GStrv) env = g_get_environ ();
  env = g_environ_setenv (env, "BLIS_NUM_THREADS", ts, TRUE);
  env = g_environ_setenv (env, "OMP_NUM_THREADS", ts, TRUE);
  env = g_environ_setenv (env, "OMP_WAIT_POLICY", "passive", FALSE);
  g_autofree char *out = NULL, *errs = NULL;
  int status = 0;
  g_autoptr (GError) err = NULL;
  if (!g_spawn_sync (NULL, (char **) argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &errs, &status,
                     &err) ||
      !g_spawn_check_wait_status (status, NULL)) {
    g_printerr ("torch run failed: %s\n%s\n", err ? err->message : "", errs ? errs : "");
    return NAN;
  }
  double sec = NAN;
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    if (g_str_has_prefix (lines[i], "seconds="))
      sec = g_ascii_strtod (lines[i] + 8, NULL);
    if (g_str_has_prefix (lines[i], "loss="))
      *loss = g_ascii_strtod (lines[i] + 5, NULL);
  }
  return sec;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *v, int n)
{
  double *c = g_memdup2 (v, sizeof (double) * n);
  qsort (c, n, sizeof (double), cmp_double);
  double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
  g_free (c);
  return m;
}

int
main (int argc, char **argv)
{
  int pairs = 3;
  gint64 cnn_samples = 6000;
  gboolean skip_torch = FALSE;
  const char *python = "/usr/bin/python3", *script = TORCH_SCRIPT;
  GOptionEntry entries[] = {
    { "pairs", 0, 0, G_OPTION_ARG_INT, &pairs, "kdflow/torch pairs per setting (>= 3)", "P" },
    { "cnn-samples", 0, 0, G_OPTION_ARG_INT64, &cnn_samples, "images in the CNN epoch", "N" },
    { "skip-torch", 0, 0, G_OPTION_ARG_NONE, &skip_torch, "kdflow and GEMM only", NULL },
    { "python", 0, 0, G_OPTION_ARG_FILENAME, &python, "Debian's python3", "PATH" },
    { "script", 0, 0, G_OPTION_ARG_FILENAME, &script, "torch_epoch.py", "PATH" },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- kdflow vs PyTorch training epochs");
  g_option_context_add_main_entries (oc, entries, NULL);
  g_autoptr (GError) err = NULL;
  if (!g_option_context_parse (oc, &argc, &argv, &err)) {
    g_printerr ("%s\n", err->message);
    return 2;
  }
  if (pairs < 1 || cnn_samples < 128 || cnn_samples > 60000) {
    g_printerr ("need --pairs >= 1 and 128 <= --cnn-samples <= 60000\n");
    return 2;
  }
  if (!g_getenv ("OMP_WAIT_POLICY"))
    g_setenv ("OMP_WAIT_POLICY", "passive", TRUE); /* before BLIS starts its threads */

  KdfTensor *x, *y;
  gboolean real = load_data (&x, &y);
  g_autoptr (KdfTensor) xc = kdf_tensor_slice (x, 0, 0, cnn_samples);
  /* the CNN reads the same rows as N×1×28×28 */
  g_autoptr (KdfTensor) xc4 = kdf_tensor_reshape (xc, 4, (int64_t[]){ cnn_samples, 1, 28, 28 }, &err);
  g_autoptr (KdfTensor) yc = kdf_tensor_slice (y, 0, 0, cnn_samples);

  g_autofree char *dir = g_dir_make_tmp ("kdf-bench-XXXXXX", &err);
  g_autofree char *xp = g_build_filename (dir, "x.f32", NULL);
  g_autofree char *yp = g_build_filename (dir, "y.i32", NULL);
  if (!g_file_set_contents (xp, x->data, (gssize) kdf_tensor_nbytes (x), &err) ||
      !g_file_set_contents (yp, y->data, (gssize) kdf_tensor_nbytes (y), &err)) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  if (!skip_torch && !g_file_test (python, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr ("%s not found: running without torch\n", python);
    skip_torch = TRUE;
  }

  enum { MLP1, MLP2, CNN1, NSET };
  const char *set_name[NSET] = { "mlp 784-512-512-10", "mlp 784-512-512-10", "cnn teacher" };
  const int set_threads[NSET] = { 1, 2, 1 };
  const int64_t set_n[NSET] = { 60000, 60000, cnn_samples };
  double kt[NSET][32], tt[NSET][32], gt[2][32], kl[NSET] = { 0 }, tl[NSET] = { 0 };
  pairs = MIN (pairs, 32);

  printf ("# kdflow %s vs PyTorch (/usr/bin/python3, BLIS via libblas.so.3), %s data, batch 128, "
          "SGD lr 0.01 momentum 0.9, OMP_WAIT_POLICY=%s, %d pairs alternating kdflow/torch\n",
          KDF_PACKAGE_VERSION, real ? "Fashion-MNIST" : "RANDOM (dataset-fashion-mnist absent)",
          g_getenv ("OMP_WAIT_POLICY"), pairs);
  printf ("%-20s %7s %8s %3s %10s %10s %10s\n", "what", "threads", "samples", "run", "kdflow_s",
          "torch_s", "gemm_s");
  for (int p = 0; p < pairs; p++)
    for (int s = 0; s < NSET; s++) {
      const int th = set_threads[s];
      if (s != CNN1)
        gt[th - 1][p] = gemm_epoch (60000, th);
      kt[s][p] = kdflow_epoch (s == CNN1 ? cnn_arch : mlp_arch, s == CNN1 ? xc4 : x,
                               s == CNN1 ? yc : y, th, &kl[s]);
      tt[s][p] = skip_torch ? NAN : torch_epoch (python, script, dir, s == CNN1 ? "cnn" : "mlp",
                                                  set_n[s], th, &tl[s]);
      printf ("%-20s %7d %8" G_GINT64_FORMAT " %3d %10.3f %10.3f %10.3f\n", set_name[s], th,
              (gint64) set_n[s], p + 1, kt[s][p], tt[s][p], s != CNN1 ? gt[th - 1][p] : NAN);
      fflush (stdout);
    }
  double mk[NSET], mt[NSET], mg[2], ratio[NSET], floor_ratio[2];
  for (int s = 0; s < NSET; s++) {
    /* the median of the per-pair ratios: each pair ran side by side */
    double r[32];
    for (int p = 0; p < pairs; p++)
      r[p] = kt[s][p] / tt[s][p];
    mk[s] = median (kt[s], pairs);
    mt[s] = median (tt[s], pairs);
    ratio[s] = median (r, pairs);
  }
  for (int t = 0; t < 2; t++) {
    double r[32];
    for (int p = 0; p < pairs; p++)
      r[p] = kt[t == 0 ? MLP1 : MLP2][p] / gt[t][p];
    mg[t] = median (gt[t], pairs);
    floor_ratio[t] = median (r, pairs);
  }
  printf ("\n%-20s %7s %8s %10s %10s %10s %12s %12s\n", "median", "threads", "samples", "kdflow_s",
          "torch_s", "gemm_s", "kdflow/torch", "kdflow/gemm");
  for (int s = 0; s < NSET; s++)
    printf ("%-20s %7d %8" G_GINT64_FORMAT " %10.3f %10.3f %10.3f %12.3f %12.3f\n", set_name[s],
            set_threads[s], (gint64) set_n[s], mk[s], mt[s], s != CNN1 ? mg[s] : NAN, ratio[s],
            s != CNN1 ? floor_ratio[s] : NAN);
  printf ("# last-epoch mean loss: kdflow mlp %.4f / torch %.4f; kdflow cnn %.4f / torch %.4f\n",
          kl[MLP1], tl[MLP1], kl[CNN1], tl[CNN1]);
  printf ("# cnn epoch on %" G_GINT64_FORMAT " images; scaled to 60000: kdflow %.1f s, torch %.1f s\n",
          (gint64) cnn_samples, mk[CNN1] * 60000.0 / cnn_samples, mt[CNN1] * 60000.0 / cnn_samples);

  struct rusage self, kids;
  getrusage (RUSAGE_SELF, &self);
  getrusage (RUSAGE_CHILDREN, &kids);
  printf ("mlp_1t_vs_torch=%.3f mlp_1t_vs_gemm_floor=%.3f mlp_2t_vs_torch=%.3f "
          "mlp_2t_vs_gemm_floor=%.3f cnn_1t_vs_torch=%.3f mlp_1t_s=%.3f mlp_2t_s=%.3f "
          "torch_mlp_1t_s=%.3f torch_mlp_2t_s=%.3f gemm_1t_s=%.3f gemm_2t_s=%.3f cnn_samples=%" G_GINT64_FORMAT
          " cnn_1t_s=%.3f torch_cnn_1t_s=%.3f peak_rss_kdflow_mb=%.0f peak_rss_torch_mb=%.0f pairs=%d\n",
          ratio[MLP1], floor_ratio[0], ratio[MLP2], floor_ratio[1], ratio[CNN1], mk[MLP1], mk[MLP2],
          mt[MLP1], mt[MLP2], mg[0], mg[1], (gint64) cnn_samples, mk[CNN1], mt[CNN1],
          self.ru_maxrss / 1024.0, kids.ru_maxrss / 1024.0, pairs);

  g_unlink (xp);
  g_unlink (yp);
  g_rmdir (dir);
  kdf_tensor_unref (x);
  kdf_tensor_unref (y);
  kdf_blas_finalize ();
  return 0;
}
