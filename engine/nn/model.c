/* Sequential models: architecture strings, layer specs, parameter blocks, buffers,
 * forward and backward through the trunk and its projection heads. */
#include "config.h"

#include "nn-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float *
kdf_nn_alloc (int64_t n_floats)
{
  gsize bytes = ((gsize) (n_floats > 0 ? n_floats : 1) * sizeof (float) + 63) & ~(gsize) 63;
  float *p = aligned_alloc (64, bytes);
  if (!p)
    g_error ("kdflow: out of memory allocating %" G_GSIZE_FORMAT " bytes", bytes);
  memset (p, 0, bytes);
  return p;
}

void
kdf_nn_free (void *p)
{
  free (p);
}

/* ---- architecture strings ------------------------------------------------------ */

typedef struct {
  GArray *specs; /* KdfLayerSpec */
  int in_rank;
  int64_t in_shape[3];
} ArchParse;

static gboolean
arch_error (GError **error, const char *arch, const char *tok, const char *what)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "architecture '%s': %s%s%s%s", arch, what,
               tok ? " at '" : "", tok ? tok : "", tok ? "'" : "");
  return FALSE;
}

/* Reads a positive decimal integer at *P, advancing it. */
static gboolean
read_int (const char **p, int *out)
{
  const char *s = *p;
  if (!g_ascii_isdigit (*s))
    return FALSE;
  gint64 v = 0;
  while (g_ascii_isdigit (*s)) {
    v = v * 10 + (*s - '0');
    if (v > 1 << 24)
      return FALSE;
    s++;
  }
  *p = s;
  *out = (int) v;
  return TRUE;
}

static gboolean
parse_shape (const char *tok, ArchParse *ap)
{
  int v, r = 0;
  const char *s = tok;
  while (r < 3) {
    if (!read_int (&s, &v) || v <= 0)
      return FALSE;
    ap->in_shape[r++] = v;
    if (*s == '\0')
      break;
    if (*s != 'x')
      return FALSE;
    s++;
  }
  if (*s != '\0' || (r != 1 && r != 3))
    return FALSE;
  ap->in_rank = r;
  return TRUE;
}

static void
push (ArchParse *ap, KdfLayerSpec spec)
{
  g_array_append_val (ap->specs, spec);
}

static gboolean
parse_dims (const char *arch, const char *body, GArray *dims, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (body, "-", -1);
  for (int i = 0; parts[i]; i++) {
    const char *s = parts[i];
    int v;
    if (!read_int (&s, &v) || *s != '\0' || v <= 0)
      return arch_error (error, arch, parts[i], "expected a positive size");
    g_array_append_val (dims, v);
  }
  return TRUE;
}

/* mlp:D0-D1-...-Dk and linear:D-C, with an optional ":nobias". */
static gboolean
parse_mlp (const char *arch, const char *body, gboolean probe, ArchParse *ap, GError **error)
{
  g_auto (GStrv) opts = g_strsplit (body, ":", 2);
  gboolean no_bias = FALSE;
  if (opts[1]) {
    if (strcmp (opts[1], "nobias") != 0)
      return arch_error (error, arch, opts[1], "unknown option (known: nobias)");
    no_bias = TRUE;
  }
  g_autoptr (GArray) dims = g_array_new (FALSE, FALSE, sizeof (int));
  if (!parse_dims (arch, opts[0], dims, error))
    return FALSE;
  if (dims->len < 2)
    return arch_error (error, arch, NULL, "needs at least an input and an output size");
  if (probe && dims->len != 2)
    return arch_error (error, arch, NULL, "a linear probe has exactly two sizes (in-out)");
  ap->in_rank = 1;
  ap->in_shape[0] = g_array_index (dims, int, 0);
  for (guint i = 1; i < dims->len; i++) {
    push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_LINEAR, .out = g_array_index (dims, int, i),
                              .no_bias = no_bias });
    if (i + 1 < dims->len)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
  }
  return TRUE;
}

