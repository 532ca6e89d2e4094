/* Foreign kernels: a plain C function in any shared library as a node, through
 * libffi. The library is opened, the symbol found, the signature parsed and the
 * ffi_cif prepared once, when the node is built; each run only fills the argument
 * array and calls ffi_call. No closures: hardened kernels refuse
 * writable-executable memory, and none is needed to call out. */
#include "config.h"

#include <ffi.h>
#include <gmodule.h>
#include <string.h>

#include "graph-private.h"

typedef enum { SEC_IN, SEC_OUT } Section;

typedef struct {
  char type;      /* p i l f d */
  Section section;
  int port;       /* p: input or output index */
  int dim;        /* i/l: index into dims */
  int scalar;     /* f/d: index into scalars */
} Arg;

typedef struct {
  KdfNodeClass klass;
  char *library, *symbol, *signature, *result;
  char **dims;     /* symbol or literal */
  char **scalars;  /* param name or literal */
  KdfPortSpec *inputs, *outputs;   /* names and type strings owned */
  KdfPortType *in_types, *out_types;
  KdfParamSpec *params;            /* one double field each: offset 8·i */
  int *scalar_param;               /* per scalar: its param's index, or -1 (a literal) */
  GModule *module;
  void (*fn) (void);
  char ret;
  Arg *args;
  guint n_args;
  ffi_cif cif;
  ffi_type **types;
  guint n_in, n_out; /* pointer ports, not counting the result */
} Foreign;

static void
foreign_free (gpointer data)
{
  Foreign *f = data;
  for (guint i = 0; f->inputs && f->inputs[i].name; i++) {
    g_free ((char *) f->inputs[i].name);
    g_free ((char *) f->inputs[i].type);
  }
  for (guint i = 0; f->outputs && f->outputs[i].name; i++) {
    g_free ((char *) f->outputs[i].name);
    g_free ((char *) f->outputs[i].type);
  }
  g_free (f->in_types);
  g_free (f->out_types);
  g_free (f->scalar_param);
  for (guint i = 0; f->params && f->params[i].name; i++)
    g_free ((char *) f->params[i].name);
  g_free (f->inputs);
  g_free (f->outputs);
  g_free (f->params);
  g_strfreev (f->dims);
  g_strfreev (f->scalars);
  g_free (f->args);
  g_free (f->types);
  g_free (f->library);
  g_free (f->symbol);
  g_free (f->signature);
  g_free (f->result);
  g_free ((char *) f->klass.name);
  g_free ((char *) f->klass.summary);
  if (f->module)
    g_module_close (f->module);
  g_free (f);
}

static ffi_type *
ffi_type_of (char c)
{
  switch (c) {
  case 'p':
    return &ffi_type_pointer;
  case 'i':
    return &ffi_type_sint32;
  case 'l':
    return &ffi_type_sint64;
  case 'f':
    return &ffi_type_float;
  case 'd':
    return &ffi_type_double;
  case 'v':
    return &ffi_type_void;
  default:
    return NULL;
  }
}

static gboolean
parse_literal (const char *s, double *out)
{
  char *end = NULL;
  if (!s || !*s)
    return FALSE;
  double v = g_ascii_strtod (s, &end);
  if (*end)
    return FALSE;
  *out = v;
  return TRUE;
}

/* Does SYMBOL appear as a dim in one of the input shapes? */
static gboolean
bound_by_inputs (Foreign *f, const char *symbol)
{
  for (guint i = 0; i < f->n_in; i++) {
    g_auto (GStrv) dims = g_strsplit (f->in_types[i].shape, ",", -1);
    for (char **d = dims; *d; d++)
      if (strcmp (g_strstrip (*d), symbol) == 0)
        return TRUE;
  }
  return FALSE;
}

/* Parses the declarations DECLS ("x:f32[N]") into ports and types; EXTRA_RESULT adds
 * an f32[] output for a function's return value. */
static gboolean
parse_ports (const char *const *decls, const char *extra_result, KdfPortSpec **ports,
             KdfPortType **types, guint *n_out, GError **error)
{
  guint n = decls ? g_strv_length ((char **) decls) : 0;
  *ports = g_new0 (KdfPortSpec, n + 2);
  *types = g_new0 (KdfPortType, n + 1);
  *n_out = 0;
  for (guint i = 0; i < n; i++) {
    char *name = NULL;
    gboolean optional = FALSE;
    if (!kdf_port_decl_parse (decls[i], &name, &(*types)[i], &optional, error))
      return FALSE;
    (*ports)[i].name = name;
    (*ports)[i].type = kdf_port_type_to_string (&(*types)[i]);
    *n_out = i + 1;
  }
  if (extra_result) {
    (*ports)[n].name = g_strdup (extra_result);
    (*ports)[n].type = g_strdup ("f32[]");
  }
  return TRUE;
}

