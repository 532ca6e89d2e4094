/* Layer kernels: forward and backward of linear, conv2d (im2col + GEMM), maxpool2d,
 * relu, dropout, l2norm, and softmax. Row-major, batch first, PyTorch layouts, so a
 * checkpoint means the same thing here and in torch. Every GEMM goes through
 * kdf_sgemm with the caller's thread count; everything else is a single pass with no
 * allocation. Backward kernels accumulate (llm.c). */
#include "config.h"

#include "nn-private.h"
#include "simd.h"

#include <stdlib.h>

#include <kdflow/nn.h>
#include <math.h>
#include <string.h>

/* max(a, b) as one maxss: fmaxf is a libm call at -O2 (it must order NaNs) */
static inline float
max_f (float a, float b)
{
  return a > b ? a : b;
}

/* ---- linear -------------------------------------------------------------------- */

/* bias (O) and ReLU in one pass over out (N,O): the GEMM wrote out with beta = 0, so
 * this is the only extra traffic of the layer. Branch-free: ReLU signs are random, a
 * branch per element mispredicts half the time. */
static void
bias_relu (float *restrict out, const float *restrict bias, int64_t n, int64_t o, gboolean relu)
{
  if (!bias && !relu)
    return;
  for (int64_t i = 0; i < n; i++) {
    float *restrict r = out + i * o;
    int64_t j = 0;
    for (; j + 4 <= o; j += 4) {
      kdf_v4f v = kdf_v4_load (r + j);
      if (bias)
        v += kdf_v4_load (bias + j);
      if (relu)
        v = kdf_v4_keep_pos (v, v);
      kdf_v4_store (r + j, v);
    }
    for (; j < o; j++) {
      float v = r[j] + (bias ? bias[j] : 0.0f);
      r[j] = relu ? max_f (v, 0.0f) : v;
    }
  }
}

void
kdf_linear_forward (float *out, const float *inp, const float *weight, const float *bias,
                    int64_t n, int64_t in, int64_t o, gboolean relu, int threads)
{
  /* out (N,O) = inp (N,I) · weightᵀ: weight (O,I) read as an I×O matrix through its
   * strides (rs 1, cs I) instead of a transposed copy. */
  kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, n, o, in, 1.0f, inp, in, 1, weight, 1, in, 0.0f, out,
             o, 1, threads);
  bias_relu (out, bias, n, o, relu);
}

/* dout (N,O) ⊙= [out > 0]: ReLU backward folded into the producer's backward. */
static void
relu_mask (float *restrict dout, const float *restrict out, int64_t nd)
{
  int64_t j = 0;
  for (; j + 4 <= nd; j += 4)
    kdf_v4_store (dout + j, kdf_v4_keep_pos (kdf_v4_load (dout + j), kdf_v4_load (out + j)));
  for (; j < nd; j++)
    dout[j] = out[j] > 0.0f ? dout[j] : 0.0f;
}

/* dbias (C) = gbeta·dbias + Σ over N rows of d (N, C) (row stride C). */
static void
bias_grad_rows (float *restrict dbias, const float *restrict d, int64_t n, int64_t c, float gbeta)
{
  if (gbeta == 0.0f)
    memset (dbias, 0, (size_t) c * sizeof (float));
  for (int64_t i = 0; i < n; i++) {
    const float *restrict r = d + i * c;
    int64_t j = 0;
    for (; j + 4 <= c; j += 4)
      kdf_v4_store (dbias + j, kdf_v4_load (dbias + j) + kdf_v4_load (r + j));
    for (; j < c; j++)
      dbias[j] += r[j];
  }
}

void
kdf_linear_backward (float *dinp, float *dweight, float *dbias, float *dout, const float *out,
                     const float *inp, const float *weight, int64_t n, int64_t in, int64_t o,
                     gboolean relu, float gbeta, int threads)
{
  if (relu)
    relu_mask (dout, out, n * o);
  /* dweight (O,I) = gbeta·dweight + doutᵀ (O,N) · inp (N,I); doutᵀ through strides. */
  kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, o, in, n, 1.0f, dout, 1, o, inp, in, 1, gbeta, dweight,
             in, 1, threads);
  if (dbias)
    bias_grad_rows (dbias, dout, n, o, gbeta);
  /* dinp (N,I) += dout (N,O) · weight (O,I) */
  if (dinp)
    kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, n, in, o, 1.0f, dout, o, 1, weight, in, 1, 1.0f,
               dinp, in, 1, threads);
}