/* A conv token body after its channel count: [kK][sS][pP][nb] in any order. */
static gboolean
parse_conv_opts (const char *s, KdfLayerSpec *spec, gboolean allow_nb)
{
  int k = 3, st = 1, pad = -1;
  while (*s) {
    int v;
    char c = *s++;
    if (c == 'n' && *s == 'b' && allow_nb) {
      s++;
      spec->no_bias = TRUE;
      continue;
    }
    if (!read_int (&s, &v))
      return FALSE;
    if (c == 'k' && v > 0)
      k = v;
    else if (c == 's' && v > 0)
      st = v;
    else if (c == 'p')
      pad = v;
    else
      return FALSE;
  }
  spec->kernel = k;
  spec->stride = st;
  spec->padding = pad < 0 ? k / 2 : pad;
  return TRUE;
}

static gboolean
parse_prob (const char *s, double *p)
{
  char *end = NULL;
  double v = g_ascii_strtod (s, &end);
  if (end == s || *end != '\0' || !(v >= 0.0 && v < 1.0))
    return FALSE;
  *p = v;
  return TRUE;
}

static gboolean
parse_cnn (const char *arch, const char *body, ArchParse *ap, GError **error)
{
  g_auto (GStrv) toks = g_strsplit (body, "-", -1);
  if (!toks[0] || !parse_shape (toks[0], ap) || ap->in_rank != 3)
    return arch_error (error, arch, toks[0], "expected the input shape CxHxW");
  gboolean spatial = TRUE;
  int ntok = (int) g_strv_length (toks);
  for (int i = 1; i < ntok; i++) {
    const char *t = toks[i], *s = t + 1;
    int v;
    gboolean last = i == ntok - 1;
    if (g_ascii_isdigit (t[0])) {
      s = t;
      if (!last)
        return arch_error (error, arch, t, "the class count must be the last token");
      if (!read_int (&s, &v) || *s || v <= 0)
        return arch_error (error, arch, t, "expected a class count");
      if (spatial)
        push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_FLATTEN });
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_LINEAR, .out = v });
      return TRUE;
    }
    switch (t[0]) {
    case 'c': {
      KdfLayerSpec sp = { .kind = KDF_LAYER_CONV2D };
      if (!spatial)
        return arch_error (error, arch, t, "a convolution after the flatten");
      if (!read_int (&s, &v) || v <= 0 || !parse_conv_opts (s, &sp, FALSE))
        return arch_error (error, arch, t, "expected cN or cNkKsSpP");
      sp.out = v;
      push (ap, sp);
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
      break;
    }
    case 'p':
      if (!spatial)
        return arch_error (error, arch, t, "a pooling after the flatten");
      if (!read_int (&s, &v) || *s || v <= 0)
        return arch_error (error, arch, t, "expected pK");
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_MAXPOOL2D, .kernel = v, .stride = v });
      break;
    case 'f':
      if (!read_int (&s, &v) || *s || v <= 0)
        return arch_error (error, arch, t, "expected fN");
      if (spatial)
        push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_FLATTEN });
      spatial = FALSE;
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_LINEAR, .out = v });
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
      break;
    case 'd': {
      double p;
      if (!parse_prob (s, &p))
        return arch_error (error, arch, t, "expected dP with 0 <= P < 1");
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_DROPOUT, .p = p });
      break;
    }
    default:
      return arch_error (error, arch, t, "unknown token (known: cN, pK, fN, dP, and the class count last)");
    }
  }
  return arch_error (error, arch, NULL, "must end with the class count");
}

