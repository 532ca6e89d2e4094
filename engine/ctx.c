/* The run context a node sees, and the run-time checks around each node's run:
 * inputs are resolved and checked (dtype, rank, symbolic shapes, the oracle rule)
 * before run(), outputs against their specs after it. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "graph-private.h"

/* splitmix64: a well-mixed 64-bit step, so that nearby seeds and ticks give
 * unrelated streams. */
static guint64
mix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static guint64
fnv1a (const char *s)
{
  guint64 h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (guchar) *s) * 0x100000001b3ULL;
  return h;
}

void
kdf_ctx_reset (KdfNodeCtx *ctx, KdfNode *n, guint tick, guint ticks, int threads)
{
  if (ctx->rng) {
    g_rand_free (ctx->rng);
    ctx->rng = NULL;
  }
  ctx->node = n;
  ctx->tick = tick;
  ctx->ticks = ticks;
  ctx->threads = threads > 0 ? threads : 1;
  ctx->seed = mix64 (mix64 (n->graph->seed ^ fnv1a (n->name)) + tick);
  ctx->n_symbols = 0;
}


/* ---- symbolic shapes ---------------------------------------------------------- */

static gboolean
is_symbol (const char *dim)
{
  return g_ascii_isalpha (dim[0]) || dim[0] == '_';
}

/* Checks tensor T on PORT against SHAPE ("N,C", "N,28,28", "*" for any dim),
 * binding unbound symbols. */
static gboolean
check_shape (KdfNode *n, const char *port, gboolean output, const char *shape, const KdfTensor *t,
             const char *from, GError **error)
{
  KdfNodeCtx *ctx = &n->ctx;
  g_auto (GStrv) dims = g_strsplit (shape, ",", -1);
  guint rank = *shape ? g_strv_length (dims) : 0;
  if ((int) rank != t->rank) {
    g_autofree char *where = kdf_node_where (n), *d = kdf_tensor_describe (t);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s, tick %u: %s '%s' expects shape [%s], got %s%s", where, ctx->tick,
                 output ? "output" : "input", port, shape, d, from);
    return FALSE;
  }
  for (guint d = 0; d < rank; d++) {
    const char *dim = g_strstrip (dims[d]);
    gint64 have = t->shape[d];
    if (strcmp (dim, "*") == 0)
      continue;
    if (!is_symbol (dim)) {
      gint64 want = g_ascii_strtoll (dim, NULL, 10);
      if (want != have) {
        g_autofree char *where = kdf_node_where (n), *desc = kdf_tensor_describe (t);
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "%s, tick %u: %s '%s' expects shape [%s], got %s%s", where, ctx->tick,
                     output ? "output" : "input", port, shape, desc, from);
        return FALSE;
      }
      continue;
    }
    guint s;
    for (s = 0; s < ctx->n_symbols; s++)
      if (strcmp (ctx->symbols[s].name, dim) == 0)
        break;
    if (s < ctx->n_symbols) {
      if (ctx->symbols[s].value != have) {
        g_autofree char *where = kdf_node_where (n), *desc = kdf_tensor_describe (t);
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "%s, tick %u: %s '%s' is %s%s, so %s = %" G_GINT64_FORMAT
                     ", but %s '%s' set %s = %" G_GINT64_FORMAT,
                     where, ctx->tick, output ? "output" : "input", port, desc, from, dim, have,
                     ctx->symbols[s].output ? "output" : "input", ctx->symbols[s].port, dim,
                     ctx->symbols[s].value);
        return FALSE;
      }
    } else if (ctx->n_symbols < KDF_MAX_SYMBOLS) {
      ctx->symbols[ctx->n_symbols++] =
          (KdfSymbol){ g_intern_string (dim), have, port, output };
    }
  }
  return TRUE;
}

static gboolean
check_tensor (KdfNode *n, const char *port, const KdfPortType *type, gboolean output,
              const KdfTensor *t, const char *from, GError **error)
{
  if ((type->dtype != KDF_DTYPE_ANY && t->dtype != type->dtype) ||
      (type->rank >= 0 && t->rank != type->rank)) {
    g_autofree char *where = kdf_node_where (n), *desc = kdf_tensor_describe (t);
    g_autofree char *want = kdf_port_type_to_string (type);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s, tick %u: %s '%s' expects %s, got %s%s",
                 where, n->ctx.tick, output ? "output" : "input", port, want, desc, from);
    return FALSE;
  }
  if (type->rank >= 0)
    return check_shape (n, port, output, type->shape, t, from, error);
  return TRUE;
}