static gboolean
foreign_error (GError **error, const char *name, Foreign *f, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gboolean
foreign_error (GError **error, const char *name, Foreign *f, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, KDF_ERROR, KDF_ERROR_FOREIGN, "foreign node '%s' (%s in %s): %s", name,
               f->symbol ? f->symbol : "?", f->library ? f->library : "?", msg);
  return FALSE;
}

static gboolean
parse_signature (Foreign *f, const char *name, GError **error)
{
  const char *sig = f->signature;
  const char *open = strchr (sig, '('), *close = strrchr (sig, ')');
  if (!open || !close || close < open || close[1] != '\0' || open - sig != 1 ||
      !strchr ("vifd", sig[0]))
    return foreign_error (error, name, f,
                          "malformed signature \"%s\": expected R(ARGS) with R one of v i f d, "
                          "e.g. \"v(ppll p)\"",
                          sig);
  f->ret = sig[0];
  GArray *args = g_array_new (FALSE, TRUE, sizeof (Arg));
  Section sec = SEC_IN;
  int n_dims = 0, n_scalars = 0, in_p = 0, out_p = 0;
  for (const char *c = open + 1; c < close; c++) {
    if (*c == ' ') {
      if (sec == SEC_OUT) {
        g_array_free (args, TRUE);
        return foreign_error (error, name, f,
                              "malformed signature \"%s\": more than one space (the space "
                              "separates inputs from outputs)",
                              sig);
      }
      sec = SEC_OUT;
      continue;
    }
    if (!strchr ("pilfd", *c)) {
      g_array_free (args, TRUE);
      return foreign_error (error, name, f,
                            "malformed signature \"%s\": unknown argument type '%c' at "
                            "position %d (known: p i l f d)",
                            sig, *c, (int) (c - sig));
    }
    Arg a = { .type = *c, .section = sec, .port = -1, .dim = -1, .scalar = -1 };
    if (*c == 'p')
      a.port = sec == SEC_IN ? in_p++ : out_p++;
    else if (*c == 'i' || *c == 'l')
      a.dim = n_dims++;
    else
      a.scalar = n_scalars++;
    g_array_append_val (args, a);
  }
  f->n_args = args->len;
  f->args = (Arg *) g_array_free (args, FALSE);
  guint want_dims = f->dims ? g_strv_length (f->dims) : 0;
  guint want_scalars = f->scalars ? g_strv_length (f->scalars) : 0;
  if ((guint) in_p != f->n_in || (guint) out_p != f->n_out)
    return foreign_error (error, name, f,
                          "signature \"%s\" has %d input and %d output pointers, but %u inputs "
                          "and %u outputs are declared",
                          sig, in_p, out_p, f->n_in, f->n_out);
  if ((guint) n_dims != want_dims)
    return foreign_error (error, name, f,
                          "signature \"%s\" has %d integer arguments, but dims lists %u", sig,
                          n_dims, want_dims);
  if ((guint) n_scalars != want_scalars)
    return foreign_error (error, name, f,
                          "signature \"%s\" has %d float arguments, but scalars lists %u", sig,
                          n_scalars, want_scalars);
  if ((f->ret == 'f' || f->ret == 'd') != (f->result != NULL))
    return foreign_error (error, name, f,
                          f->result ? "result '%s' is given, but the signature returns no number"
                                    : "the signature returns a number; name its output with "
                                      "result%s",
                          f->result ? f->result : "");
  return TRUE;
}