static gboolean
parse_seq (const char *arch, const char *body, ArchParse *ap, GError **error)
{
  g_auto (GStrv) toks = g_strsplit (body, "-", -1);
  if (!toks[0] || !parse_shape (toks[0], ap))
    return arch_error (error, arch, toks[0], "expected the input shape D or CxHxW");
  for (int i = 1; toks[i]; i++) {
    const char *t = toks[i];
    int v;
    if (strcmp (t, "relu") == 0)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
    else if (strcmp (t, "flatten") == 0)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_FLATTEN });
    else if (strcmp (t, "l2norm") == 0)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_L2NORM });
    else if (strcmp (t, "tap") == 0) {
      if (ap->specs->len == 0)
        return arch_error (error, arch, t, "tap before any layer (the input is the default tap only for a probe)");
      g_array_index (ap->specs, KdfLayerSpec, ap->specs->len - 1).tap = TRUE;
    } else if (g_str_has_prefix (t, "linear")) {
      const char *s = t + 6;
      KdfLayerSpec sp = { .kind = KDF_LAYER_LINEAR };
      if (!read_int (&s, &v) || v <= 0)
        return arch_error (error, arch, t, "expected linearN or linearNnb");
      if (strcmp (s, "nb") == 0)
        sp.no_bias = TRUE;
      else if (*s)
        return arch_error (error, arch, t, "expected linearN or linearNnb");
      sp.out = v;
      push (ap, sp);
    } else if (g_str_has_prefix (t, "conv")) {
      const char *s = t + 4;
      KdfLayerSpec sp = { .kind = KDF_LAYER_CONV2D };
      if (!read_int (&s, &v) || v <= 0 || !parse_conv_opts (s, &sp, TRUE))
        return arch_error (error, arch, t, "expected convNkKsSpP[nb]");
      sp.out = v;
      push (ap, sp);
    } else if (g_str_has_prefix (t, "max")) {
      const char *s = t + 3;
      int k, st;
      if (!read_int (&s, &k) || k <= 0)
        return arch_error (error, arch, t, "expected maxK or maxKsS");
      st = k;
      if (*s == 's' && (s++, !read_int (&s, &st) || st <= 0))
        return arch_error (error, arch, t, "expected maxK or maxKsS");
      if (*s)
        return arch_error (error, arch, t, "expected maxK or maxKsS");
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_MAXPOOL2D, .kernel = k, .stride = st });
    } else if (g_str_has_prefix (t, "drop")) {
      double p;
      if (!parse_prob (t + 4, &p))
        return arch_error (error, arch, t, "expected dropP with 0 <= P < 1");
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_DROPOUT, .p = p });
    } else
      return arch_error (error, arch, t, "unknown layer (known: linearN, convNkKsSpP, relu, maxK, flatten, dropP, l2norm, tap)");
  }
  return TRUE;
}

static gboolean
parse_arch (const char *arch, ArchParse *ap, GError **error)
{
  const char *colon = strchr (arch, ':');
  if (!colon)
    return arch_error (error, arch, NULL, "expected KIND:... with KIND mlp, linear, cnn or seq");
  g_autofree char *kind = g_strndup (arch, colon - arch);
  const char *body = colon + 1;
  if (strcmp (kind, "mlp") == 0)
    return parse_mlp (arch, body, FALSE, ap, error);
  if (strcmp (kind, "linear") == 0)
    return parse_mlp (arch, body, TRUE, ap, error);
  if (strcmp (kind, "cnn") == 0)
    return parse_cnn (arch, body, ap, error);
  if (strcmp (kind, "seq") == 0)
    return parse_seq (arch, body, ap, error);
  return arch_error (error, arch, kind, "unknown kind (known: mlp, linear, cnn, seq)");
}

static char *
seq_string (int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs, guint n)
{
  GString *s = g_string_new ("seq:");
  for (int d = 0; d < in_rank; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "x" : "", (gint64) in_shape[d]);
  for (guint i = 0; i < n; i++) {
    const KdfLayerSpec *sp = &specs[i];
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    switch (sp->kind) {
    case KDF_LAYER_LINEAR:
      g_string_append_printf (s, "-linear%d%s", sp->out, sp->no_bias ? "nb" : "");
      break;
    case KDF_LAYER_CONV2D:
      g_string_append_printf (s, "-conv%dk%ds%dp%d%s", sp->out, sp->kernel,
                              sp->stride ? sp->stride : 1, sp->padding,
                              sp->no_bias ? "nb" : "");
      break;
    case KDF_LAYER_RELU:
      g_string_append (s, "-relu");
      break;
    case KDF_LAYER_MAXPOOL2D:
      g_string_append_printf (s, "-max%ds%d", sp->kernel, sp->stride ? sp->stride : sp->kernel);
      break;
    case KDF_LAYER_FLATTEN:
      g_string_append (s, "-flatten");
      break;
    case KDF_LAYER_DROPOUT:
      g_string_append_printf (s, "-drop%s", g_ascii_dtostr (buf, sizeof buf, sp->p));
      break;
    case KDF_LAYER_L2NORM:
      g_string_append (s, "-l2norm");
      break;
    }
    if (sp->tap)
      g_string_append (s, "-tap");
  }
  return g_string_free (s, FALSE);
}

