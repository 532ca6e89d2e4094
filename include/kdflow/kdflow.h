/* kdflow — learning with noisy labels by knowledge distillation, as dataflow graphs.
 *
 * A tour of the model in twenty lines:
 *
 *  - A GRAPH (KdfGraph) holds nodes and edges, a name and a seed.
 *  - A NODE (KdfNode) is an instance of a node KIND (a KdfNodeClass, loaded from a
 *    plugin kdf-*.so, or made at run time from a foreign C function or a Lua function).
 *  - A node has typed input and output PORTS and validated PARAMS. A numeric param may
 *    be a schedule: a function of the tick, evaluated before each tick.
 *  - An EDGE joins an output port to an input port. An input takes one edge, a multi
 *    input (a list of loss terms, say) takes many. A DELAY edge delivers the value of
 *    the previous tick, which is how feedback is wired without a cycle.
 *  - VALUES on edges are refcounted: tensors (tensor.h), models and loss terms (nn.h).
 *    A tensor flagged ORACLE (clean labels, the true noise mask) may only reach nodes
 *    that evaluate, unless the edge says oracle = TRUE.
 *  - kdf_graph_prepare() checks everything that can be checked before running.
 *  - kdf_graph_run() executes TICKS (usually epochs). In a tick a node runs if an input
 *    or param changed, or if its kind runs every tick (training). Ready nodes run on a
 *    GLib thread pool; the scheduler splits the cores between pool and BLIS threads.
 *  - The first error cancels the run and is reported with graph, node, kind and tick;
 *    what earlier ticks wrote to the run directory stays.
 *  - Any graph can be written as a Graphviz dot file; after a run its edges carry
 *    dtypes and shapes and its nodes their times.
 *
 * Ownership is stated on each prototype: "transfer full" returns a reference the
 * caller must drop, "transfer none" borrows. Errors use the KDF_ERROR domain.
 */
#pragma once

#include <kdflow/base.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

#define KDF_VERSION "0.1.0"

/* The node ABI plugins must be built for, "MAJOR.MINOR" (kdflow-plugin.h). */
KDF_API const char *kdf_node_abi (void);

/* Idempotent. Sets OMP_WAIT_POLICY=passive unless the user set it (BLIS's OpenMP
 * threads spin otherwise, which collapses throughput on a shared machine). */
KDF_API void kdf_init (void);
/* Releases BLIS pools and the plugin registry; call once at exit. */
KDF_API void kdf_shutdown (void);

/* ---- the registry of node kinds -------------------------------------------- */

typedef struct _KdfRegistry KdfRegistry;
/* A node kind's class (kdflow-plugin.h); opaque to applications. */
typedef struct _KdfNodeClass KdfNodeClass;

/* The process-wide registry, loading every plugin on the search path on first use:
 * KDFLOW_PLUGIN_PATH (colon-separated), then the build tree's nodes/ when this
 * library runs uninstalled, else the installed plugin directory (transfer none). A
 * plugin file that cannot be loaded (not a shared object, a missing symbol, another
 * ABI, a malformed class, a kind defined twice) is reported on stderr once and skipped
 * — set KDFLOW_PLUGIN_QUIET to silence the report; the kinds it would have provided
 * are refused with its error (kdf_registry_skipped_for). */
KDF_API KdfRegistry *kdf_registry_get_default (GError **error);
/* Loads one plugin file (any name ending in .so) into REG. */
KDF_API gboolean kdf_registry_load_file (KdfRegistry *reg, const char *path, GError **error);
KDF_API const KdfNodeClass *kdf_registry_lookup (KdfRegistry *reg, const char *kind);
/* If a skipped plugin would have provided KIND (its descriptor names it, or its file
 * is kdf-KIND.so), that plugin's error message; else NULL (transfer none). */
KDF_API const char *kdf_registry_skipped_for (KdfRegistry *reg, const char *kind);
/* The messages of every skipped plugin, NULL-terminated (transfer none). */
KDF_API const char *const *kdf_registry_skipped (KdfRegistry *reg);
/* The file a kind came from (transfer none), or NULL. */
KDF_API const char *kdf_registry_origin (KdfRegistry *reg, const char *kind);
/* Sorted kind names (transfer container). */
KDF_API GPtrArray *kdf_registry_list (KdfRegistry *reg);
/* " (did you mean 'a', 'b'?)" for an unknown KIND, or "" (transfer full). */
KDF_API char *kdf_registry_suggest (KdfRegistry *reg, const char *kind);
/* " (did you mean 'x'?)" for WORD among N CANDIDATES (close by edit distance), or ""
 * (transfer full). The engine's own hint, for tools built on it. */