/* ---- conv2d ---------------------------------------------------------------------- */

static inline int64_t
ceil_div_nonneg (int64_t a, int64_t s)
{
  return a <= 0 ? 0 : (a + s - 1) / s;
}

/* The range [lo, hi) of output columns whose input column ow·s − pad + kw is inside
 * [0, w). Outside it the im2col entry is padding. */
static inline void
valid_cols (int ow_n, int w, int kw, int s, int pad, int *lo, int *hi)
{
  int64_t l = ceil_div_nonneg (pad - kw, s);
  int64_t h = ceil_div_nonneg (w + pad - kw, s);
  if (h > ow_n)
    h = ow_n;
  if (l > h)
    l = h;
  *lo = (int) l;
  *hi = (int) h;
}

/* col (C·K·K, OH·OW) = the patches of one image inp (C,H,W): row (c,kh,kw) matches
 * the weight layout (O, C, K, K), so out = weight · col. */
static void
im2col (float *restrict col, const float *restrict inp, int c, int h, int w, int k, int s,
        int pad, int oh_n, int ow_n)
{
  const int64_t p = (int64_t) oh_n * ow_n;
  for (int ci = 0; ci < c; ci++)
    for (int kh = 0; kh < k; kh++)
      for (int kw = 0; kw < k; kw++) {
        float *dst = col + ((int64_t) (ci * k + kh) * k + kw) * p;
        int lo, hi;
        valid_cols (ow_n, w, kw, s, pad, &lo, &hi);
        for (int oh = 0; oh < oh_n; oh++) {
          float *d = dst + (int64_t) oh * ow_n;
          int ih = oh * s - pad + kh;
          if (ih < 0 || ih >= h) {
            memset (d, 0, (size_t) ow_n * sizeof (float));
            continue;
          }
          const float *srow = inp + ((int64_t) ci * h + ih) * w;
          if (lo > 0)
            memset (d, 0, (size_t) lo * sizeof (float));
          if (s == 1) {
            memcpy (d + lo, srow + lo - pad + kw, (size_t) (hi - lo) * sizeof (float));
          } else {
            for (int ow = lo; ow < hi; ow++)
              d[ow] = srow[ow * s - pad + kw];
          }
          if (hi < ow_n)
            memset (d + hi, 0, (size_t) (ow_n - hi) * sizeof (float));
        }
      }
}

/* dinp (C,H,W) += col2im(dcol (C·K·K, OH·OW)): the adjoint of im2col. */
static void
col2im_add (float *restrict dinp, const float *restrict dcol, int c, int h, int w, int k, int s,
            int pad, int oh_n, int ow_n)
{
  const int64_t p = (int64_t) oh_n * ow_n;
  for (int ci = 0; ci < c; ci++)
    for (int kh = 0; kh < k; kh++)
      for (int kw = 0; kw < k; kw++) {
        const float *src = dcol + ((int64_t) (ci * k + kh) * k + kw) * p;
        int lo, hi;
        valid_cols (ow_n, w, kw, s, pad, &lo, &hi);
        for (int oh = 0; oh < oh_n; oh++) {
          int ih = oh * s - pad + kh;
          if (ih < 0 || ih >= h)
            continue;
          const float *sr = src + (int64_t) oh * ow_n;
          float *drow = dinp + ((int64_t) ci * h + ih) * w;
          if (s == 1) {
            float *d = drow - pad + kw;
            int ow = lo;
            for (; ow + 4 <= hi; ow += 4)
              kdf_v4_store (d + ow, kdf_v4_load (d + ow) + kdf_v4_load (sr + ow));
            for (; ow < hi; ow++)
              d[ow] += sr[ow];
          } else
            for (int ow = lo; ow < hi; ow++)
              drow[ow * s - pad + kw] += sr[ow];
        }
      }
}