/* ---- building a net ------------------------------------------------------------ */

static const char *
layer_name (KdfLayerKind k)
{
  static const char *names[] = { "linear", "relu", "conv2d", "maxpool2d", "flatten", "dropout",
                                 "l2norm" };
  return (unsigned) k < G_N_ELEMENTS (names) ? names[k] : "?";
}

static void
net_free_buffers (KdfNet *net)
{
  if (!net->buf) /* a net that failed to build never had buffers */
    return;
  for (int j = 1; j <= net->n_layers; j++)
    if (net->buf[j] == j) {
      kdf_nn_free (net->act[j]);
      kdf_nn_free (net->dact[j]);
    }
  for (int j = 0; j <= net->n_layers; j++)
    net->act[j] = net->dact[j] = NULL;
  kdf_nn_free (net->in_grad);
  net->in_grad = NULL;
  for (int i = 0; i < net->n_layers; i++) {
    kdf_nn_free (net->argmax[i]);
    kdf_nn_free (net->mask[i]);
    kdf_nn_free (net->norm[i]);
    net->argmax[i] = NULL;
    net->mask[i] = NULL;
    net->norm[i] = NULL;
  }
  kdf_nn_free (net->col);
  net->col = NULL;
  net->cap = 0;
}

static void
net_free (KdfNet *net)
{
  if (!net)
    return;
  net_free_buffers (net);
  kdf_nn_free (net->params);
  kdf_nn_free (net->grads);
  g_free (net->layers);
  g_free (net->buf);
  g_free (net->act);
  g_free (net->dact);
  g_free (net->argmax);
  g_free (net->mask);
  g_free (net->norm);
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
static KdfNet *
net_build (const char *what, int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs,
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
  net->n_params = off;
  net->params = kdf_nn_alloc (off);
  net->grads = kdf_nn_alloc (off);
  net->in_size = net->layers[0].in_size;
  net->out_size = net->layers[n - 1].out_size;
  net->buf = g_new0 (int, n + 1);
  for (guint j = 1; j <= n; j++)
    net->buf[j] = net->layers[j - 1].alias ? net->buf[j - 1] : (int) j;
  net->act = g_new0 (float *, n + 1);
  net->dact = g_new0 (float *, n + 1);
  net->argmax = g_new0 (int32_t *, n);
  net->mask = g_new0 (uint8_t *, n);
  net->norm = g_new0 (float *, n);
  for (guint i = 0; i < n; i++) {
    const KdfLayer *L = &net->layers[i];
    if (L->kind == KDF_LAYER_CONV2D) {
      int64_t sz = 2 * (int64_t) L->in_c * L->kernel * L->kernel * L->out_h * L->out_w;
      net->col_size = MAX (net->col_size, sz);
    }
  }
  return net;
fail:
  g_propagate_error (error, g_steal_pointer (&local));
  net_free (net);
  return NULL;
}

/* PyTorch's default init for Linear and Conv2d: kaiming_uniform_(a=√5) gives
 * U(±gain·√(3/fan_in)) with gain = √(2/(1+5)), i.e. U(±1/√fan_in); the bias is
 * U(±1/√fan_in) as well. */
static void
net_init_params (KdfNet *net, guint64 seed)
{
  guint32 s[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (s, 2);
  for (int i = 0; i < net->n_layers; i++) {
    KdfLayer *L = &net->layers[i];
    if (!L->w_numel)
      continue;
    int64_t fan_in = L->w_numel / L->out_c;
    double bound = 1.0 / sqrt ((double) fan_in);
    for (int64_t j = 0; j < L->w_numel; j++)
      net->params[L->w_off + j] = (float) g_rand_double_range (rng, -bound, bound);
    for (int64_t j = 0; j < L->b_numel; j++)
      net->params[L->b_off + j] = (float) g_rand_double_range (rng, -bound, bound);
  }
  g_rand_free (rng);
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
  net_free (m->trunk);
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
  KdfNet *net = net_build (what, in_rank, in_shape, specs, n, error);
  if (!net)
    return NULL;
  net_init_params (net, seed);
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
  m->heads = g_ptr_array_new_with_free_func ((GDestroyNotify) net_free);
  m->params = g_ptr_array_new_with_free_func (param_free);
  net_add_params (m, net, "");
  return m;
}

KdfModel *
kdf_model_new_from_arch (const char *arch, guint64 seed, GError **error)
{
  g_return_val_if_fail (arch != NULL, NULL);
  ArchParse ap = { .specs = g_array_new (FALSE, TRUE, sizeof (KdfLayerSpec)) };
  g_autofree char *trimmed = g_strstrip (g_strdup (arch));
  KdfModel *m = NULL;
  if (parse_arch (trimmed, &ap, error))
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
  g_autofree char *arch = seq_string (in_rank, in_shape, specs, n_specs);
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
    if (!read_int (&s, &v) || *s || v <= 0) {
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
  KdfNet *net = net_build (what, 1, in_shape, (KdfLayerSpec *) specs->data, specs->len, error);
  if (!net)
    return -1;
  net->name = g_strdup (name);
  net->spec = g_strdup (spec);
  net->input_grad = TRUE;
  net_init_params (net, seed);
  g_ptr_array_add (m->heads, net);
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
  ArchParse ap = { .specs = g_array_new (FALSE, TRUE, sizeof (KdfLayerSpec)) };
  /* The arch string always parses: it was parsed or generated when M was made. */
  gboolean ok = parse_arch (m->arch, &ap, &err);
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

static void
net_ensure_capacity (KdfNet *net, int64_t n)
{
  if (n <= net->cap)
    return;
  net_free_buffers (net);
  net->cap = n;
  for (int j = 1; j <= net->n_layers; j++)
    if (net->buf[j] == j) {
      int64_t sz = net->layers[j - 1].out_size * n;
      net->act[j] = kdf_nn_alloc (sz);
      net->dact[j] = kdf_nn_alloc (sz);
    }
  for (int j = 1; j <= net->n_layers; j++)
    if (net->buf[j] != j) {
      net->act[j] = net->act[net->buf[j]];
      net->dact[j] = net->dact[net->buf[j]];
    }
  for (int i = 0; i < net->n_layers; i++) {
    const KdfLayer *L = &net->layers[i];
    if (L->kind == KDF_LAYER_MAXPOOL2D)
      net->argmax[i] = (int32_t *) kdf_nn_alloc (L->out_size * n);
    else if (L->kind == KDF_LAYER_DROPOUT)
      net->mask[i] = (uint8_t *) kdf_nn_alloc ((L->out_size * n + 3) / 4);
    else if (L->kind == KDF_LAYER_L2NORM)
      net->norm[i] = kdf_nn_alloc (n);
  }
  if (net->col_size)
    net->col = kdf_nn_alloc (net->col_size);
  /* A trunk whose tap is its input (a probe) keeps a gradient buffer there for the
   * losses and heads that add into the tap. */
  if (net->tap == 0 && !net->input_grad)
    net->in_grad = kdf_nn_alloc (net->in_size * n);
}

/* Points act[0] (and everything aliased to it) at the net's input X. */
static void
net_set_input (KdfNet *net, const float *x, float *dx)
{
  for (int j = 0; j <= net->n_layers && net->buf[j] == 0; j++) {
    net->act[j] = (float *) x;
    net->dact[j] = dx ? dx : net->in_grad;
  }
}

static void
net_forward (KdfNet *net, const float *x, float *dx, int64_t n, gboolean train, GRand *rng,
             int threads)
{
  net_ensure_capacity (net, n);
  net_set_input (net, x, dx);
  net->n = n;
  net->train = train;
  int pooled = -1; /* a max-pool already run together with the conv before it */
  for (int i = 0; i < net->n_layers; i++) {
    const KdfLayer *L = &net->layers[i];
    const float *in = net->act[i];
    float *out = net->act[i + 1];
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
          kdf_conv2d_forward (out + s * L->out_size, net->col, in + s * L->in_size, W, B, 1,
                              L->in_c, L->in_h, L->in_w, L->out_c, L->kernel, L->stride, L->pad,
                              L->relu_fused, threads);
          kdf_maxpool2d_forward (net->act[j + 1] + s * P->out_size,
                                 net->argmax[j] + s * P->out_size, net->act[j] + s * P->in_size,
                                 1, P->in_c, P->in_h, P->in_w, P->kernel, P->stride);
        }
        pooled = j;
        break;
      }
      kdf_conv2d_forward (out, net->col, in, W, B, n, L->in_c, L->in_h, L->in_w, L->out_c,
                          L->kernel, L->stride, L->pad, L->relu_fused, threads);
      break;
    }
    case KDF_LAYER_RELU:
      kdf_relu_forward (out, in, n * L->in_size);
      break;
    case KDF_LAYER_MAXPOOL2D:
      kdf_maxpool2d_forward (out, net->argmax[i], in, n, L->in_c, L->in_h, L->in_w, L->kernel,
                             L->stride);
      break;
    case KDF_LAYER_DROPOUT:
      if (train && L->p > 0.0)
        kdf_dropout_forward (out, net->mask[i], in, n * L->in_size, L->p, rng);
      else
        memcpy (out, in, (size_t) (n * L->in_size) * sizeof (float));
      break;
    case KDF_LAYER_L2NORM:
      kdf_l2norm_forward (out, net->norm[i], in, n, L->in_size);
      break;
    case KDF_LAYER_FLATTEN:
      break;
    }
  }
  if (train) {
    /* The buffers losses add into start at zero; the rest are zeroed as backward
     * reaches them. */
    int L = net->n_layers;
    memset (net->dact[L], 0, (size_t) (n * net->out_size) * sizeof (float));
    if (net->dact[net->tap] && net->tap != L) {
      int64_t tsz = net->tap == 0 ? net->in_size : net->layers[net->tap - 1].out_size;
      if (!(net->tap == 0 && net->input_grad)) /* a head's input grad is the trunk's tap */
        memset (net->dact[net->tap], 0, (size_t) (n * tsz) * sizeof (float));
    }
  }
  net->pending = train;
}

