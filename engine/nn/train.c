/* The training loop a student_update node runs: gather a mini-batch by dataset rows,
 * augment (one or two views), mixup, forward every network, sum the loss terms,
 * backward, step. All randomness comes from the caller's GRand, drawn in a fixed
 * order, so a run is a function of the seed (and, at one thread, bit-identical). */
#include "config.h"

#include "nn-private.h"

#include <kdflow/dist.h>

#include <math.h>
#include <string.h>

/* ---- rows, augmentation, mixup ----------------------------------------------------- */

void
kdf_augment (float *out, const float *in, int64_t n, int c, int h, int w, guint flags, int shift,
             GRand *rng)
{
  g_return_if_fail (out != in && rng != NULL);
  const int64_t plane = (int64_t) h * w;
  for (int64_t i = 0; i < n; i++) {
    /* RandomCrop(padding = shift) then RandomHorizontalFlip, as torchvision: the
     * image moves by (dy, dx) ∈ [−shift, shift]² with zeros coming in. */
    int dy = 0, dx = 0;
    if ((flags & KDF_AUGMENT_SHIFT) && shift > 0) {
      dy = g_rand_int_range (rng, -shift, shift + 1);
      dx = g_rand_int_range (rng, -shift, shift + 1);
    }
    gboolean flip = (flags & KDF_AUGMENT_FLIP) ? g_rand_boolean (rng) : FALSE;
    for (int ch = 0; ch < c; ch++) {
      const float *src = in + (i * c + ch) * plane;
      float *dst = out + (i * c + ch) * plane;
      for (int y = 0; y < h; y++) {
        int sy = y + dy;
        float *d = dst + (int64_t) y * w;
        if (sy < 0 || sy >= h) {
          memset (d, 0, (size_t) w * sizeof (float));
          continue;
        }
        const float *s = src + (int64_t) sy * w;
        for (int x = 0; x < w; x++) {
          int sx = (flip ? w - 1 - x : x) + dx;
          d[x] = (sx >= 0 && sx < w) ? s[sx] : 0.0f;
        }
      }
    }
  }
}

void
kdf_rotate90 (float *out, const float *in, int64_t n, int c, int s, const int32_t *rot)
{
  g_return_if_fail (out != in && rot != NULL);
  const int64_t plane = (int64_t) s * s;
  for (int64_t i = 0; i < n; i++) {
    const int k = ((rot[i] % 4) + 4) % 4;
    for (int ch = 0; ch < c; ch++) {
      const float *src = in + (i * c + ch) * plane;
      float *dst = out + (i * c + ch) * plane;
      for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
          /* a counter-clockwise quarter turn: out(y, x) = in(x, S−1−y) */
          int sy, sx;
          switch (k) {
          case 1: sy = x; sx = s - 1 - y; break;
          case 2: sy = s - 1 - y; sx = s - 1 - x; break;
          case 3: sy = s - 1 - x; sx = y; break;
          default: sy = y; sx = x; break;
          }
          dst[(int64_t) y * s + x] = src[(int64_t) sy * s + sx];
        }
    }
  }
}

/* x (N) += σ·N(0,1), Box–Muller pairs from RNG. */
static void
add_noise (float *x, int64_t n, double sigma, GRand *rng)
{
  for (int64_t i = 0; i < n; i += 2) {
    double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
    double r = sigma * sqrt (-2.0 * log (u1 > 0.0 ? u1 : 1e-300));
    x[i] += (float) (r * cos (2.0 * G_PI * u2));
    if (i + 1 < n)
      x[i + 1] += (float) (r * sin (2.0 * G_PI * u2));
  }
}

/* Gamma(a, 1) by Marsaglia and Tsang (2000), with the a < 1 boost
 * Gamma(a) = Gamma(a + 1)·U^(1/a). */
