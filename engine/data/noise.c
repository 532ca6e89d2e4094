/* engine/data: label-noise models (METHODS §1 data_loader).
 *
 * Every model draws from one GRand seeded from the spec's 64-bit seed, in the order
 * data.h documents, so counts and picks are reproducible. Rates are exact counts
 * (⌊rN⌋ picks without replacement) wherever a rate is given; transition and
 * instance noise are sampled per sample, as their definitions are. */
#include "config.h"

#include "data-private.h"

#include <math.h>
#include <string.h>

static const int32_t fmnist_map[10] = {
  /* T-shirt/top→Shirt, Trouser, Pullover→Coat, Dress, Coat→Pullover, Sandal→Sneaker,
   * Shirt→T-shirt/top, Sneaker, Bag, Ankle boot */
  6, -1, 4, -1, 2, 7, 0, -1, -1, -1,
};

const int32_t *
kdf_noise_fashion_mnist_map (void)
{
  return fmnist_map;
}

static const char *const kind_names[] = {
  [KDF_NOISE_NONE] = "none",
  [KDF_NOISE_SYMMETRIC] = "symmetric",
  [KDF_NOISE_SYMMETRIC_INCLUSIVE] = "symmetric_inclusive",
  [KDF_NOISE_PAIRFLIP] = "pairflip",
  [KDF_NOISE_ASYMMETRIC] = "asymmetric",
  [KDF_NOISE_TRANSITION] = "transition",
  [KDF_NOISE_INSTANCE] = "instance",
  [KDF_NOISE_OPENSET] = "openset",
  [KDF_NOISE_FILE] = "file",
  [KDF_NOISE_CC] = "cc",
};

const char *
kdf_noise_kind_name (KdfNoiseKind kind)
{
  if ((guint) kind < G_N_ELEMENTS (kind_names))
    return kind_names[kind];
  return "?";
}

gboolean
kdf_noise_kind_from_name (const char *name, KdfNoiseKind *out)
{
  for (guint k = 0; k < G_N_ELEMENTS (kind_names); k++)
    if (g_strcmp0 (name, kind_names[k]) == 0) {
      *out = (KdfNoiseKind) k;
      return TRUE;
    }
  return FALSE;
}

void
kdf_noise_result_clear (KdfNoiseResult *res)
{
  if (res == NULL)
    return;
  g_clear_pointer (&res->labels, kdf_tensor_unref);
  g_clear_pointer (&res->noisy_mask, kdf_tensor_unref);
  g_clear_pointer (&res->x, kdf_tensor_unref);
  g_clear_pointer (&res->clean_labels, kdf_tensor_unref);
  g_clear_pointer (&res->kept_index, kdf_tensor_unref);
  g_clear_pointer (&res->input_index, kdf_tensor_unref);
  g_clear_pointer (&res->class_remap, g_free);
  res->n_noisy = 0;
  res->n_classes = 0;
}

static char *
class_list_text (int n_classes, const char *const *names)
{
  GString *s = g_string_new (NULL);
  for (int c = 0; c < n_classes; c++) {
    if (names && names[c])
      g_string_append_printf (s, "%s%d '%s'", c ? ", " : "", c, names[c]);
    else
      g_string_append_printf (s, "%s%d", c ? ", " : "", c);
  }
  return g_string_free (s, FALSE);
}

static gboolean
bad_class (GError **error, const char *what, const char *entry, const char *cls, int n_classes,
           const char *const *names)
{
  g_autofree char *all = class_list_text (n_classes, names);
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
               "%s entry '%s': there is no class '%s' (the %d classes are %s)", what, entry, cls,
               n_classes, all);
  return FALSE;
}

gboolean
kdf_noise_parse_class_map (const char *spec, int n_classes, const char *const *names,
                           int32_t *map_out, GError **error)
{
  g_return_val_if_fail (spec != NULL && map_out != NULL && n_classes > 0, FALSE);
  for (int c = 0; c < n_classes; c++)
    map_out[c] = -1;
  g_auto (GStrv) entries = g_strsplit (spec, ",", -1);
  for (int e = 0; entries[e]; e++) {
    char *entry = g_strstrip (entries[e]);
    if (*entry == '\0')
      continue;
    const char *arrow = strstr (entry, "->");
    gsize sep_len = 2;
    if (arrow == NULL) {
      arrow = strchr (entry, ':');
      sep_len = 1;
    }
    if (arrow == NULL) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "class map entry '%s' is not of the form 'from:to' or 'from->to'", entry);
      return FALSE;
    }
    g_autofree char *from = g_strndup (entry, arrow - entry);
    const char *to = arrow + sep_len;
    int a = kdf_data_resolve_class (from, n_classes, names);
    if (a < 0)
      return bad_class (error, "class map", entry, g_strstrip (from), n_classes, names);
    int b = kdf_data_resolve_class (to, n_classes, names);
    if (b < 0) {
      g_autofree char *t = g_strstrip (g_strdup (to));
      return bad_class (error, "class map", entry, t, n_classes, names);
    }
    if (map_out[a] >= 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "class map entry '%s': class %d is mapped twice", entry, a);
      return FALSE;
    }
    map_out[a] = b;
  }
  return TRUE;
}