void
kdf_conv2d_forward (float *out, float *col, const float *inp, const float *weight,
                    const float *bias, int64_t n, int cin, int h, int w, int cout, int k,
                    int stride, int pad, gboolean relu, int threads)
{
  const int oh_n = (h + 2 * pad - k) / stride + 1, ow_n = (w + 2 * pad - k) / stride + 1;
  const int64_t p = (int64_t) oh_n * ow_n, kk = (int64_t) cin * k * k;
  /* One image at a time: its im2col (kk × p) stays in L2 while the GEMM reads it, and
   * the output of weight (cout × kk) · col is already the image's (C,OH,OW) plane. */
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * (int64_t) cin * h * w;
    float *y = out + i * (int64_t) cout * p;
    const float *b;
    if (k == 1 && stride == 1 && pad == 0)
      b = x; /* a 1×1 conv reads the image as its own im2col */
    else {
      im2col (col, x, cin, h, w, k, stride, pad, oh_n, ow_n);
      b = col;
    }
    kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, cout, p, kk, 1.0f, weight, kk, 1, b, p, 1, 0.0f, y, p,
               1, threads);
    for (int oc = 0; oc < cout; oc++) {
      float *restrict r = y + oc * p;
      const float bv = bias ? bias[oc] : 0.0f;
      const kdf_v4f bv8 = kdf_v4_splat (bv);
      int64_t j = 0;
      if (relu) {
        for (; j + 4 <= p; j += 4) {
          kdf_v4f v = kdf_v4_load (r + j) + bv8;
          kdf_v4_store (r + j, kdf_v4_keep_pos (v, v));
        }
        for (; j < p; j++)
          r[j] = max_f (r[j] + bv, 0.0f);
      } else if (bias)
        for (; j < p; j++)
          r[j] += bv;
    }
  }
}

void
kdf_conv2d_backward (float *dinp, float *dweight, float *dbias, float *dout, const float *out,
                     float *col, const float *inp, const float *weight, int64_t n, int cin,
                     int h, int w, int cout, int k, int stride, int pad, gboolean relu,
                     float gbeta, int threads)
{
  const int oh_n = (h + 2 * pad - k) / stride + 1, ow_n = (w + 2 * pad - k) / stride + 1;
  const int64_t p = (int64_t) oh_n * ow_n, kk = (int64_t) cin * k * k;
  const gboolean direct = k == 1 && stride == 1 && pad == 0;
  float *dcol = col + kk * p;
  if (relu)
    relu_mask (dout, out, n * cout * p);
  if (dbias && gbeta == 0.0f)
    memset (dbias, 0, (size_t) cout * sizeof (float));
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * (int64_t) cin * h * w;
    const float *dy = dout + i * (int64_t) cout * p;
    /* The patches are rebuilt rather than kept from forward: one image's im2col is
     * cheap and L2-sized, a whole batch's is tens of MB. */
    const float *c = x;
    if (!direct) {
      im2col (col, x, cin, h, w, k, stride, pad, oh_n, ow_n);
      c = col;
    }
    /* dweight (cout, kk) += dy (cout, p) · colᵀ (p, kk) */
    kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, cout, kk, p, 1.0f, dy, p, 1, c, 1, p,
               (i == 0) ? gbeta : 1.0f, dweight, kk, 1, threads);
    if (dbias)
      for (int oc = 0; oc < cout; oc++) {
        const float *restrict r = dy + oc * p;
        kdf_v4f acc = kdf_v4_splat (0.0f);
        int64_t j = 0;
        for (; j + 4 <= p; j += 4)
          acc += kdf_v4_load (r + j);
        float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (; j < p; j++)
          s += r[j];
        dbias[oc] += s;
      }
    if (dinp) {
      float *dx = dinp + i * (int64_t) cin * h * w;
      /* dcol (kk, p) = weightᵀ (kk, cout) · dy (cout, p) */
      if (direct) {
        kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, kk, p, cout, 1.0f, weight, 1, kk, dy, p, 1, 1.0f,
                   dx, p, 1, threads);
      } else {
        kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, kk, p, cout, 1.0f, weight, 1, kk, dy, p, 1, 0.0f,
                   dcol, p, 1, threads);
        col2im_add (dx, dcol, cin, h, w, k, stride, pad, oh_n, ow_n);
      }
    }
  }
}