static double
rand_gamma (GRand *rng, double a)
{
  if (a < 1.0) {
    double u = g_rand_double (rng);
    return rand_gamma (rng, a + 1.0) * pow (u > 0.0 ? u : 1e-300, 1.0 / a);
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / sqrt (9.0 * d);
  for (;;) {
    double x, v;
    do {
      /* a standard normal by Box–Muller */
      double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
      x = sqrt (-2.0 * log (u1 > 0.0 ? u1 : 1e-300)) * cos (2.0 * G_PI * u2);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = g_rand_double (rng);
    if (u < 1.0 - 0.0331 * x * x * x * x || log (u > 0.0 ? u : 1e-300) < 0.5 * x * x + d * (1.0 - v + log (v)))
      return d * v;
  }
}

double
kdf_rand_beta (GRand *rng, double alpha)
{
  g_return_val_if_fail (rng != NULL && alpha > 0.0, 0.5);
  double x = rand_gamma (rng, alpha), y = rand_gamma (rng, alpha);
  return x + y > 0.0 ? x / (x + y) : 0.5;
}

/* ---- the trainer ------------------------------------------------------------------ */

struct _KdfTrainer {
  KdfModel *net[2];
  int n_nets;
  KdfOptimizer *opt;
  KdfTrainConfig cfg;
  int img_c, img_h, img_w; /* 0 if augmentation cannot apply */
  int64_t cap;              /* rows the buffers hold (one view) */
  float *xbuf;              /* cap × D gathered rows */
  float *vbuf;              /* 2·cap × D views */
  float *mbuf;              /* 2·cap × D mixed views */
  float *fbuf;              /* 3·cap × D: the views and the rotated copies, one forward */
  int32_t *rot;             /* cap quarter turns */
  int32_t *mix;             /* cap */
  float *sl;                /* cap per-sample losses */
  uint8_t *sel;             /* cap flags: the batch's selection */
  int32_t *order;           /* an epoch's row order */
  int64_t order_n;
  const int32_t *view;      /* the data's rows as rows of X (kdf_trainer_set_rows), or NULL */
  int64_t view_n;
  int32_t *xrows;           /* cap: a batch's rows of X through the view */
  guint64 steps;            /* mini-batches trained (seeds a rank's per-step stream) */
};

KdfTrainer *
kdf_trainer_new (KdfModel *net0, KdfModel *net1, KdfOptimizer *opt, const KdfTrainConfig *cfg,
                 GError **error)
{
  g_return_val_if_fail (net0 != NULL && opt != NULL, NULL);
  if (net1 && (net1->in_size != net0->in_size)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "trainer: the two networks take different inputs ('%s', '%s')", net0->arch,
                 net1->arch);
    return NULL;
  }
  if (net1 == net0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "trainer: a pair needs two different models");
    return NULL;
  }
  KdfTrainConfig c = cfg ? *cfg : (KdfTrainConfig){ 0 };
  if (c.batch <= 0)
    c.batch = 128;
  if (c.shift <= 0)
    c.shift = 2;
  if (!(c.noise >= 0.0) || !isfinite (c.noise)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "trainer: noise must be >= 0");
    return NULL;
  }
  if (c.mixup_alpha < 0.0 || !isfinite (c.mixup_alpha)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "trainer: mixup alpha must be >= 0");
    return NULL;
  }
  int ic = c.image_c, ih = c.image_h, iw = c.image_w;
  if (ic <= 0 || ih <= 0 || iw <= 0) {
    if (net0->in_rank == 3) {
      ic = (int) net0->in_shape[0];
      ih = (int) net0->in_shape[1];
      iw = (int) net0->in_shape[2];
    } else {
      int s = (int) lround (sqrt ((double) net0->in_size));
      if ((int64_t) s * s == net0->in_size) {
        ic = 1;
        ih = iw = s;
      } else
        ic = ih = iw = 0;
    }
  } else if ((int64_t) ic * ih * iw != net0->in_size) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "trainer: image shape %dx%dx%d does not match the model input of %" G_GINT64_FORMAT,
                 ic, ih, iw, (gint64) net0->in_size);
    return NULL;
  }
  if (c.augment && ic == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "trainer: augmentation needs an image shape (the input of '%s' is not square)",
                 net0->arch);
    return NULL;
  }
  KdfModel *nets[2] = { net0, net1 };
  {
    /* a batch of activations through every net, the optimizer's state (two moments at
     * most) and the trainer's own buffers, within the memory budget */
    guint64 floats = 8 * (guint64) c.batch * (guint64) net0->in_size; /* x, 2 views, 2 mixed, 3 with rotations */
    for (int k = 0; k < (net1 ? 2 : 1); k++)
      for (guint j = 0; j < kdf_model_n_nets (nets[k]); j++) {
        const KdfNet *nt = kdf_model_nth_net (nets[k], j);
        floats += 2 * (guint64) nt->n_params + (guint64) c.batch * (guint64) nt->row_floats;
      }
    g_autofree char *what = g_strdup_printf ("training '%s' in batches of %" G_GINT64_FORMAT, net0->arch, (gint64) c.batch);
    if (!kdf_memory_check_elements (floats, sizeof (float), what, error))
      return NULL;
  }
  for (int k = 0; k < (net1 ? 2 : 1); k++)
    if (!kdf_optimizer_holds (opt, nets[k])) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "trainer: the optimizer does not hold network %d ('%s')", k, nets[k]->arch);
      return NULL;
    }
  KdfTrainer *tr = g_new0 (KdfTrainer, 1);
  tr->net[0] = kdf_model_ref (net0);
  tr->net[1] = net1 ? kdf_model_ref (net1) : NULL;
  tr->n_nets = net1 ? 2 : 1;
  tr->opt = kdf_optimizer_ref (opt);
  tr->cfg = c;
  tr->img_c = ic;
  tr->img_h = ih;
  tr->img_w = iw;
  return tr;
}