/* Inputs typed "i32[N] < C": every value in [0, C) once C is known. */
static gboolean
check_bounds (KdfNode *n, GError **error)
{
  for (guint k = 0; k < n->n_inputs; k++) {
    KdfInput *in = &n->inputs[k];
    if (!*in->type.bound || !in->value.p || in->value.kind != KDF_VALUE_TENSOR)
      continue;
    const char *b = in->type.bound;
    gint64 bound = g_ascii_isdigit (b[0]) ? g_ascii_strtoll (b, NULL, 10)
                                          : kdf_ctx_shape_symbol (&n->ctx, b);
    if (bound < 0)
      continue; /* not bound by any input this run */
    g_autofree char *what = g_strdup_printf ("input '%s'", in->spec->name);
    if (!kdf_tensor_check_labels (in->value.p, bound, what, error)) {
      g_autofree char *where = kdf_node_where (n);
      g_prefix_error (error, "%s, tick %u: ", where, n->ctx.tick);
      if (!g_ascii_isdigit (b[0])) {
        guint s;
        for (s = 0; s < n->ctx.n_symbols && strcmp (n->ctx.symbols[s].name, b) != 0; s++)
          ;
        if (s < n->ctx.n_symbols) {
          char *msg = g_strdup_printf ("%s (%s = %" G_GINT64_FORMAT " from %s '%s')",
                                       (*error)->message, b, bound,
                                       n->ctx.symbols[s].output ? "output" : "input",
                                       n->ctx.symbols[s].port);
          g_free ((*error)->message);
          (*error)->message = msg;
        }
      }
      return FALSE;
    }
  }
  return TRUE;
}

static const KdfValue *
edge_value (KdfEdge *e)
{
  return e->delay ? &e->delivered : &e->src->outputs[e->out].value;
}

static void
clear_values (GPtrArray *values)
{
  for (guint i = 0; i < values->len; i++) {
    kdf_value_clear (values->pdata[i]);
    g_free (values->pdata[i]);
  }
  g_ptr_array_set_size (values, 0);
}

gboolean
kdf_node_bind_inputs (KdfNode *n, GError **error)
{
  gboolean evaluator = (n->klass->flags & KDF_NODE_EVALUATOR) != 0;
  for (guint k = 0; k < n->n_inputs; k++) {
    KdfInput *in = &n->inputs[k];
    const KdfPortSpec *spec = in->spec;
    const KdfPortType *type = &in->type;
    gboolean multi = (spec->flags & KDF_PORT_MULTI) != 0;
    in->changed = FALSE;
    in->provenance = 0;
    if (multi) {
      if (!in->values)
        in->values = g_ptr_array_new ();
      clear_values (in->values);
    } else {
      kdf_value_clear (&in->value);
    }
    for (guint j = 0; j < in->edges->len; j++) {
      KdfEdge *e = in->edges->pdata[j];
      const KdfValue *v = edge_value (e);
      if (v->version != e->seen)
        in->changed = TRUE;
      g_autofree char *from =
          g_strdup_printf (" from '%s.%s'%s", e->src->name, e->src->klass->outputs[e->out].name,
                           e->delay ? " (delayed)" : "");
      if (!v->p) {
        if (e->delay || (spec->flags & KDF_PORT_OPTIONAL))
          continue; /* nothing yet: reads as absent */
        g_autofree char *where = kdf_node_where (n);
        g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                     "%s, tick %u: input '%s' has no value: '%s' (%s) did not set output '%s'",
                     where, n->ctx.tick, spec->name, e->src->name, e->src->klass->name,
                     e->src->klass->outputs[e->out].name);
        return FALSE;
      }
      if (v->kind == KDF_VALUE_TENSOR) {
        KdfTensor *t = v->p;
        if (kdf_tensor_is_test (t) && kdf_node_learns (n)) {
          g_autofree char *where = kdf_node_where (n);
          g_set_error (error, KDF_ERROR, KDF_ERROR_ORACLE,
                       "%s, tick %u: input '%s' received the test split (or values computed "
                       "from it)%s; a node that learns may not read it: the test split is for "
                       "evaluation only",
                       where, n->ctx.tick, spec->name, from);
          return FALSE;
        }
        in->provenance |= t->flags & KDF_TENSOR_PROVENANCE;
        if (kdf_tensor_is_oracle (t) && !evaluator && !e->oracle) {
          g_autofree char *where = kdf_node_where (n);
          g_set_error (error, KDF_ERROR, KDF_ERROR_ORACLE,
                       "%s, tick %u: input '%s' received ground truth (an oracle tensor)%s; "
                       "only evaluation nodes may see it",
                       where, n->ctx.tick, spec->name, from);
          return FALSE;
        }
        if (!check_tensor (n, spec->name, type, FALSE, t, from, error))
          return FALSE;
        if (kdf_tensor_is_on_disk (t) && !(spec->flags & KDF_PORT_ON_DISK)) {
          /* a node that reads the values directly: refused before it runs */
          g_autofree char *where = kdf_node_where (n);
          const char *hint = kdf_tensor_on_disk_hint (t);
          g_set_error (error, KDF_ERROR, KDF_ERROR_LINK,
                       "%s, tick %u: input '%s' needs its values in memory, but they are kept "
                       "on disk (%s, read a mini-batch at a time by the nodes that train and "
                       "predict)%s%s%s",
                       where, n->ctx.tick, spec->name, kdf_tensor_on_disk_path (t), from,
                       hint ? ": " : "", hint ? hint : "");
          return FALSE;
        }
      }
      if (multi) {
        KdfValue *copy = g_new0 (KdfValue, 1);
        kdf_value_set (copy, v);
        g_ptr_array_add (in->values, copy);
      } else {
        kdf_value_set (&in->value, v);
      }
    }
  }
  return check_bounds (n, error);
}

