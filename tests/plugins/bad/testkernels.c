/* Plain C functions with no knowledge of kdflow, called as foreign kernels. */
#include <stdint.h>

/* out[i] = sum_j x[i*d + j] * w[j] + bias   (x: n×d, w: d, out: n) */
void kdf_test_matvec (const float *x, const float *w, int64_t n, int64_t d, double bias, float *out);
void
kdf_test_matvec (const float *x, const float *w, int64_t n, int64_t d, double bias, float *out)
{
  for (int64_t i = 0; i < n; i++) {
    float s = (float) bias;
    for (int64_t j = 0; j < d; j++)
      s += x[i * d + j] * w[j];
    out[i] = s;
  }
}

/* returns 0 if every entry of x is finite and ≥ 0, else 7 */
int kdf_test_check_nonneg (const float *x, int32_t n);
int
kdf_test_check_nonneg (const float *x, int32_t n)
{
  for (int32_t i = 0; i < n; i++)
    if (!(x[i] >= 0))
      return 7;
  return 0;
}