/* OPT non-NULL: each layer's parameters are updated as soon as its backward is done
 * (its gradient is final then: no other layer touches it, and its weights were
 * already used for its input gradient). */
static void
net_backward (KdfNet *net, KdfOptimizer *opt, int threads)
{
  const int64_t n = net->n;
  const float gbeta = net->grads_zero ? 0.0f : 1.0f;
  const int tapbuf = net->buf[net->tap];
  int premasked = -1; /* a layer whose ReLU mask a max-pool backward already applied */
  for (int i = net->n_layers - 1; i >= 0; i--) {
    const KdfLayer *L = &net->layers[i];
    if (L->alias)
      continue;
    float *dout = net->dact[i + 1];
    const float *in = net->act[i], *out = net->act[i + 1];
    float *din = NULL;
    /* A fresh buffer: nothing was added to it yet (not the tap's, which forward zeroed
     * and a loss may have added to; not a head's input, the trunk's tap). */
    gboolean fresh = FALSE;
    if (net->buf[i] != 0 || net->input_grad) {
      din = net->dact[i];
      fresh = din && net->buf[i] != tapbuf && net->buf[i] != 0;
    }
    if (fresh && L->kind == KDF_LAYER_MAXPOOL2D && L->kernel == L->stride) {
      /* Writes every element of the fresh buffer: no zeroing first. If the pool's
       * input is a fused ReLU's output (conv, relu alias, pool), the mask is applied
       * here and the producer skips its own pass over the whole buffer. */
      int p = i - 1;
      while (p >= 0 && net->layers[p].alias && net->layers[p].kind == KDF_LAYER_RELU)
        p--;
      gboolean mask = p >= 0 && p < i - 1 && net->layers[p].relu_fused &&
                      net->buf[p + 1] == net->buf[i] && net->buf[i] != tapbuf;
      kdf_maxpool2d_backward_set (din, dout, net->argmax[i], mask ? in : NULL, n, L->in_c,
                                  L->in_h, L->in_w, L->kernel, L->stride);
      if (mask)
        premasked = p;
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
      kdf_conv2d_backward (din, dW, dB, dout, out, net->col, in, W, n, L->in_c, L->in_h, L->in_w,
                           L->out_c, L->kernel, L->stride, L->pad, L->relu_fused && i != premasked,
                           gbeta, threads);
      break;
    case KDF_LAYER_RELU:
      if (din)
        kdf_relu_backward (din, dout, out, n * L->in_size);
      break;
    case KDF_LAYER_MAXPOOL2D:
      if (din)
        kdf_maxpool2d_backward (din, dout, net->argmax[i], n, L->in_c, L->in_h, L->in_w,
                                L->kernel, L->stride);
      break;
    case KDF_LAYER_DROPOUT:
      if (din) {
        if (net->train && L->p > 0.0)
          kdf_dropout_backward (din, dout, net->mask[i], n * L->in_size, L->p);
        else
          for (int64_t j = 0; j < n * L->in_size; j++)
            din[j] += dout[j];
      }
      break;
    case KDF_LAYER_L2NORM:
      if (din)
        kdf_l2norm_backward (din, dout, out, net->norm[i], n, L->in_size);
      break;
    case KDF_LAYER_FLATTEN:
      break;
    }
    if (opt && L->w_off >= 0) {
      /* w and b are adjacent slices (b follows w when present) */
      int64_t end = L->b_off >= 0 ? L->b_off + L->b_numel : L->w_off + L->w_numel;
      kdf_optimizer_step_range (opt, net, L->w_off, end - L->w_off);
    }
  }
  net->grads_zero = FALSE;
  net->pending = FALSE;
  if (opt)
    kdf_optimizer_net_done (opt, net);
}

