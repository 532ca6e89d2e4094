/* Optimizers (SGD with momentum / Nesterov / weight decay, Adam / AdamW) over the
 * parameter blocks of one or more models, and learning-rate schedules. The update
 * rules are torch.optim's, so a run here and one in PyTorch follow the same path. */
#include "config.h"

#include "nn-private.h"

#include <kdflow/dist.h>
#include "simd.h"

#include <math.h>
#include <string.h>

typedef struct {
  KdfNet *net;
  float *m; /* momentum (SGD) or first moment (Adam), n_params */
  float *v; /* second moment (Adam) */
  gboolean fresh; /* buffers made in this step (SGD: v starts as the gradient) */
  gboolean done;  /* updated in the current step */
} OptState;

struct _KdfOptimizer {
  gint ref_count;
  KdfOptimConfig cfg;
  GPtrArray *models; /* KdfModel*, referenced */
  GArray *states;    /* OptState, one per net of every model */
  guint64 steps;
};

KdfOptimizer *
kdf_optimizer_new (const KdfOptimConfig *cfg, GError **error)
{
  g_return_val_if_fail (cfg != NULL, NULL);
  if (!(cfg->lr >= 0.0) || !(cfg->weight_decay >= 0.0) || !(cfg->momentum >= 0.0) ||
      cfg->momentum >= 1.0 || (cfg->kind != KDF_OPTIM_SGD && cfg->kind != KDF_OPTIM_ADAM)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "optimizer: need lr >= 0, weight_decay >= 0, 0 <= momentum < 1");
    return NULL;
  }
  if (cfg->kind == KDF_OPTIM_SGD && cfg->nesterov && cfg->momentum <= 0.0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "optimizer: Nesterov needs momentum > 0");
    return NULL;
  }
  KdfOptimizer *o = g_new0 (KdfOptimizer, 1);
  o->ref_count = 1;
  o->cfg = *cfg;
  if (o->cfg.beta1 == 0.0)
    o->cfg.beta1 = 0.9;
  if (o->cfg.beta2 == 0.0)
    o->cfg.beta2 = 0.999;
  if (o->cfg.eps == 0.0)
    o->cfg.eps = 1e-8;
  if (!(o->cfg.beta1 > 0.0 && o->cfg.beta1 < 1.0 && o->cfg.beta2 > 0.0 && o->cfg.beta2 < 1.0 &&
        o->cfg.eps > 0.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "optimizer: Adam needs 0 < beta < 1, eps > 0");
    g_free (o);
    return NULL;
  }
  o->models = g_ptr_array_new_with_free_func ((GDestroyNotify) kdf_object_unref);
  o->states = g_array_new (FALSE, TRUE, sizeof (OptState));
  return o;
}

KdfOptimizer *
kdf_optimizer_new_sgd (double lr, double momentum, double weight_decay, gboolean nesterov)
{
  KdfOptimConfig c = { .kind = KDF_OPTIM_SGD, .lr = lr, .momentum = momentum,
                       .weight_decay = weight_decay, .nesterov = nesterov };
  g_autoptr (GError) err = NULL;
  KdfOptimizer *o = kdf_optimizer_new (&c, &err);
  if (!o)
    g_critical ("kdf_optimizer_new_sgd: %s", err->message);
  return o;
}

KdfOptimizer *
kdf_optimizer_new_adam (double lr, double weight_decay)
{
  KdfOptimConfig c = { .kind = KDF_OPTIM_ADAM, .lr = lr, .weight_decay = weight_decay };
  g_autoptr (GError) err = NULL;
  KdfOptimizer *o = kdf_optimizer_new (&c, &err);
  if (!o)
    g_critical ("kdf_optimizer_new_adam: %s", err->message);
  return o;
}

KdfOptimizer *
kdf_optimizer_ref (KdfOptimizer *o)
{
  g_return_val_if_fail (o != NULL, NULL);
  g_atomic_int_inc (&o->ref_count);
  return o;
}

void
kdf_optimizer_unref (KdfOptimizer *o)
{
  if (!o || !g_atomic_int_dec_and_test (&o->ref_count))
    return;
  for (guint i = 0; i < o->states->len; i++) {
    OptState *s = &g_array_index (o->states, OptState, i);
    kdf_nn_free (s->m);
    kdf_nn_free (s->v);
  }
  g_array_unref (o->states);
  g_ptr_array_unref (o->models);
  g_free (o);
}

gboolean
kdf_optimizer_add_model (KdfOptimizer *o, KdfModel *m, GError **error)
{
  g_return_val_if_fail (o != NULL && m != NULL, FALSE);
  for (guint i = 0; i < o->models->len; i++)
    if (o->models->pdata[i] == m) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "optimizer: model '%s' was already added",
                   m->arch);
      return FALSE;
    }
  g_ptr_array_add (o->models, kdf_model_ref (m));
  return TRUE;
}