void
kdf_trainer_free (KdfTrainer *tr)
{
  if (!tr)
    return;
  kdf_model_unref (tr->net[0]);
  if (tr->net[1])
    kdf_model_unref (tr->net[1]);
  kdf_optimizer_unref (tr->opt);
  kdf_nn_free (tr->xbuf);
  kdf_nn_free (tr->vbuf);
  kdf_nn_free (tr->mbuf);
  kdf_nn_free (tr->fbuf);
  g_free (tr->rot);
  g_free (tr->mix);
  g_free (tr->sl);
  g_free (tr->sel);
  g_free (tr->order);
  g_free (tr->xrows);
  g_free (tr);
}

static void
trainer_reserve (KdfTrainer *tr, int64_t n)
{
  if (n <= tr->cap)
    return;
  const int64_t d = tr->net[0]->in_size;
  kdf_nn_free (tr->xbuf);
  kdf_nn_free (tr->vbuf);
  kdf_nn_free (tr->mbuf);
  kdf_nn_free (tr->fbuf);
  tr->fbuf = NULL; /* made when a term asks for rotations */
  tr->rot = g_renew (int32_t, tr->rot, n);
  tr->xbuf = kdf_nn_alloc (n * d);
  tr->vbuf = kdf_nn_alloc (2 * n * d);
  tr->mbuf = kdf_nn_alloc (2 * n * d);
  tr->mix = g_renew (int32_t, tr->mix, n);
  tr->sl = g_renew (float, tr->sl, n);
  tr->sel = g_renew (uint8_t, tr->sel, n);
  tr->xrows = g_renew (int32_t, tr->xrows, n);
  tr->cap = n;
}

static gboolean
check_data (KdfTrainer *tr, KdfTensor *x, GError **error)
{
  if (x->dtype != KDF_DTYPE_F32 || x->rank < 1 ||
      (x->shape[0] > 0 && kdf_tensor_numel (x) / x->shape[0] != tr->net[0]->in_size)) {
    g_autofree char *d = kdf_tensor_describe (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "trainer: data must be f32 with %" G_GINT64_FORMAT " values per row for '%s', got %s",
                 (gint64) tr->net[0]->in_size, tr->net[0]->arch, d);
    return FALSE;
  }
  return TRUE;
}

/* A term that owns a model (AWE's weight network) trains it with the networks: the
 * optimizer takes it on first sight, so kdf_optimizer_zero_grad zeroes its gradients
 * before every step and the step updates it. */
static gboolean
check_term_model (KdfTrainer *tr, guint i, KdfLoss *l, GError **error)
{
  if (!l->model)
    return TRUE;
  for (int k = 0; k < tr->n_nets; k++)
    if (l->model == tr->net[k]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss term %u ('%s') owns a model that is one of the trained networks", i + 1,
                   l->name);
      return FALSE;
    }
  if (!kdf_optimizer_holds (tr->opt, l->model) &&
      !kdf_optimizer_add_model (tr->opt, l->model, error))
    return FALSE;
  return TRUE;
}