KDF_API char *kdf_suggest (const char *word, const char *const *candidates, guint n);
/* The directories searched, in order (transfer none). */
KDF_API const char *const *kdf_registry_search_path (KdfRegistry *reg);
/* What `kdflow describe KIND` prints: summary, file, ports with their types and
 * summaries, params with type, default, range or choices (transfer full). */
KDF_API char *kdf_node_class_describe (const KdfNodeClass *klass, const char *origin);
/* The one-line summary of a kind (transfer none; "" if none). */
KDF_API const char *kdf_node_class_get_summary (const KdfNodeClass *klass);

/* ---- graphs ------------------------------------------------------------------ */

typedef struct _KdfGraph KdfGraph;
typedef struct _KdfNode KdfNode;

KDF_API KdfGraph *kdf_graph_new (const char *name, guint64 seed); /* transfer full */
KDF_API KdfGraph *kdf_graph_ref (KdfGraph *g);
KDF_API void kdf_graph_unref (KdfGraph *g);
KDF_API const char *kdf_graph_get_name (KdfGraph *g);
KDF_API guint64 kdf_graph_get_seed (KdfGraph *g);
/* A number no other graph of the process has (from 1): identifies a graph after it is
 * gone (the drawings of a multi-stage script, kdf_dot_book). */
KDF_API guint kdf_graph_get_serial (KdfGraph *g);
KDF_API guint kdf_graph_n_nodes (KdfGraph *g);
KDF_API KdfNode *kdf_graph_nth_node (KdfGraph *g, guint i); /* transfer none */
KDF_API KdfNode *kdf_graph_find_node (KdfGraph *g, const char *name); /* transfer none */

/* Adds a node of a registered KIND. NAME may be NULL (then "KIND", "KIND_2", ...).
 * transfer none: the graph owns its nodes. */
KDF_API KdfNode *kdf_graph_add_node (KdfGraph *g, const char *kind, const char *name,
                             GError **error);
/* Adds a node of a class made at run time (foreign kernels, Lua functions). The graph
 * calls CLASS_FREE (CLASS_DATA) when the node goes. */
KDF_API KdfNode *kdf_graph_add_node_with_class (KdfGraph *g, const KdfNodeClass *klass,
                                        const char *name, gpointer class_data,
                                        GDestroyNotify class_free, GError **error);

/* Removes N and every edge touching it (N is freed). */
KDF_API void kdf_graph_remove_node (KdfGraph *g, KdfNode *n);

/* A node of kind "constant" whose output "value" is VALUE (transfer none: the node
 * takes its own reference). */
KDF_API KdfNode *kdf_graph_add_constant (KdfGraph *g, const char *name, KdfTensor *value,
                                 GError **error);

/* A node of kind "constant_model" / "constant_loss" whose output "value" is OBJECT (a
 * KdfModel or KdfLoss, e.g. the best model of an earlier stage; transfer none). */
KDF_API KdfNode *kdf_graph_add_constant_object (KdfGraph *g, const char *name, gpointer object,
                                        GError **error);

KDF_API const char *kdf_node_get_name (KdfNode *n);
KDF_API const char *kdf_node_get_kind (KdfNode *n);
KDF_API const KdfNodeClass *kdf_node_get_class (KdfNode *n);
KDF_API KdfGraph *kdf_node_get_graph (KdfNode *n); /* transfer none */
/* The node's number in its graph (insertion order; n<ID> in dot files). */
KDF_API guint kdf_node_get_id (KdfNode *n);
/* Where the node was made (e.g. "graphs/x.lua:12"), for messages; may be NULL. */
KDF_API void kdf_node_set_origin (KdfNode *n, const char *origin);
KDF_API const char *kdf_node_get_origin (KdfNode *n);

/* Params. An int param takes a double only if it is integral; a double param takes
 * an int; a bool takes only a bool; string and enum params take only strings. */
