/* Graphs: nodes, params, edges, and everything prepare() can check before a run. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "graph-private.h"

/* ---- graphs ------------------------------------------------------------------- */

KdfGraph *
kdf_graph_new (const char *name, guint64 seed)
{
  KdfGraph *g = g_new0 (KdfGraph, 1);
  g->ref_count = 1;
  g->name = g_strdup (name && *name ? name : "graph");
  g->seed = seed;
  g->nodes = g_ptr_array_new ();
  g->edges = g_ptr_array_new ();
  g->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g->cancellable = g_cancellable_new ();
  g->warnings = g_ptr_array_new_with_free_func (g_free);
  g->tick_metrics = g_array_new (FALSE, FALSE, sizeof (KdfMetric));
  g->next_version = 1;
  static gint serials;
  g->serial = (guint) g_atomic_int_add (&serials, 1) + 1;
  return g;
}

guint
kdf_graph_get_serial (KdfGraph *g)
{
  return g->serial;
}

guint
kdf_node_get_id (KdfNode *n)
{
  return n->id;
}

KdfGraph *
kdf_graph_ref (KdfGraph *g)
{
  g_return_val_if_fail (g != NULL, NULL);
  g_atomic_int_inc (&g->ref_count);
  return g;
}

static void
edge_free (KdfEdge *e)
{
  kdf_value_clear (&e->initial);
  kdf_value_clear (&e->delivered);
  KdfValue *v;
  while ((v = g_queue_pop_head (&e->history))) {
    kdf_value_clear (v);
    g_free (v);
  }
  g_free (e);
}

static void
node_free (KdfNode *n)
{
  if (n->initialized && n->klass->finalize)
    n->klass->finalize (n->state);
  for (guint i = 0; i < n->n_params; i++)
    kdf_param_slot_clear (&n->params[i]);
  g_free (n->params);
  g_free (n->params_block);
  for (guint i = 0; i < n->n_inputs; i++) {
    kdf_value_clear (&n->inputs[i].value);
    if (n->inputs[i].values)
      g_ptr_array_free (n->inputs[i].values, TRUE);
    g_ptr_array_free (n->inputs[i].edges, TRUE);
  }
  g_free (n->inputs);
  for (guint i = 0; i < n->n_outputs; i++)
    kdf_value_clear (&n->outputs[i].value);
  g_free (n->outputs);
  if (n->out_edges)
    g_ptr_array_free (n->out_edges, TRUE);
  kdf_ctx_clear (&n->ctx);
  for (guint i = 0; n->metrics && i < n->metrics->len; i++)
    g_free (g_array_index (n->metrics, KdfMetric, i).key);
  if (n->metrics)
    g_array_free (n->metrics, TRUE);
  if (n->warnings)
    g_ptr_array_free (n->warnings, TRUE);
  g_clear_error (&n->error);
  if (n->class_free)
    n->class_free (n->class_data);
  g_free (n->name);
  g_free (n->origin);
  g_free (n);
}

void
kdf_graph_unref (KdfGraph *g)
{
  if (!g || !g_atomic_int_dec_and_test (&g->ref_count))
    return;
  for (guint i = 0; i < g->edges->len; i++)
    edge_free (g->edges->pdata[i]);
  for (guint i = 0; i < g->nodes->len; i++)
    node_free (g->nodes->pdata[i]);
  g_ptr_array_free (g->edges, TRUE);
  g_ptr_array_free (g->nodes, TRUE);
  g_hash_table_destroy (g->by_name);
  if (g->order)
    g_ptr_array_free (g->order, TRUE);
  g_object_unref (g->cancellable);
  g_ptr_array_free (g->warnings, TRUE);
  for (guint i = 0; i < g->tick_metrics->len; i++)
    g_free (g_array_index (g->tick_metrics, KdfMetric, i).key);
  g_array_free (g->tick_metrics, TRUE);
  g_free (g->name);
  g_free (g);
}

const char *
kdf_graph_get_name (KdfGraph *g)
{
  return g->name;
}

guint64
kdf_graph_get_seed (KdfGraph *g)
{
  return g->seed;
}

guint
kdf_graph_n_nodes (KdfGraph *g)
{
  return g->nodes->len;
}

KdfNode *
kdf_graph_nth_node (KdfGraph *g, guint i)
{
  return i < g->nodes->len ? g->nodes->pdata[i] : NULL;
}

KdfNode *
kdf_graph_find_node (KdfGraph *g, const char *name)
{
  return g_hash_table_lookup (g->by_name, name);
}

