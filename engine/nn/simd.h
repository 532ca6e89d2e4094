/* Four-wide float vectors through GCC/Clang vector extensions: the elementwise
 * passes of training (bias + ReLU, ReLU masks, bias gradients, optimizer updates)
 * are branch-free and vectorised at -O2 without intrinsics or per-file flags (the
 * compiler splits them into SSE halves when AVX is not enabled). Loads and stores go
 * through memcpy, so no alignment is assumed. */
#pragma once

#include <string.h>

typedef float kdf_v4f __attribute__ ((vector_size (16)));
typedef int kdf_v4i __attribute__ ((vector_size (16)));

static inline kdf_v4f
kdf_v4_load (const float *p)
{
  kdf_v4f v;
  memcpy (&v, p, sizeof v);
  return v;
}

static inline void
kdf_v4_store (float *p, kdf_v4f v)
{
  memcpy (p, &v, sizeof v);
}

static inline kdf_v4f
kdf_v4_splat (float x)
{
  return (kdf_v4f){ x, x, x, x };
}

/* v where m > 0, else 0 (m may be v itself: ReLU) */
static inline kdf_v4f
kdf_v4_keep_pos (kdf_v4f v, kdf_v4f m)
{
  kdf_v4i mask = m > kdf_v4_splat (0.0f);
  return (kdf_v4f) ((kdf_v4i) v & mask);
}