const float *
kdf_model_forward (KdfModel *m, const float *x, int64_t n, gboolean train, GRand *rng,
                   int threads)
{
  g_return_val_if_fail (m != NULL && x != NULL && n > 0, NULL);
  KdfNet *t = m->trunk;
  if (train && !rng)
    for (int i = 0; i < t->n_layers; i++)
      g_return_val_if_fail (t->layers[i].kind != KDF_LAYER_DROPOUT || t->layers[i].p == 0.0, NULL);
  net_forward (t, x, NULL, n, train, rng, threads);
  for (guint i = 0; i < m->heads->len; i++)
    ((KdfNet *) m->heads->pdata[i])->pending = FALSE;
  m->train_pass = train;
  m->batch = n;
  return t->act[t->n_layers];
}

const float *
kdf_model_get_logits (KdfModel *m)
{
  return m->trunk->act[m->trunk->n_layers];
}

const float *
kdf_model_get_features (KdfModel *m)
{
  return m->trunk->act[m->trunk->tap];
}

float *
kdf_model_get_grad_logits (KdfModel *m)
{
  g_return_val_if_fail (m->train_pass, NULL);
  return m->trunk->dact[m->trunk->n_layers];
}

float *
kdf_model_get_grad_features (KdfModel *m)
{
  g_return_val_if_fail (m->train_pass, NULL);
  return m->trunk->dact[m->trunk->tap];
}

