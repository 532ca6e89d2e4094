/* Models: a trunk with a feature tap and projection heads built from an architecture
 * (arch.c) into nets (net.c); their parameters; the training pass's workspace; and
 * predict, which owns a workspace of its own. Nothing here knows about optimizers or
 * the trainer: a fused optimizer step hooks into backward (kdf_model_backward_ex). */
#include "config.h"

#include "nn-private.h"
#include "../cancel.h"

#include <math.h>
#include <string.h>

static KdfPass *
trunk_pass (KdfModel *m)
{
  return m->passes->pdata[0];
}

static KdfPass *
head_pass (KdfModel *m, guint head)
{
  return m->passes->pdata[head + 1];
}

static void
param_free (gpointer p)
{
  KdfParam *kp = p;
  g_free ((char *) kp->name);
  g_free (kp);
}

static void
net_add_params (KdfModel *m, KdfNet *net, const char *prefix)
{
  for (int i = 0; i < net->n_layers; i++) {
    KdfLayer *L = &net->layers[i];
    for (int b = 0; b < 2; b++) {
      int64_t off = b ? L->b_off : L->w_off;
      if (off < 0)
        continue;
      KdfParam *p = g_new0 (KdfParam, 1);
      p->name = g_strdup_printf ("%s%d.%s", prefix, L->torch_index, b ? "bias" : "weight");
      if (b) {
        p->rank = 1;
        p->shape[0] = L->out_c;
      } else if (L->kind == KDF_LAYER_PRELU) {
        p->rank = 1;
        p->shape[0] = 1;
      } else if (L->kind == KDF_LAYER_LINEAR) {
        p->rank = 2;
        p->shape[0] = L->out_c;
        p->shape[1] = L->in_c;
      } else {
        p->rank = 4;
        p->shape[0] = L->out_c;
        p->shape[1] = L->in_c;
        p->shape[2] = p->shape[3] = L->kernel;
      }
      p->numel = b ? L->b_numel : L->w_numel;
      p->data = net->params + off;
      p->grad = net->grads + off;
      g_ptr_array_add (m->params, p);
      m->n_params += p->numel;
    }
  }
}

static void
model_free (KdfObject *obj)
{
  KdfModel *m = (KdfModel *) obj;
  if (m->passes)
    g_ptr_array_unref (m->passes);
  kdf_net_free (m->trunk);
  if (m->heads)
    g_ptr_array_unref (m->heads);
  if (m->params)
    g_ptr_array_unref (m->params);
  g_free (m->arch);
  g_free (m);
}

static char *
model_describe (const KdfObject *obj)
{
  const KdfModel *m = (const KdfModel *) obj;
  return g_strdup_printf ("%s (%" G_GINT64_FORMAT " params)", m->arch, (gint64) m->n_params);
}

static KdfModel *
model_new_internal (const char *arch, int in_rank, const int64_t *in_shape,
                    const KdfLayerSpec *specs, guint n, guint64 seed, GError **error)
{
  if (in_rank != 1 && in_rank != 3) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "model '%s': input rank must be 1 or 3", arch);
    return NULL;
  }
  for (int d = 0; d < in_rank; d++)
    if (in_shape[d] <= 0 || in_shape[d] > (1 << 24)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "model '%s': bad input shape", arch);
      return NULL;
    }
  g_autofree char *what = g_strdup_printf ("model '%s'", arch);
  KdfNet *net = kdf_net_build (what, in_rank, in_shape, specs, n, error);
  if (!net)
    return NULL;
  kdf_net_init_params (net, seed);
  KdfModel *m = g_new0 (KdfModel, 1);
  kdf_object_init (&m->parent, KDF_VALUE_MODEL, model_free, model_describe);
  m->arch = g_strdup (arch);
  m->in_rank = in_rank;
  for (int d = 0; d < in_rank; d++)
    m->in_shape[d] = in_shape[d];
  m->in_size = net->in_size;
  m->n_classes = net->out_size;
  m->n_features = net->tap == 0 ? net->in_size : net->layers[net->tap - 1].out_size;
  m->trunk = net;
  m->heads = g_ptr_array_new_with_free_func ((GDestroyNotify) kdf_net_free);
  m->params = g_ptr_array_new_with_free_func (param_free);
  m->passes = g_ptr_array_new_with_free_func ((GDestroyNotify) kdf_pass_free);
  g_ptr_array_add (m->passes, kdf_pass_new (net));
  net_add_params (m, net, "");
  return m;
}