int32_t *
kdf_noise_parse_class_list (const char *spec, int n_classes, const char *const *names,
                            int *n_out, GError **error)
{
  g_return_val_if_fail (spec != NULL && n_out != NULL, NULL);
  g_auto (GStrv) entries = g_strsplit (spec, ",", -1);
  g_autofree int32_t *list = g_new0 (int32_t, g_strv_length (entries) + 1);
  int n = 0;
  for (int e = 0; entries[e]; e++) {
    char *entry = g_strstrip (entries[e]);
    if (*entry == '\0')
      continue;
    int c = kdf_data_resolve_class (entry, n_classes, names);
    if (c < 0) {
      bad_class (error, "class list", entry, entry, n_classes, names);
      return NULL;
    }
    for (int k = 0; k < n; k++)
      if (list[k] == c) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "class list '%s' names class %d twice",
                     spec, c);
        return NULL;
      }
    list[n++] = c;
  }
  *n_out = n;
  return g_steal_pointer (&list);
}

/* Renumbers cluster ids in the order of each cluster's lowest class. */
static void
canonical_clusters (int32_t *id, int n_classes)
{
  g_autofree int32_t *to = g_new (int32_t, n_classes);
  for (int c = 0; c < n_classes; c++)
    to[c] = -1;
  int next = 0;
  for (int c = 0; c < n_classes; c++) {
    int32_t old = id[c];
    if (old < 0 || old >= n_classes) /* not assigned: a cluster of its own */
      id[c] = next++;
    else {
      if (to[old] < 0)
        to[old] = next++;
      id[c] = to[old];
    }
  }
}

gboolean
kdf_noise_parse_clusters (const char *spec, int n_classes, const char *const *names,
                          int32_t *clusters_out, GError **error)
{
  g_return_val_if_fail (spec != NULL && clusters_out != NULL && n_classes > 0, FALSE);
  for (int c = 0; c < n_classes; c++)
    clusters_out[c] = -1;
  g_auto (GStrv) groups = g_strsplit (spec, ";", -1);
  for (int k = 0; groups[k]; k++) {
    g_auto (GStrv) entries = g_strsplit (groups[k], ",", -1);
    for (int e = 0; entries[e]; e++) {
      char *entry = g_strstrip (entries[e]);
      if (*entry == '\0')
        continue;
      int c = kdf_data_resolve_class (entry, n_classes, names);
      if (c < 0)
        return bad_class (error, "cluster list", entry, entry, n_classes, names);
      if (clusters_out[c] >= 0) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                     "clusters '%s' name class %d twice", spec, c);
        return FALSE;
      }
      clusters_out[c] = k;
    }
  }
  canonical_clusters (clusters_out, n_classes);
  return TRUE;
}

/* FALSE with an error naming WHAT if X is kept on disk: the noise models that read
 * the inputs read them whole. */
static gboolean
check_in_memory (const KdfTensor *x, const char *what, GError **error)
{
  if (x && kdf_tensor_is_on_disk (x)) {
    const char *hint = kdf_tensor_on_disk_hint (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s reads the inputs x, which are kept on disk (%s)%s%s", what,
                 kdf_tensor_on_disk_path (x), hint ? ": " : "", hint ? hint : "");
    return FALSE;
  }
  return TRUE;
}