const float *
kdf_model_head_forward (KdfModel *m, int head, int threads)
{
  g_return_val_if_fail (head >= 0 && (guint) head < m->heads->len && m->batch > 0, NULL);
  KdfNet *h = m->heads->pdata[head];
  KdfNet *t = m->trunk;
  net_forward (h, t->act[t->tap], m->train_pass ? t->dact[t->tap] : NULL, m->batch,
               m->train_pass, NULL, threads);
  return h->act[h->n_layers];
}

float *
kdf_model_get_head_grad (KdfModel *m, int head)
{
  g_return_val_if_fail (head >= 0 && (guint) head < m->heads->len && m->train_pass, NULL);
  KdfNet *h = m->heads->pdata[head];
  g_return_val_if_fail (h->pending, NULL);
  return h->dact[h->n_layers];
}

void
kdf_model_backward (KdfModel *m, int threads)
{
  g_return_if_fail (m != NULL && m->train_pass);
  for (guint i = 0; i < m->heads->len; i++) {
    KdfNet *h = m->heads->pdata[i];
    if (h->pending)
      net_backward (h, NULL, threads);
  }
  net_backward (m->trunk, NULL, threads);
  m->train_pass = FALSE;
}

void
kdf_model_backward_step (KdfModel *m, KdfOptimizer *opt, int threads)
{
  g_return_if_fail (m != NULL && m->train_pass && opt != NULL);
  for (guint i = 0; i < m->heads->len; i++) {
    KdfNet *h = m->heads->pdata[i];
    if (h->pending)
      net_backward (h, opt, threads);
  }
  net_backward (m->trunk, opt, threads);
  m->train_pass = FALSE;
}

