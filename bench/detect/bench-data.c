/* bench/detect: the synthetic probabilities and options of bench-data.h. */
#include "bench-data.h"

#include <math.h>

void
make_data (Data *d, int64_t n, int c, guint32 seed)
{
  d->n = n;
  d->c = c;
  d->p = g_new (float, n * c);
  d->p64 = g_new (double, n * c);
  d->y = g_new (int32_t, n);
  d->flipped = g_new (uint8_t, n);
  d->self = g_new (float, n);
  d->loss = g_new (float, n);
  GRand *rng = g_rand_new_with_seed (seed);
  double z[64];
  for (int64_t i = 0; i < n; i++) {
    int truth = g_rand_int_range (rng, 0, c);
    double m = -INFINITY, s = 0;
    for (int j = 0; j < c; j += 2) {
      double u1 = 1.0 - g_rand_double (rng), u2 = g_rand_double (rng);
      double r = sqrt (-2.0 * log (u1));
      z[j] = r * cos (2 * G_PI * u2);
      if (j + 1 < c)
        z[j + 1] = r * sin (2 * G_PI * u2);
    }
    z[truth] += 2.5;
    for (int j = 0; j < c; j++)
      m = MAX (m, z[j]);
    for (int j = 0; j < c; j++)
      s += exp (z[j] - m);
    for (int j = 0; j < c; j++) {
      d->p64[i * c + j] = exp (z[j] - m) / s;
      d->p[i * c + j] = (float) d->p64[i * c + j];
    }
    d->flipped[i] = g_rand_double (rng) < 0.2;
    d->y[i] = d->flipped[i] ? (truth + g_rand_int_range (rng, 1, c)) % c : truth;
    d->self[i] = d->p[i * c + d->y[i]];
    d->loss[i] = (float) -log (d->p64[i * c + d->y[i]]);
  }
  g_rand_free (rng);
}

void
free_data (Data *d)
{
  g_free (d->p);
  g_free (d->p64);
  g_free (d->y);
  g_free (d->flipped);
  g_free (d->self);
  g_free (d->loss);
}

void
rank_options (KdfRankOptions *o, const Data *d, gboolean per_class)
{
  kdf_rank_options_init (o);
  o->keep = 0.8;
  if (per_class) {
    o->scope = KDF_RANK_SCOPE_PER_CLASS;
    o->labels = d->y;
    o->n_classes = d->c;
  }
}