gboolean
kdf_noise_confusable_clusters (const KdfTensor *x, const KdfTensor *labels, int n_classes,
                               double cut, int32_t *clusters_out, double *heights_out,
                               GError **error)
{
  g_return_val_if_fail (clusters_out != NULL && n_classes > 0, FALSE);
  if (!kdf_tensor_check_labels (labels, n_classes, "labels", error))
    return FALSE;
  int64_t n = labels->shape[0];
  if (!check_in_memory (x, "finding confusable clusters", error))
    return FALSE;
  if (x == NULL || x->dtype != KDF_DTYPE_F32 || x->rank != 2 || x->shape[0] != n) {
    g_autofree char *d = x ? kdf_tensor_describe (x) : g_strdup ("nothing");
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "confusable clusters need the features x as f32[N,D] with N = %" G_GINT64_FORMAT
                 ", got %s",
                 (gint64) n, d);
    return FALSE;
  }
  if (!(cut > 0 && cut <= 1)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "confusable clusters: the cut %g is outside (0, 1] (a fraction of the largest "
                 "merge height)",
                 cut);
    return FALSE;
  }
  int C = n_classes;
  int64_t D = x->shape[1];
  g_autoptr (KdfTensor) lc = kdf_tensor_contiguous ((KdfTensor *) labels);
  const int32_t *y = kdf_tensor_i32 (lc);
  g_autofree double *mu = g_new0 (double, MAX (D, 1));
  g_autofree double *ubar = g_new0 (double, MAX ((gsize) C * D, 1));
  g_autofree int64_t *count = g_new0 (int64_t, C);
  g_autofree double *u = g_new (double, MAX (D, 1));
  const float *px = x->data;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < D; j++) {
      float v = px[i * x->strides[0] + j * x->strides[1]];
      if (!isfinite (v)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "confusable clusters: x[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                     "] is not finite",
                     (gint64) i, (gint64) j);
        return FALSE;
      }
      mu[j] += v;
    }
  for (int64_t j = 0; j < D; j++)
    mu[j] /= MAX (n, 1);
  for (int64_t i = 0; i < n; i++) {
    double norm = 0;
    for (int64_t j = 0; j < D; j++) {
      u[j] = px[i * x->strides[0] + j * x->strides[1]] - mu[j];
      norm += u[j] * u[j];
    }
    count[y[i]]++;
    if (norm <= 0)
      continue;
    norm = sqrt (norm);
    double *dst = ubar + (gsize) y[i] * D;
    for (int64_t j = 0; j < D; j++)
      dst[j] += u[j] / norm;
  }
  for (int c = 0; c < C; c++)
    for (int64_t j = 0; j < D; j++)
      ubar[(gsize) c * D + j] /= MAX (count[c], 1);
  /* distances between clusters under complete linkage: start from 1 − M */
  g_autofree double *dist = g_new (double, (gsize) C * C);
  for (int a = 0; a < C; a++)
    for (int b = 0; b < C; b++) {
      double m = 0;
      for (int64_t j = 0; j < D; j++)
        m += ubar[(gsize) a * D + j] * ubar[(gsize) b * D + j];
      dist[a * C + b] = 1 - m;
    }
  /* agglomerate: rep[c] = the representative (lowest class) of c's cluster; ALIVE
   * marks representatives. Record each merge (pair, height). */
  g_autofree int *rep = g_new (int, C);
  g_autofree gboolean *alive = g_new (gboolean, C);
  g_autofree int *ma = g_new (int, MAX (C - 1, 1));
  g_autofree int *mb = g_new (int, MAX (C - 1, 1));
  g_autofree double *mh = g_new (double, MAX (C - 1, 1));
  for (int c = 0; c < C; c++) {
    rep[c] = c;
    alive[c] = TRUE;
  }
  for (int step = 0; step < C - 1; step++) {
    int ba = -1, bb = -1;
    double best = INFINITY;
    for (int a = 0; a < C; a++)
      for (int b = a + 1; b < C && alive[a]; b++)
        if (alive[b] && dist[a * C + b] < best) {
          best = dist[a * C + b];
          ba = a;
          bb = b;
        }
    ma[step] = ba;
    mb[step] = bb;
    mh[step] = best;
    /* complete linkage: the merged cluster's distance to k is the larger of the two */
    for (int k = 0; k < C; k++)
      if (alive[k] && k != ba && k != bb) {
        double d = MAX (dist[ba * C + k], dist[bb * C + k]);
        dist[ba * C + k] = dist[k * C + ba] = d;
      }
    alive[bb] = FALSE;
  }
  double top = 0;
  for (int step = 0; step < C - 1; step++) {
    top = MAX (top, mh[step]);
    if (heights_out)
      heights_out[step] = mh[step];
  }
  /* complete-linkage heights never decrease, so the flat clusters at height h are the
   * merges up to the first one above h */
  double h = cut * top;
  for (int step = 0; step < C - 1 && mh[step] <= h; step++) {
    int from = rep[mb[step]], to = rep[ma[step]];
    for (int c = 0; c < C; c++)
      if (rep[c] == from)
        rep[c] = to;
  }
  for (int c = 0; c < C; c++)
    clusters_out[c] = rep[c];
  canonical_clusters (clusters_out, C);
  return TRUE;
}