KdfModel *
kdf_model_new_from_arch (const char *arch, guint64 seed, GError **error)
{
  g_return_val_if_fail (arch != NULL, NULL);
  KdfArchParse ap = { .specs = g_array_new (FALSE, TRUE, sizeof (KdfLayerSpec)) };
  g_autofree char *trimmed = g_strstrip (g_strdup (arch));
  KdfModel *m = NULL;
  if (kdf_arch_parse (trimmed, &ap, error))
    m = model_new_internal (trimmed, ap.in_rank, ap.in_shape, (KdfLayerSpec *) ap.specs->data,
                            ap.specs->len, seed, error);
  g_array_unref (ap.specs);
  return m;
}

KdfModel *
kdf_model_new (int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs, guint n_specs,
               guint64 seed, GError **error)
{
  g_return_val_if_fail (in_shape != NULL && (specs != NULL || n_specs == 0), NULL);
  if (in_rank != 1 && in_rank != 3) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "model: input rank must be 1 or 3, got %d",
                 in_rank);
    return NULL;
  }
  g_autofree char *arch = kdf_arch_seq_string (in_rank, in_shape, specs, n_specs);
  return model_new_internal (arch, in_rank, in_shape, specs, n_specs, seed, error);
}

/* ---- heads ------------------------------------------------------------------------ */

int
kdf_model_add_head (KdfModel *m, const char *name, const char *spec, guint64 seed,
                    GError **error)
{
  g_return_val_if_fail (m != NULL && name != NULL && spec != NULL, -1);
  if (!*name || strchr (name, '=') || strchr (name, ';') || strchr (name, '.')) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "head name '%s': must be non-empty without '=', ';' or '.'", name);
    return -1;
  }
  if (kdf_model_find_head (m, name) >= 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "model '%s' already has a head '%s'", m->arch,
                 name);
    return -1;
  }
  g_auto (GStrv) toks = g_strsplit (spec, "-", -1);
  g_autoptr (GArray) specs = g_array_new (FALSE, TRUE, sizeof (KdfLayerSpec));
  int nt = (int) g_strv_length (toks);
  for (int i = 0; i < nt; i++) {
    const char *s = toks[i];
    int v;
    if (i == nt - 1 && i > 0 && strcmp (s, "l2") == 0) {
      g_array_append_val (specs, ((KdfLayerSpec){ .kind = KDF_LAYER_L2NORM }));
      continue;
    }
    if (!kdf_arch_read_int (&s, &v) || *s || v <= 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "head '%s': bad spec '%s' at '%s' (expected sizes like 128-64, optionally -l2)",
                   name, spec, toks[i]);
      return -1;
    }
    if (specs->len > 0)
      g_array_append_val (specs, ((KdfLayerSpec){ .kind = KDF_LAYER_RELU }));
    g_array_append_val (specs, ((KdfLayerSpec){ .kind = KDF_LAYER_LINEAR, .out = v }));
  }
  if (specs->len == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "head '%s': empty spec", name);
    return -1;
  }
  g_autofree char *what = g_strdup_printf ("head '%s' of '%s'", name, m->arch);
  int64_t in_shape[1] = { m->n_features };
  KdfNet *net = kdf_net_build (what, 1, in_shape, (KdfLayerSpec *) specs->data, specs->len, error);
  if (!net)
    return -1;
  net->name = g_strdup (name);
  net->spec = g_strdup (spec);
  net->input_grad = TRUE;
  kdf_net_init_params (net, seed);
  g_ptr_array_add (m->heads, net);
  g_ptr_array_add (m->passes, kdf_pass_new (net));
  g_autofree char *prefix = g_strdup_printf ("heads.%s.", name);
  net_add_params (m, net, prefix);
  return (int) m->heads->len - 1;
}