gboolean
kdf_model_predict (KdfModel *m, KdfTensor *x, int64_t batch, int threads, KdfTensor **logits,
                   KdfTensor **features, GError **error)
{
  g_return_val_if_fail (m != NULL && x != NULL, FALSE);
  if (x->dtype != KDF_DTYPE_F32 || x->rank < 1 || x->shape[0] < 0 ||
      (x->shape[0] > 0 && kdf_tensor_numel (x) / x->shape[0] != m->in_size)) {
    g_autofree char *d = kdf_tensor_describe (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "model '%s': input must be f32 with %" G_GINT64_FORMAT
                 " values per row, got %s",
                 m->arch, (gint64) m->in_size, d);
    return FALSE;
  }
  const int64_t n = x->shape[0];
  if (batch <= 0)
    batch = 256;
  g_autoptr (KdfTensor) lo = logits ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, m->n_classes) : NULL;
  g_autoptr (KdfTensor) fe = features ? kdf_tensor_new_2d (KDF_DTYPE_F32, n, m->n_features) : NULL;
  /* A private set of activation buffers sharing M's parameters (read only): two
   * nodes may run predict on the same model at once, and a predict never disturbs
   * the activations a training forward keeps for its backward. */
  KdfNet fw = *m->trunk;
  fw.cap = 0;
  fw.act = g_new0 (float *, fw.n_layers + 1);
  fw.dact = g_new0 (float *, fw.n_layers + 1);
  fw.argmax = g_new0 (int32_t *, fw.n_layers);
  fw.mask = g_new0 (uint8_t *, fw.n_layers);
  fw.norm = g_new0 (float *, fw.n_layers);
  fw.col = NULL;
  fw.in_grad = NULL;
  const gboolean contiguous = kdf_tensor_is_contiguous (x);
  float *buf = contiguous ? NULL : kdf_nn_alloc (MIN (batch, n) * m->in_size);
  int32_t *rows = contiguous ? NULL : g_new (int32_t, MIN (batch, n));
  for (int64_t b = 0; b < n; b += batch) {
    int64_t nb = MIN (batch, n - b);
    const float *xb;
    if (contiguous)
      xb = kdf_tensor_f32 (x) + b * m->in_size;
    else {
      for (int64_t i = 0; i < nb; i++)
        rows[i] = (int32_t) (b + i);
      kdf_gather_rows (buf, x, rows, nb, NULL);
      xb = buf;
    }
    net_forward (&fw, xb, NULL, nb, FALSE, NULL, threads);
    if (lo)
      memcpy (kdf_tensor_f32 (lo) + b * m->n_classes, fw.act[fw.n_layers],
              (size_t) (nb * m->n_classes) * sizeof (float));
    if (fe)
      memcpy (kdf_tensor_f32 (fe) + b * m->n_features, fw.act[fw.tap],
              (size_t) (nb * m->n_features) * sizeof (float));
  }
  net_free_buffers (&fw);
  g_free (fw.act);
  g_free (fw.dact);
  g_free (fw.argmax);
  g_free (fw.mask);
  g_free (fw.norm);
  kdf_nn_free (buf);
  g_free (rows);
  if (logits)
    *logits = g_steal_pointer (&lo);
  if (features)
    *features = g_steal_pointer (&fe);
  return TRUE;
}