/* ---- maxpool2d ------------------------------------------------------------------- */

/* The usual 2×2 stride-2 pool without branches: which of four values wins is random,
 * so a compare-and-branch per element mispredicts often; selects do not. */
static void
maxpool2x2 (float *restrict out, int32_t *restrict argmax, const float *restrict inp, int64_t planes,
            int h, int w)
{
  const int oh_n = h / 2, ow_n = w / 2;
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *x = inp + pl * h * w;
    float *y = out + pl * oh_n * ow_n;
    int32_t *a = argmax + pl * oh_n * ow_n;
    for (int oh = 0; oh < oh_n; oh++) {
      const float *r0 = x + (2 * oh) * w, *r1 = r0 + w;
      for (int ow = 0; ow < ow_n; ow++) {
        const int i0 = 2 * oh * w + 2 * ow;
        float v0 = r0[2 * ow], v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
        /* first maximum wins, as in the generic loop; comparisons become 0/1
         * integers, so there is no branch to mispredict */
        const int c01 = v1 > v0, c23 = v3 > v2;
        const float m01 = max_f (v0, v1), m23 = max_f (v2, v3);
        const int i01 = i0 + c01, i23 = i0 + w + c23;
        const int c = m23 > m01;
        y[oh * ow_n + ow] = max_f (m01, m23);
        a[oh * ow_n + ow] = i01 + c * (i23 - i01);
      }
    }
  }
}

void
kdf_maxpool2d_forward (float *out, int32_t *argmax, const float *inp, int64_t n, int c, int h,
                       int w, int k, int stride)
{
  if (k == 2 && stride == 2) {
    maxpool2x2 (out, argmax, inp, n * c, h, w);
    return;
  }
  const int oh_n = (h - k) / stride + 1, ow_n = (w - k) / stride + 1;
  for (int64_t pl = 0; pl < n * c; pl++) {
    const float *x = inp + pl * h * w;
    float *y = out + pl * oh_n * ow_n;
    int32_t *a = argmax + pl * oh_n * ow_n;
    for (int oh = 0; oh < oh_n; oh++)
      for (int ow = 0; ow < ow_n; ow++) {
        int best_i = (oh * stride) * w + ow * stride;
        float best = x[best_i];
        for (int kh = 0; kh < k; kh++)
          for (int kw = 0; kw < k; kw++) {
            int idx = (oh * stride + kh) * w + ow * stride + kw;
            if (x[idx] > best) {
              best = x[idx];
              best_i = idx;
            }
          }
        y[oh * ow_n + ow] = best;
        a[oh * ow_n + ow] = best_i;
      }
  }
}

/* dinp (N,C,H,W) = dout routed through argmax, OVERWRITING dinp (zeros where nothing
 * is routed): the model's path for a fresh gradient buffer, which saves zeroing a
 * whole activation-sized buffer first. Only for non-overlapping windows (K == S).
 * With RELU_OUT (the pool's input, a ReLU output) the ReLU's mask is applied on the
 * way: only routed elements can be nonzero, so the producer need not mask. */
void
kdf_maxpool2d_backward_set (float *dinp, const float *dout, const int32_t *argmax,
                            const float *relu_out, int64_t n, int c, int h, int w, int k,
                            int stride)
{
  g_return_if_fail (k == stride);
  const int oh_n = (h - k) / stride + 1, ow_n = (w - k) / stride + 1;
  const int64_t op = (int64_t) oh_n * ow_n;
  for (int64_t pl = 0; pl < n * c; pl++) {
    float *dx = dinp + pl * h * w;
    const float *dy = dout + pl * op;
    const int32_t *a = argmax + pl * op;
    /* one plane is a few kB: zeroing it right before the scatter stays in L1 */
    memset (dx, 0, (size_t) h * w * sizeof (float));
    if (relu_out) {
      const float *x = relu_out + pl * h * w;
      for (int64_t j = 0; j < op; j++)
        dx[a[j]] = x[a[j]] > 0.0f ? dy[j] : 0.0f;
    } else
      for (int64_t j = 0; j < op; j++)
        dx[a[j]] = dy[j];
  }
}