gboolean
kdf_optimizer_holds (KdfOptimizer *o, KdfModel *m)
{
  for (guint i = 0; i < o->models->len; i++)
    if (o->models->pdata[i] == m)
      return TRUE;
  return FALSE;
}

guint
kdf_optimizer_n_models (KdfOptimizer *o)
{
  return o->models->len;
}

void
kdf_optimizer_set_lr (KdfOptimizer *o, double lr)
{
  g_return_if_fail (o != NULL && lr >= 0.0);
  o->cfg.lr = lr;
}

double
kdf_optimizer_get_lr (KdfOptimizer *o)
{
  return o->cfg.lr;
}

guint64
kdf_optimizer_get_steps (KdfOptimizer *o)
{
  return o->steps;
}

void
kdf_optimizer_zero_grad (KdfOptimizer *o)
{
  for (guint i = 0; i < o->models->len; i++)
    kdf_model_zero_grad (o->models->pdata[i]);
}

/* p (n) -= lr · (g + wd·p) through momentum buffer v (n), in one pass (torch.optim.SGD
 * with dampening 0: v = μ·v + g; step with v, or g + μ·v for Nesterov). The first
 * step sets v = g, as PyTorch does. Memory-bound: one read of p, g, v and one write of
 * p, v per parameter, four at a time. */
static void
sgd_update (float *restrict p, const float *restrict g, float *restrict v, int64_t n, float lr,
            float mu, float wd, gboolean nesterov, gboolean first)
{
  const kdf_v4f vlr = kdf_v4_splat (lr), vmu = kdf_v4_splat (mu), vwd = kdf_v4_splat (wd);
  int64_t j = 0;
  if (mu == 0.0f) {
    for (; j + 4 <= n; j += 4) {
      kdf_v4f pj = kdf_v4_load (p + j);
      kdf_v4_store (p + j, pj - vlr * (kdf_v4_load (g + j) + vwd * pj));
    }
    for (; j < n; j++)
      p[j] -= lr * (g[j] + wd * p[j]);
    return;
  }
  const kdf_v4f vfirst = kdf_v4_splat (first ? 0.0f : 1.0f);
  const float ffirst = first ? 0.0f : 1.0f;
  for (; j + 4 <= n; j += 4) {
    kdf_v4f pj = kdf_v4_load (p + j);
    kdf_v4f d = kdf_v4_load (g + j) + vwd * pj;
    kdf_v4f vv = vfirst * vmu * kdf_v4_load (v + j) + d; /* first step: v = d */
    kdf_v4_store (v + j, vv);
    kdf_v4_store (p + j, pj - vlr * (nesterov ? d + vmu * vv : vv));
  }
  for (; j < n; j++) {
    float d = g[j] + wd * p[j];
    float vv = ffirst * mu * v[j] + d;
    v[j] = vv;
    p[j] -= lr * (nesterov ? d + mu * vv : vv);
  }
}

/* torch.optim.Adam (and AdamW when DECOUPLED): m, v (n) moments; step t ≥ 1. */
static void
adam_update (float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
             int64_t n, double lr, double b1, double b2, double eps, double wd,
             gboolean decoupled, guint64 t)
{
  const double bc1 = 1.0 - pow (b1, (double) t), bc2 = 1.0 - pow (b2, (double) t);
  const float step = (float) (lr / bc1), isb2 = (float) (1.0 / sqrt (bc2));
  const float fb1 = (float) b1, fb2 = (float) b2, feps = (float) eps;
  const float decay = decoupled ? (float) (1.0 - lr * wd) : 1.0f;
  const float l2 = decoupled ? 0.0f : (float) wd;
  for (int64_t j = 0; j < n; j++) {
    float pj = p[j] * decay;
    float d = g[j] + l2 * p[j];
    float mj = fb1 * m[j] + (1.0f - fb1) * d;
    float vj = fb2 * v[j] + (1.0f - fb2) * d * d;
    m[j] = mj;
    v[j] = vj;
    p[j] = pj - step * mj / (sqrtf (vj) * isb2 + feps);
  }
}

static OptState *
state_of (KdfOptimizer *o, KdfNet *net)
{
  for (guint j = 0; j < o->states->len; j++) {
    OptState *s = &g_array_index (o->states, OptState, j);
    if (s->net == net)
      return s;
  }
  return NULL;
}

/* The update of one slice [off, off + len) of NET's parameters from its gradient. */
static void
update_range (KdfOptimizer *o, OptState *s, int64_t off, int64_t len)
{
  const KdfOptimConfig *c = &o->cfg;
  KdfNet *net = s->net;
  if (c->kind == KDF_OPTIM_SGD)
    sgd_update (net->params + off, net->grads + off, s->m ? s->m + off : NULL, len, (float) c->lr,
                (float) c->momentum, (float) c->weight_decay, c->nesterov, s->fresh);
  else
    adam_update (net->params + off, net->grads + off, s->m + off, s->v + off, len, c->lr,
                 c->beta1, c->beta2, c->eps, c->weight_decay, c->decoupled, o->steps);
}

