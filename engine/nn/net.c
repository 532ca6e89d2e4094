/* Networks: building a sequential net from layer specs (shapes, parameter offsets,
 * ReLU fusion and buffer aliasing), PyTorch's initialisation, and the passes through
 * it — a KdfPass holds one pass's activations and gradients, so the net itself (layout
 * and parameters) is only read by a forward. */
#include "config.h"

#include "nn-private.h"

#include <math.h>
#include <string.h>

static const char *
layer_name (KdfLayerKind k)
{
  static const char *names[] = { "linear", "relu", "conv2d", "maxpool2d", "flatten", "dropout",
                                 "l2norm" };
  return (unsigned) k < G_N_ELEMENTS (names) ? names[k] : "?";
}

void
kdf_net_free (KdfNet *net)
{
  if (!net)
    return;
  kdf_nn_free (net->params);
  kdf_nn_free (net->grads);
  g_free (net->layers);
  g_free (net->buf);
  g_free (net->name);
  g_free (net->spec);
  g_free (net);
}

static gboolean
net_error (GError **error, const char *what, int i, const KdfLayerSpec *sp, const char *msg)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: layer %d (%s): %s", what, i,
               layer_name (sp->kind), msg);
  return FALSE;
}

/* Shapes, parameter offsets, fusion and aliasing of a sequential net. WHAT names the
 * model in messages. */