/* ---- the models --------------------------------------------------------------- */

typedef struct {
  const KdfNoiseSpec *spec;
  int64_t n;
  int n_classes;
  const int32_t *y;   /* labels to corrupt, contiguous copy */
  int32_t *out;       /* noisy labels being built */
  guint8 *mask;       /* this call's noise */
  int32_t *eligible;  /* ascending indices not excluded */
  int64_t n_eligible;
  GRand *rand;
} Ctx;

static gboolean
too_few (GError **error, const char *kind, int64_t k, int64_t avail, const char *of)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
               "%s noise needs %" G_GINT64_FORMAT " samples%s but only %" G_GINT64_FORMAT
               " are eligible (not already noisy)",
               kind, (gint64) k, of, (gint64) avail);
  return FALSE;
}

static gboolean
need_two_classes (const Ctx *c, GError **error)
{
  if (c->n_classes < 2) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s noise needs at least 2 classes, got %d",
                 kdf_noise_kind_name (c->spec->kind), c->n_classes);
    return FALSE;
  }
  return TRUE;
}

static gboolean
noise_uniform (Ctx *c, GError **error)
{
  KdfNoiseKind kind = c->spec->kind;
  if (!need_two_classes (c, error))
    return FALSE;
  int64_t k = kdf_data_rate_count (c->spec->rate, c->n);
  if (k > c->n_eligible)
    return too_few (error, kdf_noise_kind_name (kind), k, c->n_eligible, "");
  kdf_data_choose (c->rand, c->eligible, c->n_eligible, k);
  for (int64_t p = 0; p < k; p++) {
    int32_t i = c->eligible[p];
    int32_t y = c->y[i], v;
    if (kind == KDF_NOISE_SYMMETRIC) {
      v = g_rand_int_range (c->rand, 0, c->n_classes - 1);
      if (v >= y)
        v++;
    } else if (kind == KDF_NOISE_SYMMETRIC_INCLUSIVE) {
      v = g_rand_int_range (c->rand, 0, c->n_classes);
    } else {
      v = (y + 1) % c->n_classes;
    }
    c->out[i] = v;
  }
  return TRUE;
}

static gboolean
noise_asymmetric (Ctx *c, GError **error)
{
  const int32_t *map = c->spec->class_map;
  if (map == NULL) {
    if (c->n_classes != 10) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "asymmetric noise: the default class map is Fashion-MNIST's (10 classes); "
                   "give a class map for %d classes",
                   c->n_classes);
      return FALSE;
    }
    map = fmnist_map;
  }
  for (int a = 0; a < c->n_classes; a++) {
    if (map[a] < -1 || map[a] >= c->n_classes) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "asymmetric noise: the class map sends class %d to %d, which does not exist "
                   "(classes 0 to %d)",
                   a, map[a], c->n_classes - 1);
      return FALSE;
    }
    if (map[a] == a) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "asymmetric noise: the class map sends class %d to itself", a);
      return FALSE;
    }
  }
  g_autofree int32_t *cand = g_new (int32_t, MAX (c->n_eligible, 1));
  for (int a = 0; a < c->n_classes; a++) {
    if (map[a] < 0)
      continue;
    int64_t n_a = 0, m = 0;
    for (int64_t i = 0; i < c->n; i++)
      n_a += c->y[i] == a;
    for (int64_t e = 0; e < c->n_eligible; e++)
      if (c->y[c->eligible[e]] == a)
        cand[m++] = c->eligible[e];
    int64_t k = kdf_data_rate_count (c->spec->rate, n_a);
    if (k > m) {
      g_autofree char *of = g_strdup_printf (" of class %d", a);
      return too_few (error, "asymmetric", k, m, of);
    }
    kdf_data_choose (c->rand, cand, m, k);
    for (int64_t p = 0; p < k; p++)
      c->out[cand[p]] = map[a];
  }
  return TRUE;
}