void
kdf_optimizer_begin_step (KdfOptimizer *o)
{
  const KdfOptimConfig *c = &o->cfg;
  o->steps++;
  /* One state per net, made on first sight: heads added after the model joined the
   * optimizer are trained too. */
  for (guint i = 0; i < o->models->len; i++) {
    KdfModel *m = o->models->pdata[i];
    for (guint k = 0; k < kdf_model_n_nets (m); k++) {
      KdfNet *net = kdf_model_nth_net (m, k);
      if (!state_of (o, net)) {
        OptState s = { .net = net };
        g_array_append_val (o->states, s);
      }
    }
  }
  for (guint i = 0; i < o->states->len; i++) {
    OptState *s = &g_array_index (o->states, OptState, i);
    s->done = FALSE;
    s->fresh = FALSE;
    if (c->kind == KDF_OPTIM_SGD && c->momentum > 0.0 && !s->m) {
      s->m = kdf_nn_alloc (s->net->n_params);
      s->fresh = TRUE;
    } else if (c->kind == KDF_OPTIM_ADAM && !s->m) {
      s->m = kdf_nn_alloc (s->net->n_params);
      s->v = kdf_nn_alloc (s->net->n_params);
    }
  }
}

void
kdf_optimizer_step_range (KdfOptimizer *o, KdfNet *net, int64_t off, int64_t len)
{
  OptState *s = state_of (o, net);
  g_return_if_fail (s != NULL);
  update_range (o, s, off, len);
}

void
kdf_optimizer_net_done (KdfOptimizer *o, KdfNet *net)
{
  OptState *s = state_of (o, net);
  if (s)
    s->done = TRUE;
}

void
kdf_optimizer_end_step (KdfOptimizer *o)
{
  for (guint i = 0; i < o->states->len; i++) {
    OptState *s = &g_array_index (o->states, OptState, i);
    if (s->done)
      continue;
    /* A net that did not run backward still decays and moves with its momentum:
     * settle a lazy zero so the update reads zeros. */
    kdf_net_settle_grads (s->net);
    update_range (o, s, 0, s->net->n_params);
    s->done = TRUE;
  }
}

gboolean
kdf_optimizer_step_allreduce (KdfOptimizer *o, float scale, GError **error)
{
  g_return_val_if_fail (o != NULL, FALSE);
  kdf_optimizer_begin_step (o);
  /* the states are made in the models' order, the same on every rank */
  for (guint i = 0; i < o->states->len; i++) {
    OptState *s = &g_array_index (o->states, OptState, i);
    KdfNet *net = s->net;
    kdf_net_settle_grads (net);
    if (scale != 1.0f)
      for (int64_t j = 0; j < net->n_params; j++)
        net->grads[j] *= scale;
    if (!kdf_dist_allreduce_f32 (net->grads, net->n_params, KDF_DIST_SUM, error)) {
      g_prefix_error (error, "averaging the gradients: ");
      return FALSE;
    }
    update_range (o, s, 0, net->n_params);
    s->done = TRUE;
  }
  kdf_optimizer_end_step (o);
  return TRUE;
}

void
kdf_optimizer_step (KdfOptimizer *o, int threads)
{
  g_return_if_fail (o != NULL);
  kdf_optimizer_begin_step (o);
  kdf_optimizer_end_step (o);
}

/* ---- schedules ------------------------------------------------------------------- */

double
kdf_schedule_lr (const KdfSchedule *s, double base_lr, int64_t t)
{
  g_return_val_if_fail (s != NULL, base_lr);
  if (t < 0)
    t = 0;
  if (s->warmup > 0 && t < s->warmup) {
    /* linear warm-up from base·start to base (reached at t = warmup) */
    double f = s->warmup_start + (1.0 - s->warmup_start) * (double) t / (double) s->warmup;
    return base_lr * f;
  }
  int64_t u = t - (s->warmup > 0 ? s->warmup : 0);
  switch (s->kind) {
  case KDF_SCHEDULE_STEP:
    if (s->step_size <= 0)
      return base_lr;
    return base_lr * pow (s->gamma, (double) (u / s->step_size));
  case KDF_SCHEDULE_COSINE: {
    if (s->t_max <= 0)
      return base_lr;
    double f = (double) MIN (u, s->t_max) / (double) s->t_max;
    return s->min_lr + (base_lr - s->min_lr) * 0.5 * (1.0 + cos (G_PI * f));
  }
  case KDF_SCHEDULE_CONSTANT:
  default:
    return base_lr;
  }
}