void
kdf_node_release_inputs (KdfNode *n)
{
  for (guint k = 0; k < n->n_inputs; k++) {
    KdfInput *in = &n->inputs[k];
    kdf_value_clear (&in->value);
    if (in->values)
      clear_values (in->values);
  }
}

/* A node computing from ground truth or from the test split passes that on: each tensor
 * it output this run carries the flags of its tensor inputs (evaluation nodes mark their
 * own outputs). So the flags cannot be lost through take_rows, a Lua node, a foreign
 * kernel or any other node — only an evaluation node's output may leave them. */
static void
propagate_provenance (KdfNode *n)
{
  if (n->klass->flags & KDF_NODE_EVALUATOR)
    return;
  guint flags = 0;
  for (guint k = 0; k < n->n_inputs; k++)
    flags |= n->inputs[k].provenance;
  if (!flags)
    return;
  for (guint k = 0; k < n->n_outputs; k++) {
    KdfOutput *o = &n->outputs[k];
    if (o->set_this_run && o->value.p && o->value.kind == KDF_VALUE_TENSOR)
      o->value.p = kdf_tensor_with_flags (o->value.p, flags);
  }
}

gboolean
kdf_node_check_outputs (KdfNode *n, GError **error)
{
  propagate_provenance (n);
  for (guint k = 0; k < n->n_outputs; k++) {
    KdfOutput *o = &n->outputs[k];
    if (!o->set_this_run || !o->value.p || o->value.kind != KDF_VALUE_TENSOR)
      continue;
    if (!check_tensor (n, o->spec->name, &o->type, TRUE, o->value.p, "", error))
      return FALSE;
  }
  return TRUE;
}

/* ---- accessors ---------------------------------------------------------------- */

static KdfInput *
find_input (KdfNodeCtx *ctx, const char *port)
{
  KdfNode *n = ctx->node;
  for (guint i = 0; i < n->n_inputs; i++)
    if (strcmp (n->inputs[i].spec->name, port) == 0)
      return &n->inputs[i];
  g_warning ("node kind '%s' asked for input '%s', which it does not declare", n->klass->name,
             port);
  return NULL;
}

static gpointer
input_of_kind (KdfNodeCtx *ctx, const char *port, KdfValueKind kind)
{
  KdfInput *in = find_input (ctx, port);
  if (!in)
    return NULL;
  if (in->type.kind != kind) {
    g_warning ("node kind '%s' read input '%s' (a %s) as a %s", ctx->node->klass->name, port,
               kdf_value_kind_name (in->type.kind), kdf_value_kind_name (kind));
    return NULL;
  }
  if (in->spec->flags & KDF_PORT_MULTI)
    return in->values && in->values->len ? ((KdfValue *) in->values->pdata[0])->p : NULL;
  return in->value.p;
}