/* T as a row-major C×C double matrix, validated. */
static double *
transition_matrix (const KdfTensor *t, int n_classes, GError **error)
{
  if (t == NULL || t->dtype != KDF_DTYPE_F32 || t->rank != 2 || t->shape[0] != n_classes ||
      t->shape[1] != n_classes) {
    g_autofree char *d = t ? kdf_tensor_describe (t) : g_strdup ("nothing");
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "transition noise: the matrix is %s, expected f32[%d,%d]", d, n_classes,
                 n_classes);
    return NULL;
  }
  g_autofree double *T = g_new (double, (gsize) n_classes * n_classes);
  for (int a = 0; a < n_classes; a++) {
    double sum = 0;
    for (int b = 0; b < n_classes; b++) {
      int64_t idx[2] = { a, b };
      double v = kdf_tensor_get (t, idx);
      if (!isfinite (v) || v < 0) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                     "transition noise: T[%d,%d] = %g is not a probability", a, b, v);
        return NULL;
      }
      T[a * n_classes + b] = v;
      sum += v;
    }
    /* f32 entries written from float64 rows carry ~1e-7 error each. */
    if (fabs (sum - 1.0) > 1e-4) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "transition noise: row %d of the matrix sums to %.6g, not 1 (rows must be "
                   "probability distributions)",
                   a, sum);
      return NULL;
    }
  }
  return g_steal_pointer (&T);
}

/* Draws a class from P (C probabilities, summing to about 1) with one uniform draw. */
static int32_t
sample_categorical (GRand *rand, const double *p, int n)
{
  double u = g_rand_double (rand), acc = 0;
  int last = 0;
  for (int k = 0; k < n; k++) {
    if (p[k] <= 0)
      continue;
    acc += p[k];
    last = k;
    if (u < acc)
      return k;
  }
  return last;
}

static gboolean
noise_transition (Ctx *c, GError **error)
{
  g_autofree double *T = transition_matrix (c->spec->transition, c->n_classes, error);
  if (T == NULL)
    return FALSE;
  for (int64_t e = 0; e < c->n_eligible; e++) {
    int32_t i = c->eligible[e];
    c->out[i] = sample_categorical (c->rand, T + (gsize) c->y[i] * c->n_classes, c->n_classes);
  }
  return TRUE;
}

static gboolean
check_x (const KdfTensor *x, int64_t n, const char *kind, GError **error)
{
  g_autofree char *what = g_strdup_printf ("%s noise", kind);
  if (!check_in_memory (x, what, error))
    return FALSE;
  if (x == NULL || x->dtype != KDF_DTYPE_F32 || x->rank != 2 || x->shape[0] != n) {
    g_autofree char *d = x ? kdf_tensor_describe (x) : g_strdup ("nothing");
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s noise needs the inputs x as f32[N,D] with N = %" G_GINT64_FORMAT
                 ", got %s",
                 kind, (gint64) n, d);
    return FALSE;
  }
  return TRUE;
}

/* Xia et al., "Part-dependent label noise", NeurIPS 2020 — as METHODS §1 states it:
 * q_i ~ N(r, σ²) truncated to (0,1); p = q_i·softmax(x_iᵀW) over the classes ≠ y_i,
 * p_{y_i} = 1 − q_i. */
static gboolean
noise_instance (Ctx *c, const KdfTensor *x, GError **error)
{
  if (!need_two_classes (c, error) || !check_x (x, c->n, "instance", error))
    return FALSE;
  if (c->spec->rate == 0)
    return TRUE; /* no draws: truncated N(0, σ²) would still flip some */
  double sd = c->spec->instance_std > 0 ? c->spec->instance_std : 0.1;
  int64_t D = x->shape[1];
  int C = c->n_classes;
  /* at least one element each: g_try_new (…, 0) returns NULL, which is not a failure */
  g_autofree float *W = g_try_new (float, MAX ((gsize) D * C, 1));
  g_autofree float *z = g_try_new (float, MAX ((gsize) c->n * C, 1));
  if (W == NULL || z == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "instance noise: out of memory");
    return FALSE;
  }
  double cache = 0;
  gboolean have = FALSE;
  for (int64_t j = 0; j < D * C; j++)
    W[j] = (float) kdf_data_rand_normal (c->rand, &cache, &have);
  /* z (N×C) = x (N×D) · W (D×C) */
  if (c->n > 0 && D > 0)
    kdf_sgemm (KDF_NO_TRANS, KDF_NO_TRANS, c->n, C, D, 1.0f, x->data, x->strides[0],
               x->strides[1], W, C, 1, 0.0f, z, C, 1, 1);
  else
    memset (z, 0, sizeof (float) * c->n * C);
  g_autofree double *p = g_new (double, C);
  for (int64_t e = 0; e < c->n_eligible; e++) {
    int32_t i = c->eligible[e];
    int32_t y = c->y[i];
    double q;
    do
      q = c->spec->rate + sd * kdf_data_rand_normal (c->rand, &cache, &have);
    while (!(q > 0 && q < 1));
    const float *zi = z + (gsize) i * C;
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < C; k++)
      if (k != y && zi[k] > mx)
        mx = zi[k];
    for (int k = 0; k < C; k++) {
      p[k] = k == y ? 0 : exp (zi[k] - mx);
      sum += p[k];
    }
    for (int k = 0; k < C; k++)
      p[k] = k == y ? 1 - q : q * p[k] / sum;
    c->out[i] = sample_categorical (c->rand, p, C);
  }
  return TRUE;
}