guint
kdf_graph_get_tick (KdfGraph *g)
{
  return g->tick;
}

guint
kdf_graph_n_metrics (KdfGraph *g)
{
  g_return_val_if_fail (g != NULL, 0);
  return g->tick_metrics->len;
}

const char *
kdf_graph_metric (KdfGraph *g, guint i, double *value)
{
  g_return_val_if_fail (g != NULL, NULL);
  if (i >= g->tick_metrics->len)
    return NULL;
  KdfMetric *m = &g_array_index (g->tick_metrics, KdfMetric, i);
  if (value)
    *value = m->value;
  return m->key;
}

/* ---- nodes -------------------------------------------------------------------- */

static guint
count_ports (const KdfPortSpec *p)
{
  guint n = 0;
  while (p && p[n].name)
    n++;
  return n;
}

static gboolean
valid_node_name (const char *name)
{
  if (!name || !*name)
    return FALSE;
  for (const char *c = name; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '_' && *c != '-' && *c != '.')
      return FALSE;
  return TRUE;
}

KdfNode *
kdf_graph_add_node_with_class (KdfGraph *g, const KdfNodeClass *klass, const char *name,
                               gpointer class_data, GDestroyNotify class_free, GError **error)
{
  if (!kdf_graph_check_idle (g, "add a node to", error)) {
    if (class_free)
      class_free (class_data);
    return NULL;
  }
  g_autofree char *auto_name = NULL;
  if (!name) {
    auto_name = g_strdup (klass->name);
    for (guint i = 2; g_hash_table_contains (g->by_name, auto_name); i++) {
      g_free (auto_name);
      auto_name = g_strdup_printf ("%s_%u", klass->name, i);
    }
    name = auto_name;
  }
  g_autofree char *origin = g_strdup_printf ("graph '%s'", g->name);
  if (!kdf_node_class_check (klass, origin, error)) {
    if (class_free)
      class_free (class_data);
    return NULL;
  }
  if (!valid_node_name (name) || g_hash_table_contains (g->by_name, name)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_KIND,
                 valid_node_name (name)
                     ? "graph '%s': a node named '%s' exists already"
                     : "graph '%s': bad node name '%s' (use letters, digits, '_', '-', '.')",
                 g->name, name);
    if (class_free)
      class_free (class_data);
    return NULL;
  }
  KdfNode *n = g_new0 (KdfNode, 1);
  n->graph = g;
  n->id = g->nodes->len;
  n->name = g_strdup (name);
  n->klass = klass;
  n->class_data = class_data;
  n->class_free = class_free;
  n->n_params = 0;
  while (klass->params && klass->params[n->n_params].name)
    n->n_params++;
  n->params = g_new0 (KdfParamSlot, n->n_params);
  for (guint i = 0; i < n->n_params; i++)
    kdf_param_slot_init (&n->params[i], &klass->params[i]);
  n->params_block = klass->params_size ? g_malloc0 (klass->params_size) : NULL;
  n->n_inputs = count_ports (klass->inputs);
  n->inputs = g_new0 (KdfInput, n->n_inputs);
  for (guint i = 0; i < n->n_inputs; i++) {
    n->inputs[i].spec = &klass->inputs[i];
    kdf_port_type_parse (klass->inputs[i].type, &n->inputs[i].type, NULL); /* checked */
    n->inputs[i].edges = g_ptr_array_new ();
    n->inputs[i].value.kind = n->inputs[i].type.kind;
  }
  n->n_outputs = count_ports (klass->outputs);
  n->outputs = g_new0 (KdfOutput, n->n_outputs);
  for (guint i = 0; i < n->n_outputs; i++) {
    n->outputs[i].spec = &klass->outputs[i];
    kdf_port_type_parse (klass->outputs[i].type, &n->outputs[i].type, NULL);
    n->outputs[i].value.kind = n->outputs[i].type.kind;
  }
  n->metrics = g_array_new (FALSE, FALSE, sizeof (KdfMetric));
  n->warnings = g_ptr_array_new ();
  n->progress_permille = -1;
  g_ptr_array_add (g->nodes, n);
  g_hash_table_insert (g->by_name, n->name, n);
  g->prepared = FALSE;
  return n;
}