KDF_API gboolean kdf_node_set_param_int (KdfNode *n, const char *name, gint64 v, GError **error);
KDF_API gboolean kdf_node_set_param_double (KdfNode *n, const char *name, double v, GError **error);
KDF_API gboolean kdf_node_set_param_bool (KdfNode *n, const char *name, gboolean v, GError **error);
KDF_API gboolean kdf_node_set_param_string (KdfNode *n, const char *name, const char *v,
                                    GError **error);
/* A numeric or bool param as a function of the tick, evaluated on the control thread
 * before each tick; its value is validated like a constant's. DESCRIPTION names it in
 * dot files ("linear(1, 0.6, 10)"). */
typedef gboolean (*KdfScheduleFunc) (gpointer data, guint tick, double *value,
                                     GError **error);
KDF_API gboolean kdf_node_set_param_schedule (KdfNode *n, const char *name, KdfScheduleFunc func,
                                      gpointer data, GDestroyNotify destroy,
                                      const char *description, GError **error);
/* Whether NAME is a declared param of N's class. */
KDF_API gboolean kdf_node_has_param (KdfNode *n, const char *name);
/* The type of input / output PORT of N (transfer none), or NULL if N has no such port.
 * FLAGS (may be NULL) gets the port's KdfPortFlags. */
KDF_API const KdfPortType *kdf_node_input_type (KdfNode *n, const char *port, guint *flags);
KDF_API const KdfPortType *kdf_node_output_type (KdfNode *n, const char *port, guint *flags);
/* The names of N's input ports, then its output ports (transfer container; the
 * strings belong to the node). */
KDF_API GPtrArray *kdf_node_port_names (KdfNode *n);

typedef struct {
  guint delay;        /* 0: this tick's value; d ≥ 1: the value of d ticks ago */
  gboolean oracle;    /* allow an oracle value into a non-evaluation node */
  KdfTensor *initial; /* delay edges: value before the producer has one (transfer none) */
  gpointer reserved[4];
} KdfEdgeOptions;

/* Joins SRC.OUT_PORT to DST.IN_PORT. Checks at once: ports exist, value kinds, dtypes
 * and ranks agree, one edge per (non-multi) input, the oracle rule. OPTS may be NULL. */
KDF_API gboolean kdf_graph_connect (KdfGraph *g, KdfNode *src, const char *out_port, KdfNode *dst,
                            const char *in_port, const KdfEdgeOptions *opts,
                            GError **error);

/* Removes every edge into DST.IN_PORT (to rewire a stage, e.g. a new list of loss
 * terms). Returns how many went; 0 with ERROR for an unknown port. */
KDF_API guint kdf_graph_disconnect (KdfGraph *g, KdfNode *dst, const char *in_port, GError **error);

/* Checks what can be checked before running: params, required inputs connected,
 * no cycle except through delay edges (naming the nodes on one). Idempotent; run()
 * calls it. */
KDF_API gboolean kdf_graph_prepare (KdfGraph *g, GError **error);

typedef struct {
  guint tick;          /* the tick running */
  guint ticks_total;   /* last tick of this run + 1 */
  guint nodes_done;    /* nodes finished in this tick */
  guint nodes_total;
  double node_fraction; /* progress of the last reporting node, or -1 */
  const char *node;     /* the last node to finish or report, or NULL */
  double elapsed;       /* seconds since the run started */
  gboolean tick_done;
} KdfProgress;

typedef struct {
  guint ticks;          /* ticks to run (0 means 1); ticks continue across runs */
  int threads;          /* cores to use; 0 = kdf_threads_default () */
  const char *run_dir;  /* created if needed; NULL: no run directory */
  void (*progress) (const KdfProgress *p, gpointer user_data); /* control thread */
  gpointer user_data;
  /* A node's kdf_ctx_warning, with graph, node and tick in front (control thread).
   * NULL: printed on stderr unless QUIET. Either way it goes into summary.json. */
  void (*warning) (const char *message, gpointer user_data);
  gboolean quiet;
  gpointer reserved[4];
} KdfRunOptions;

/* Runs the graph. Returns FALSE with the first error (node, kind, tick in the
 * message; code KDF_ERROR_NODE for a node's failure, KDF_ERROR_CANCELLED, or the
 * prepare() error). Outputs of the last completed tick stay readable. */