static gboolean
noise_cc (Ctx *c, const KdfTensor *x, GError **error)
{
  int C = c->n_classes;
  g_autofree int32_t *cl = g_new (int32_t, C);
  if (c->spec->clusters) {
    for (int a = 0; a < C; a++) {
      cl[a] = c->spec->clusters[a];
      if (cl[a] < 0 || cl[a] >= C) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                     "cc noise: class %d is in cluster %d; cluster ids lie in [0, %d)", a, cl[a],
                     C);
        return FALSE;
      }
    }
  } else {
    g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, c->n);
    memcpy (kdf_tensor_i32 (y), c->y, sizeof (int32_t) * c->n);
    double cut = c->spec->cluster_cut > 0 ? c->spec->cluster_cut : 0.8;
    if (!kdf_noise_confusable_clusters (x, y, C, cut, cl, NULL, error)) {
      g_prefix_error (error, "cc noise: ");
      return FALSE;
    }
  }
  g_autofree int32_t *cand = g_new (int32_t, MAX (c->n_eligible, 1));
  g_autofree int32_t *others = g_new (int32_t, C);
  for (int a = 0; a < C; a++) {
    int m = 0;
    for (int b = 0; b < C; b++)
      if (b != a && cl[b] == cl[a])
        others[m++] = b;
    if (m == 0)
      continue; /* alone in its cluster: T[a,a] = 1 */
    int64_t n_a = 0, n_cand = 0;
    for (int64_t i = 0; i < c->n; i++)
      n_a += c->y[i] == a;
    for (int64_t e = 0; e < c->n_eligible; e++)
      if (c->y[c->eligible[e]] == a)
        cand[n_cand++] = c->eligible[e];
    int64_t k = kdf_data_rate_count (c->spec->rate, n_a);
    if (k > n_cand) {
      g_autofree char *of = g_strdup_printf (" of class %d", a);
      return too_few (error, "cc", k, n_cand, of);
    }
    kdf_data_choose (c->rand, cand, n_cand, k);
    int o = g_rand_int_range (c->rand, 0, m);
    for (int64_t p = 0; p < k; p++)
      c->out[cand[p]] = others[(o + p) % m];
  }
  return TRUE;
}

static gboolean
noise_file (Ctx *c, GError **error)
{
  const char *path = c->spec->file;
  if (path == NULL || *path == '\0') {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "file noise needs a .npy file of labels");
    return FALSE;
  }
  g_autoptr (KdfTensor) t = kdf_npy_read (path, KDF_DTYPE_I32, error);
  if (t == NULL)
    return FALSE;
  if (t->rank != 1 || t->shape[0] != c->n) {
    g_autofree char *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: the labels are %s, expected i32[%" G_GINT64_FORMAT "] (one per sample)",
                 path, d, (gint64) c->n);
    return FALSE;
  }
  const int32_t *v = kdf_tensor_i32 (t);
  for (int64_t i = 0; i < c->n; i++)
    if (v[i] < 0 || v[i] >= c->n_classes) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "%s: label %" G_GINT64_FORMAT " is %d, outside [0, %d)", path, (gint64) i,
                   v[i], c->n_classes);
      return FALSE;
    }
  for (int64_t e = 0; e < c->n_eligible; e++)
    c->out[c->eligible[e]] = v[c->eligible[e]];
  return TRUE;
}