void
kdf_maxpool2d_backward (float *dinp, const float *dout, const int32_t *argmax, int64_t n, int c,
                        int h, int w, int k, int stride)
{
  const int64_t op = (int64_t) ((h - k) / stride + 1) * ((w - k) / stride + 1);
  for (int64_t pl = 0; pl < n * c; pl++) {
    float *dx = dinp + pl * h * w;
    const float *dy = dout + pl * op;
    const int32_t *a = argmax + pl * op;
    for (int64_t j = 0; j < op; j++)
      dx[a[j]] += dy[j];
  }
}

/* ---- elementwise ------------------------------------------------------------------ */

void
kdf_relu_forward (float *out, const float *inp, int64_t nd)
{
  for (int64_t j = 0; j < nd; j++)
    out[j] = max_f (inp[j], 0.0f);
}

void
kdf_relu_backward (float *dinp, const float *dout, const float *out, int64_t nd)
{
  for (int64_t j = 0; j < nd; j++)
    dinp[j] += out[j] > 0.0f ? dout[j] : 0.0f;
}

/* splitmix64: one GRand draw seeds a fast stream, so a dropout mask costs a few
 * cycles per element and still depends only on the caller's RNG. */
static inline guint64
splitmix64 (guint64 *s)
{
  guint64 z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void
kdf_dropout_forward (float *out, uint8_t *mask, const float *inp, int64_t nd, double p,
                     GRand *rng)
{
  if (p <= 0.0) {
    memcpy (out, inp, (size_t) nd * sizeof (float));
    memset (mask, 1, (size_t) nd);
    return;
  }
  guint64 state = ((guint64) g_rand_int (rng) << 32) | g_rand_int (rng);
  const guint64 cut = (guint64) (p * 4294967296.0);
  const float scale = (float) (1.0 / (1.0 - p));
  for (int64_t j = 0; j < nd; j++) {
    mask[j] = (splitmix64 (&state) >> 32) >= cut;
    out[j] = mask[j] ? inp[j] * scale : 0.0f;
  }
}

void
kdf_dropout_backward (float *dinp, const float *dout, const uint8_t *mask, int64_t nd, double p)
{
  const float scale = (float) (1.0 / (1.0 - p));
  for (int64_t j = 0; j < nd; j++)
    dinp[j] += mask[j] ? dout[j] * scale : 0.0f;
}

#define L2_EPS 1e-12

void
kdf_l2norm_forward (float *out, float *norm, const float *inp, int64_t n, int64_t d)
{
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * d;
    double ss = 0.0;
    for (int64_t j = 0; j < d; j++)
      ss += (double) x[j] * x[j];
    double den = fmax (sqrt (ss), L2_EPS);
    norm[i] = (float) den;
    for (int64_t j = 0; j < d; j++)
      out[i * d + j] = (float) (x[j] / den);
  }
}

void
kdf_l2norm_backward (float *dinp, const float *dout, const float *out, const float *norm,
                     int64_t n, int64_t d)
{
  for (int64_t i = 0; i < n; i++) {
    const float *y = out + i * d, *dy = dout + i * d;
    double dot = 0.0;
    /* Below the clamp the layer is x / eps, a linear map: no projection. */
    if (norm[i] > (float) L2_EPS)
      for (int64_t j = 0; j < d; j++)
        dot += (double) y[j] * dy[j];
    const double inv = 1.0 / norm[i];
    for (int64_t j = 0; j < d; j++)
      dinp[i * d + j] += (float) ((dy[j] - y[j] * dot) * inv);
  }
}

/* ---- softmax ---------------------------------------------------------------------- */