/* The fused step: a layer's parameters are updated as soon as its gradient is final. */
static void
step_layer (gpointer opt, KdfNet *net, int64_t off, int64_t len)
{
  kdf_optimizer_step_range (opt, net, off, len);
}

static void
step_net_done (gpointer opt, KdfNet *net)
{
  kdf_optimizer_net_done (opt, net);
}

/* One mini-batch. DEFER: leave the gradients in the nets for the caller to reduce and
 * step (data-parallel runs); otherwise backward and the optimizer step are fused. */
static gboolean
trainer_step (KdfTrainer *tr, KdfTensor *x, const int32_t *rows, int64_t n,
              KdfLoss *const *losses, guint n_losses, GRand *rng, int threads, double *loss,
              float *sample_loss, gboolean defer, GError **error)
{
  if (!check_data (tr, x, error))
    return FALSE;
  guint needs = 0;
  for (guint i = 0; i < n_losses; i++) {
    needs |= losses[i]->needs;
    if ((losses[i]->needs & KDF_LOSS_NEEDS_PARTNER) && tr->n_nets < 2) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss '%s' needs a pair of networks, the trainer has one", losses[i]->name);
      return FALSE;
    }
    if (!check_term_model (tr, i, losses[i], error))
      return FALSE;
  }
  const int n_views = (needs & KDF_LOSS_NEEDS_TWO_VIEWS) ? 2 : 1;
  const int64_t d = tr->net[0]->in_size;
  trainer_reserve (tr, n);
  const int32_t *xrows = rows; /* the rows of X to gather; the terms index the data's rows */
  if (tr->view) {
    /* an index view: data row r is X's row view[r] (range-checked by the gather) */
    for (int64_t i = 0; i < n; i++) {
      if (rows[i] < 0 || rows[i] >= tr->view_n) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "trainer: row %d outside the %" G_GINT64_FORMAT " rows of the view", rows[i],
                     (gint64) tr->view_n);
        return FALSE;
      }
      tr->xrows[i] = tr->view[rows[i]];
    }
    xrows = tr->xrows;
  }
  if (!kdf_gather_rows (tr->xbuf, x, xrows, n, error))
    return FALSE;

  /* Views: each an independent augmentation of the gathered rows (or a copy). */
  const float *input = tr->xbuf;
  if (tr->cfg.augment) {
    for (int v = 0; v < n_views; v++)
      kdf_augment (tr->vbuf + v * n * d, tr->xbuf, n, tr->img_c, tr->img_h, tr->img_w,
                   tr->cfg.augment, tr->cfg.shift, rng);
    input = tr->vbuf;
  } else if (n_views == 2 || tr->cfg.noise > 0.0) {
    for (int v = 0; v < n_views; v++)
      memcpy (tr->vbuf + v * n * d, tr->xbuf, (size_t) (n * d) * sizeof (float));
    input = tr->vbuf;
  }
  if (tr->cfg.noise > 0.0)
    add_noise (tr->vbuf, n_views * n * d, tr->cfg.noise, rng);
  /* Mixup (Zhang et al. 2018): x̃_i = λ x_i + (1−λ) x_π(i), one λ and one permutation
   * per batch, the same for both views; the terms mix their targets with them. */
  double lambda = 1.0;
  const int32_t *mix = NULL;
  if (tr->cfg.mixup_alpha > 0.0 && n > 1) {
    lambda = kdf_rand_beta (rng, tr->cfg.mixup_alpha);
    for (int64_t i = 0; i < n; i++)
      tr->mix[i] = (int32_t) i;
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = g_rand_int_range (rng, 0, (gint32) (i + 1));
      int32_t t = tr->mix[i];
      tr->mix[i] = tr->mix[j];
      tr->mix[j] = t;
    }
    const float la = (float) lambda, lb = (float) (1.0 - lambda);
    for (int v = 0; v < n_views; v++) {
      const float *src = input + v * n * d;
      float *dst = tr->mbuf + v * n * d;
      for (int64_t i = 0; i < n; i++) {
        const float *a = src + i * d, *b = src + (int64_t) tr->mix[i] * d;
        float *o = dst + i * d;
        for (int64_t j = 0; j < d; j++)
          o[j] = la * a[j] + lb * b[j];
      }
    }
    input = tr->mbuf;
    mix = tr->mix;
  }

  /* Rotations (rotation_loss): one more block of n rows, the first view's input of
   * each row turned by a uniform 0..3 quarter turns, in the same forward. */
  int64_t n_rows = n_views * n;
  const gboolean rotate = (needs & KDF_LOSS_NEEDS_ROTATION) != 0;
  if (rotate) {
    if (tr->img_c == 0 || tr->img_h != tr->img_w) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "a loss term predicts rotations, but the input of '%s' is not a square image",
                   tr->net[0]->arch);
      return FALSE;
    }
    if (mix) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "a loss term predicts rotations, which does not combine with mixup (set "
                   "mixup = 0)");
      return FALSE;
    }
    if (!tr->fbuf)
      tr->fbuf = kdf_nn_alloc (3 * tr->cap * d);
    memcpy (tr->fbuf, input, (size_t) (n_rows * d) * sizeof (float));
    for (int64_t i = 0; i < n; i++)
      tr->rot[i] = g_rand_int_range (rng, 0, 4);
    kdf_rotate90 (tr->fbuf + n_rows * d, input, n, tr->img_c, tr->img_h, tr->rot);
    input = tr->fbuf;
    n_rows += n;
  }

  KdfLossBatchExt ext = { .rng = rng, .rot = rotate ? tr->rot : NULL };
  KdfLossBatch b = { .n = n, .rows = rows, .n_nets = tr->n_nets, .n_views = n_views,
                     .mix = mix, .lambda = lambda, .threads = threads, .ext = &ext };
  kdf_optimizer_zero_grad (tr->opt);
  for (int k = 0; k < tr->n_nets; k++) {
    KdfModel *m = tr->net[k];
    kdf_model_forward (m, input, n_rows, TRUE, rng, threads);
    if (rotate) {
      const int64_t o = n_views * n;
      KdfLossView *rv = &ext.rot_out[k];
      rv->n_classes = m->n_classes;
      rv->n_features = m->n_features;
      rv->logits = kdf_model_get_logits (m) + o * m->n_classes;
      rv->grad_logits = kdf_model_get_grad_logits (m) + o * m->n_classes;
      rv->features = kdf_model_get_features (m) + o * m->n_features;
      rv->grad_features = kdf_model_get_grad_features (m) + o * m->n_features;
      rv->model = m;
    }
    for (int v = 0; v < n_views; v++) {
      KdfLossView *lv = &b.out[k][v];
      lv->n_classes = m->n_classes;
      lv->n_features = m->n_features;
      lv->logits = kdf_model_get_logits (m) + v * n * m->n_classes;
      lv->grad_logits = kdf_model_get_grad_logits (m) + v * n * m->n_classes;
      lv->features = kdf_model_get_features (m) + v * n * m->n_features;
      lv->grad_features = kdf_model_get_grad_features (m) + v * n * m->n_features;
      lv->model = m;
    }
  }
  float *sl = sample_loss ? sample_loss : NULL;
  if (sl)
    memset (sl, 0, (size_t) n * sizeof (float));
  b.sample_loss = sl;
  memset (tr->sel, 1, (size_t) n);
  b.selected = tr->sel;
  double total = 0.0;
  for (guint i = 0; i < n_losses; i++) {
    double v = 0.0;
    if (!kdf_loss_compute (losses[i], &b, &v, error))
      return FALSE;
    if (!isfinite (v)) {
      /* before any weight changes: the message names the term that went */
      g_set_error (error, KDF_ERROR, KDF_ERROR_NODE,
                   "the loss is %g: term %u ('%s') gave %g (learning rate %g too high?)", v,
                   i + 1, losses[i]->name, v, kdf_optimizer_get_lr (tr->opt));
      return FALSE;
    }
    total += losses[i]->weight * v;
  }
  if (loss)
    *loss = total;
  /* backward and step fused per layer: same result as backward then step, but each
   * layer's update reads a gradient that is still in cache (DEFER: backward only) */
  const KdfBackwardHooks fused = { step_layer, step_net_done, tr->opt };
  const KdfBackwardHooks *hooks = defer ? NULL : &fused;
  if (!defer)
    kdf_optimizer_begin_step (tr->opt);
  for (int k = 0; k < tr->n_nets; k++)
    kdf_model_backward_ex (tr->net[k], hooks, threads);
  for (guint i = 0; i < n_losses; i++)
    if (losses[i]->model && losses[i]->model->train_pass)
      kdf_model_backward_ex (losses[i]->model, hooks, threads);
  if (!defer)
    kdf_optimizer_end_step (tr->opt);
  return TRUE;
}

