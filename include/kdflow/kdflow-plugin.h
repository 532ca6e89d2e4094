/* kdflow — the node ABI, for plugin authors.
 *
 * A node kind is one static, declarative KdfNodeClass: its name, typed input and
 * output ports, validated params, and three callbacks (init, run, finalize). A
 * plugin file kdf-NAME.so exports exactly one symbol, kdf_plugin_NAME_describe,
 * made by KDF_PLUGIN (NAME, &class_a, &class_b, ...). The engine checks the ABI
 * numbers before it looks at anything else.
 *
 *   static const KdfPortSpec inputs[]  = { KDF_PORT_TENSOR ("scores", F32, 1, "N"), { 0 } };
 *   static const KdfPortSpec outputs[] = { KDF_PORT_TENSOR ("mask", U8, 1, "N"), { 0 } };
 *   static const KdfParamSpec params[] = {
 *     KDF_PARAM_DOUBLE ("threshold", 0.5, 0.0, 1.0, "scores at or above are kept"), { 0 } };
 *   static gboolean my_run (KdfNodeCtx *ctx, gpointer state, GError **error) { ... }
 *   static const KdfNodeClass my_class = { .struct_size = sizeof (KdfNodeClass),
 *     .name = "my_threshold", .summary = "...", .inputs = inputs, .outputs = outputs,
 *     .params = params, .run = my_run };
 *   KDF_PLUGIN (my_threshold, &my_class)
 *
 * Inside run, read inputs and params through the KdfNodeCtx accessors, write outputs
 * with kdf_ctx_set_output_*, and return FALSE with a GError on failure. Never abort,
 * exit or print to stdout. Everything a node needs from the engine (RNG, thread
 * budget, progress, cancellation) comes from the ctx.
 */
#pragma once

#include <gio/gio.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

/* The ABI of this header. A plugin is refused if its major differs from the
 * engine's or its minor is newer than the engine's. */
#define KDF_ABI_MAJOR 1
#define KDF_ABI_MINOR 0

/* ---- errors ---------------------------------------------------------------- */

#define KDF_ERROR (kdf_error_quark ())
GQuark kdf_error_quark (void);

typedef enum {
  KDF_ERROR_FAILED,    /* anything else */
  KDF_ERROR_PLUGIN,    /* a plugin file cannot be loaded */
  KDF_ERROR_ABI,       /* a plugin was built for another ABI */
  KDF_ERROR_KIND,      /* unknown or duplicate node kind */
  KDF_ERROR_PARAM,     /* unknown param, wrong type, out of range */
  KDF_ERROR_PORT,      /* unknown port, two edges into one input, not connected */
  KDF_ERROR_LINK,      /* value kind, dtype or rank mismatch on an edge */
  KDF_ERROR_ORACLE,    /* ground truth into a non-evaluation node */
  KDF_ERROR_CYCLE,     /* a cycle without a delay edge */
  KDF_ERROR_SHAPE,     /* a shape disagreement at run time */
  KDF_ERROR_IO,        /* files */
  KDF_ERROR_FOREIGN,   /* foreign (libffi) kernels */
  KDF_ERROR_LUA,       /* errors in Lua code */
  KDF_ERROR_NODE,      /* a node's run failed */
  KDF_ERROR_CANCELLED, /* the run was cancelled */
  KDF_ERROR_USAGE,     /* bad command line */
  KDF_ERROR_VALUE,     /* bad values in data: a label outside [0, C), NaN, a rate > 1 */
} KdfErrorCode;

/* ---- values ------------------------------------------------------------------ */

typedef enum {
  KDF_VALUE_TENSOR = 0,
  KDF_VALUE_MODEL = 1,
  KDF_VALUE_LOSS = 2,
} KdfValueKind;

const char *kdf_value_kind_name (KdfValueKind kind);

/* Models and loss terms are refcounted objects that start with a KdfObject header,
 * so the engine can carry them on edges without knowing their insides (nn.h). */
typedef struct _KdfObject KdfObject;
struct _KdfObject {
  gint ref_count; /* atomic */
  KdfValueKind kind;
  void (*free) (KdfObject *self);
  /* A short human label for dot files and messages, newly allocated. */
  char *(*describe) (const KdfObject *self);
  gpointer reserved[2];
};

/* Initialises the header of a freshly allocated object (ref_count = 1). */
void kdf_object_init (KdfObject *obj, KdfValueKind kind, void (*free_func) (KdfObject *),
                      char *(*describe) (const KdfObject *));
gpointer kdf_object_ref (gpointer obj);
void kdf_object_unref (gpointer obj); /* NULL-safe */
char *kdf_object_describe (gconstpointer obj);

typedef struct _KdfModel KdfModel; /* nn.h; starts with KdfObject */
typedef struct _KdfLoss KdfLoss;   /* nn.h; starts with KdfObject */

/* ---- ports ------------------------------------------------------------------- */

