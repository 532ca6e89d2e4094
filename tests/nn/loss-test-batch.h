/* The mini-batch the loss-term tests check: N rows over one or two networks, with
 * random logits, and the term's weighted value for finite differences. */
#pragma once

#include "nn-test-util.h"

#define N 6
#define C 4

typedef struct {
  KdfLoss *loss;
  KdfLossBatch b;
  float *logits[2];
} LossCtx;

static double
loss_value (gpointer p)
{
  LossCtx *c = p;
  KdfLossBatch b = c->b;
  for (int k = 0; k < b.n_nets; k++)
    b.out[k][0].grad_logits = NULL;
  b.sample_loss = NULL;
  double v = 0;
  g_autoptr (GError) err = NULL;
  g_assert_true (kdf_loss_compute (c->loss, &b, &v, &err));
  g_assert_no_error (err);
  return c->loss->weight * v;
}

/* A batch of N rows (dataset rows 5,3,1,0,2,4 of 6) over one or two networks. */
static void
ctx_init (LossCtx *c, KdfLoss *l, int nets, guint32 seed)
{
  static const int32_t rows[N] = { 5, 3, 1, 0, 2, 4 };
  GRand *r = g_rand_new_with_seed (seed);
  memset (c, 0, sizeof *c);
  c->loss = l;
  c->b.n = N;
  c->b.rows = rows;
  c->b.n_nets = nets;
  c->b.n_views = 1;
  c->b.threads = 1;
  for (int k = 0; k < nets; k++) {
    c->logits[k] = g_new0 (float, N * C);
    fill_uniform (c->logits[k], N * C, r, -3, 3);
    c->b.out[k][0].logits = c->logits[k];
    c->b.out[k][0].grad_logits = g_new0 (float, N * C);
    c->b.out[k][0].n_classes = C;
  }
  g_rand_free (r);
}

static void
ctx_clear (LossCtx *c)
{
  for (int k = 0; k < c->b.n_nets; k++) {
    g_free (c->logits[k]);
    g_free (c->b.out[k][0].grad_logits);
  }
}