gboolean
kdf_trainer_step (KdfTrainer *tr, KdfTensor *x, const int32_t *rows, int64_t n,
                  KdfLoss *const *losses, guint n_losses, GRand *rng, int threads, double *loss,
                  float *sample_loss, GError **error)
{
  g_return_val_if_fail (tr != NULL && x != NULL && rows != NULL && n > 0, FALSE);
  g_return_val_if_fail (losses != NULL || n_losses == 0, FALSE);
  g_return_val_if_fail (rng != NULL, FALSE);
  return trainer_step (tr, x, rows, n, losses, n_losses, rng, threads, loss, sample_loss, FALSE,
                       error);
}

/* A data-parallel step (kdflow/dist.h): this rank trains on its block of the global
 * batch ROWS[0..NB), each rank's gradient is weighted by its share of the batch and the
 * sum over ranks is the gradient of the whole batch's mean loss; every rank then takes
 * the same optimizer step. Per-step randomness (augmentation, dropout, noise, mixup)
 * comes from STEP_RNG, a stream of this rank's own, so that the shared RNG — the
 * epochs' permutations — stays the same on every rank. *LO is this rank's first
 * position in ROWS, *NL its row count. */
static gboolean
trainer_step_dist (KdfTrainer *tr, KdfTensor *x, const int32_t *rows, int64_t nb,
                   KdfLoss *const *losses, guint n_losses, GRand *step_rng, int threads,
                   double *loss, float *sample_loss, int64_t *lo, int64_t *nl, GError **error)
{
  int64_t hi;
  kdf_dist_shard (nb, lo, &hi);
  *nl = hi - *lo;
  double total = 0.0;
  if (*nl > 0) {
    if (!trainer_step (tr, x, rows + *lo, *nl, losses, n_losses, step_rng, threads, &total,
                       sample_loss, TRUE, error))
      return FALSE;
  } else {
    KdfOptimizer *opt = tr->opt; /* a share of nothing: zeros to the sum */
    kdf_optimizer_zero_grad (opt);
  }
  const double share = (double) *nl / (double) nb;
  double l = total * share;
  if (!kdf_dist_allreduce_f64 (&l, 1, KDF_DIST_SUM, error) ||
      !kdf_optimizer_step_allreduce (tr->opt, (float) share, error))
    return FALSE;
  if (loss)
    *loss = l;
  return TRUE;
}