KdfTensor *
kdf_ctx_input_tensor (KdfNodeCtx *ctx, const char *port)
{
  return input_of_kind (ctx, port, KDF_VALUE_TENSOR);
}

KdfModel *
kdf_ctx_input_model (KdfNodeCtx *ctx, const char *port)
{
  return input_of_kind (ctx, port, KDF_VALUE_MODEL);
}

KdfLoss *
kdf_ctx_input_loss (KdfNodeCtx *ctx, const char *port)
{
  return input_of_kind (ctx, port, KDF_VALUE_LOSS);
}

guint
kdf_ctx_input_count (KdfNodeCtx *ctx, const char *port)
{
  KdfInput *in = find_input (ctx, port);
  if (!in)
    return 0;
  if (in->spec->flags & KDF_PORT_MULTI)
    return in->values ? in->values->len : 0;
  return in->value.p ? 1 : 0;
}

gpointer
kdf_ctx_input_nth (KdfNodeCtx *ctx, const char *port, guint i)
{
  KdfInput *in = find_input (ctx, port);
  if (!in)
    return NULL;
  if (in->spec->flags & KDF_PORT_MULTI)
    return in->values && i < in->values->len ? ((KdfValue *) in->values->pdata[i])->p : NULL;
  return i == 0 ? in->value.p : NULL;
}

gboolean
kdf_ctx_input_changed (KdfNodeCtx *ctx, const char *port)
{
  KdfNode *n = ctx->node;
  if (!port) {
    if (!n->ever_ran)
      return TRUE;
    for (guint k = 0; k < n->n_inputs; k++)
      if (n->inputs[k].changed)
        return TRUE;
    return FALSE;
  }
  KdfInput *in = find_input (ctx, port);
  return in ? in->changed : FALSE;
}

static void
set_output (KdfNodeCtx *ctx, const char *port, KdfValueKind kind, gpointer value)
{
  KdfNode *n = ctx->node;
  for (guint i = 0; i < n->n_outputs; i++) {
    KdfOutput *o = &n->outputs[i];
    if (strcmp (o->spec->name, port) != 0)
      continue;
    if (o->type.kind != kind) {
      g_warning ("node kind '%s' set output '%s' (a %s) to a %s", n->klass->name, port,
                 kdf_value_kind_name (o->type.kind), kdf_value_kind_name (kind));
      break;
    }
    KdfValue v = { kind, NULL, kdf_graph_next_version (n->graph) };
    kdf_value_clear (&o->value);
    o->value = v;
    o->value.p = value; /* transfer full */
    o->set_this_run = TRUE;
    return;
  }
  if (kind == KDF_VALUE_TENSOR)
    kdf_tensor_unref (value);
  else
    kdf_object_unref (value);
  g_warning ("node kind '%s' set output '%s', which it does not declare", n->klass->name, port);
}

void
kdf_ctx_set_output_tensor (KdfNodeCtx *ctx, const char *port, KdfTensor *t)
{
  set_output (ctx, port, KDF_VALUE_TENSOR, t);
}

void
kdf_ctx_set_output_model (KdfNodeCtx *ctx, const char *port, KdfModel *m)
{
  set_output (ctx, port, KDF_VALUE_MODEL, m);
}

void
kdf_ctx_set_output_loss (KdfNodeCtx *ctx, const char *port, KdfLoss *l)
{
  set_output (ctx, port, KDF_VALUE_LOSS, l);
}

gconstpointer
kdf_ctx_params (KdfNodeCtx *ctx)
{
  return ctx->node->params_block;
}

gboolean
kdf_ctx_param_is_set (KdfNodeCtx *ctx, const char *name)
{
  KdfNode *n = ctx->node;
  for (guint i = 0; i < n->n_params; i++)
    if (strcmp (n->params[i].spec->name, name) == 0)
      return n->params[i].is_set;
  g_warning ("node kind '%s' asked for param '%s', which it does not declare", n->klass->name,
             name);
  return FALSE;
}