KDF_API gboolean kdf_graph_run (KdfGraph *g, const KdfRunOptions *opts, GError **error);
/* The cores a run uses when it is not told: KDFLOW_THREADS if set (a number, or "all"),
 * else the online cores the machine leaves idle — the cores minus the 1-minute load
 * average (rounded), at least 1 — decided once per process, at the first call, before
 * its own work adds to the load. On a shared machine a BLIS GEMM split over more threads
 * than idle cores waits at every barrier for a descheduled thread (docs/results.md "A
 * busy machine"). LOAD (nullable) gets the load average read (−1 if none). */
KDF_API int kdf_threads_default (double *load);
/* The threads kdf_threads_default takes without KDFLOW_THREADS, for a 1-minute LOAD
 * average on CORES cores shared by LOCAL_RANKS ranks of a data-parallel job: the idle
 * cores (CORES minus LOAD rounded; every core when LOAD < 0), at least 1, divided among
 * the ranks, at least 1 each. `kdflow run` warns when a thread count chosen by hand
 * exceeds it. */
KDF_API int kdf_threads_idle (double load, int cores, int local_ranks);
/* The machine's 1-minute load average now (/proc/loadavg); −1 when it cannot be read. */
KDF_API double kdf_machine_load (void);
/* Thread-safe: stops a run at the next node boundary. */
KDF_API void kdf_graph_cancel (KdfGraph *g);
/* Async-signal-safe (call it from a SIGINT handler): every run, now and later, stops at
 * its next node boundary (within 0.2 s) with KDF_ERROR_CANCELLED; what earlier ticks
 * wrote stays. */
KDF_API void kdf_interrupt (void);
/* Writes LEN bytes of DATA to PATH whole or not at all: into a temporary file next to
 * it, renamed over PATH when complete. A failure (full disk, permissions, read-only
 * file system) is KDF_ERROR_IO with PATH in the message, and leaves PATH as it was. */
KDF_API gboolean kdf_file_write_atomic (const char *path, const void *data, gsize len,
                                        GError **error);
/* A run directory for a program that runs graphs into it (`kdflow run --out DIR`):
 * created if needed; an existing DIR must be empty, or REPLACE set and DIR a run
 * directory (it has summary.json), whose contents are then deleted so that nothing
 * stale survives. summary.json then says "running" (with COMMAND) until
 * kdf_run_dir_end, however many graphs run into DIR meanwhile: a run killed half-way
 * is recognisable. Errors name DIR (KDF_ERROR_USAGE for a refused DIR, _IO else). */
KDF_API gboolean kdf_run_dir_begin (const char *dir, const char *command, gboolean replace,
                                    GError **error);
/* Records the program's outcome in DIR/summary.json: "ok" for EXIT_STATUS 0, else
 * "failed", the exit status and MESSAGE (may be NULL); replaced whole. */
KDF_API gboolean kdf_run_dir_end (const char *dir, int exit_status, const char *message,
                                  GError **error);
/* Has kdf_interrupt been called? (Lua's debug hook polls it to stop Lua loops.) */
KDF_API gboolean kdf_interrupted (void);
KDF_API guint kdf_graph_get_tick (KdfGraph *g); /* ticks completed so far */
/* The numbers the last completed tick recorded ("node.key", as in its metrics.jsonl
 * line), in node order: kdf_graph_metric returns the I-th key (transfer none, valid
 * until the next tick) and sets *VALUE; NULL past the end. */
KDF_API guint kdf_graph_n_metrics (KdfGraph *g);
KDF_API const char *kdf_graph_metric (KdfGraph *g, guint i, double *value);

/* The last value of an output (transfer none), or NULL. KIND may be NULL. */
KDF_API gpointer kdf_node_get_output (KdfNode *n, const char *port, KdfValueKind *kind);
KDF_API KdfTensor *kdf_node_get_output_tensor (KdfNode *n, const char *port);

typedef struct {
  guint calls;        /* runs so far */
  double seconds;     /* total wall time in run() */
  double last_seconds;
  int last_threads;   /* BLIS budget of the last run */
} KdfNodeStats;
KDF_API void kdf_node_get_stats (KdfNode *n, KdfNodeStats *stats);

/* ---- dot --------------------------------------------------------------------- */

