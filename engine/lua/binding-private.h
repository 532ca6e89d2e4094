/* Private to the `kdflow` Lua module: what the files of engine/lua/binding*.c share —
 * the userdata, their metatable names, registry keys, and the helpers more than one
 * file calls (declared here with a kdf_lua_ prefix, hidden from the module's exports).
 *
 *   binding.c           the module: luaopen_kdflow, error values, config, kdflow.lua
 *   binding-tensor.c    Tensor userdata, kdf.tensor, kdf.zeros
 *   binding-object.c    model and loss userdata, values of any kind
 *   binding-graph.c     kdf.graph, graph methods, node handles, ports, params and
 *                       inputs tables, schedules, constants, g:run
 *   binding-luanode.c   g:lua (node classes made at run time from Lua functions)
 *   binding-foreign.c   g:foreign (C functions through libffi)
 *   binding-registry.c  kdf.nodes, kdf.describe, kdf.load_plugin, kdf.run_dir, kdf.clock,
 *                       kdf.write_file
 *   binding-args.c      `args`, kdf_lua_set_args, kdf_lua_unread_args
 *   kdflow.lua          kdf.arg, schedules, kdf.arch, kdf.delay, kdf.oracle
 *
 * Lua C API habits: every argument is checked before anything is allocated;
 * userdata are created closed (NULL inside, metatable set) and filled after, so
 * __gc is always safe and idempotent; misuse raises an error carrying the script's
 * file:line; a node failing inside g:run raises an error object whose `status` is 1
 * (2 for graph errors), so the command line can exit accordingly.
 *
 * The binding talks to the engine through the public headers only: kdflow.h, and
 * kdflow-plugin.h where it needs the node ABI (Lua nodes, kdf.describe, port flags). */
#pragma once

#include <kdflow/kdflow.h>
#include <lauxlib.h>
#include <lua.h>

#include "kdflow-lua.h"

G_BEGIN_DECLS

#define GRAPH_MT "kdflow.Graph"
#define NODE_MT "kdflow.Node"
#define PORT_MT "kdflow.Port"
#define TENSOR_MT "kdflow.Tensor"
#define OBJECT_MT "kdflow.Object"
#define ERROR_MT "kdflow.Error"
#define CONFIG_KEY "kdflow.config"
#define ARGS_KEY "kdflow.args"
#define ARGS_READ_KEY "kdflow.args_read"
#define LAST_GRAPH_KEY "kdflow.last_graph"

typedef struct {
  KdfGraph *g;
  /* progress across g:run calls: the ticks planned in all (g:run's `total`), when and
   * at which tick the first run started (for the ETA) */
  guint total;
  gint64 t_first, t_first_done;
  guint tick_first;
} GraphUD;

typedef struct {
  KdfGraph *g; /* a node handle keeps its graph alive */
  KdfNode *n;
} NodeUD;

/* Where a value came from: node NODE (its id) of the graph with serial SERIAL (0: made
 * in Lua, or unknown), output PORT ("node.port", interned). A value of one graph bound to
 * another's input is drawn as an edge between the two (kdf_dot_book_carry). */
typedef struct {
  guint serial, node;
  const char *port;
} ValueOrigin;

typedef struct {
  KdfTensor *t;
  ValueOrigin origin;
  /* per-sample values of ground truth or the test split may be read (a Lua node's own
   * inputs: the node's outputs carry the flags on) */
  gboolean unlocked;
} TensorUD;

typedef struct {
  gpointer obj; /* KdfObject: a model or a loss term */
  ValueOrigin origin;
} ObjectUD;

/* ---- the module (binding.c) ----------------------------------------------------- */

/* Raises an error object for ERROR (consumed), prefixed with the caller's file:line. */
G_GNUC_INTERNAL int kdf_lua_raise_gerror (lua_State *L, GError *error);
/* The integer at INDEX, within [MIN, MAX]; otherwise a Lua error "WHAT must be an integer
 * from MIN to MAX, got V" (2^32 ticks, 1e99 or 1.5 are refused, not truncated). */
G_GNUC_INTERNAL lua_Integer kdf_lua_check_count (lua_State *L, int index, const char *what, lua_Integer min,
                                 lua_Integer max);
/* The configuration kdf_lua_configure stored, or all defaults (transfer none). */
G_GNUC_INTERNAL const KdfLuaConfig *kdf_lua_get_config (lua_State *L);
/* Registers metatable NAME with META, and METHODS (may be NULL) as its "methods". */
G_GNUC_INTERNAL void kdf_lua_new_metatable (lua_State *L, const char *name, const luaL_Reg *meta,
                                            const luaL_Reg *methods);
/* For an __index that found nothing under KEY (at KEY_INDEX) of the object at OBJ: a
 * string key raises "WHAT has no NOUN 'KEY' (did you mean 'x'?)" (NOUN: "method or
 * field", say), the
 * candidates being the metatable's "methods" and FIELDS (NULL-terminated, nullable)
 * and EXTRA (nullable, transfer container; its strings are copied); any other key gives
 * nil. Returns 1 (the nil) or raises. */
G_GNUC_INTERNAL int kdf_lua_no_member (lua_State *L, int obj, int key_index, const char *what,
                                       const char *noun, const char *const *fields,
                                       GPtrArray *extra);

