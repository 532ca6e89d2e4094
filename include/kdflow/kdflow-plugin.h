/* kdflow — the node ABI, for plugin authors.
 *
 * A node kind is one static, declarative KdfNodeClass: its name, its input and output
 * ports, its params, and three callbacks (init, run, finalize). Everything is stated
 * once: a port's type string carries dtype, rank and shape; a param is a typed field of
 * the node's own params struct, which the engine validates and fills before each run.
 *
 *   typedef enum { SIDE_BELOW, SIDE_ABOVE } Side;
 *   typedef struct { double threshold; Side flag; } Params;
 *   static const KdfChoice sides[] = { { "below", SIDE_BELOW }, { "above", SIDE_ABOVE }, { 0 } };
 *
 *   static const KdfPortSpec inputs[] = {
 *     KDF_PORT ("scores", "f32[N]", 0, "per-sample scores"), { 0 } };
 *   static const KdfPortSpec outputs[] = {
 *     KDF_PORT ("mask", "u8[N]", 0, "1 on the flagged side"), { 0 } };
 *   static const KdfParamSpec params[] = {
 *     KDF_PARAM_DOUBLE (Params, threshold, 0.5, 0.0, 1.0, "the cut"),
 *     KDF_PARAM_ENUM (Params, flag, "below", sides, "which side is flagged"), { 0 } };
 *
 *   static gboolean
 *   run (KdfNodeCtx *ctx, gpointer state, GError **error)
 *   {
 *     const Params *p = kdf_ctx_params (ctx);
 *     KdfTensor *scores = kdf_ctx_input_tensor (ctx, "scores");
 *     ...   p->threshold, p->flag == SIDE_ABOVE ...
 *     kdf_ctx_set_output_tensor (ctx, "mask", mask);
 *     return TRUE;
 *   }
 *
 *   static const KdfNodeClass my_class = {
 *     .struct_size = sizeof (KdfNodeClass), .name = "my_threshold", .summary = "...",
 *     .inputs = inputs, .outputs = outputs, .params = params,
 *     .params_size = sizeof (Params), .run = run };
 *   KDF_PLUGIN (my_threshold, &my_class)
 *
 * A plugin file kdf-NAME.so exports exactly one symbol, kdf_plugin_NAME_describe,
 * made by KDF_PLUGIN (NAME, &class_a, &class_b, ...). The engine checks the ABI numbers
 * before it looks at anything else, then validates every class (port types, param
 * fields, defaults, choices) and refuses a bad one with a message naming it.
 *
 * Inside run, read inputs through kdf_ctx_input_*, write outputs with
 * kdf_ctx_set_output_*, and return FALSE with a GError on failure. Never abort, exit
 * or print: kdf_ctx_warning reaches the user. Everything a node needs from the engine
 * (params, RNG, thread budget, run-directory paths, progress, cancellation) comes from
 * the ctx. The helpers at the end (labels, paths, changed inputs) exist so that nodes
 * do not copy them.
 */
#pragma once

#include <gio/gio.h>
#include <kdflow/base.h>
#include <kdflow/dist.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

/* The ABI of this header. A plugin is refused if its major differs from the
 * engine's or its minor is newer than the engine's. Major 2: ports typed by one
 * string, params as fields of a node-defined struct. Minor 1: KDF_PORT_ON_DISK (an
 * engine of 2.0 would hand such a port's node a tensor it cannot read). */
#define KDF_ABI_MAJOR 2
#define KDF_ABI_MINOR 1

/* ---- ports ------------------------------------------------------------------- */

typedef enum {
  KDF_PORT_OPTIONAL = 1 << 0, /* input: may stay unconnected (reads as NULL) */
  KDF_PORT_MULTI = 1 << 1,    /* input: takes any number of edges (a list) */
  KDF_PORT_ORACLE = 1 << 2,   /* output: ground truth (evaluation nodes only) */
  KDF_PORT_TEST = 1 << 3,     /* output: the test split (never into training or loss terms) */
  KDF_PORT_ON_DISK = 1 << 4,  /* input: accepts a tensor kept on disk (tensor.h,
                               * kdf_tensor_is_on_disk) and reads it by rows only
                               * (kdf_gather_rows); other inputs are refused one */
} KdfPortFlags;