KdfNode *
kdf_graph_add_node (KdfGraph *g, const char *kind, const char *name, GError **error)
{
  KdfRegistry *reg = kdf_registry_get_default (error);
  if (!reg)
    return NULL;
  const char *skipped = kdf_registry_skipped_for (reg, kind);
  if (skipped) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN,
                 "graph '%s': node kind '%s' comes from a plugin that was skipped: %s", g->name,
                 kind, skipped);
    return NULL;
  }
  const KdfNodeClass *klass = kdf_registry_lookup (reg, kind);
  if (!klass) {
    g_autofree char *hint = kdf_registry_suggest (reg, kind);
    g_set_error (error, KDF_ERROR, KDF_ERROR_KIND,
                 "graph '%s': unknown node kind '%s'%s; 'kdflow nodes' lists the kinds found",
                 g->name, kind, hint);
    return NULL;
  }
  return kdf_graph_add_node_with_class (g, klass, name, NULL, NULL, error);
}

void
kdf_graph_remove_node (KdfGraph *g, KdfNode *n)
{
  g_return_if_fail (n->graph == g);
  g_return_if_fail (!g_atomic_int_get (&g->running));
  for (guint i = 0; i < g->edges->len;) {
    KdfEdge *e = g->edges->pdata[i];
    if (e->src == n || e->dst == n) {
      g_ptr_array_remove (e->dst->inputs[e->in].edges, e);
      g_ptr_array_remove_index (g->edges, i);
      edge_free (e);
    } else {
      i++;
    }
  }
  for (guint i = 0; i < g->edges->len; i++)
    ((KdfEdge *) g->edges->pdata[i])->id = i;
  g_ptr_array_remove (g->nodes, n);
  for (guint i = 0; i < g->nodes->len; i++)
    ((KdfNode *) g->nodes->pdata[i])->id = i;
  g_hash_table_remove (g->by_name, n->name);
  node_free (n);
  g->prepared = FALSE;
}

const char *
kdf_node_get_name (KdfNode *n)
{
  return n->name;
}

const char *
kdf_node_get_kind (KdfNode *n)
{
  return n->klass->name;
}

const KdfNodeClass *
kdf_node_get_class (KdfNode *n)
{
  return n->klass;
}

KdfGraph *
kdf_node_get_graph (KdfNode *n)
{
  return n->graph;
}

void
kdf_node_set_origin (KdfNode *n, const char *origin)
{
  g_free (n->origin);
  n->origin = g_strdup (origin);
}

const char *
kdf_node_get_origin (KdfNode *n)
{
  return n->origin;
}

void
kdf_node_get_stats (KdfNode *n, KdfNodeStats *stats)
{
  *stats = n->stats;
}

/* ---- ports and edges ---------------------------------------------------------- */

static int
find_port (const KdfPortSpec *ports, guint n, const char *name)
{
  for (guint i = 0; i < n; i++)
    if (strcmp (ports[i].name, name) == 0)
      return (int) i;
  return -1;
}

const KdfPortType *
kdf_node_input_type (KdfNode *n, const char *port, guint *flags)
{
  int i = find_port (n->klass->inputs, n->n_inputs, port);
  if (i < 0)
    return NULL;
  if (flags)
    *flags = n->inputs[i].spec->flags;
  return &n->inputs[i].type;
}

const KdfPortType *
kdf_node_output_type (KdfNode *n, const char *port, guint *flags)
{
  int i = find_port (n->klass->outputs, n->n_outputs, port);
  if (i < 0)
    return NULL;
  if (flags)
    *flags = n->outputs[i].spec->flags;
  return &n->outputs[i].type;
}

GPtrArray *
kdf_node_port_names (KdfNode *n)
{
  GPtrArray *a = g_ptr_array_sized_new (n->n_inputs + n->n_outputs);
  for (guint i = 0; i < n->n_inputs; i++)
    g_ptr_array_add (a, (gpointer) n->inputs[i].spec->name);
  for (guint i = 0; i < n->n_outputs; i++)
    g_ptr_array_add (a, (gpointer) n->outputs[i].spec->name);
  return a;
}

static gboolean
unknown_port (KdfNode *n, const char *dir, const KdfPortSpec *ports, guint count,
              const char *port, GError **error)
{
  g_autofree const char **names = g_new0 (const char *, count + 1);
  GString *all = g_string_new (NULL);
  for (guint i = 0; i < count; i++) {
    names[i] = ports[i].name;
    g_string_append_printf (all, "%s%s", i ? ", " : "", ports[i].name);
  }
  g_autofree char *hint = kdf_suggest (port, names, count);
  g_autofree char *where = kdf_node_where (n);
  g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "%s: no %s port '%s'%s; %s ports: %s", where,
               dir, port, hint, dir, count ? all->str : "none");
  g_string_free (all, TRUE);
  return FALSE;
}

