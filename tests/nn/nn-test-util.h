/* Helpers shared by the engine/nn tests: deterministic random fills, a central-
 * difference gradient checker, and the Fashion-MNIST fixture reader. */
#pragma once

#include <gio/gio.h>
#include <kdflow/nn.h>
#include <math.h>
#include <string.h>

static inline void
fill_uniform (float *x, int64_t n, GRand *r, double lo, double hi)
{
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, lo, hi);
}

/* Values whose magnitude is at least MARGIN, so a small perturbation never crosses
 * a ReLU kink at 0. */
static inline void
fill_away_from_zero (float *x, int64_t n, GRand *r, double margin)
{
  for (int64_t i = 0; i < n; i++) {
    double v = g_rand_double_range (r, margin, 1.0);
    x[i] = (float) (g_rand_boolean (r) ? v : -v);
  }
}

/* Σ_i r_i·out_i in double: the probe loss whose gradient w.r.t. out is r. */
static inline double
probe (const float *out, const float *r, int64_t n)
{
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += (double) out[i] * r[i];
  return s;
}

/* Central differences of LOSS (a closure over the variable X) at up to MAX_CHECK
 * entries of X (all if fewer), against the analytic gradient G. Returns the largest
 * |analytic − numeric| divided by the largest |analytic| (≥ 1e-3): a scale-free error
 * that a transposed, mis-scaled or missing gradient pushes to ≥ 0.1.
 *
 * ReLU and max-pool are piecewise linear: a step that crosses a kink gives a wrong
 * difference quotient. Each entry is differenced with steps h and h/2; when the two
 * disagree the entry sits on a kink and is skipped (*SKIPPED counts them; callers
 * assert it stays a small fraction). */
typedef double (*LossFn) (gpointer ctx);

static inline double
fd_at (LossFn loss, gpointer ctx, float *x, int64_t i, double h)
{
  float v = x[i];
  x[i] = (float) (v + h);
  double hp = (double) x[i] - v;
  double lp = loss (ctx);
  x[i] = (float) (v - h);
  double hm = v - (double) x[i];
  double lm = loss (ctx);
  x[i] = v;
  return (lp - lm) / (hp + hm); /* the steps actually taken in float */
}

static inline double
grad_error_ex (LossFn loss, gpointer ctx, float *x, const float *g, int64_t n, double h,
               int max_check, int *skipped, int *checked)
{
  double scale = 1e-3, max_diff = 0.0;
  for (int64_t i = 0; i < n; i++)
    scale = fmax (scale, fabs (g[i]));
  int64_t step = n > max_check ? n / max_check : 1;
  int sk = 0, ch = 0;
  for (int64_t i = 0; i < n; i += step) {
    double n1 = fd_at (loss, ctx, x, i, h), n2 = fd_at (loss, ctx, x, i, h / 2);
    ch++;
    if (fabs (n1 - n2) > 0.02 * scale) {
      if (g_getenv ("KDF_GRAD_DEBUG")) g_printerr ("skip %ld: %g %g %g\n", (long) i, n1, n2, g[i]);
      sk++;
      continue;
    }
    max_diff = fmax (max_diff, fabs (n2 - g[i]));
  }
  if (skipped)
    *skipped += sk;
  if (checked)
    *checked += ch;
  return max_diff / scale;
}

static inline double
grad_error (LossFn loss, gpointer ctx, float *x, const float *g, int64_t n, double h,
            int max_check)
{
  int sk = 0, ch = 0;
  double e = grad_error_ex (loss, ctx, x, g, n, h, max_check, &sk, &ch);
  /* kinks are rare at these step sizes; many skips mean a broken function */
  g_assert_cmpint (sk * 10, <=, ch);
  return e;
}

#define GRAD_TOL 1e-2

/* Reads a gzipped IDX file (magic, dims, bytes) through GIO's zlib decompressor.
 * Returns the payload and its dims. */
static inline guint8 *
read_idx_gz (const char *path, int *ndims, guint32 dims[3], gsize *len, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) fin = g_file_read (file, NULL, error);
  if (!fin)
    return NULL;
  g_autoptr (GZlibDecompressor) dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) in = g_converter_input_stream_new (G_INPUT_STREAM (fin),
                                                               G_CONVERTER (dec));
  g_autoptr (GByteArray) all = g_byte_array_new ();
  guint8 buf[65536];
  gssize got;
  while ((got = g_input_stream_read (in, buf, sizeof buf, NULL, error)) > 0)
    g_byte_array_append (all, buf, (guint) got);
  if (got < 0)
    return NULL;
  if (all->len < 4) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: short IDX file", path);
    return NULL;
  }
  int nd = all->data[3];
  if (nd < 1 || nd > 3 || all->len < 4u + 4u * nd) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: bad IDX header", path);
    return NULL;
  }
  gsize count = 1;
  for (int d = 0; d < nd; d++) {
    const guint8 *p = all->data + 4 + 4 * d;
    dims[d] = ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
    count *= dims[d];
  }
  gsize off = 4 + 4 * (gsize) nd;
  if (all->len != off + count) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: IDX size mismatch", path);
    return NULL;
  }
  *ndims = nd;
  *len = count;
  return g_memdup2 (all->data + off, count);
}

/* The 512-image Fashion-MNIST fixture as x (N×1×28×28 f32 in [0,1]) and y (N i32). */
static inline gboolean
load_fashion_fixture (KdfTensor **x, KdfTensor **y)
{
  const char *src = g_getenv ("KDF_TEST_SRCDIR");
  g_autofree char *ip = g_build_filename (src ? src : "tests", "nn", "fixtures",
                                          "fashion-train-512-images-idx3-ubyte.gz", NULL);
  g_autofree char *lp = g_build_filename (src ? src : "tests", "nn", "fixtures",
                                          "fashion-train-512-labels-idx1-ubyte.gz", NULL);
  g_autoptr (GError) err = NULL;
  int nd;
  guint32 d[3];
  gsize len;
  g_autofree guint8 *img = read_idx_gz (ip, &nd, d, &len, &err);
  g_assert_no_error (err);
  g_assert_cmpint (nd, ==, 3);
  g_autofree guint8 *lab = read_idx_gz (lp, &nd, d + 0, &len, &err);
  g_assert_no_error (err);
  const int64_t n = d[0];
  *x = kdf_tensor_new (KDF_DTYPE_F32, 4, (int64_t[]){ n, 1, 28, 28 });
  *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int64_t i = 0; i < n * 784; i++)
    kdf_tensor_f32 (*x)[i] = img[i] / 255.0f;
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_i32 (*y)[i] = lab[i];
  return TRUE;
}