typedef struct {
  const char *name;    /* snake_case; NULL terminates an array */
  const char *type;    /* "f32[N,C]", "i32[N] < C", "model", "loss" (base.h) */
  guint flags;         /* KdfPortFlags */
  const char *summary; /* one line, shown by `kdflow describe` */
  gpointer reserved[4];
} KdfPortSpec;

/* The one way to declare a port, input or output alike. */
#define KDF_PORT(NAME, TYPE, FLAGS, SUMMARY) \
  { .name = (NAME), .type = (TYPE), .flags = (FLAGS), .summary = (SUMMARY) }

/* ---- params ------------------------------------------------------------------
 *
 * A param is a field of the node's params struct (class.params_size = its size).
 * The macros name the param after the field and check the field's C type at compile
 * time: int → int or int64_t (the range must fit the field), double → double, bool →
 * gboolean, string → const char * (owned by the engine, valid during the run), enum →
 * the node's own C enum (the engine stores the KdfChoice value, never an index). */

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

/* One choice of an enum param: the string a graph writes and the node's C value. */
typedef struct {
  const char *name; /* NULL terminates an array */
  int value;
} KdfChoice;

typedef struct {
  const char *name;          /* NULL terminates an array */
  KdfParamType type;
  gsize offset;              /* of the field in the params struct */
  gsize size;                /* of the field */
  double def;                /* default of int, double and bool params */
  double min, max;           /* int and double: inclusive range; min == max == 0: none */
  const char *def_string;    /* default of string params, default choice of enums */
  const KdfChoice *choices;  /* enum: { NULL }-terminated */
  guint flags;               /* KdfParamFlags */
  const char *summary;
  gpointer reserved[4];
} KdfParamSpec;

/* Compile-time checks of a field's type: a negative array size if it is wrong. */
#define KDF_FIELD_CHECK_(S, F, OK) (0 * sizeof (char[(OK) ? 1 : -1]))
#define KDF_FIELD_(S, F) (((S *) 0)->F)
#define KDF_FIELD_AT_(S, F, TYPE, OK)                                                      \
  .name = #F, .type = (TYPE), .offset = offsetof (S, F) + KDF_FIELD_CHECK_ (S, F, OK),     \
  .size = sizeof (KDF_FIELD_ (S, F))

#define KDF_PARAM_INT(S, F, DEF, LO, HI, SUMMARY)                                         \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_INT,                                                  \
                   _Generic (KDF_FIELD_ (S, F), int: 1, long: 1, long long: 1, default: 0)), \
    .def = (DEF), .min = (LO), .max = (HI), .summary = (SUMMARY) }
#define KDF_PARAM_DOUBLE(S, F, DEF, LO, HI, SUMMARY)                                      \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_DOUBLE, _Generic (KDF_FIELD_ (S, F), double: 1, default: 0)), \
    .def = (DEF), .min = (LO), .max = (HI), .summary = (SUMMARY) }
#define KDF_PARAM_BOOL(S, F, DEF, SUMMARY)                                                \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_BOOL, _Generic (KDF_FIELD_ (S, F), int: 1, default: 0)), \
    .def = (DEF), .summary = (SUMMARY) }
#define KDF_PARAM_STRING(S, F, DEF, SUMMARY)                                              \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_STRING,                                               \
                   _Generic (KDF_FIELD_ (S, F), const char *: 1, default: 0)),           \
    .def_string = (DEF), .summary = (SUMMARY) }
#define KDF_PARAM_ENUM(S, F, DEF, CHOICES, SUMMARY)                                       \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_ENUM, sizeof (KDF_FIELD_ (S, F)) == sizeof (int)),     \
    .def_string = (DEF), .choices = (CHOICES), .summary = (SUMMARY) }
/* A param with no default: the graph must set it. */
#define KDF_PARAM_REQUIRED_STRING(S, F, SUMMARY)                                          \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_STRING,                                               \
                   _Generic (KDF_FIELD_ (S, F), const char *: 1, default: 0)),           \
    .flags = KDF_PARAM_REQUIRED, .summary = (SUMMARY) }