const uint8_t *
kdf_trainer_get_selected (KdfTrainer *tr)
{
  g_return_val_if_fail (tr != NULL, NULL);
  return tr->sel;
}

gboolean
kdf_trainer_check_losses (KdfTrainer *tr, int64_t n, KdfLoss *const *losses, guint n_losses,
                          GError **error)
{
  for (guint i = 0; i < n_losses; i++) {
    KdfLoss *l = losses[i];
    if (l->n_samples >= 0 && l->n_samples != n) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "loss term %u ('%s') is bound to %" G_GINT64_FORMAT " samples, 'x' has %" G_GINT64_FORMAT,
                   i + 1, l->name, (gint64) l->n_samples, (gint64) n);
      return FALSE;
    }
    for (int k = 0; k < tr->n_nets; k++)
      if ((l->nets & (1u << k)) && l->n_classes >= 0 && l->n_classes != tr->net[k]->n_classes) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "loss term %u ('%s') has %" G_GINT64_FORMAT " classes, the %s ('%s') %" G_GINT64_FORMAT,
                     i + 1, l->name, (gint64) l->n_classes, k ? "partner" : "student",
                     tr->net[k]->arch, (gint64) tr->net[k]->n_classes);
        return FALSE;
      }
    if ((l->needs & KDF_LOSS_NEEDS_PARTNER) && tr->n_nets < 2) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss term %u ('%s') reads the partner network on each batch, but there is "
                   "none (set arch2 or connect model2)",
                   i + 1, l->name);
      return FALSE;
    }
    if ((l->needs & KDF_LOSS_NEEDS_SELECTION)) {
      gboolean before = FALSE;
      for (guint j = 0; j < i; j++)
        before |= (losses[j]->needs & KDF_LOSS_SELECTS) != 0;
      if (!before) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                     "loss term %u ('%s') learns from the batch's selection, but no term before "
                     "it selects (give a ce_loss with keep < 1 or otsu = true first)",
                     i + 1, l->name);
        return FALSE;
      }
    }
    if (!check_term_model (tr, i, l, error))
      return FALSE;
    if ((l->nets & KDF_LOSS_NET1) && tr->n_nets < 2) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "loss term %u ('%s') is for the partner network, but there is none (set arch2)",
                   i + 1, l->name);
      return FALSE;
    }
  }
  return TRUE;
}