int
kdf_model_find_head (KdfModel *m, const char *name)
{
  for (guint i = 0; i < m->heads->len; i++)
    if (g_strcmp0 (((KdfNet *) m->heads->pdata[i])->name, name) == 0)
      return (int) i;
  return -1;
}

int64_t
kdf_model_head_dim (KdfModel *m, int head)
{
  g_return_val_if_fail (head >= 0 && (guint) head < m->heads->len, -1);
  return ((KdfNet *) m->heads->pdata[head])->out_size;
}

char *
kdf_model_heads_string (KdfModel *m)
{
  GString *s = g_string_new ("");
  for (guint i = 0; i < m->heads->len; i++) {
    KdfNet *h = m->heads->pdata[i];
    g_string_append_printf (s, "%s%s=%s", i ? ";" : "", h->name, h->spec);
  }
  return g_string_free (s, FALSE);
}

guint
kdf_model_n_nets (KdfModel *m)
{
  return 1 + m->heads->len;
}

KdfNet *
kdf_model_nth_net (KdfModel *m, guint i)
{
  return i == 0 ? m->trunk : m->heads->pdata[i - 1];
}

KdfModel *
kdf_model_copy (KdfModel *m)
{
  g_autoptr (GError) err = NULL;
  KdfArchParse ap = { .specs = g_array_new (FALSE, TRUE, sizeof (KdfLayerSpec)) };
  /* The arch string always parses: it was parsed or generated when M was made. */
  gboolean ok = kdf_arch_parse (m->arch, &ap, &err);
  KdfModel *c = ok ? model_new_internal (m->arch, ap.in_rank, ap.in_shape,
                                         (KdfLayerSpec *) ap.specs->data, ap.specs->len, 0, &err)
                   : NULL;
  g_array_unref (ap.specs);
  if (!c) {
    g_critical ("kdf_model_copy: %s", err->message);
    return NULL;
  }
  for (guint i = 0; i < m->heads->len; i++) {
    KdfNet *h = m->heads->pdata[i];
    if (kdf_model_add_head (c, h->name, h->spec, 0, &err) < 0) {
      g_critical ("kdf_model_copy: %s", err->message);
      kdf_model_unref (c);
      return NULL;
    }
  }
  for (guint i = 0; i < kdf_model_n_nets (m); i++) {
    KdfNet *a = kdf_model_nth_net (m, i), *b = kdf_model_nth_net (c, i);
    memcpy (b->params, a->params, (size_t) a->n_params * sizeof (float));
  }
  return c;
}

/* ---- parameters ------------------------------------------------------------------- */

void
kdf_net_settle_grads (KdfNet *net)
{
  if (net->grads_zero) {
    memset (net->grads, 0, (size_t) net->n_params * sizeof (float));
    net->grads_zero = FALSE;
  }
}

const KdfParam *
kdf_model_get_param (KdfModel *m, guint i)
{
  g_return_val_if_fail (m != NULL && i < m->params->len, NULL);
  for (guint k = 0; k < kdf_model_n_nets (m); k++)
    kdf_net_settle_grads (kdf_model_nth_net (m, k));
  return m->params->pdata[i];
}

const KdfParam *
kdf_model_find_param (KdfModel *m, const char *name)
{
  for (guint i = 0; i < m->params->len; i++)
    if (strcmp (((KdfParam *) m->params->pdata[i])->name, name) == 0)
      return kdf_model_get_param (m, i);
  return NULL;
}

void
kdf_model_zero_grad (KdfModel *m)
{
  g_return_if_fail (m != NULL);
  for (guint k = 0; k < kdf_model_n_nets (m); k++)
    kdf_model_nth_net (m, k)->grads_zero = TRUE;
}

/* ---- forward / backward ----------------------------------------------------------- */

const float *
kdf_model_forward (KdfModel *m, const float *x, int64_t n, gboolean train, GRand *rng,
                   int threads)
{
  g_return_val_if_fail (m != NULL && x != NULL && n > 0, NULL);
  KdfNet *t = m->trunk;
  if (train && !rng)
    for (int i = 0; i < t->n_layers; i++)
      g_return_val_if_fail (t->layers[i].kind != KDF_LAYER_DROPOUT || t->layers[i].p == 0.0, NULL);
  const float *out = kdf_net_forward (t, trunk_pass (m), x, NULL, n, train, rng, threads);
  for (guint i = 0; i < m->heads->len; i++)
    head_pass (m, i)->pending = FALSE;
  m->train_pass = train;
  m->batch = n;
  return out;
}