void
kdf_softmax (float *out, const float *logits, int64_t n, int64_t c, double t)
{
  const double it = 1.0 / t;
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * c;
    float *p = out + i * c;
    float mx = z[0];
    for (int64_t j = 1; j < c; j++)
      mx = z[j] > mx ? z[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) {
      double e = exp ((z[j] - (double) mx) * it);
      p[j] = (float) e;
      s += e;
    }
    const double is = 1.0 / s;
    for (int64_t j = 0; j < c; j++)
      p[j] = (float) (p[j] * is);
  }
}

void
kdf_log_softmax (float *out, const float *logits, int64_t n, int64_t c, double t)
{
  const double it = 1.0 / t;
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * c;
    float *p = out + i * c;
    float mx = z[0];
    for (int64_t j = 1; j < c; j++)
      mx = z[j] > mx ? z[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
      s += exp ((z[j] - (double) mx) * it);
    const double ls = log (s);
    for (int64_t j = 0; j < c; j++)
      p[j] = (float) ((z[j] - (double) mx) * it - ls);
  }
}

void
kdf_cross_entropy (float *out, const float *logits, const int32_t *labels, int64_t n, int64_t c)
{
  for (int64_t i = 0; i < n; i++) {
    const float *z = logits + i * c;
    float mx = z[0];
    for (int64_t j = 1; j < c; j++)
      mx = z[j] > mx ? z[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
      s += exp ((double) z[j] - mx);
    int32_t y = labels[i];
    out[i] = (y >= 0 && y < c) ? (float) (log (s) - ((double) z[y] - mx)) : NAN;
  }
}

/* ---- memory -------------------------------------------------------------------- */

float *
kdf_nn_alloc (int64_t n_floats)
{
  gsize bytes = ((gsize) (n_floats > 0 ? n_floats : 1) * sizeof (float) + 63) & ~(gsize) 63;
  float *p = aligned_alloc (64, bytes);
  if (!p)
    g_error ("kdflow: out of memory allocating %" G_GSIZE_FORMAT " bytes", bytes);
  memset (p, 0, bytes);
  return p;
}

void
kdf_nn_free (void *p)
{
  free (p);
}

/* ---- rows ------------------------------------------------------------------------ */

gboolean
kdf_gather_rows (float *out, KdfTensor *x, const int32_t *rows, int64_t n, GError **error)
{
  g_return_val_if_fail (out != NULL && x != NULL && (rows != NULL || n == 0), FALSE);
  if (x->dtype != KDF_DTYPE_F32 || x->rank < 1) {
    g_autofree char *d = kdf_tensor_describe (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "gather: data must be f32 with rank >= 1, got %s", d);
    return FALSE;
  }
  /* kept on disk (u8 until the batch): read and decode the batch's rows only */
  if (kdf_tensor_is_on_disk (x))
    return kdf_tensor_read_rows (x, rows, n, out, error);
  const int64_t nrows = x->shape[0];
  const int64_t d = nrows > 0 ? kdf_tensor_numel (x) / nrows : 0;
  for (int64_t i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= nrows) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "gather: row %d out of range (the data has %" G_GINT64_FORMAT " rows)", rows[i],
                   (gint64) nrows);
      return FALSE;
    }
  const float *base = kdf_tensor_f32 (x);
  if (kdf_tensor_is_contiguous (x)) {
    for (int64_t i = 0; i < n; i++)
      memcpy (out + i * d, base + (int64_t) rows[i] * d, (size_t) d * sizeof (float));
    return TRUE;
  }
  /* Strided data: walk dims 1..3 of each row (unused dims are 1). */
  const int64_t *sh = x->shape, *st = x->strides;
  for (int64_t i = 0; i < n; i++) {
    const float *r = base + (int64_t) rows[i] * st[0];
    float *o = out + i * d;
    for (int64_t a = 0; a < (x->rank > 1 ? sh[1] : 1); a++)
      for (int64_t b = 0; b < (x->rank > 2 ? sh[2] : 1); b++)
        for (int64_t c = 0; c < (x->rank > 3 ? sh[3] : 1); c++)
          *o++ = r[a * (x->rank > 1 ? st[1] : 0) + b * (x->rank > 2 ? st[2] : 0) +
                   c * (x->rank > 3 ? st[3] : 0)];
  }
  return TRUE;
}