/* Copies the first view's per-row outputs of net K (LEN floats a row, from SRC) to
 * dataset order. */
static void
scatter (float *dst, const float *src, const int32_t *rows, int64_t nb, int64_t len)
{
  for (int64_t i = 0; i < nb; i++)
    memcpy (dst + (int64_t) rows[i] * len, src + i * len, (size_t) len * sizeof (float));
}

void
kdf_trainer_set_rows (KdfTrainer *tr, const int32_t *rows, int64_t n)
{
  g_return_if_fail (tr != NULL && n >= 0 && (rows != NULL || n == 0));
  tr->view = n > 0 || rows ? rows : NULL;
  tr->view_n = tr->view ? n : 0;
}

gboolean
kdf_trainer_epoch (KdfTrainer *tr, KdfTensor *x, KdfLoss *const *losses, guint n_losses,
                   GRand *rng, int threads, KdfEpochResult *res, GCancellable *cancellable,
                   GError **error)
{
  g_return_val_if_fail (tr != NULL && x != NULL && rng != NULL, FALSE);
  if (!check_data (tr, x, error))
    return FALSE;
  const int64_t n = tr->view ? tr->view_n : x->shape[0];
  if (tr->view)
    for (int64_t i = 0; i < n; i++)
      if (tr->view[i] < 0 || tr->view[i] >= x->shape[0]) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "trainer: row %" G_GINT64_FORMAT " of the view is %d, outside the %"
                     G_GINT64_FORMAT " rows of 'x'", (gint64) i, tr->view[i], (gint64) x->shape[0]);
        return FALSE;
      }
  if (n <= 0 || n > G_MAXINT32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "trainer: 'x' must have 1 to 2^31 rows, got %" G_GINT64_FORMAT, (gint64) n);
    return FALSE;
  }
  if (!kdf_trainer_check_losses (tr, n, losses, n_losses, error))
    return FALSE;
  if (res && res->logits2 && tr->n_nets < 2) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "trainer: logits2 asked of a single network");
    return FALSE;
  }
  if (tr->order_n != n) {
    tr->order = g_renew (int32_t, tr->order, n);
    tr->order_n = n;
  }
  /* a fresh permutation each epoch (Fisher–Yates) */
  for (int64_t i = 0; i < n; i++)
    tr->order[i] = (int32_t) i;
  if (!tr->cfg.no_shuffle)
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = g_rand_int_range (rng, 0, (gint32) (i + 1));
      int32_t t = tr->order[i];
      tr->order[i] = tr->order[j];
      tr->order[j] = t;
    }
  const int64_t bs = tr->cfg.batch;
  double sum = 0.0;
  int64_t batches = 0;
  trainer_reserve (tr, MIN (bs, n));
  const gboolean dist = kdf_dist_active ();
  g_autoptr (GRand) step_rng = NULL;
  if (dist && res) {
    /* each rank fills the rows it trained on; the sums over ranks are the outputs */
    if (res->sample_loss)
      memset (res->sample_loss, 0, (size_t) n * sizeof (float));
    if (res->selected)
      memset (res->selected, 0, (size_t) n);
    if (res->logits)
      memset (res->logits, 0, (size_t) (n * tr->net[0]->n_classes) * sizeof (float));
    if (res->logits2)
      memset (res->logits2, 0, (size_t) (n * tr->net[1]->n_classes) * sizeof (float));
    if (res->features)
      memset (res->features, 0, (size_t) (n * tr->net[0]->n_features) * sizeof (float));
  }
  for (int64_t s = 0; s < n; s += bs) {
    if (cancellable && g_cancellable_is_cancelled (cancellable)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_CANCELLED, "training cancelled");
      return FALSE;
    }
    const int64_t nb = MIN (bs, n - s);
    const int32_t *rows = tr->order + s;
    double l = 0.0;
    int64_t lo = 0, nl = nb;
    gboolean ok;
    if (dist) {
      /* this rank's stream for the step: from the batch and the rank, not drawn from
       * RNG (which must stay the same on every rank) */
      guint32 seed[4] = { (guint32) tr->steps, (guint32) (tr->steps >> 32), (guint32) rows[0],
                          (guint32) kdf_dist_rank () };
      if (!step_rng)
        step_rng = g_rand_new_with_seed_array (seed, 4);
      else
        g_rand_set_seed_array (step_rng, seed, 4);
      ok = trainer_step_dist (tr, x, rows, nb, losses, n_losses, step_rng, threads, &l,
                              res && res->sample_loss ? tr->sl : NULL, &lo, &nl, error);
      rows += lo;
    } else {
      ok = kdf_trainer_step (tr, x, rows, nb, losses, n_losses, rng, threads, &l,
                             res && res->sample_loss ? tr->sl : NULL, error);
    }
    tr->steps++;
    if (!ok) {
      if (res && g_error_matches (*error, KDF_ERROR, KDF_ERROR_NODE))
        g_prefix_error (error, "epoch %d, batch %" G_GINT64_FORMAT ": ", res->epoch + 1,
                        (gint64) batches + 1);
      return FALSE;
    }
    sum += l;
    batches++;
    if (res) {
      /* the rows this step trained on (this rank's block of the batch when sharded) */
      if (res->sample_loss)
        for (int64_t i = 0; i < nl; i++)
          res->sample_loss[rows[i]] = tr->sl[i];
      if (res->selected)
        for (int64_t i = 0; i < nl; i++)
          res->selected[rows[i]] = tr->sel[i];
      if (res->logits && nl > 0)
        scatter (res->logits, kdf_model_get_logits (tr->net[0]), rows, nl, tr->net[0]->n_classes);
      if (res->logits2 && nl > 0)
        scatter (res->logits2, kdf_model_get_logits (tr->net[1]), rows, nl, tr->net[1]->n_classes);
      if (res->features && nl > 0)
        scatter (res->features, kdf_model_get_features (tr->net[0]), rows, nl,
                 tr->net[0]->n_features);
      if (res->progress)
        res->progress ((double) (s + nb) / (double) n, res->progress_data);
    }
  }
  if (dist && res) {
    /* every row was filled by exactly one rank, zeros elsewhere: the sum is exact */
    if ((res->sample_loss && !kdf_dist_allreduce_f32 (res->sample_loss, n, KDF_DIST_SUM, error)) ||
        (res->selected && !kdf_dist_allreduce_u8 (res->selected, n, KDF_DIST_MAX, error)) ||
        (res->logits &&
         !kdf_dist_allreduce_f32 (res->logits, n * tr->net[0]->n_classes, KDF_DIST_SUM, error)) ||
        (res->logits2 &&
         !kdf_dist_allreduce_f32 (res->logits2, n * tr->net[1]->n_classes, KDF_DIST_SUM, error)) ||
        (res->features &&
         !kdf_dist_allreduce_f32 (res->features, n * tr->net[0]->n_features, KDF_DIST_SUM, error)))
      return FALSE;
  }
  if (res) {
    res->loss = batches ? sum / (double) batches : 0.0;
    res->batches = batches;
  }
  return TRUE;
}