const float *
kdf_model_get_logits (KdfModel *m)
{
  return trunk_pass (m)->act[m->trunk->n_layers];
}

const float *
kdf_model_get_features (KdfModel *m)
{
  return trunk_pass (m)->act[m->trunk->tap];
}

float *
kdf_model_get_grad_logits (KdfModel *m)
{
  g_return_val_if_fail (m->train_pass, NULL);
  return trunk_pass (m)->dact[m->trunk->n_layers];
}

float *
kdf_model_get_grad_features (KdfModel *m)
{
  g_return_val_if_fail (m->train_pass, NULL);
  return trunk_pass (m)->dact[m->trunk->tap];
}

const float *
kdf_model_head_forward (KdfModel *m, int head, int threads)
{
  g_return_val_if_fail (head >= 0 && (guint) head < m->heads->len && m->batch > 0, NULL);
  KdfNet *h = m->heads->pdata[head];
  KdfPass *tp = trunk_pass (m);
  return kdf_net_forward (h, head_pass (m, head), tp->act[m->trunk->tap],
                          m->train_pass ? tp->dact[m->trunk->tap] : NULL, m->batch,
                          m->train_pass, NULL, threads);
}

float *
kdf_model_get_head_grad (KdfModel *m, int head)
{
  g_return_val_if_fail (head >= 0 && (guint) head < m->heads->len && m->train_pass, NULL);
  KdfNet *h = m->heads->pdata[head];
  KdfPass *hp = head_pass (m, head);
  g_return_val_if_fail (hp->pending, NULL);
  return hp->dact[h->n_layers];
}

const float *
kdf_model_head_train (KdfModel *m, const char *name, const char *spec, guint64 seed, int threads,
                      float **grad, GError **error)
{
  g_return_val_if_fail (m != NULL && name != NULL && spec != NULL && grad != NULL, NULL);
  if (!m->train_pass || m->batch <= 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "head '%s' of '%s': no training forward to run it on", name, m->arch);
    return NULL;
  }
  int h = kdf_model_find_head (m, name);
  if (h >= 0) {
    KdfNet *net = m->heads->pdata[h];
    if (g_strcmp0 (net->spec, spec) != 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "model '%s' has a head '%s' of spec '%s', a loss term asks for '%s' (give "
                   "the terms different head names or the same size)",
                   m->arch, name, net->spec, spec);
      return NULL;
    }
  } else if ((h = kdf_model_add_head (m, name, spec, seed, error)) < 0)
    return NULL;
  KdfPass *hp = head_pass (m, (guint) h);
  const float *out = hp->pending ? hp->act[((KdfNet *) m->heads->pdata[h])->n_layers]
                                 : kdf_model_head_forward (m, h, threads);
  *grad = kdf_model_get_head_grad (m, h);
  return out;
}

void
kdf_model_backward_ex (KdfModel *m, const KdfBackwardHooks *hooks, int threads)
{
  g_return_if_fail (m != NULL && m->train_pass);
  for (guint i = 0; i < m->heads->len; i++) {
    KdfPass *hp = head_pass (m, i);
    if (hp->pending)
      kdf_net_backward (m->heads->pdata[i], hp, hooks, threads);
  }
  kdf_net_backward (m->trunk, trunk_pass (m), hooks, threads);
  m->train_pass = FALSE;
}

void
kdf_model_backward (KdfModel *m, int threads)
{
  kdf_model_backward_ex (m, NULL, threads);
}

gboolean
kdf_model_predict (KdfModel *m, KdfTensor *x, int64_t batch, int threads, KdfTensor **logits,
                   KdfTensor **features, GError **error)
{
  return kdf_model_predict_rows (m, x, NULL, -1, batch, threads, logits, features, error);
}

