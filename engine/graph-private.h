/* Graph internals shared by the engine's graph parts. Calls go one way, down the
 * layers (tools/layers reads them off the object files and fails on a cycle):
 *
 *   3  sched.c (ticks, the thread pool)   ffi.c (foreign kernels)   kdflow.c (constants)
 *      rundir.c (metrics.jsonl, summary.json, dot files of a run)
 *   2  graph.c (graphs, nodes, edges, prepare)   ctx.c (the run context, run-time checks)
 *      dot.c (Graphviz text)
 *   1  registry.c (plugins)   nodeclass.c (class checks, describe)   params.c (param slots)
 *   0  value.c (values on edges)   port.c (port types)   suggest.c ("did you mean")
 *      tensor.c, object.c
 *
 * ctx.c and graph.c do not call each other. */
#pragma once

#include <kdflow/kdflow-plugin.h>
#include <kdflow/kdflow.h>
#include <json-glib/json-glib.h>

#include "cancel.h"

G_BEGIN_DECLS

/* A value on an edge: a tensor or a KdfObject (model, loss), with the version stamp
 * of the output that produced it (0 = none). */
typedef struct {
  KdfValueKind kind;
  gpointer p;
  guint64 version;
} KdfValue;

void kdf_value_set (KdfValue *dst, const KdfValue *src); /* refs src, drops dst */
void kdf_value_clear (KdfValue *v);
char *kdf_value_describe (const KdfValue *v); /* "f32[10,3]", "model mlp:…" */

typedef struct _KdfEdge KdfEdge;
struct _KdfEdge {
  guint id;
  KdfNode *src;
  guint out;     /* index into src outputs */
  KdfNode *dst;
  guint in;      /* index into dst inputs */
  guint delay;
  gboolean oracle;
  KdfValue initial;
  GQueue history; /* delay edges: KdfValue* snapshots, oldest first, at most delay */
  KdfValue delivered; /* delay edges: what this tick sees */
  guint64 seen;  /* version the dst consumed at its last run */
};

typedef struct {
  const KdfParamSpec *spec;
  gboolean is_set;
  double num;      /* int, double, bool */
  char *str;       /* string, enum (the choice's name) */
  int choice;      /* enum: the choice's C value */
  KdfScheduleFunc func;
  gpointer func_data;
  GDestroyNotify func_destroy;
  char *func_desc;
  gboolean changed; /* since the node last ran */
} KdfParamSlot;

typedef struct {
  const KdfPortSpec *spec;
  KdfPortType type;     /* spec->type, parsed */
  GPtrArray *edges; /* KdfEdge*, owned by the graph */
  /* resolved for the current run of the node */
  KdfValue value;       /* single inputs */
  GPtrArray *values;    /* multi inputs: KdfValue* */
  gboolean changed;
  guint provenance;     /* KDF_TENSOR_PROVENANCE flags of this run's tensors */
} KdfInput;

typedef struct {
  const KdfPortSpec *spec;
  KdfPortType type;     /* spec->type, parsed */
  KdfValue value;
  gboolean set_this_run;
} KdfOutput;

typedef struct {
  const char *name;  /* interned */
  gint64 value;
  const char *port;  /* the port that bound it (spec string) */
  gboolean output;
} KdfSymbol;

#define KDF_MAX_SYMBOLS 16

struct _KdfNodeCtx {
  KdfNode *node;
  guint tick;
  guint ticks;
  int threads;
  GRand *rng;
  guint64 seed;
  KdfSymbol symbols[KDF_MAX_SYMBOLS];
  guint n_symbols;
};

typedef struct {
  char *key;
  double value;
} KdfMetric;

/* what a node's kdf_ctx_warning left for the control thread */
typedef struct {
  guint tick;
  char *message;
} KdfWarning;

struct _KdfNode {
  KdfGraph *graph; /* weak: the graph owns the node */
  guint id;
  char *name;
  char *origin;
  const KdfNodeClass *klass;
  gpointer class_data;
  GDestroyNotify class_free;

  KdfParamSlot *params;
  guint n_params;
  gpointer params_block; /* the class's params struct, filled before each run */
  KdfInput *inputs;
  guint n_inputs;
  KdfOutput *outputs;
  guint n_outputs;

  gpointer state;
  gboolean initialized;
  gboolean ever_ran;

  /* scheduling (valid after prepare) */
  GPtrArray *out_edges; /* non-delay edges leaving this node */
  guint n_in_edges;     /* non-delay edges entering */
  gint pending;
  int budget;           /* BLIS threads of the current run */
  gboolean ran_this_tick;
  GError *error;
  KdfNodeCtx ctx;
  GArray *metrics;      /* KdfMetric, this tick */
  GPtrArray *warnings;  /* KdfWarning*, posted by a run, taken by the control thread */
  gint progress_permille; /* atomic: last progress report ×1000, -1 none */

  KdfNodeStats stats;
};