#define KDF_PARAM_REQUIRED_INT(S, F, LO, HI, SUMMARY)                                     \
  { KDF_FIELD_AT_ (S, F, KDF_PARAM_INT,                                                  \
                   _Generic (KDF_FIELD_ (S, F), int: 1, long: 1, long long: 1, default: 0)), \
    .min = (LO), .max = (HI), .flags = KDF_PARAM_REQUIRED, .summary = (SUMMARY) }

/* "int", "double", "bool", "string", "enum" */
KDF_API const char *kdf_param_type_name (KdfParamType t);

/* ---- node classes ------------------------------------------------------------ */

typedef struct _KdfNodeCtx KdfNodeCtx;

typedef enum {
  KDF_NODE_EVERY_TICK = 1 << 0,     /* run every tick even if nothing changed (training) */
  KDF_NODE_EVALUATOR = 1 << 1,      /* may consume oracle values */
  KDF_NODE_CONTROL_THREAD = 1 << 2, /* run on the control thread (engine use) */
  KDF_NODE_LEARNS = 1 << 3,         /* learns from or selects by its inputs (training,
                                       model selection): may not read the test split. A
                                       kind with a loss output is treated so too. */
} KdfNodeFlags;

typedef struct _KdfNodeClass KdfNodeClass;
struct _KdfNodeClass {
  gsize struct_size; /* sizeof (KdfNodeClass) */
  const char *name;  /* the node kind, snake_case */
  const char *summary;
  const KdfPortSpec *inputs;  /* terminated by { 0 }; may be NULL */
  const KdfPortSpec *outputs; /* terminated by { 0 }; may be NULL */
  const KdfParamSpec *params; /* terminated by { 0 }; may be NULL */
  gsize params_size;          /* sizeof the params struct the specs point into */
  /* Once, before the first run, with params filled and the inputs of that run
   * readable. May be NULL. If it fails, finalize (when set) is called on whatever it
   * stored in *state, and the next run calls init again. */
  gboolean (*init) (KdfNodeCtx *ctx, gpointer *state, GError **error);
  /* Each tick the node runs. Required. */
  gboolean (*run) (KdfNodeCtx *ctx, gpointer state, GError **error);
  /* When the graph is freed. May be NULL. */
  void (*finalize) (gpointer state);
  guint flags; /* KdfNodeFlags */
  gpointer reserved[8];
};

/* ---- the run context --------------------------------------------------------- */

/* This run's params: the node's params struct, validated and filled (for a schedule:
 * this tick's value). transfer none; valid until run returns. */
KDF_API gconstpointer kdf_ctx_params (KdfNodeCtx *ctx);
/* TRUE if the graph set NAME (as opposed to the default). */
KDF_API gboolean kdf_ctx_param_is_set (KdfNodeCtx *ctx, const char *name);

/* Inputs (transfer none; valid until run returns). NULL when an optional input is
 * unconnected or (through a delay edge) has no value yet. Asking for a port the
 * class does not declare, or for the wrong kind, is a programming error (returns
 * NULL and warns). */
KDF_API KdfTensor *kdf_ctx_input_tensor (KdfNodeCtx *ctx, const char *port);
KDF_API KdfModel *kdf_ctx_input_model (KdfNodeCtx *ctx, const char *port);
KDF_API KdfLoss *kdf_ctx_input_loss (KdfNodeCtx *ctx, const char *port);
/* Multi inputs: the number of values and the I-th one (any kind). */
KDF_API guint kdf_ctx_input_count (KdfNodeCtx *ctx, const char *port);
KDF_API gpointer kdf_ctx_input_nth (KdfNodeCtx *ctx, const char *port, guint i);
/* TRUE if the value on PORT differs from the one seen at this node's last run (so
 * always on its first run). PORT NULL: any input, or this is the node's first run. */
KDF_API gboolean kdf_ctx_input_changed (KdfNodeCtx *ctx, const char *port);

/* Outputs (transfer full). A node sets each output it has a value for; outputs it
 * does not set keep their previous value. */