gboolean
kdf_graph_connect (KdfGraph *g, KdfNode *src, const char *out_port, KdfNode *dst,
                   const char *in_port, const KdfEdgeOptions *opts, GError **error)
{
  g_return_val_if_fail (g != NULL && src != NULL && dst != NULL, FALSE);
  if (src->graph != g || dst->graph != g) {
    /* a script can hold nodes of several graphs (kdflow-lua) */
    KdfNode *stranger = src->graph != g ? src : dst;
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                 "cannot connect '%s.%s' to '%s.%s' in graph '%s': node '%s' belongs to graph '%s'",
                 src->name, out_port, dst->name, in_port, g->name, stranger->name,
                 stranger->graph ? stranger->graph->name : "(none)");
    return FALSE;
  }
  if (!kdf_graph_check_idle (g, "connect ports in", error))
    return FALSE;
  int oi = find_port (src->klass->outputs, src->n_outputs, out_port);
  if (oi < 0)
    return unknown_port (src, "output", src->klass->outputs, src->n_outputs, out_port, error);
  int ii = find_port (dst->klass->inputs, dst->n_inputs, in_port);
  if (ii < 0)
    return unknown_port (dst, "input", dst->klass->inputs, dst->n_inputs, in_port, error);
  const KdfPortType *o = &src->outputs[oi].type, *i = &dst->inputs[ii].type;
  const guint oflags = src->outputs[oi].spec->flags, iflags = dst->inputs[ii].spec->flags;
  KdfInput *in = &dst->inputs[ii];
  guint delay = opts ? opts->delay : 0;
  gboolean oracle_ok = opts && opts->oracle;
  g_autofree char *ot = kdf_port_type_to_string (o), *it = kdf_port_type_to_string (i);

  if (in->edges->len > 0 && !(iflags & KDF_PORT_MULTI)) {
    KdfEdge *e = in->edges->pdata[0];
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "graph '%s': input '%s.%s' is already fed by '%s.%s'; an input takes one "
                 "edge",
                 g->name, dst->name, in_port, e->src->name, e->src->klass->outputs[e->out].name);
    return FALSE;
  }
  gboolean bad_kind = o->kind != i->kind;
  gboolean bad_dtype = !bad_kind && o->kind == KDF_VALUE_TENSOR && o->dtype != KDF_DTYPE_ANY &&
                       i->dtype != KDF_DTYPE_ANY && o->dtype != i->dtype;
  gboolean bad_rank = !bad_kind && o->kind == KDF_VALUE_TENSOR && o->rank >= 0 && i->rank >= 0 &&
                      o->rank != i->rank;
  if (bad_kind || bad_dtype || bad_rank) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_LINK,
                 "graph '%s': cannot connect '%s.%s' (%s) to '%s.%s' (%s): %s differ", g->name,
                 src->name, out_port, ot, dst->name, in_port, it,
                 bad_kind ? "value kinds" : bad_dtype ? "dtypes" : "ranks");
    return FALSE;
  }
  if ((oflags & KDF_PORT_TEST) && kdf_node_learns (dst)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_ORACLE,
                 "graph '%s': '%s.%s' is the test split and '%s' (%s) learns from its inputs; "
                 "the test split is for evaluation only (train and select on the training and "
                 "validation splits)",
                 g->name, src->name, out_port, dst->name, dst->klass->name);
    return FALSE;
  }
  if ((oflags & KDF_PORT_ORACLE) && !(dst->klass->flags & KDF_NODE_EVALUATOR) && !oracle_ok) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_ORACLE,
                 "graph '%s': '%s.%s' is ground truth (an oracle output) and '%s' (%s) is not "
                 "an evaluation node; a method must not see the answer (if this is deliberate, "
                 "connect with oracle = true)",
                 g->name, src->name, out_port, dst->name, dst->klass->name);
    return FALSE;
  }
  if (opts && opts->initial) {
    if (delay == 0 || i->kind != KDF_VALUE_TENSOR) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_LINK,
                   "graph '%s': edge '%s.%s' -> '%s.%s': an initial value needs a delay edge "
                   "into a tensor input",
                   g->name, src->name, out_port, dst->name, in_port);
      return FALSE;
    }
    KdfTensor *t = opts->initial;
    if ((i->dtype != KDF_DTYPE_ANY && t->dtype != i->dtype) || (i->rank >= 0 && t->rank != i->rank)) {
      g_autofree char *d = kdf_tensor_describe (t);
      g_set_error (error, KDF_ERROR, KDF_ERROR_LINK,
                   "graph '%s': initial value %s does not fit input '%s.%s' (%s)", g->name, d,
                   dst->name, in_port, it);
      return FALSE;
    }
  }
  KdfEdge *e = g_new0 (KdfEdge, 1);
  e->id = g->edges->len;
  e->src = src;
  e->out = (guint) oi;
  e->dst = dst;
  e->in = (guint) ii;
  e->delay = delay;
  e->oracle = oracle_ok;
  e->initial.kind = i->kind;
  e->delivered.kind = i->kind;
  if (opts && opts->initial) {
    KdfValue init = { KDF_VALUE_TENSOR, opts->initial, kdf_graph_next_version (g) };
    kdf_value_set (&e->initial, &init);
  }
  g_queue_init (&e->history);
  g_ptr_array_add (g->edges, e);
  g_ptr_array_add (in->edges, e);
  g->prepared = FALSE;
  return TRUE;
}