gboolean
kdf_model_predict_rows (KdfModel *m, KdfTensor *x, const int32_t *view, int64_t n_view,
                        int64_t batch, int threads, KdfTensor **logits, KdfTensor **features,
                        GError **error)
{
  g_return_val_if_fail (m != NULL && x != NULL, FALSE);
  g_return_val_if_fail (n_view < 0 || view != NULL || n_view == 0, FALSE);
  if (x->dtype != KDF_DTYPE_F32 || x->rank < 1 || x->shape[0] < 0 ||
      (x->shape[0] > 0 && kdf_tensor_numel (x) / x->shape[0] != m->in_size)) {
    g_autofree char *d = kdf_tensor_describe (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "model '%s': input must be f32 with %" G_GINT64_FORMAT
                 " values per row, got %s",
                 m->arch, (gint64) m->in_size, d);
    return FALSE;
  }
  const int64_t n = n_view >= 0 ? n_view : x->shape[0];
  for (int64_t i = 0; i < n_view; i++)
    if (view[i] < 0 || view[i] >= x->shape[0]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "model '%s': row %" G_GINT64_FORMAT " of the view is %d, outside the %"
                   G_GINT64_FORMAT " rows of the input", m->arch, (gint64) i, view[i],
                   (gint64) x->shape[0]);
      return FALSE;
    }
  if (batch <= 0)
    batch = 256;
  {
    /* the outputs and one batch of activations, within the memory budget */
    const KdfNet *tn = m->trunk;
    guint64 floats = (guint64) n * (guint64) ((logits ? m->n_classes : 0) + (features ? m->n_features : 0)) +
                     (guint64) MIN (batch, n) * (guint64) (tn->row_floats + tn->in_size) +
                     (guint64) tn->col_size;
    g_autofree char *what = g_strdup_printf ("model '%s': predicting %" G_GINT64_FORMAT " rows",
                                             m->arch, (gint64) n);
    if (!kdf_memory_check_elements (floats, sizeof (float), what, error))
      return FALSE;
  }
  g_autoptr (KdfTensor) lo = logits ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, m->n_classes) : NULL;
  g_autoptr (KdfTensor) fe = features ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, m->n_features) : NULL;
  /* a pass of its own over M's parameters (read only): two nodes may run predict on
   * the same model at once, and a predict never disturbs the activations a training
   * forward keeps for its backward */
  const KdfNet *net = m->trunk;
  KdfPass *pass = kdf_pass_new (net);
  const gboolean contiguous = n_view < 0 && kdf_tensor_is_contiguous (x) && !kdf_tensor_is_on_disk (x);
  float *buf = contiguous ? NULL : kdf_nn_alloc (MIN (batch, n) * m->in_size);
  int32_t *rows = contiguous ? NULL : g_new (int32_t, MIN (batch, n));
  gboolean ok = TRUE;
  for (int64_t b = 0; b < n && ok; b += batch) {
    /* a node's cancellation (Ctrl-C) stops a long pass between batches */
    if (!(ok = kdf_cancel_check ("prediction", error)))
      break;
    int64_t nb = MIN (batch, n - b);
    const float *xb;
    if (contiguous)
      xb = kdf_tensor_f32 (x) + b * m->in_size;
    else {
      for (int64_t i = 0; i < nb; i++)
        rows[i] = n_view >= 0 ? view[b + i] : (int32_t) (b + i);
      /* rows of a tensor kept on disk can fail to read (a file truncated in use) */
      if (!(ok = kdf_gather_rows (buf, x, rows, nb, error)))
        break;
      xb = buf;
    }
    kdf_net_forward (net, pass, xb, NULL, nb, FALSE, NULL, threads);
    if (lo)
      memcpy (kdf_tensor_f32 (lo) + b * m->n_classes, pass->act[net->n_layers],
              (size_t) (nb * m->n_classes) * sizeof (float));
    if (fe)
      memcpy (kdf_tensor_f32 (fe) + b * m->n_features, pass->act[net->tap],
              (size_t) (nb * m->n_features) * sizeof (float));
  }
  kdf_pass_free (pass);
  kdf_nn_free (buf);
  g_free (rows);
  if (!ok)
    return FALSE;
  if (logits)
    *logits = g_steal_pointer (&lo);
  if (features)
    *features = g_steal_pointer (&fe);
  return TRUE;
}