static gboolean
noise_openset (Ctx *c, const KdfTensor *x, const guint8 *excl, KdfNoiseResult *res,
               GError **error)
{
  const KdfNoiseSpec *spec = c->spec;
  int C = c->n_classes;
  if (!check_x (x, c->n, "openset", error))
    return FALSE;
  const gboolean permuted = spec->open_input == KDF_OPEN_PERMUTED;
  if (spec->open_input != KDF_OPEN_HELDOUT && !permuted) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "openset noise: unknown input source %d",
                 (int) spec->open_input);
    return FALSE;
  }
  if (!permuted && (spec->heldout == NULL || spec->n_heldout <= 0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "openset noise needs at least one held-out class");
    return FALSE;
  }
  g_autofree int32_t *remap = g_new (int32_t, C);
  for (int k = 0; k < C; k++)
    remap[k] = 0;
  for (int h = 0; h < spec->n_heldout; h++) {
    int32_t k = spec->heldout[h];
    if (k < 0 || k >= C) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "openset noise: held-out class %d does not exist (classes 0 to %d)", k,
                   C - 1);
      return FALSE;
    }
    remap[k] = -1;
  }
  int C2 = 0;
  for (int k = 0; k < C; k++)
    if (remap[k] == 0)
      remap[k] = C2++;
  if (C2 < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "openset noise: every class is held out; nothing is left in-set");
    return FALSE;
  }
  g_autofree int32_t *in_idx = g_new (int32_t, MAX (c->n, 1));
  g_autofree int32_t *out_idx = g_new (int32_t, MAX (c->n, 1));
  g_autofree int32_t *cand = g_new (int32_t, MAX (c->n, 1));
  g_autofree int32_t *row_of = g_new (int32_t, MAX (c->n, 1)); /* original → new row */
  int64_t n_in = 0, n_out = 0, m = 0;
  for (int64_t i = 0; i < c->n; i++) {
    if (remap[c->y[i]] < 0) {
      out_idx[n_out++] = (int32_t) i;
    } else {
      row_of[i] = (int32_t) n_in;
      in_idx[n_in++] = (int32_t) i;
      if (!excl || !excl[i])
        cand[m++] = (int32_t) i;
    }
  }
  int64_t k = kdf_data_rate_count (spec->rate, n_in);
  if (k > m)
    return too_few (error, "openset", k, m, " of the in-set classes");
  if (!permuted && k > n_out) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "openset noise at rate %g replaces %" G_GINT64_FORMAT
                 " inputs, but the held-out classes have only %" G_GINT64_FORMAT " samples",
                 spec->rate, (gint64) k, (gint64) n_out);
    return FALSE;
  }
  kdf_data_choose (c->rand, cand, m, k);
  int64_t D = x->shape[1];
  g_autofree int32_t *perm = NULL;
  if (permuted) {
    /* one permutation of the features, then the source rows among the in-set ones */
    perm = g_new (int32_t, MAX (D, 1));
    for (int64_t j = 0; j < D; j++)
      perm[j] = (int32_t) j;
    for (int64_t j = D - 1; j > 0; j--) {
      int64_t q = g_rand_int_range (c->rand, 0, (gint32) (j + 1));
      int32_t t = perm[j];
      perm[j] = perm[q];
      perm[q] = t;
    }
    memcpy (out_idx, in_idx, (gsize) n_in * sizeof *out_idx);
    kdf_data_choose (c->rand, out_idx, n_in, k);
  } else {
    kdf_data_choose (c->rand, out_idx, n_out, k);
  }

  GError *local = NULL;
  int64_t xs[2] = { n_in, D };
  g_autoptr (KdfTensor) nx = kdf_tensor_try_new (KDF_DTYPE_F32, 2, xs, &local);
  if (nx == NULL) {
    g_propagate_error (error, local);
    return FALSE;
  }
  KdfTensor *labels = kdf_tensor_new_1d (KDF_DTYPE_I32, n_in);
  KdfTensor *clean = kdf_tensor_new_1d (KDF_DTYPE_I32, n_in);
  KdfTensor *mask = kdf_tensor_new_1d (KDF_DTYPE_U8, n_in);
  KdfTensor *kept = kdf_tensor_new_1d (KDF_DTYPE_I32, n_in);
  KdfTensor *input = kdf_tensor_new_1d (KDF_DTYPE_I32, n_in);
  for (int64_t r = 0; r < n_in; r++) {
    int32_t i = in_idx[r];
    kdf_tensor_i32 (labels)[r] = remap[c->y[i]];
    kdf_tensor_i32 (clean)[r] = remap[c->y[i]];
    kdf_tensor_i32 (kept)[r] = i;
    kdf_tensor_i32 (input)[r] = i;
  }
  for (int64_t p = 0; p < k; p++) {
    int32_t r = row_of[cand[p]];
    kdf_tensor_i32 (input)[r] = out_idx[p];
    kdf_tensor_u8 (mask)[r] = 1;
  }
  const float *px = x->data;
  float *dst = kdf_tensor_f32 (nx);
  for (int64_t r = 0; r < n_in; r++) {
    const float *src = px + (int64_t) kdf_tensor_i32 (input)[r] * x->strides[0];
    if (perm && kdf_tensor_u8 (mask)[r])
      for (int64_t j = 0; j < D; j++)
        dst[r * D + j] = src[(int64_t) perm[j] * x->strides[1]];
    else
      for (int64_t j = 0; j < D; j++)
        dst[r * D + j] = src[j * x->strides[1]];
  }
  res->labels = labels;
  res->noisy_mask = mask;
  res->n_noisy = k;
  res->x = g_steal_pointer (&nx);
  res->clean_labels = clean;
  res->kept_index = kept;
  res->input_index = input;
  res->class_remap = g_steal_pointer (&remap);
  res->n_classes = C2;
  return TRUE;
}