KdfNet *
kdf_net_build (const char *what, int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs,
           guint n, GError **error)
{
  g_autoptr (GError) local = NULL;
  if (n == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: no layers", what);
    return NULL;
  }
  KdfNet *net = g_new0 (KdfNet, 1);
  net->n_layers = (int) n;
  net->layers = g_new0 (KdfLayer, n);
  int rank = in_rank, c = (int) in_shape[0], h = in_rank == 3 ? (int) in_shape[1] : 1,
      w = in_rank == 3 ? (int) in_shape[2] : 1;
  int64_t off = 0;
  int tap = -1, last_linear = -1;
  for (guint i = 0; i < n; i++) {
    const KdfLayerSpec *sp = &specs[i];
    KdfLayer *L = &net->layers[i];
    L->kind = sp->kind;
    L->torch_index = (int) i;
    L->in_rank = rank;
    L->in_c = c;
    L->in_h = h;
    L->in_w = w;
    L->in_size = (int64_t) c * h * w;
    L->w_off = L->b_off = -1;
    switch (sp->kind) {
    case KDF_LAYER_LINEAR:
      if (rank != 1) {
        net_error (&local, what, i, sp, "needs a flat input: add a flatten layer first");
        goto fail;
      }
      if (sp->out <= 0) {
        net_error (&local, what, i, sp, "output size must be positive");
        goto fail;
      }
      L->out_c = sp->out;
      L->out_h = L->out_w = 1;
      L->bias = !sp->no_bias;
      L->w_numel = (int64_t) sp->out * c;
      L->b_numel = L->bias ? sp->out : 0;
      last_linear = (int) i;
      break;
    case KDF_LAYER_CONV2D: {
      int k = sp->kernel, s = sp->stride ? sp->stride : 1, p = sp->padding;
      if (rank != 3) {
        net_error (&local, what, i, sp, "needs a C×H×W input");
        goto fail;
      }
      if (sp->out <= 0 || k <= 0 || s <= 0 || p < 0 || h + 2 * p < k || w + 2 * p < k) {
        net_error (&local, what, i, sp, "bad channels, kernel, stride or padding for its input");
        goto fail;
      }
      L->kernel = k;
      L->stride = s;
      L->pad = p;
      L->out_c = sp->out;
      L->out_h = (h + 2 * p - k) / s + 1;
      L->out_w = (w + 2 * p - k) / s + 1;
      L->bias = !sp->no_bias;
      L->w_numel = (int64_t) sp->out * c * k * k;
      L->b_numel = L->bias ? sp->out : 0;
      break;
    }
    case KDF_LAYER_MAXPOOL2D: {
      int k = sp->kernel, s = sp->stride ? sp->stride : sp->kernel;
      if (rank != 3 || k <= 0 || s <= 0 || k > h || k > w) {
        net_error (&local, what, i, sp, "needs a C×H×W input at least K×K");
        goto fail;
      }
      L->kernel = k;
      L->stride = s;
      L->out_c = c;
      L->out_h = (h - k) / s + 1;
      L->out_w = (w - k) / s + 1;
      break;
    }
    case KDF_LAYER_FLATTEN:
      if ((int64_t) c * h * w > G_MAXINT32) {
        g_set_error (&local, KDF_ERROR, KDF_ERROR_PARAM,
                     "%s: layer %u (flatten): %d×%d×%d = %" G_GINT64_FORMAT
                     " values per row, more than %d", what, i, c, h, w, (gint64) c * h * w,
                     G_MAXINT32);
        goto fail;
      }
      L->out_c = c * h * w;
      L->out_h = L->out_w = 1;
      L->alias = TRUE;
      break;
    case KDF_LAYER_DROPOUT:
      if (!(sp->p >= 0.0 && sp->p < 1.0)) {
        net_error (&local, what, i, sp, "probability must be in [0, 1)");
        goto fail;
      }
      L->p = sp->p;
      /* fallthrough */
    case KDF_LAYER_RELU:
    case KDF_LAYER_L2NORM:
      L->out_c = c;
      L->out_h = h;
      L->out_w = w;
      break;
    case KDF_LAYER_PRELU: /* one slope shared by every unit, as nn.PReLU() */
      L->out_c = c;
      L->out_h = h;
      L->out_w = w;
      L->w_numel = 1;
      break;
    default:
      net_error (&local, what, i, sp, "unknown layer kind");
      goto fail;
    }
    if (sp->tap) {
      if (tap >= 0) {
        net_error (&local, what, i, sp, "a second feature tap (one is allowed)");
        goto fail;
      }
      tap = (int) i + 1;
    }
    if (L->w_numel) {
      L->w_off = off;
      off += (L->w_numel + 15) & ~(int64_t) 15; /* 64-byte aligned slices */
    }
    if (L->b_numel) {
      L->b_off = off;
      off += (L->b_numel + 15) & ~(int64_t) 15;
    }
    rank = (sp->kind == KDF_LAYER_FLATTEN) ? 1 : (sp->kind == KDF_LAYER_LINEAR ? 1 : rank);
    c = L->out_c;
    h = L->out_h;
    w = L->out_w;
    L->out_size = (int64_t) c * h * w;
  }
  if (rank != 1) {
    g_set_error (&local, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s: the last layer's output must be flat (N×C logits); add flatten and linear",
                 what);
    goto fail;
  }
  net->tap = tap >= 0 ? tap : (last_linear >= 0 ? last_linear : (int) n);
  /* A ReLU right after a linear or conv is applied by that layer in the same pass,
   * unless the tap sits between them (it wants the pre-ReLU values). */
  for (guint i = 0; i + 1 < n; i++) {
    KdfLayer *L = &net->layers[i];
    if ((L->kind == KDF_LAYER_LINEAR || L->kind == KDF_LAYER_CONV2D) &&
        net->layers[i + 1].kind == KDF_LAYER_RELU && net->tap != (int) i + 1) {
      L->relu_fused = TRUE;
      net->layers[i + 1].alias = TRUE;
    }
  }
  for (guint i = 0; i < n; i++) {
    const KdfLayer *L = &net->layers[i];
    if (!L->alias)
      net->row_floats += 2 * L->out_size; /* act and dact */
    if (L->kind == KDF_LAYER_MAXPOOL2D || L->kind == KDF_LAYER_DROPOUT)
      net->row_floats += L->out_size;
  }
  for (guint i = 0; i < n; i++) {
    const KdfLayer *L = &net->layers[i];
    if (L->kind == KDF_LAYER_CONV2D) {
      int64_t sz = 2 * (int64_t) L->in_c * L->kernel * L->kernel * L->out_h * L->out_w;
      net->col_size = MAX (net->col_size, sz);
    }
  }
  /* sizes from an architecture string (a param, a checkpoint's metadata): parameters,
   * gradients, the im2col scratch and one row of activations within the budget */
  if (!kdf_memory_check_elements ((guint64) (2 * off + net->col_size + net->row_floats),
                                  sizeof (float), what, &local))
    goto fail;
  net->n_params = off;
  net->params = kdf_nn_alloc (off);
  net->grads = kdf_nn_alloc (off);
  net->in_size = net->layers[0].in_size;
  net->out_size = net->layers[n - 1].out_size;
  net->buf = g_new0 (int, n + 1);
  for (guint j = 1; j <= n; j++)
    net->buf[j] = net->layers[j - 1].alias ? net->buf[j - 1] : (int) j;
  return net;
fail:
  g_propagate_error (error, g_steal_pointer (&local));
  kdf_net_free (net);
  return NULL;
}

