/* bench/detect: the synthetic probabilities both detection benches time (bench-detect,
 * bench-dist-detect), and the loss_ranking options they share.
 *
 * N rows of C classes: softmax of Gaussian logits N(0,1) with +2.5 on the true class,
 * 20 % of the labels flipped to another class uniformly; seeded, so every run times
 * the same input. */
#ifndef KDF_BENCH_DETECT_DATA_H
#define KDF_BENCH_DETECT_DATA_H

#include <glib.h>
#include <kdflow/detect.h>
#include <stdint.h>

typedef struct {
  int64_t n;
  int c;
  float *p;
  double *p64;
  int32_t *y;
  uint8_t *flipped;
  float *self;  /* p[i, ỹ_i] */
  float *loss;  /* −log p[i, ỹ_i] */
} Data;

/* Fills D with N rows of C ≤ 64 classes drawn from SEED (frees with free_data). */
void make_data (Data *d, int64_t n, int c, guint32 seed);
void free_data (Data *d);

/* The loss_ranking both benches time: keep 0.8 of the rows by the loss, over all rows
 * or (PER_CLASS) within each given label's class of D. */
void rank_options (KdfRankOptions *o, const Data *d, gboolean per_class);

#endif