/* ---- tensors (binding-tensor.c) ------------------------------------------------- */

/* Registers the Tensor metatable; sets kdf.tensor and kdf.zeros in the table on top. */
G_GNUC_INTERNAL void kdf_lua_open_tensor (lua_State *L);
G_GNUC_INTERNAL void kdf_lua_push_tensor (lua_State *L, KdfTensor *t /* transfer none */);
/* The same, for the inputs of a Lua node: per-sample values readable even when they are
 * ground truth or the test split (the engine passes those flags on to the node's
 * outputs). */
G_GNUC_INTERNAL void kdf_lua_push_tensor_unlocked (lua_State *L, KdfTensor *t /* transfer none */);
/* The tensor of the userdata at INDEX (transfer none), or NULL if it is none. */
G_GNUC_INTERNAL KdfTensor *kdf_lua_to_tensor (lua_State *L, int index);
/* Pushes a tensor userdata for the value at INDEX (a tensor userdata, a number or a
 * nested table of numbers) and returns its tensor, borrowed: the userdata owns it, so
 * an error raised later cannot leak it. Raises on anything else. */
G_GNUC_INTERNAL KdfTensor *kdf_lua_push_tensor_value (lua_State *L, int index, KdfDType dtype);

/* ---- objects and values (binding-object.c) -------------------------------------- */

/* Registers the Object metatable (models and loss terms). */
G_GNUC_INTERNAL void kdf_lua_open_object (lua_State *L);
/* Pushes P (transfer none), a tensor or an object of KIND, or nil if P is NULL. */
G_GNUC_INTERNAL void kdf_lua_push_value (lua_State *L, KdfValueKind kind, gpointer p);

/* ---- the drawing of a script's stages (binding-dot.c) ---------------------------- */

/* Draws G as a stage of the script (every g:run; `kdflow dot`: instead of running it).
 * TICKS: the ticks this g:run asked for. */
G_GNUC_INTERNAL void kdf_lua_dot_record (lua_State *L, KdfGraph *g, guint ticks);
/* `kdflow dot`: pushes what output PORT of N would hold after a run: a zero tensor of
 * the port's dtype (each symbolic size KDF_LUA_DOT_SIZE), a small model, or nil. */
#define KDF_LUA_DOT_SIZE 8
G_GNUC_INTERNAL void kdf_lua_dot_push_placeholder (lua_State *L, KdfNode *n, const char *port);
/* The value userdata at INDEX (a tensor or an object) became constant node C of G:
 * records the edge from where it came from, if another graph. */
G_GNUC_INTERNAL void kdf_lua_dot_carry (lua_State *L, int index, KdfGraph *g, KdfNode *c);
/* Sets the origin of the value userdata on top of the stack (nothing for nil). */
G_GNUC_INTERNAL void kdf_lua_set_origin_top (lua_State *L, KdfNode *n, const char *port);

/* ---- graphs (binding-graph.c) --------------------------------------------------- */

/* Registers the Graph, Node and Port metatables; sets kdf.graph in the table on top. */
G_GNUC_INTERNAL void kdf_lua_open_graph (lua_State *L);
G_GNUC_INTERNAL KdfGraph *kdf_lua_check_graph (lua_State *L, int index);
G_GNUC_INTERNAL void kdf_lua_push_node (lua_State *L, KdfGraph *g, KdfNode *n);
/* Records the script's file:line as N's origin. */
G_GNUC_INTERNAL void kdf_lua_set_origin (lua_State *L, KdfNode *n);
/* Applies the params-and-inputs table at index T to the node on top of the stack; if
 * that fails the node is removed again, so a caught error leaves no half-built node
 * behind. */
G_GNUC_INTERNAL void kdf_lua_apply_or_remove (lua_State *L, KdfGraph *g, int t);
/* The state running g:run on this thread (Lua nodes and schedules call back into
 * it), or NULL. */
G_GNUC_INTERNAL lua_State *kdf_lua_running_state (void);

/* The dtype of a tensor made from a Lua value for a port of type IN. */
static inline KdfDType
kdf_lua_input_dtype (const KdfPortType *in)
{
  return in->dtype == KDF_DTYPE_ANY ? KDF_DTYPE_F32 : in->dtype;
}

/* ---- graph methods defined elsewhere -------------------------------------------- */

/* g:lua { ... } (binding-luanode.c) */
G_GNUC_INTERNAL int kdf_lua_graph_lua (lua_State *L);
/* g:foreign { ... } (binding-foreign.c) */
G_GNUC_INTERNAL int kdf_lua_graph_foreign (lua_State *L);

/* ---- registry (binding-registry.c) ---------------------------------------------- */

/* Sets kdf.nodes, kdf.describe, kdf.load_plugin, kdf.run_dir, kdf.clock and kdf.write_file in the
 * table on top. */
G_GNUC_INTERNAL void kdf_lua_open_registry (lua_State *L);

/* ---- args (binding-args.c) ------------------------------------------------------ */

/* Pushes the `args` proxy table, making it on first use. */
G_GNUC_INTERNAL void kdf_lua_push_args (lua_State *L);

G_END_DECLS