/* Graphviz dot: nodes are records whose fields are the ports; ids are stable
 * (n0, n1, ... in insertion order). After a run, edges carry dtype and shape and
 * nodes their time. transfer full. */
KDF_API char *kdf_graph_to_dot (KdfGraph *g);
/* Which ports a drawing shows: every port of every node, or only the ports an edge
 * uses (the node then says how many it hides; port ids keep their indices). AUTO:
 * the environment's KDFLOW_DOT_PORTS (all | connected), else connected for graphs of
 * more than 10 nodes. kdf_graph_to_dot and the run directory's drawings use AUTO. */
typedef enum {
  KDF_DOT_PORTS_AUTO = 0,
  KDF_DOT_PORTS_ALL,
  KDF_DOT_PORTS_CONNECTED,
} KdfDotPorts;
KDF_API char *kdf_graph_to_dot_ports (KdfGraph *g, KdfDotPorts ports);
/* Written atomically (temp file + rename). */
KDF_API gboolean kdf_graph_write_dot (KdfGraph *g, const char *path, GError **error);

/* The stages of a script in one drawing: each graph it ran (under `kdflow dot`: would
 * have run) as a Graphviz cluster "cluster_<graph>" labelled with its name, drawn as
 * kdf_graph_to_dot_ports draws it (ids s<stage>_n<id>), and what passes between them
 * as edges: a file that a node's "save" param writes and another node's string param
 * names (a note-shaped node; so is a file a "checkpoint" param reads that no stage
 * writes), and a value read from one graph's output and bound to another's constant
 * node. */
typedef struct _KdfDotBook KdfDotBook;
KDF_API KdfDotBook *kdf_dot_book_new (void);
KDF_API void kdf_dot_book_free (KdfDotBook *b);
/* Draws G now, as its stage (the first time: a new stage, after the others; again:
 * in place). LABEL (may be NULL) goes under the graph's name. */
KDF_API void kdf_dot_book_add (KdfDotBook *b, KdfGraph *g, const char *label, KdfDotPorts ports);
KDF_API guint kdf_dot_book_n_stages (KdfDotBook *b);
/* The value of output SRC_PORT of node SRC_NODE (kdf_node_get_id) of the graph with
 * serial SRC_SERIAL became constant node DST_NODE of graph DST_SERIAL. Drawn if both
 * graphs are stages; ignored within one graph. */
KDF_API void kdf_dot_book_carry (KdfDotBook *b, guint src_serial, guint src_node,
                                 const char *src_port, guint dst_serial, guint dst_node);
/* The drawing (transfer full): TITLE and NOTE (may be NULL) on top. */
KDF_API char *kdf_dot_book_to_dot (KdfDotBook *b, const char *title, const char *note);

/* ---- foreign kernels (libffi) ------------------------------------------------ */

/* A plain C function in any shared library as a node.
 *
 * SIGNATURE is "R(IN OUT)": R is the return type, IN and OUT the argument types in
 * call order, the arguments after the space being outputs:
 *   p  a pointer: in IN, the data of the next input port; in OUT, the data of the next
 *      output port (a contiguous tensor the engine allocates, zero-filled)
 *   i  int32, l int64: the next entry of DIMS (a shape symbol bound by the inputs,
 *      such as "N", or an integer literal such as "1")
 *   f  float, d double: the next entry of SCALARS (a param name or a literal)
 * R is v (void), i (int status: non-zero fails the node), f or d (the value becomes
 * the rank-0 f32 output named by RESULT). */
typedef struct {
  const char *library;          /* "libblas.so.3", or a path */
  const char *symbol;
  const char *signature;
  const char *const *inputs;    /* NULL-terminated declarations "x:f32[N]" (base.h): */
  const char *const *outputs;   /*   tensors with a shape; outputs' symbols from inputs */
  const char *const *dims;      /* NULL-terminated */
  const char *const *scalars;   /* NULL-terminated: param names or literals */
  const char *result;           /* output port for an f/d return, or NULL */
  gpointer reserved[4];
} KdfForeignSpec;

/* Builds the node: opens the library, finds the symbol, parses the signature and
 * prepares the ffi_cif once. Scalar params are double params of the node. */
KDF_API KdfNode *kdf_graph_add_foreign (KdfGraph *g, const char *name, const KdfForeignSpec *spec,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfGraph, kdf_graph_unref)

G_END_DECLS