gboolean
kdf_noise_apply (const KdfNoiseSpec *spec, const KdfTensor *clean, int n_classes,
                 const KdfTensor *x, const KdfTensor *exclude, KdfNoiseResult *out,
                 GError **error)
{
  g_return_val_if_fail (spec != NULL && clean != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (n_classes < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "noise: %d classes", n_classes);
    return FALSE;
  }
  if (!kdf_tensor_check_labels (clean, n_classes, "labels", error))
    return FALSE;
  int64_t n = clean->shape[0];
  if (n > G_MAXINT32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "noise: more than 2^31 samples");
    return FALSE;
  }
  gboolean uses_rate = spec->kind != KDF_NOISE_TRANSITION && spec->kind != KDF_NOISE_FILE &&
                       spec->kind != KDF_NOISE_NONE;
  if (uses_rate && !(spec->rate >= 0 && spec->rate < 1)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "%s noise: rate %g is outside [0, 1)", kdf_noise_kind_name (spec->kind),
                 spec->rate);
    return FALSE;
  }
  if (exclude && (exclude->dtype != KDF_DTYPE_U8 || exclude->rank != 1 ||
                  exclude->shape[0] != n)) {
    g_autofree char *d = kdf_tensor_describe (exclude);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "noise: the exclude mask is %s, expected u8[%" G_GINT64_FORMAT "]", d,
                 (gint64) n);
    return FALSE;
  }
  g_autoptr (KdfTensor) yc = kdf_tensor_copy (clean);
  g_autoptr (KdfTensor) ec = exclude ? kdf_tensor_copy (exclude) : NULL;
  const guint8 *excl = ec ? kdf_tensor_u8 (ec) : NULL;
  g_autoptr (GRand) rand = kdf_data_rand_new (spec->seed);

  if (spec->kind == KDF_NOISE_OPENSET) {
    Ctx c = { .spec = spec, .n = n, .n_classes = n_classes, .y = kdf_tensor_i32 (yc),
              .rand = rand };
    return noise_openset (&c, x, excl, out, error);
  }

  g_autoptr (KdfTensor) labels = kdf_tensor_copy (yc);
  g_autoptr (KdfTensor) mask = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  g_autofree int32_t *eligible = g_new (int32_t, MAX (n, 1));
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (!excl || !excl[i])
      eligible[m++] = (int32_t) i;
  Ctx c = { .spec = spec, .n = n, .n_classes = n_classes, .y = kdf_tensor_i32 (yc),
            .out = kdf_tensor_i32 (labels), .mask = kdf_tensor_u8 (mask), .eligible = eligible,
            .n_eligible = m, .rand = rand };
  gboolean ok;
  switch (spec->kind) {
  case KDF_NOISE_NONE:
    ok = TRUE;
    break;
  case KDF_NOISE_SYMMETRIC:
  case KDF_NOISE_SYMMETRIC_INCLUSIVE:
  case KDF_NOISE_PAIRFLIP:
    ok = noise_uniform (&c, error);
    break;
  case KDF_NOISE_ASYMMETRIC:
    ok = noise_asymmetric (&c, error);
    break;
  case KDF_NOISE_TRANSITION:
    ok = noise_transition (&c, error);
    break;
  case KDF_NOISE_INSTANCE:
    ok = noise_instance (&c, x, error);
    break;
  case KDF_NOISE_FILE:
    ok = noise_file (&c, error);
    break;
  case KDF_NOISE_CC:
    ok = noise_cc (&c, x, error);
    break;
  default:
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "unknown noise kind %d", spec->kind);
    ok = FALSE;
  }
  if (!ok)
    return FALSE;
  int64_t flipped = 0;
  for (int64_t i = 0; i < n; i++) {
    c.mask[i] = c.out[i] != c.y[i];
    flipped += c.mask[i];
  }
  out->labels = g_steal_pointer (&labels);
  out->noisy_mask = g_steal_pointer (&mask);
  out->n_noisy = flipped;
  out->n_classes = n_classes;
  return TRUE;
}