gint64
kdf_ctx_shape_symbol (KdfNodeCtx *ctx, const char *symbol)
{
  for (guint s = 0; s < ctx->n_symbols; s++)
    if (strcmp (ctx->symbols[s].name, symbol) == 0)
      return ctx->symbols[s].value;
  return -1;
}

const char *
kdf_ctx_node_name (KdfNodeCtx *ctx)
{
  return ctx->node->name;
}

const char *
kdf_ctx_graph_name (KdfNodeCtx *ctx)
{
  return ctx->node->graph->name;
}

guint
kdf_ctx_tick (KdfNodeCtx *ctx)
{
  return ctx->tick;
}

guint
kdf_ctx_ticks (KdfNodeCtx *ctx)
{
  return ctx->ticks;
}

GRand *
kdf_ctx_rng (KdfNodeCtx *ctx)
{
  if (!ctx->rng) {
    guint32 words[2] = { (guint32) ctx->seed, (guint32) (ctx->seed >> 32) };
    ctx->rng = g_rand_new_with_seed_array (words, 2);
  }
  return ctx->rng;
}

guint64
kdf_ctx_seed (KdfNodeCtx *ctx)
{
  return ctx->seed;
}

int
kdf_ctx_threads (KdfNodeCtx *ctx)
{
  return ctx->threads;
}

GCancellable *
kdf_ctx_cancellable (KdfNodeCtx *ctx)
{
  return ctx->node->graph->cancellable;
}

const char *
kdf_ctx_run_dir (KdfNodeCtx *ctx)
{
  return ctx->node->graph->run_dir;
}

void
kdf_ctx_progress (KdfNodeCtx *ctx, double fraction)
{
  int permille = (int) (CLAMP (fraction, 0.0, 1.0) * 1000.0);
  g_atomic_int_set (&ctx->node->progress_permille, permille);
}

void
kdf_ctx_metric (KdfNodeCtx *ctx, const char *key, double value)
{
  /* JSON has no NaN: an undefined number is left out rather than written as text no
   * reader accepts */
  if (!isfinite (value))
    return;
  KdfMetric m = { g_strdup_printf ("%s.%s", ctx->node->name, key), value };
  g_array_append_val (ctx->node->metrics, m);
}

void
kdf_ctx_warning (KdfNodeCtx *ctx, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  KdfWarning *w = g_new0 (KdfWarning, 1);
  w->tick = ctx->tick;
  w->message = g_strdup_vprintf (format, ap);
  va_end (ap);
  /* the node's own list: only this node's run touches it until the control thread
   * takes it after the run */
  g_ptr_array_add (ctx->node->warnings, w);
}

char *
kdf_ctx_output_path (KdfNodeCtx *ctx, const char *path)
{
  const char *dir = kdf_ctx_run_dir (ctx);
  if (g_path_is_absolute (path) || !dir)
    return g_strdup (path);
  return g_build_filename (dir, path, NULL);
}

char *
kdf_ctx_input_path (KdfNodeCtx *ctx, const char *path)
{
  const char *dir = kdf_ctx_run_dir (ctx);
  if (g_path_is_absolute (path) || g_file_test (path, G_FILE_TEST_EXISTS) || !dir)
    return g_strdup (path);
  char *in_run = g_build_filename (dir, path, NULL);
  if (g_file_test (in_run, G_FILE_TEST_EXISTS))
    return in_run;
  g_free (in_run);
  return g_strdup (path);
}

char *
kdf_ctx_node_file (KdfNodeCtx *ctx, const char *suffix)
{
  const char *dir = kdf_ctx_run_dir (ctx);
  if (!dir)
    return NULL;
  g_autofree char *safe = g_strdup (ctx->node->name);
  for (char *c = safe; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_' && *c != '.')
      *c = '_';
  g_autofree char *base = g_strdup_printf ("%s.%s", safe, suffix);
  return g_build_filename (dir, base, NULL);
}

gboolean
kdf_ctx_check_labels (KdfNodeCtx *ctx, const char *port, int64_t n_classes, GError **error)
{
  KdfTensor *t = kdf_ctx_input_tensor (ctx, port);
  if (!t)
    return TRUE;
  g_autofree char *what = g_strdup_printf ("input '%s'", port);
  return kdf_tensor_check_labels (t, n_classes, what, error);
}

gpointer
kdf_ctx_get_class_data (KdfNodeCtx *ctx)
{
  return ctx->node->class_data;
}