guint
kdf_graph_disconnect (KdfGraph *g, KdfNode *dst, const char *in_port, GError **error)
{
  if (!kdf_graph_check_idle (g, "disconnect ports in", error))
    return 0;
  int ii = find_port (dst->klass->inputs, dst->n_inputs, in_port);
  if (ii < 0) {
    unknown_port (dst, "input", dst->klass->inputs, dst->n_inputs, in_port, error);
    return 0;
  }
  GPtrArray *edges = dst->inputs[ii].edges;
  guint removed = edges->len;
  while (edges->len) {
    KdfEdge *e = edges->pdata[edges->len - 1];
    g_ptr_array_remove_index (edges, edges->len - 1);
    g_ptr_array_remove (g->edges, e);
    edge_free (e);
  }
  for (guint i = 0; i < g->edges->len; i++)
    ((KdfEdge *) g->edges->pdata[i])->id = i;
  g->prepared = FALSE;
  return removed;
}

/* ---- prepare ------------------------------------------------------------------ */

/* Finds a cycle among the nodes Kahn's algorithm could not order and names it. */
static char *
describe_cycle (KdfGraph *g, const gboolean *left)
{
  guint n = g->nodes->len;
  g_autofree int *color = g_new0 (int, n); /* 0 new, 1 on stack, 2 done */
  g_autofree int *parent = g_new (int, n);
  for (guint start = 0; start < n; start++) {
    if (!left[start] || color[start])
      continue;
    /* iterative DFS over non-delay edges among the leftover nodes */
    GArray *stack = g_array_new (FALSE, FALSE, sizeof (int));
    g_array_append_val (stack, start);
    parent[start] = -1;
    while (stack->len) {
      int u = g_array_index (stack, int, stack->len - 1);
      KdfNode *nu = g->nodes->pdata[u];
      if (color[u] == 0)
        color[u] = 1;
      gboolean pushed = FALSE;
      for (guint k = 0; k < nu->out_edges->len && !pushed; k++) {
        KdfEdge *e = nu->out_edges->pdata[k];
        int v = (int) e->dst->id;
        if (!left[v])
          continue;
        if (color[v] == 1) {
          /* back edge u → v: the cycle is v … u → v */
          GString *s = g_string_new (NULL);
          GPtrArray *path = g_ptr_array_new ();
          for (int w = u; w != -1 && w != v; w = parent[w])
            g_ptr_array_add (path, ((KdfNode *) g->nodes->pdata[w])->name);
          g_string_append (s, ((KdfNode *) g->nodes->pdata[v])->name);
          for (int k2 = (int) path->len - 1; k2 >= 0; k2--)
            g_string_append_printf (s, " -> %s", (const char *) path->pdata[k2]);
          g_string_append_printf (s, " -> %s", ((KdfNode *) g->nodes->pdata[v])->name);
          g_ptr_array_free (path, TRUE);
          g_array_free (stack, TRUE);
          return g_string_free (s, FALSE);
        }
        if (color[v] == 0) {
          parent[v] = u;
          g_array_append_val (stack, v);
          pushed = TRUE;
        }
      }
      if (!pushed) {
        color[u] = 2;
        g_array_set_size (stack, stack->len - 1);
      }
    }
    g_array_free (stack, TRUE);
  }
  return g_strdup ("?");
}

