/* Architecture strings: "mlp:784-512-10", "linear:256-10", "cnn:1x28x28-c32-p2-f256-10"
 * and the general "seq:" form, parsed into layer specs; and the "seq:" string of a
 * layer list (what kdf_model_new writes as a model's arch). */
#include "config.h"

#include "nn-private.h"

#include <string.h>


static gboolean
arch_error (GError **error, const char *arch, const char *tok, const char *what)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "architecture '%s': %s%s%s%s", arch, what,
               tok ? " at '" : "", tok ? tok : "", tok ? "'" : "");
  return FALSE;
}

gboolean
kdf_arch_read_int (const char **p, int *out)
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
parse_shape (const char *tok, KdfArchParse *ap)
{
  int v, r = 0;
  const char *s = tok;
  while (r < 3) {
    if (!kdf_arch_read_int (&s, &v) || v <= 0)
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
push (KdfArchParse *ap, KdfLayerSpec spec)
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
    if (!kdf_arch_read_int (&s, &v) || *s != '\0' || v <= 0)
      return arch_error (error, arch, parts[i], "expected a positive size");
    g_array_append_val (dims, v);
  }
  return TRUE;
}

/* mlp:D0-D1-...-Dk and linear:D-C, with an optional ":nobias". */
static gboolean
parse_mlp (const char *arch, const char *body, gboolean probe, KdfArchParse *ap, GError **error)
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
    if (!kdf_arch_read_int (&s, &v))
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
parse_cnn (const char *arch, const char *body, KdfArchParse *ap, GError **error)
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
      if (!kdf_arch_read_int (&s, &v) || *s || v <= 0)
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
      if (!kdf_arch_read_int (&s, &v) || v <= 0 || !parse_conv_opts (s, &sp, FALSE))
        return arch_error (error, arch, t, "expected cN or cNkKsSpP");
      sp.out = v;
      push (ap, sp);
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
      break;
    }
    case 'p':
      if (!spatial)
        return arch_error (error, arch, t, "a pooling after the flatten");
      if (!kdf_arch_read_int (&s, &v) || *s || v <= 0)
        return arch_error (error, arch, t, "expected pK");
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_MAXPOOL2D, .kernel = v, .stride = v });
      break;
    case 'f':
      if (!kdf_arch_read_int (&s, &v) || *s || v <= 0)
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
parse_seq (const char *arch, const char *body, KdfArchParse *ap, GError **error)
{
  g_auto (GStrv) toks = g_strsplit (body, "-", -1);
  if (!toks[0] || !parse_shape (toks[0], ap))
    return arch_error (error, arch, toks[0], "expected the input shape D or CxHxW");
  for (int i = 1; toks[i]; i++) {
    const char *t = toks[i];
    int v;
    if (strcmp (t, "relu") == 0)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_RELU });
    else if (strcmp (t, "prelu") == 0)
      push (ap, (KdfLayerSpec){ .kind = KDF_LAYER_PRELU });
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
      if (!kdf_arch_read_int (&s, &v) || v <= 0)
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
      if (!kdf_arch_read_int (&s, &v) || v <= 0 || !parse_conv_opts (s, &sp, TRUE))
        return arch_error (error, arch, t, "expected convNkKsSpP[nb]");
      sp.out = v;
      push (ap, sp);
    } else if (g_str_has_prefix (t, "max")) {
      const char *s = t + 3;
      int k, st;
      if (!kdf_arch_read_int (&s, &k) || k <= 0)
        return arch_error (error, arch, t, "expected maxK or maxKsS");
      st = k;
      if (*s == 's' && (s++, !kdf_arch_read_int (&s, &st) || st <= 0))
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
      return arch_error (error, arch, t, "unknown layer (known: linearN, convNkKsSpP, relu, prelu, maxK, flatten, dropP, l2norm, tap)");
  }
  return TRUE;
}

gboolean
kdf_arch_parse (const char *arch, KdfArchParse *ap, GError **error)
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

char *
kdf_arch_seq_string (int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs, guint n)
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
    case KDF_LAYER_PRELU:
      g_string_append (s, "-prelu");
      break;
    }
    if (sp->tap)
      g_string_append (s, "-tap");
  }
  return g_string_free (s, FALSE);
}