struct _KdfGraph {
  gint ref_count;
  char *name;
  guint64 seed;
  GPtrArray *nodes; /* KdfNode*, owned */
  GPtrArray *edges; /* KdfEdge*, owned */
  GHashTable *by_name;
  gboolean prepared;
  guint tick;       /* ticks completed */
  GPtrArray *order; /* topological order of nodes (non-delay edges) */
  GCancellable *cancellable;
  const char *run_dir; /* during a run */
  GPtrArray *warnings;  /* char*: every warning of this graph's runs, for summary.json */
  gboolean has_run;
  guint64 next_version;
  gint running; /* atomic: inside kdf_graph_run */
  GArray *tick_metrics; /* KdfMetric: what the last completed tick recorded */
  guint serial;         /* unique in the process, from 1 (kdf_graph_get_serial) */
  int threads;          /* the cores of the last run (summary.json) */
};

static inline guint64
kdf_graph_next_version (KdfGraph *g)
{
  /* outputs are set from worker threads */
  return (guint64) g_atomic_pointer_add ((gssize *) &g->next_version, 1);
}

/* "graph 'g', node 'n' (kind)" */
static inline char *
kdf_node_where (KdfNode *n)
{
  return g_strdup_printf ("graph '%s', node '%s' (%s)", n->graph->name, n->name, n->klass->name);
}

/* A node that learns from what it reads: a training node, or a loss term (the test
 * split may reach neither). */
static inline gboolean
kdf_node_learns (KdfNode *n)
{
  if (n->klass->flags & KDF_NODE_LEARNS)
    return TRUE;
  for (guint i = 0; i < n->n_outputs; i++)
    if (n->outputs[i].type.kind == KDF_VALUE_LOSS)
      return TRUE;
  return FALSE;
}

/* cancel.c (see also cancel.h): the node running on this thread (inside its init or
 * run), or NULL */
KdfNode *kdf_sched_current_node (void);
/* Sets the node running on this thread; returns the previous one (nested runs). */
KdfNode *kdf_cancel_set_current_node (KdfNode *n);
/* FALSE with an error naming the calling node if G is running (its structure is the
 * scheduler's until the run ends); WHAT says what was attempted ("add a node to"). */
gboolean kdf_graph_check_idle (KdfGraph *g, const char *what, GError **error);
/* A run of G begins (FALSE: G runs already; else G's cancellable is reset, or
 * cancelled at once after an interrupt) and ends; an interrupt cancels every graph
 * between the two. */
gboolean kdf_cancel_enter (KdfGraph *g);
void kdf_cancel_leave (KdfGraph *g);

/* params.c */
void kdf_param_slot_init (KdfParamSlot *p, const KdfParamSpec *spec);
void kdf_param_slot_clear (KdfParamSlot *p);
char *kdf_param_value_string (const KdfParamSlot *p); /* for dot and messages */
gboolean kdf_param_validate_number (KdfNode *n, KdfParamSlot *p, double v, const char *how,
                                    GError **error);
/* Writes every slot's value into the node's params struct (before each run). */
void kdf_node_fill_params (KdfNode *n);

/* nodeclass.c: checks a class (ports parse, param fields fit params_size and their
 * types, defaults lie in range and choices); ORIGIN says where it comes from in
 * messages ("plugin FILE", "graph 'g'"). */
gboolean kdf_node_class_check (const KdfNodeClass *k, const char *origin, GError **error);

/* ctx.c */
void kdf_ctx_reset (KdfNodeCtx *ctx, KdfNode *n, guint tick, guint ticks, int threads);
static inline void
kdf_ctx_clear (KdfNodeCtx *ctx)
{
  if (ctx->rng)
    g_rand_free (ctx->rng);
  ctx->rng = NULL;
}
/* Resolves and checks the node's inputs for this tick (dtype, rank, shape symbols,
 * label bounds, oracle). */
gboolean kdf_node_bind_inputs (KdfNode *n, GError **error);
/* Checks what run() set against the output specs. */
gboolean kdf_node_check_outputs (KdfNode *n, GError **error);
void kdf_node_release_inputs (KdfNode *n);

/* rundir.c: what a run leaves in its directory; each FALSE with an error naming the
 * file. */
/* summary.json gets this graph's entry, status "running" (at the start of a run). */
gboolean kdf_rundir_begin (KdfGraph *g, GError **error);
/* Appends this tick's metrics line (and moves the values into LAST, for the summary). */
gboolean kdf_rundir_append_metrics (KdfGraph *g, guint tick, double seconds, JsonObject *last,
                                    GError **error);
/* graph.dot, <graph>.dot and summary.json (one entry per graph run into the
 * directory); KDFLOW_DOT_DIR. RUN_ERROR is the run's outcome, ERROR a write's. */
gboolean kdf_rundir_write (KdfGraph *g, const GError *run_error, guint failed_tick, double seconds,
                           JsonObject *last_metrics, GError **error);

/* suggest.c */
int kdf_edit_distance (const char *a, const char *b);
/* kdf_suggest is public (kdflow.h) */

G_END_DECLS