static gboolean
foreign_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  Foreign *f = ctx->node->class_data;
  g_autofree KdfTensor **ins = g_new0 (KdfTensor *, f->n_in + 1);
  g_autofree KdfTensor **outs = g_new0 (KdfTensor *, f->n_out + 1);
  g_autofree void **values = g_new0 (void *, f->n_args + 1);
  g_autofree guint64 *slots = g_new0 (guint64, f->n_args + 1); /* holds each argument */
  gboolean ok = TRUE;

  for (guint i = 0; i < f->n_in; i++) {
    KdfTensor *t = kdf_ctx_input_tensor (ctx, f->inputs[i].name);
    ins[i] = kdf_tensor_contiguous (t); /* the C function sees plain row-major data */
  }
  for (guint o = 0; o < f->n_out && ok; o++) {
    const KdfPortType *type = &f->out_types[o];
    int64_t shape[KDF_MAX_RANK] = { 0 };
    int rank = 0;
    g_auto (GStrv) dims = g_strsplit (type->shape, ",", -1);
    for (char **d = dims; *d && **d && rank < KDF_MAX_RANK; d++) {
      const char *dim = g_strstrip (*d);
      double lit;
      shape[rank++] = parse_literal (dim, &lit) ? (int64_t) lit : kdf_ctx_shape_symbol (ctx, dim);
    }
    outs[o] = kdf_tensor_try_new (type->dtype, rank, shape, error);
    ok = outs[o] != NULL;
  }
  for (guint a = 0; a < f->n_args && ok; a++) {
    const Arg *arg = &f->args[a];
    void *slot = &slots[a];
    switch (arg->type) {
    case 'p':
      *(void **) slot = arg->section == SEC_IN ? ins[arg->port]->data : outs[arg->port]->data;
      break;
    case 'i':
    case 'l': {
      const char *dim = f->dims[arg->dim];
      double lit;
      gint64 v = parse_literal (dim, &lit) ? (gint64) lit : kdf_ctx_shape_symbol (ctx, dim);
      if (arg->type == 'i') {
        if (v > G_MAXINT32 || v < G_MININT32) {
          g_set_error (error, KDF_ERROR, KDF_ERROR_FOREIGN,
                       "dim '%s' = %" G_GINT64_FORMAT " does not fit the int argument %u of %s",
                       dim, v, a + 1, f->symbol);
          ok = FALSE;
        }
        *(gint32 *) slot = (gint32) v;
      } else {
        *(gint64 *) slot = v;
      }
      break;
    }
    case 'f':
    case 'd': {
      const char *s = f->scalars[arg->scalar];
      const int param = f->scalar_param[arg->scalar];
      double v = 0;
      if (param >= 0)
        v = ((const double *) kdf_ctx_params (ctx))[param];
      else
        parse_literal (s, &v);
      if (arg->type == 'f')
        *(float *) slot = (float) v;
      else
        *(double *) slot = v;
      break;
    }
    }
    values[a] = slot;
  }
  if (ok) {
    union {
      ffi_arg i;
      float f;
      double d;
    } ret = { 0 };
    ffi_call (&f->cif, f->fn, &ret, values);
    if (f->ret == 'i' && (int) ret.i != 0) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_NODE, "foreign kernel %s returned status %d",
                   f->symbol, (int) ret.i);
      ok = FALSE;
    } else if (f->ret == 'f' || f->ret == 'd') {
      kdf_ctx_set_output_tensor (ctx, f->result,
                                 kdf_tensor_new_scalar_f32 (f->ret == 'f' ? ret.f : (float) ret.d));
    }
  }
  for (guint i = 0; i < f->n_in; i++)
    kdf_tensor_unref (ins[i]);
  for (guint o = 0; o < f->n_out; o++) {
    if (ok)
      kdf_ctx_set_output_tensor (ctx, f->outputs[o].name, outs[o]);
    else
      kdf_tensor_unref (outs[o]);
  }
  return ok;
}