/* PyTorch's default init for Linear and Conv2d: kaiming_uniform_(a=√5) gives
 * U(±gain·√(3/fan_in)) with gain = √(2/(1+5)), i.e. U(±1/√fan_in); the bias is
 * U(±1/√fan_in) as well. */
void
kdf_net_init_params (KdfNet *net, guint64 seed)
{
  guint32 s[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (s, 2);
  for (int i = 0; i < net->n_layers; i++) {
    KdfLayer *L = &net->layers[i];
    if (!L->w_numel)
      continue;
    if (L->kind == KDF_LAYER_PRELU) { /* nn.PReLU's init = 0.25 */
      net->params[L->w_off] = 0.25f;
      continue;
    }
    int64_t fan_in = L->w_numel / L->out_c;
    double bound = 1.0 / sqrt ((double) fan_in);
    for (int64_t j = 0; j < L->w_numel; j++)
      net->params[L->w_off + j] = (float) g_rand_double_range (rng, -bound, bound);
    for (int64_t j = 0; j < L->b_numel; j++)
      net->params[L->b_off + j] = (float) g_rand_double_range (rng, -bound, bound);
  }
  g_rand_free (rng);
}

/* ---- passes ----------------------------------------------------------------------- */

static void
pass_free_buffers (KdfPass *p)
{
  for (int j = 1; j <= p->n_layers; j++)
    if (p->buf[j] == j) {
      kdf_nn_free (p->act[j]);
      kdf_nn_free (p->dact[j]);
    }
  for (int j = 0; j <= p->n_layers; j++)
    p->act[j] = p->dact[j] = NULL;
  for (int i = 0; i < p->n_layers; i++) {
    kdf_nn_free (p->argmax[i]);
    kdf_nn_free (p->mask[i]);
    kdf_nn_free (p->norm[i]);
    p->argmax[i] = NULL;
    p->mask[i] = NULL;
    p->norm[i] = NULL;
  }
  g_clear_pointer (&p->col, kdf_nn_free);
  g_clear_pointer (&p->in_grad, kdf_nn_free);
  p->cap = 0;
}

KdfPass *
kdf_pass_new (const KdfNet *net)
{
  KdfPass *p = g_new0 (KdfPass, 1);
  p->n_layers = net->n_layers;
  p->act = g_new0 (float *, net->n_layers + 1);
  p->dact = g_new0 (float *, net->n_layers + 1);
  p->argmax = g_new0 (int32_t *, net->n_layers);
  p->mask = g_new0 (uint8_t *, net->n_layers);
  p->norm = g_new0 (float *, net->n_layers);
  /* which activations own their memory: the net's aliasing map */
  p->buf = g_memdup2 (net->buf, sizeof (int) * (net->n_layers + 1));
  return p;
}

void
kdf_pass_free (KdfPass *p)
{
  if (!p)
    return;
  pass_free_buffers (p);
  g_free (p->buf);
  g_free (p->act);
  g_free (p->dact);
  g_free (p->argmax);
  g_free (p->mask);
  g_free (p->norm);
  g_free (p);
}

static void
pass_ensure_capacity (const KdfNet *net, KdfPass *p, int64_t n)
{
  if (n <= p->cap)
    return;
  pass_free_buffers (p);
  p->cap = n;
  for (int j = 1; j <= net->n_layers; j++)
    if (net->buf[j] == j) {
      int64_t sz = net->layers[j - 1].out_size * n;
      p->act[j] = kdf_nn_alloc (sz);
      p->dact[j] = kdf_nn_alloc (sz);
    }
  for (int j = 1; j <= net->n_layers; j++)
    if (net->buf[j] != j) {
      p->act[j] = p->act[net->buf[j]];
      p->dact[j] = p->dact[net->buf[j]];
    }
  for (int i = 0; i < net->n_layers; i++) {
    const KdfLayer *L = &net->layers[i];
    if (L->kind == KDF_LAYER_MAXPOOL2D)
      p->argmax[i] = (int32_t *) kdf_nn_alloc (L->out_size * n);
    else if (L->kind == KDF_LAYER_DROPOUT)
      p->mask[i] = (uint8_t *) kdf_nn_alloc ((L->out_size * n + 3) / 4);
    else if (L->kind == KDF_LAYER_L2NORM)
      p->norm[i] = kdf_nn_alloc (n);
  }
  if (net->col_size)
    p->col = kdf_nn_alloc (net->col_size);
  /* A trunk whose tap is its input (a probe) keeps a gradient buffer there for the
   * losses and heads that add into the tap. */
  if (net->tap == 0 && !net->input_grad)
    p->in_grad = kdf_nn_alloc (net->in_size * n);
}

/* Points act[0] (and everything aliased to it) at the net's input X. */
static void
pass_set_input (const KdfNet *net, KdfPass *p, const float *x, float *dx)
{
  for (int j = 0; j <= net->n_layers && net->buf[j] == 0; j++) {
    p->act[j] = (float *) x;
    p->dact[j] = dx ? dx : p->in_grad;
  }
}

/* ---- forward / backward ----------------------------------------------------------- */

const float *
kdf_net_forward (const KdfNet *net, KdfPass *p, const float *x, float *dx, int64_t n,
                 gboolean train, GRand *rng, int threads)
{
  pass_ensure_capacity (net, p, n);
  pass_set_input (net, p, x, dx);
  p->n = n;
  p->train = train;
  int pooled = -1; /* a max-pool already run together with the conv before it */
  for (int i = 0; i < net->n_layers; i++) {
    const KdfLayer *L = &net->layers[i];
    const float *in = p->act[i];
    float *out = p->act[i + 1];
    const float *W = L->w_off >= 0 ? net->params + L->w_off : NULL;
    const float *B = L->b_off >= 0 ? net->params + L->b_off : NULL;
    if (L->alias || i == pooled)
      continue;
    switch (L->kind) {
    case KDF_LAYER_LINEAR:
      kdf_linear_forward (out, in, W, B, n, L->in_size, L->out_c, L->relu_fused, threads);
      break;
    case KDF_LAYER_CONV2D: {
      /* conv (+ReLU) then max-pool: pool each image while its conv output is still
       * in L2, instead of reading the whole batch's output back from memory */
      int j = i + 1;
      while (j < net->n_layers && net->layers[j].alias && net->layers[j].kind == KDF_LAYER_RELU)
        j++;
      if (j < net->n_layers && net->layers[j].kind == KDF_LAYER_MAXPOOL2D) {
        const KdfLayer *P = &net->layers[j];
        for (int64_t s = 0; s < n; s++) {
          kdf_conv2d_forward (out + s * L->out_size, p->col, in + s * L->in_size, W, B, 1,
                              L->in_c, L->in_h, L->in_w, L->out_c, L->kernel, L->stride, L->pad,
                              L->relu_fused, threads);
          kdf_maxpool2d_forward (p->act[j + 1] + s * P->out_size,
                                 p->argmax[j] + s * P->out_size, p->act[j] + s * P->in_size,
                                 1, P->in_c, P->in_h, P->in_w, P->kernel, P->stride);
        }
        pooled = j;
        break;
      }
      kdf_conv2d_forward (out, p->col, in, W, B, n, L->in_c, L->in_h, L->in_w, L->out_c,
                          L->kernel, L->stride, L->pad, L->relu_fused, threads);
      break;
    }
    case KDF_LAYER_RELU:
      kdf_relu_forward (out, in, n * L->in_size);
      break;
    case KDF_LAYER_MAXPOOL2D:
      kdf_maxpool2d_forward (out, p->argmax[i], in, n, L->in_c, L->in_h, L->in_w, L->kernel,
                             L->stride);
      break;
    case KDF_LAYER_DROPOUT:
      if (train && L->p > 0.0)
        kdf_dropout_forward (out, p->mask[i], in, n * L->in_size, L->p, rng);
      else
        memcpy (out, in, (size_t) (n * L->in_size) * sizeof (float));
      break;
    case KDF_LAYER_L2NORM:
      kdf_l2norm_forward (out, p->norm[i], in, n, L->in_size);
      break;
    case KDF_LAYER_PRELU: {
      const float a = W[0];
      for (int64_t j = 0; j < n * L->in_size; j++)
        out[j] = in[j] > 0.0f ? in[j] : a * in[j];
      break;
    }
    case KDF_LAYER_FLATTEN:
      break;
    }
  }
  if (train) {
    /* The buffers losses add into start at zero; the rest are zeroed as backward
     * reaches them. */
    int L = net->n_layers;
    memset (p->dact[L], 0, (size_t) (n * net->out_size) * sizeof (float));
    if (p->dact[net->tap] && net->tap != L) {
      int64_t tsz = net->tap == 0 ? net->in_size : net->layers[net->tap - 1].out_size;
      if (!(net->tap == 0 && net->input_grad)) /* a head's input grad is the trunk's tap */
        memset (p->dact[net->tap], 0, (size_t) (n * tsz) * sizeof (float));
    }
  }
  p->pending = train;
  return p->act[net->n_layers];
}

/* HOOKS: each layer's parameters may be updated as soon as its backward is done (its
 * gradient is final then: no other layer touches it, and its weights were already used
 * for its input gradient). */
void
kdf_net_backward (KdfNet *net, KdfPass *p, const KdfBackwardHooks *hooks, int threads)
{
  const int64_t n = p->n;
  const float gbeta = net->grads_zero ? 0.0f : 1.0f;
  const int tapbuf = net->buf[net->tap];
  int premasked = -1; /* a layer whose ReLU mask a max-pool backward already applied */
  for (int i = net->n_layers - 1; i >= 0; i--) {
    const KdfLayer *L = &net->layers[i];
    if (L->alias)
      continue;
    float *dout = p->dact[i + 1];
    const float *in = p->act[i], *out = p->act[i + 1];
    float *din = NULL;
    /* A fresh buffer: nothing was added to it yet (not the tap's, which forward zeroed
     * and a loss may have added to; not a head's input, the trunk's tap). */
    gboolean fresh = FALSE;
    if (net->buf[i] != 0 || net->input_grad) {
      din = p->dact[i];
      fresh = din && net->buf[i] != tapbuf && net->buf[i] != 0;
    }
    if (fresh && L->kind == KDF_LAYER_MAXPOOL2D && L->kernel == L->stride) {
      /* Writes every element of the fresh buffer: no zeroing first. If the pool's
       * input is a fused ReLU's output (conv, relu alias, pool), the mask is applied
       * here and the producer skips its own pass over the whole buffer. */
      int q = i - 1;
      while (q >= 0 && net->layers[q].alias && net->layers[q].kind == KDF_LAYER_RELU)
        q--;
      gboolean mask = q >= 0 && q < i - 1 && net->layers[q].relu_fused &&
                      net->buf[q + 1] == net->buf[i] && net->buf[i] != tapbuf;
      kdf_maxpool2d_backward_set (din, dout, p->argmax[i], mask ? in : NULL, n, L->in_c,
                                  L->in_h, L->in_w, L->kernel, L->stride);
      if (mask)
        premasked = q;
      continue;
    }
    /* Zero before accumulating. */
    if (fresh)
      memset (din, 0, (size_t) (n * L->in_size) * sizeof (float));
    float *dW = L->w_off >= 0 ? net->grads + L->w_off : NULL;
    float *dB = L->b_off >= 0 ? net->grads + L->b_off : NULL;
    const float *W = L->w_off >= 0 ? net->params + L->w_off : NULL;
    switch (L->kind) {
    case KDF_LAYER_LINEAR:
      kdf_linear_backward (din, dW, dB, dout, out, in, W, n, L->in_size, L->out_c,
                           L->relu_fused && i != premasked, gbeta, threads);
      break;
    case KDF_LAYER_CONV2D:
      kdf_conv2d_backward (din, dW, dB, dout, out, p->col, in, W, n, L->in_c, L->in_h, L->in_w,
                           L->out_c, L->kernel, L->stride, L->pad, L->relu_fused && i != premasked,
                           gbeta, threads);
      break;
    case KDF_LAYER_RELU:
      if (din)
        kdf_relu_backward (din, dout, out, n * L->in_size);
      break;
    case KDF_LAYER_MAXPOOL2D:
      if (din)
        kdf_maxpool2d_backward (din, dout, p->argmax[i], n, L->in_c, L->in_h, L->in_w,
                                L->kernel, L->stride);
      break;
    case KDF_LAYER_DROPOUT:
      if (din) {
        if (p->train && L->p > 0.0)
          kdf_dropout_backward (din, dout, p->mask[i], n * L->in_size, L->p);
        else
          for (int64_t j = 0; j < n * L->in_size; j++)
            din[j] += dout[j];
      }
      break;
    case KDF_LAYER_L2NORM:
      if (din)
        kdf_l2norm_backward (din, dout, out, p->norm[i], n, L->in_size);
      break;
    case KDF_LAYER_PRELU: {
      /* y = x (x > 0), a·x (x ≤ 0): dx += dy·(x > 0 ? 1 : a), da += Σ dy·x over x ≤ 0 */
      const float a = W[0];
      double da = 0.0;
      for (int64_t j = 0; j < n * L->in_size; j++) {
        if (in[j] > 0.0f) {
          if (din)
            din[j] += dout[j];
        } else {
          if (din)
            din[j] += a * dout[j];
          da += (double) dout[j] * in[j];
        }
      }
      dW[0] = gbeta * dW[0] + (float) da;
      break;
    }
    case KDF_LAYER_FLATTEN:
      break;
    }
    if (hooks && hooks->layer_done && L->w_off >= 0) {
      /* w and b are adjacent slices (b follows w when present) */
      int64_t end = L->b_off >= 0 ? L->b_off + L->b_numel : L->w_off + L->w_numel;
      hooks->layer_done (hooks->data, net, L->w_off, end - L->w_off);
    }
  }
  net->grads_zero = FALSE;
  p->pending = FALSE;
  if (hooks && hooks->net_done)
    hooks->net_done (hooks->data, net);
}