KDF_API void kdf_ctx_set_output_tensor (KdfNodeCtx *ctx, const char *port, KdfTensor *t);
KDF_API void kdf_ctx_set_output_model (KdfNodeCtx *ctx, const char *port, KdfModel *m);
KDF_API void kdf_ctx_set_output_loss (KdfNodeCtx *ctx, const char *port, KdfLoss *l);

/* The value bound to a shape symbol ("N") by this node's inputs, or -1. */
KDF_API gint64 kdf_ctx_shape_symbol (KdfNodeCtx *ctx, const char *symbol);

KDF_API const char *kdf_ctx_node_name (KdfNodeCtx *ctx);
KDF_API const char *kdf_ctx_graph_name (KdfNodeCtx *ctx);
KDF_API guint kdf_ctx_tick (KdfNodeCtx *ctx);  /* 0-based */
KDF_API guint kdf_ctx_ticks (KdfNodeCtx *ctx); /* last tick of this run + 1 */
/* Deterministic per node and tick: seeded from graph seed, node name and tick.
 * transfer none; do not share it across threads. */
KDF_API GRand *kdf_ctx_rng (KdfNodeCtx *ctx);
/* The seed kdf_ctx_rng() was made from, for nodes that need their own generator. */
KDF_API guint64 kdf_ctx_seed (KdfNodeCtx *ctx);
KDF_API int kdf_ctx_threads (KdfNodeCtx *ctx); /* this run's BLIS thread budget, ≥ 1 */
KDF_API GCancellable *kdf_ctx_cancellable (KdfNodeCtx *ctx);
/* Reports progress within this node's run, FRACTION in [0,1]. Cheap; thread-safe. */
KDF_API void kdf_ctx_progress (KdfNodeCtx *ctx, double fraction);
/* Records a number for this tick's line of metrics.jsonl ("node.key"). A NaN or an
 * infinity is left out (JSON has no such numbers). */
KDF_API void kdf_ctx_metric (KdfNodeCtx *ctx, const char *key, double value);
/* Tells the user something they should know but that does not fail the node ("the
 * tipping point was not reached"). Shown on stderr after the node finishes, clear of
 * the progress display, with graph, node and tick; silent under --quiet; always
 * recorded in summary.json's "warnings". */
KDF_API void kdf_ctx_warning (KdfNodeCtx *ctx, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* ---- run-directory paths ------------------------------------------------------ */

/* The run directory (always exists during a run), or NULL outside a run. */
KDF_API const char *kdf_ctx_run_dir (KdfNodeCtx *ctx);
/* Where to write PATH: an absolute path as it is, a relative one inside the run
 * directory (as given when there is none). transfer full. */
KDF_API char *kdf_ctx_output_path (KdfNodeCtx *ctx, const char *path);
/* Where to read PATH: as given if absolute or if it exists from the working directory,
 * else inside the run directory if it exists there (a file an earlier stage wrote),
 * else as given (so the error names it). transfer full. */
KDF_API char *kdf_ctx_input_path (KdfNodeCtx *ctx, const char *path);
/* RUN_DIR/<node>.<SUFFIX> with the node name made file-safe ("ev.flagged.npy" for
 * SUFFIX "flagged.npy"), or NULL without a run directory. transfer full. */
KDF_API char *kdf_ctx_node_file (KdfNodeCtx *ctx, const char *suffix);

/* ---- helpers ------------------------------------------------------------------ */

/* Checks that input PORT (i32 labels) lies in [0, N_CLASSES), with the message every
 * node gives: "input 'labels' row 3 is 11, outside [0, 10)". An unconnected optional
 * input passes. (A port typed "i32[N] < C" is checked by the engine itself.) */
KDF_API gboolean kdf_ctx_check_labels (KdfNodeCtx *ctx, const char *port, int64_t n_classes,
                                       GError **error);

/* Inside run of a class made at run time: the CLASS_DATA given to
 * kdf_graph_add_node_with_class (kdflow.h) (transfer none). */
KDF_API gpointer kdf_ctx_get_class_data (KdfNodeCtx *ctx);

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