KdfNode *
kdf_graph_add_foreign (KdfGraph *g, const char *name, const KdfForeignSpec *spec, GError **error)
{
  Foreign *f = g_new0 (Foreign, 1);
  f->library = g_strdup (spec->library);
  f->symbol = g_strdup (spec->symbol);
  f->signature = g_strdup (spec->signature ? spec->signature : "");
  f->result = g_strdup (spec->result);
  f->dims = g_strdupv ((char **) spec->dims);
  f->scalars = g_strdupv ((char **) spec->scalars);
  const char *label = name ? name : (spec->symbol ? spec->symbol : "foreign");
  if (!spec->library || !spec->symbol) {
    foreign_error (error, label, f, "both library and symbol must be given");
    foreign_free (f);
    return NULL;
  }
  GError *local_ports = NULL;
  if (!parse_ports (spec->inputs, NULL, &f->inputs, &f->in_types, &f->n_in, &local_ports) ||
      !parse_ports (spec->outputs, f->result, &f->outputs, &f->out_types, &f->n_out,
                    &local_ports)) {
    foreign_error (error, label, f, "%s", local_ports->message);
    g_error_free (local_ports);
    foreign_free (f);
    return NULL;
  }

  /* ports: tensors with explicit dtypes, shapes, and output shapes from inputs */
  for (guint i = 0; i < f->n_in + f->n_out; i++) {
    gboolean is_in = i < f->n_in;
    const KdfPortSpec *p = is_in ? &f->inputs[i] : &f->outputs[i - f->n_in];
    const KdfPortType *t = is_in ? &f->in_types[i] : &f->out_types[i - f->n_in];
    if (t->kind != KDF_VALUE_TENSOR || t->dtype == KDF_DTYPE_ANY || t->rank < 0) {
      foreign_error (error, label, f, "%s '%s' needs a dtype and a shape", is_in ? "input" : "output",
                     p->name);
      foreign_free (f);
      return NULL;
    }
    if (!is_in) {
      g_auto (GStrv) dims = g_strsplit (t->shape, ",", -1);
      for (char **d = dims; *d && **d; d++) {
        double lit;
        const char *dim = g_strstrip (*d);
        if (!parse_literal (dim, &lit) && !bound_by_inputs (f, dim)) {
          foreign_error (error, label, f,
                         "output '%s' has dim '%s', which no input shape binds", p->name, dim);
          foreign_free (f);
          return NULL;
        }
      }
    }
  }
  for (guint d = 0; f->dims && f->dims[d]; d++) {
    double lit;
    if (!parse_literal (f->dims[d], &lit) && !bound_by_inputs (f, f->dims[d])) {
      foreign_error (error, label, f,
                     "dims entry '%s' is neither an integer nor a shape symbol of an input",
                     f->dims[d]);
      foreign_free (f);
      return NULL;
    }
  }
  /* scalars that are not literals become required double params */
  guint n_params = 0, n_scalars = f->scalars ? g_strv_length (f->scalars) : 0;
  f->params = g_new0 (KdfParamSpec, n_scalars + 1);
  f->scalar_param = g_new0 (int, n_scalars + 1);
  for (guint s = 0; s < n_scalars; s++) {
    double lit;
    f->scalar_param[s] = -1;
    if (parse_literal (f->scalars[s], &lit))
      continue;
    for (guint q = 0; q < n_params && f->scalar_param[s] < 0; q++)
      if (strcmp (f->params[q].name, f->scalars[s]) == 0)
        f->scalar_param[s] = (int) q;
    if (f->scalar_param[s] >= 0)
      continue; /* the same param twice */
    f->scalar_param[s] = (int) n_params;
    f->params[n_params] = (KdfParamSpec){ .name = g_strdup (f->scalars[s]),
                                          .type = KDF_PARAM_DOUBLE,
                                          .offset = n_params * sizeof (double),
                                          .size = sizeof (double),
                                          .flags = KDF_PARAM_REQUIRED };
    n_params++;
  }
  if (!parse_signature (f, label, error)) {
    foreign_free (f);
    return NULL;
  }
  /* the library and the symbol, eagerly bound */
  g_autoptr (GError) local = NULL;
  f->module = g_module_open_full (spec->library, G_MODULE_BIND_LOCAL, &local);
  if (!f->module) {
    foreign_error (error, label, f, "cannot open library: %s", local ? local->message : "unknown");
    foreign_free (f);
    return NULL;
  }
  if (!g_module_symbol (f->module, spec->symbol, (gpointer *) &f->fn) || !f->fn) {
    foreign_error (error, label, f, "library has no symbol '%s'", spec->symbol);
    foreign_free (f);
    return NULL;
  }
  f->types = g_new0 (ffi_type *, f->n_args + 1);
  for (guint a = 0; a < f->n_args; a++)
    f->types[a] = ffi_type_of (f->args[a].type);
  if (ffi_prep_cif (&f->cif, FFI_DEFAULT_ABI, f->n_args, ffi_type_of (f->ret), f->types) != FFI_OK) {
    foreign_error (error, label, f, "libffi cannot prepare a call for \"%s\"", f->signature);
    foreign_free (f);
    return NULL;
  }
  f->klass.struct_size = sizeof (KdfNodeClass);
  f->klass.name = g_strdup_printf ("foreign:%s", spec->symbol);
  f->klass.summary = g_strdup_printf ("%s from %s, %s", spec->symbol, spec->library, f->signature);
  f->klass.inputs = f->inputs;
  f->klass.outputs = f->outputs;
  f->klass.params = f->params;
  f->klass.params_size = n_params * sizeof (double);
  f->klass.run = foreign_run;
  return kdf_graph_add_node_with_class (g, &f->klass, name, f, foreign_free, error);
}