gboolean
kdf_graph_prepare (KdfGraph *g, GError **error)
{
  if (g->prepared)
    return TRUE;
  /* params and inputs */
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    for (guint p = 0; p < n->n_params; p++)
      if ((n->params[p].spec->flags & KDF_PARAM_REQUIRED) && !n->params[p].is_set) {
        g_autofree char *where = kdf_node_where (n);
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: param '%s' is required (%s)",
                     where, n->params[p].spec->name,
                     n->params[p].spec->summary ? n->params[p].spec->summary : "no default");
        return FALSE;
      }
    for (guint k = 0; k < n->n_inputs; k++) {
      KdfInput *in = &n->inputs[k];
      gboolean optional = (in->spec->flags & KDF_PORT_OPTIONAL) != 0;
      if (in->edges->len == 0 && !optional) {
        g_autofree char *where = kdf_node_where (n);
        g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                     "%s: required input '%s' is not connected", where, in->spec->name);
        return FALSE;
      }
      for (guint e = 0; e < in->edges->len; e++) {
        KdfEdge *edge = in->edges->pdata[e];
        if (edge->delay > 0 && !optional && !edge->initial.p) {
          g_autofree char *where = kdf_node_where (n);
          g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                       "%s: required input '%s' is fed by a delay edge from '%s' with no "
                       "initial value, so it has nothing at tick 0; give the edge an initial "
                       "value",
                       where, in->spec->name, edge->src->name);
          return FALSE;
        }
      }
    }
  }
  /* non-delay adjacency */
  for (guint i = 0; i < g->nodes->len; i++) {
    KdfNode *n = g->nodes->pdata[i];
    if (n->out_edges)
      g_ptr_array_set_size (n->out_edges, 0);
    else
      n->out_edges = g_ptr_array_new ();
    n->n_in_edges = 0;
  }
  for (guint i = 0; i < g->edges->len; i++) {
    KdfEdge *e = g->edges->pdata[i];
    if (e->delay == 0) {
      g_ptr_array_add (e->src->out_edges, e);
      e->dst->n_in_edges++;
    }
  }
  /* Kahn's algorithm, ties by insertion order so the order is stable */
  guint n = g->nodes->len;
  g_autofree guint *indeg = g_new (guint, n);
  for (guint i = 0; i < n; i++)
    indeg[i] = ((KdfNode *) g->nodes->pdata[i])->n_in_edges;
  GPtrArray *order = g_ptr_array_sized_new (n);
  GQueue queue = G_QUEUE_INIT;
  for (guint i = 0; i < n; i++)
    if (indeg[i] == 0)
      g_queue_push_tail (&queue, g->nodes->pdata[i]);
  KdfNode *u;
  while ((u = g_queue_pop_head (&queue))) {
    g_ptr_array_add (order, u);
    for (guint k = 0; k < u->out_edges->len; k++) {
      KdfEdge *e = u->out_edges->pdata[k];
      if (--indeg[e->dst->id] == 0)
        g_queue_push_tail (&queue, e->dst);
    }
  }
  if (order->len < n) {
    g_autofree gboolean *left = g_new0 (gboolean, n);
    for (guint i = 0; i < n; i++)
      left[i] = indeg[i] > 0;
    g_autofree char *cycle = describe_cycle (g, left);
    g_set_error (error, KDF_ERROR, KDF_ERROR_CYCLE,
                 "graph '%s': cycle without a delay edge: %s; feed one of these edges back "
                 "with delay = 1",
                 g->name, cycle);
    g_ptr_array_free (order, TRUE);
    return FALSE;
  }
  if (g->order)
    g_ptr_array_free (g->order, TRUE);
  g->order = order;
  g->prepared = TRUE;
  return TRUE;
}

/* ---- outputs ------------------------------------------------------------------ */

gpointer
kdf_node_get_output (KdfNode *n, const char *port, KdfValueKind *kind)
{
  int i = find_port (n->klass->outputs, n->n_outputs, port);
  if (i < 0)
    return NULL;
  if (kind)
    *kind = n->outputs[i].value.kind;
  return n->outputs[i].value.p;
}

KdfTensor *
kdf_node_get_output_tensor (KdfNode *n, const char *port)
{
  KdfValueKind kind;
  gpointer p = kdf_node_get_output (n, port, &kind);
  return p && kind == KDF_VALUE_TENSOR ? p : NULL;
}