typedef enum {
  KDF_PORT_OPTIONAL = 1 << 0, /* input: may stay unconnected (reads as NULL) */
  KDF_PORT_MULTI = 1 << 1,    /* input: takes any number of edges (a list) */
  KDF_PORT_ORACLE = 1 << 2,   /* output: ground truth (evaluation nodes only) */
} KdfPortFlags;

typedef struct {
  const char *name;    /* snake_case; NULL terminates an array */
  KdfValueKind kind;
  KdfDType dtype;      /* tensors: KDF_DTYPE_ANY accepts any */
  int rank;            /* tensors: -1 accepts any */
  const char *shape;   /* tensors: symbolic shape "N,C" checked at run time, or NULL */
  guint flags;         /* KdfPortFlags */
  const char *summary;
  gpointer reserved[2];
} KdfPortSpec;

#define KDF_PORT_TENSOR(n, dt, rk, shp) \
  { .name = (n), .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_##dt, .rank = (rk), .shape = (shp) }
#define KDF_PORT_MODEL(n) { .name = (n), .kind = KDF_VALUE_MODEL, .rank = -1 }
#define KDF_PORT_LOSS(n) { .name = (n), .kind = KDF_VALUE_LOSS, .rank = -1 }

/* ---- params ------------------------------------------------------------------ */

typedef enum {
  KDF_PARAM_INT = 0,
  KDF_PARAM_DOUBLE = 1,
  KDF_PARAM_BOOL = 2,
  KDF_PARAM_STRING = 3,
  KDF_PARAM_ENUM = 4,
} KdfParamType;

typedef enum {
  KDF_PARAM_REQUIRED = 1 << 0, /* no default: the graph must set it */
} KdfParamFlags;

typedef struct {
  const char *name;  /* NULL terminates an array */
  KdfParamType type;
  double def;        /* default of int, double and bool params */
  double min, max;   /* int and double: inclusive range; min == max == 0 means none */
  const char *def_string;             /* default of string and enum params */
  const char *const *choices;         /* enum: NULL-terminated */
  guint flags;                        /* KdfParamFlags */
  const char *summary;
  gpointer reserved[2];
} KdfParamSpec;

#define KDF_PARAM_INT(n, d, lo, hi, s) \
  { .name = (n), .type = KDF_PARAM_INT, .def = (d), .min = (lo), .max = (hi), .summary = (s) }
#define KDF_PARAM_DOUBLE(n, d, lo, hi, s) \
  { .name = (n), .type = KDF_PARAM_DOUBLE, .def = (d), .min = (lo), .max = (hi), .summary = (s) }
#define KDF_PARAM_BOOL(n, d, s) { .name = (n), .type = KDF_PARAM_BOOL, .def = (d), .summary = (s) }
#define KDF_PARAM_STRING(n, d, s) \
  { .name = (n), .type = KDF_PARAM_STRING, .def_string = (d), .summary = (s) }
#define KDF_PARAM_ENUM(n, d, ch, s) \
  { .name = (n), .type = KDF_PARAM_ENUM, .def_string = (d), .choices = (ch), .summary = (s) }

/* ---- node classes ------------------------------------------------------------ */

typedef struct _KdfNodeCtx KdfNodeCtx;

typedef enum {
  KDF_NODE_EVERY_TICK = 1 << 0,   /* run every tick even if nothing changed (training) */
  KDF_NODE_EVALUATOR = 1 << 1,    /* may consume oracle values */
  KDF_NODE_CONTROL_THREAD = 1 << 2, /* run on the control thread (engine use) */
} KdfNodeFlags;

typedef struct _KdfNodeClass KdfNodeClass;
struct _KdfNodeClass {
  gsize struct_size; /* sizeof (KdfNodeClass) */
  const char *name;  /* the node kind, snake_case */
  const char *summary;
  const KdfPortSpec *inputs;  /* terminated by { 0 }; may be NULL */
  const KdfPortSpec *outputs; /* terminated by { 0 }; may be NULL */
  const KdfParamSpec *params; /* terminated by { 0 }; may be NULL */
  /* Once, before the first run, after params are validated and with the inputs of
   * that run readable. May be NULL. If it fails, finalize (when set) is called on
   * whatever it stored in *state, and the next run calls init again. */
  gboolean (*init) (KdfNodeCtx *ctx, gpointer *state, GError **error);
  /* Each tick the node runs. Required. */
  gboolean (*run) (KdfNodeCtx *ctx, gpointer state, GError **error);
  /* When the graph is freed. May be NULL. */
  void (*finalize) (gpointer state);
  guint flags; /* KdfNodeFlags */
  gpointer reserved[8];
};

/* ---- the run context --------------------------------------------------------- */

/* Inputs (transfer none; valid until run returns). NULL when an optional input is
 * unconnected or (through a delay edge) has no value yet. Asking for a port the
 * class does not declare is a programming error (returns NULL and warns). */
KdfTensor *kdf_ctx_input_tensor (KdfNodeCtx *ctx, const char *port);
KdfModel *kdf_ctx_input_model (KdfNodeCtx *ctx, const char *port);
KdfLoss *kdf_ctx_input_loss (KdfNodeCtx *ctx, const char *port);
/* Multi inputs: the number of values and the I-th one (any kind). */
guint kdf_ctx_input_count (KdfNodeCtx *ctx, const char *port);
gpointer kdf_ctx_input_nth (KdfNodeCtx *ctx, const char *port, guint i);
/* TRUE if the value on PORT differs from the one seen at this node's last run. */
gboolean kdf_ctx_input_changed (KdfNodeCtx *ctx, const char *port);

/* Outputs (transfer full). A node sets each output it has a value for; outputs it
 * does not set keep their previous value. */
void kdf_ctx_set_output_tensor (KdfNodeCtx *ctx, const char *port, KdfTensor *t);
void kdf_ctx_set_output_model (KdfNodeCtx *ctx, const char *port, KdfModel *m);
void kdf_ctx_set_output_loss (KdfNodeCtx *ctx, const char *port, KdfLoss *l);

/* Params, already validated (for a schedule: this tick's value). */
gint64 kdf_ctx_param_int (KdfNodeCtx *ctx, const char *name);
double kdf_ctx_param_double (KdfNodeCtx *ctx, const char *name);
gboolean kdf_ctx_param_bool (KdfNodeCtx *ctx, const char *name);
const char *kdf_ctx_param_string (KdfNodeCtx *ctx, const char *name); /* also enums */
int kdf_ctx_param_enum (KdfNodeCtx *ctx, const char *name);           /* choice index */
/* TRUE if the graph set NAME (as opposed to the default). */
gboolean kdf_ctx_param_is_set (KdfNodeCtx *ctx, const char *name);

/* The value bound to a shape symbol ("N") by this node's inputs, or -1. */
gint64 kdf_ctx_shape_symbol (KdfNodeCtx *ctx, const char *symbol);

const char *kdf_ctx_node_name (KdfNodeCtx *ctx);
const char *kdf_ctx_graph_name (KdfNodeCtx *ctx);
guint kdf_ctx_tick (KdfNodeCtx *ctx);       /* 0-based */
guint kdf_ctx_ticks (KdfNodeCtx *ctx);      /* ticks in this run */
/* Deterministic per node and tick: seeded from graph seed, node name and tick.
 * transfer none; do not share it across threads. */
GRand *kdf_ctx_rng (KdfNodeCtx *ctx);
/* The seed kdf_ctx_rng() was made from, for nodes that need their own generator. */
guint64 kdf_ctx_seed (KdfNodeCtx *ctx);
int kdf_ctx_threads (KdfNodeCtx *ctx);      /* this run's BLIS thread budget, ≥ 1 */
GCancellable *kdf_ctx_cancellable (KdfNodeCtx *ctx);
/* The run directory (always exists during a run), or NULL outside a run. */
const char *kdf_ctx_run_dir (KdfNodeCtx *ctx);
/* Reports progress within this node's run, FRACTION in [0,1]. Cheap; thread-safe. */
void kdf_ctx_progress (KdfNodeCtx *ctx, double fraction);
/* Records a number for this tick's line of metrics.jsonl ("node.key"). */
void kdf_ctx_metric (KdfNodeCtx *ctx, const char *key, double value);

/* ---- plugins ----------------------------------------------------------------- */

typedef struct {
  guint32 abi_major;
  guint32 abi_minor;
  const char *name;                   /* the plugin name, as in the file name */
  const KdfNodeClass *const *classes; /* NULL-terminated */
  gpointer reserved[4];
} KdfPluginInfo;

#define KDF_PLUGIN_EXPORT __attribute__ ((visibility ("default")))

/* Defines the plugin's single exported symbol. NAME must match the file name:
 * kdf-NAME.so exports kdf_plugin_NAME_describe (with '-' in NAME written '_'). */
#define KDF_PLUGIN(NAME, ...)                                                         \
  static const KdfNodeClass *const kdf_plugin_classes_[] = { __VA_ARGS__, NULL };    \
  static const KdfPluginInfo kdf_plugin_info_ = {                                    \
    .abi_major = KDF_ABI_MAJOR, .abi_minor = KDF_ABI_MINOR, .name = #NAME,            \
    .classes = kdf_plugin_classes_ };                                                 \
  KDF_PLUGIN_EXPORT const KdfPluginInfo *kdf_plugin_##NAME##_describe (void);       \
  KDF_PLUGIN_EXPORT const KdfPluginInfo *kdf_plugin_##NAME##_describe (void)        \
  {                                                                                   \
    return &kdf_plugin_info_;                                                         \
  }

G_END_DECLS
