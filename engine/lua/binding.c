/* The `kdflow` Lua module. Graph scripts only wire: every call here builds or runs a
 * graph through the public C API (kdflow.h); compute runs in C.
 *
 * Lua C API habits: every argument is checked before anything is allocated;
 * userdata are created closed (NULL inside, metatable set) and filled after, so
 * __gc is always safe and idempotent; misuse raises an error carrying the script's
 * file:line; a node failing inside g:run raises an error object whose `status` is 1
 * (2 for graph errors), so the command line can exit accordingly. */
#include "config.h"

#include <lauxlib.h>
#include <glib/gstdio.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kdflow/kdflow-plugin.h>

#include "kdflow-lua.h"

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
} GraphUD;

typedef struct {
  KdfGraph *g; /* a node handle keeps its graph alive */
  KdfNode *n;
} NodeUD;

typedef struct {
  KdfTensor *t;
} TensorUD;

typedef struct {
  gpointer obj; /* KdfObject: a model or a loss term */
} ObjectUD;

static char dot_stop_sentinel;

/* The state running g:run on this thread: Lua nodes and schedules call back into it. */
static __thread lua_State *running_L;

/* ---- errors ------------------------------------------------------------------- */

static int
error_tostring (lua_State *L)
{
  lua_getfield (L, 1, "message");
  return 1;
}

/* Raises an error object for ERROR (consumed), prefixed with the caller's file:line. */
static int
raise_gerror (lua_State *L, GError *error)
{
  int status = 2;
  if (error->domain == KDF_ERROR &&
      (error->code == KDF_ERROR_NODE || error->code == KDF_ERROR_FAILED ||
       error->code == KDF_ERROR_CANCELLED))
    status = 1;
  luaL_where (L, 1);
  const char *where = lua_tostring (L, -1);
  lua_createtable (L, 0, 3);
  lua_pushfstring (L, "%s%s", where, error->message);
  lua_setfield (L, -2, "message");
  lua_pushinteger (L, status);
  lua_setfield (L, -2, "status");
  lua_pushinteger (L, error->code);
  lua_setfield (L, -2, "code");
  luaL_setmetatable (L, ERROR_MT);
  g_error_free (error);
  return lua_error (L);
}

gboolean
kdf_lua_is_dot_stop (lua_State *L, int index)
{
  return lua_touserdata (L, index) == &dot_stop_sentinel;
}

int
kdf_lua_error_status (lua_State *L, int index)
{
  int status = 2;
  if (lua_istable (L, index)) {
    lua_getfield (L, index, "status");
    if (lua_isinteger (L, -1))
      status = (int) lua_tointeger (L, -1);
    lua_pop (L, 1);
  }
  return status;
}

char *
kdf_lua_error_message (lua_State *L, int index)
{
  const char *msg = luaL_tolstring (L, index, NULL);
  char *copy = g_strdup (msg);
  lua_pop (L, 1);
  return copy;
}

/* ---- config ------------------------------------------------------------------- */

typedef struct {
  KdfLuaConfig c;
  char *run_dir;
  char *dot_path;
} ConfigUD;

static int
config_gc (lua_State *L)
{
  ConfigUD *c = lua_touserdata (L, 1);
  g_clear_pointer (&c->run_dir, g_free);
  g_clear_pointer (&c->dot_path, g_free);
  return 0;
}

void
kdf_lua_configure (lua_State *L, const KdfLuaConfig *config)
{
  ConfigUD *c = lua_newuserdatauv (L, sizeof (ConfigUD), 0);
  memset (c, 0, sizeof *c);
  lua_createtable (L, 0, 1);
  lua_pushcfunction (L, config_gc);
  lua_setfield (L, -2, "__gc");
  lua_setmetatable (L, -2);
  c->c = *config;
  c->run_dir = g_strdup (config->run_dir);
  c->dot_path = g_strdup (config->dot_path);
  c->c.run_dir = c->run_dir;
  c->c.dot_path = c->dot_path;
  lua_setfield (L, LUA_REGISTRYINDEX, CONFIG_KEY);
}

static const KdfLuaConfig *
get_config (lua_State *L)
{
  static const KdfLuaConfig defaults = { 0 };
  lua_getfield (L, LUA_REGISTRYINDEX, CONFIG_KEY);
  ConfigUD *c = lua_touserdata (L, -1);
  lua_pop (L, 1);
  return c ? &c->c : &defaults;
}

/* ---- tensors ------------------------------------------------------------------ */

static void
push_tensor (lua_State *L, KdfTensor *t /* transfer none */)
{
  TensorUD *ud = lua_newuserdatauv (L, sizeof (TensorUD), 0);
  ud->t = NULL;
  luaL_setmetatable (L, TENSOR_MT);
  ud->t = kdf_tensor_ref (t);
}

static KdfTensor *
check_tensor (lua_State *L, int index)
{
  TensorUD *ud = luaL_checkudata (L, index, TENSOR_MT);
  if (!ud->t)
    luaL_argerror (L, index, "tensor already released");
  return ud->t;
}

static KdfTensor *
to_tensor (lua_State *L, int index)
{
  TensorUD *ud = luaL_testudata (L, index, TENSOR_MT);
  return ud ? ud->t : NULL;
}

static void
push_object (lua_State *L, gpointer obj)
{
  ObjectUD *ud = lua_newuserdatauv (L, sizeof (ObjectUD), 0);
  ud->obj = NULL;
  luaL_setmetatable (L, OBJECT_MT);
  ud->obj = kdf_object_ref (obj);
}

static void
push_value (lua_State *L, KdfValueKind kind, gpointer p)
{
  if (!p)
    lua_pushnil (L);
  else if (kind == KDF_VALUE_TENSOR)
    push_tensor (L, p);
  else
    push_object (L, p);
}

/* Shape of a nested Lua table (rectangular), or FALSE with a message. */
static gboolean
table_shape (lua_State *L, int index, int *rank, int64_t *shape, char **why)
{
  *rank = 0;
  lua_pushvalue (L, index);
  while (lua_istable (L, -1)) {
    if (*rank == KDF_MAX_RANK) {
      lua_pop (L, 1);
      *why = g_strdup_printf ("more than %d levels of nesting", KDF_MAX_RANK);
      return FALSE;
    }
    lua_Integer len = luaL_len (L, -1);
    shape[(*rank)++] = len;
    if (len == 0)
      break;
    lua_geti (L, -1, 1);
    lua_remove (L, -2);
  }
  lua_pop (L, 1);
  return TRUE;
}

static gboolean
fill_from_table (lua_State *L, int index, KdfTensor *t, int depth, int64_t *pos, char **why)
{
  lua_Integer len = luaL_len (L, index);
  if (len != t->shape[depth]) {
    *why = g_strdup_printf ("ragged table: a row at depth %d has %lld entries, expected %lld",
                            depth + 1, (long long) len, (long long) t->shape[depth]);
    return FALSE;
  }
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti (L, index, i);
    if (depth + 1 < t->rank) {
      if (!lua_istable (L, -1)) {
        lua_pop (L, 1);
        *why = g_strdup_printf ("ragged table: expected a row at depth %d", depth + 2);
        return FALSE;
      }
      gboolean ok = fill_from_table (L, lua_gettop (L), t, depth + 1, pos, why);
      lua_pop (L, 1);
      if (!ok)
        return FALSE;
      continue;
    }
    double v;
    if (lua_isboolean (L, -1))
      v = lua_toboolean (L, -1);
    else if (lua_isnumber (L, -1))
      v = lua_tonumber (L, -1);
    else {
      *why = g_strdup_printf ("entry %lld is a %s, not a number", (long long) (*pos + 1),
                              luaL_typename (L, -1));
      lua_pop (L, 1);
      return FALSE;
    }
    lua_pop (L, 1);
    switch (t->dtype) {
    case KDF_DTYPE_F32:
      kdf_tensor_f32 (t)[*pos] = (float) v;
      break;
    case KDF_DTYPE_I32:
      if (v != (double) (int32_t) v) {
        *why = g_strdup_printf ("entry %lld = %g is not an i32", (long long) (*pos + 1), v);
        return FALSE;
      }
      kdf_tensor_i32 (t)[*pos] = (int32_t) v;
      break;
    default:
      if (v != (double) (uint8_t) v) {
        *why = g_strdup_printf ("entry %lld = %g is not a u8", (long long) (*pos + 1), v);
        return FALSE;
      }
      kdf_tensor_u8 (t)[*pos] = (uint8_t) v;
      break;
    }
    (*pos)++;
  }
  return TRUE;
}

/* Pushes a tensor userdata for the value at INDEX (a tensor userdata, a number or a
 * nested table of numbers) and returns its tensor, borrowed: the userdata owns it, so
 * an error raised later cannot leak it. Raises on anything else. */
static KdfTensor *
push_tensor_value (lua_State *L, int index, KdfDType dtype)
{
  index = lua_absindex (L, index);
  KdfTensor *t = to_tensor (L, index);
  if (t) {
    lua_pushvalue (L, index);
    return t;
  }
  int rank = 0;
  int64_t shape[KDF_MAX_RANK];
  char *why = NULL;
  if (lua_istable (L, index)) {
    if (!table_shape (L, index, &rank, shape, &why)) {
      lua_pushfstring (L, "cannot make a tensor: %s", why);
      g_free (why);
      lua_error (L);
    }
  } else if (!lua_isnumber (L, index) && !lua_isboolean (L, index)) {
    luaL_error (L, "expected a tensor, a number or a table of numbers, got a %s",
                luaL_typename (L, index));
  }
  TensorUD *ud = lua_newuserdatauv (L, sizeof (TensorUD), 0);
  ud->t = NULL;
  luaL_setmetatable (L, TENSOR_MT);
  ud->t = t = kdf_tensor_new (dtype, rank, shape);
  if (!lua_istable (L, index)) {
    double v = lua_isboolean (L, index) ? lua_toboolean (L, index) : lua_tonumber (L, index);
    if (dtype == KDF_DTYPE_F32)
      kdf_tensor_f32 (t)[0] = (float) v;
    else if (dtype == KDF_DTYPE_I32)
      kdf_tensor_i32 (t)[0] = (int32_t) v;
    else
      kdf_tensor_u8 (t)[0] = (uint8_t) v;
    return t;
  }
  int64_t pos = 0;
  if (rank > 0 && shape[0] > 0 && !fill_from_table (L, index, t, 0, &pos, &why)) {
    lua_pushfstring (L, "cannot make a tensor: %s", why);
    g_free (why);
    lua_error (L);
  }
  return t;
}

static KdfDType
check_dtype (lua_State *L, const char *name)
{
  KdfDType d;
  if (!kdf_dtype_from_name (name, &d))
    luaL_error (L, "unknown dtype '%s' (use f32, i32 or u8)", name);
  return d;
}

/* kdf.tensor(table_or_number [, dtype]) */
static int
l_tensor (lua_State *L)
{
  KdfDType dtype = check_dtype (L, luaL_optstring (L, 2, "f32"));
  luaL_argcheck (L, !lua_isnoneornil (L, 1), 1, "a table of numbers expected");
  push_tensor_value (L, 1, dtype);
  return 1;
}

/* kdf.zeros({shape...} [, dtype]) */
static int
l_zeros (lua_State *L)
{
  luaL_checktype (L, 1, LUA_TTABLE);
  KdfDType dtype = check_dtype (L, luaL_optstring (L, 2, "f32"));
  lua_Integer rank = luaL_len (L, 1);
  luaL_argcheck (L, rank >= 0 && rank <= KDF_MAX_RANK, 1, "rank must be 0..4");
  int64_t shape[KDF_MAX_RANK];
  for (lua_Integer d = 0; d < rank; d++) {
    lua_geti (L, 1, d + 1);
    lua_Integer v = luaL_checkinteger (L, -1);
    luaL_argcheck (L, v >= 0, 1, "dimensions must be ≥ 0");
    shape[d] = v;
    lua_pop (L, 1);
  }
  GError *error = NULL;
  g_autoptr (KdfTensor) t = kdf_tensor_try_new (dtype, (int) rank, shape, &error);
  if (!t)
    return raise_gerror (L, error);
  push_tensor (L, t);
  return 1;
}

static int
tensor_gc (lua_State *L)
{
  TensorUD *ud = luaL_checkudata (L, 1, TENSOR_MT);
  g_clear_pointer (&ud->t, kdf_tensor_unref);
  return 0;
}

static int
tensor_tostring (lua_State *L)
{
  g_autofree char *d = kdf_tensor_describe (check_tensor (L, 1));
  lua_pushfstring (L, "tensor %s", d);
  return 1;
}

static int
tensor_len (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  lua_pushinteger (L, t->rank ? t->shape[0] : 1);
  return 1;
}

static int
tensor_shape (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  lua_createtable (L, t->rank, 0);
  for (int d = 0; d < t->rank; d++) {
    lua_pushinteger (L, t->shape[d]);
    lua_rawseti (L, -2, d + 1);
  }
  return 1;
}

static void
push_number (lua_State *L, KdfDType dtype, double v)
{
  if (dtype == KDF_DTYPE_F32)
    lua_pushnumber (L, v);
  else
    lua_pushinteger (L, (lua_Integer) v);
}

/* t:get(i, j, ...) with 1-based indices, like Lua tables. */
static int
tensor_get (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  int64_t index[KDF_MAX_RANK] = { 0 };
  int nargs = lua_gettop (L) - 1;
  if (nargs != t->rank && !(t->rank == 0 && nargs == 0))
    return luaL_error (L, "t:get needs %d indices for a rank-%d tensor, got %d", t->rank,
                       t->rank, nargs);
  for (int d = 0; d < t->rank; d++) {
    lua_Integer i = luaL_checkinteger (L, d + 2);
    if (i < 1 || i > t->shape[d])
      return luaL_error (L, "index %d = %d is out of range 1..%d", d + 1, (int) i,
                         (int) t->shape[d]);
    index[d] = i - 1;
  }
  push_number (L, t->dtype, kdf_tensor_get (t, index));
  return 1;
}

static int
tensor_item (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  if (kdf_tensor_numel (t) != 1)
    return luaL_error (L, "t:item() needs a tensor with one element, this one has %d",
                       (int) kdf_tensor_numel (t));
  push_number (L, t->dtype, kdf_tensor_get_flat (t, 0));
  return 1;
}

static void
push_table_rec (lua_State *L, KdfTensor *t, int depth, int64_t *flat)
{
  if (depth == t->rank) {
    push_number (L, t->dtype, kdf_tensor_get_flat (t, (*flat)++));
    return;
  }
  lua_createtable (L, (int) t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    push_table_rec (L, t, depth + 1, flat);
    lua_rawseti (L, -2, i + 1);
  }
}

static int
tensor_totable (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  int64_t flat = 0;
  push_table_rec (L, t, 0, &flat);
  return 1;
}

static int
tensor_numel (lua_State *L)
{
  lua_pushinteger (L, kdf_tensor_numel (check_tensor (L, 1)));
  return 1;
}

static int
tensor_sum (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  double s = 0;
  for (int64_t i = 0, n = kdf_tensor_numel (t); i < n; i++)
    s += kdf_tensor_get_flat (t, i);
  lua_pushnumber (L, s);
  return 1;
}

static int
tensor_index (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  const char *key = luaL_checkstring (L, 2);
  if (strcmp (key, "dtype") == 0) {
    lua_pushstring (L, kdf_dtype_name (t->dtype));
    return 1;
  }
  if (strcmp (key, "rank") == 0) {
    lua_pushinteger (L, t->rank);
    return 1;
  }
  if (strcmp (key, "oracle") == 0) {
    lua_pushboolean (L, kdf_tensor_is_oracle (t));
    return 1;
  }
  luaL_getmetafield (L, 1, "methods");
  lua_getfield (L, -1, key);
  return 1;
}

/* ---- objects (models, loss terms) -------------------------------------------- */

static int
object_gc (lua_State *L)
{
  ObjectUD *ud = luaL_checkudata (L, 1, OBJECT_MT);
  g_clear_pointer (&ud->obj, kdf_object_unref);
  return 0;
}

static int
object_tostring (lua_State *L)
{
  ObjectUD *ud = luaL_checkudata (L, 1, OBJECT_MT);
  if (!ud->obj)
    return luaL_error (L, "object already released");
  g_autofree char *d = kdf_object_describe (ud->obj);
  lua_pushstring (L, d);
  return 1;
}

/* ---- graphs ------------------------------------------------------------------- */

static KdfGraph *
check_graph (lua_State *L, int index)
{
  GraphUD *ud = luaL_checkudata (L, index, GRAPH_MT);
  if (!ud->g)
    luaL_argerror (L, index, "graph already released");
  return ud->g;
}

static NodeUD *
check_node (lua_State *L, int index)
{
  NodeUD *ud = luaL_checkudata (L, index, NODE_MT);
  if (!ud->n)
    luaL_argerror (L, index, "node already released");
  return ud;
}

static void
push_node (lua_State *L, KdfGraph *g, KdfNode *n)
{
  NodeUD *ud = lua_newuserdatauv (L, sizeof (NodeUD), 0);
  ud->g = NULL;
  ud->n = NULL;
  luaL_setmetatable (L, NODE_MT);
  ud->g = kdf_graph_ref (g);
  ud->n = n;
}

/* kdf.graph { name = "...", seed = 1 } */
static int
l_graph (lua_State *L)
{
  const char *name = "graph";
  lua_Integer seed = 1;
  if (!lua_isnoneornil (L, 1)) {
    luaL_checktype (L, 1, LUA_TTABLE);
    lua_getfield (L, 1, "name");
    if (!lua_isnil (L, -1))
      name = luaL_checkstring (L, -1);
    lua_getfield (L, 1, "seed");
    if (!lua_isnil (L, -1)) {
      if (!lua_isinteger (L, -1))
        return luaL_error (L, "kdf.graph: seed must be an integer, got %s",
                           luaL_tolstring (L, -1, NULL));
      seed = lua_tointeger (L, -1);
    }
    lua_pop (L, 2);
  }
  GraphUD *ud = lua_newuserdatauv (L, sizeof (GraphUD), 0);
  ud->g = NULL;
  luaL_setmetatable (L, GRAPH_MT);
  ud->g = kdf_graph_new (name, (guint64) seed);
  lua_pushvalue (L, -1);
  lua_setfield (L, LUA_REGISTRYINDEX, LAST_GRAPH_KEY);
  return 1;
}

KdfGraph *
kdf_lua_last_graph (lua_State *L)
{
  lua_getfield (L, LUA_REGISTRYINDEX, LAST_GRAPH_KEY);
  GraphUD *ud = luaL_testudata (L, -1, GRAPH_MT);
  lua_pop (L, 1);
  return ud ? ud->g : NULL;
}

static int
graph_gc (lua_State *L)
{
  GraphUD *ud = luaL_checkudata (L, 1, GRAPH_MT);
  g_clear_pointer (&ud->g, kdf_graph_unref);
  return 0;
}

static int
graph_tostring (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  lua_pushfstring (L, "graph '%s' (%d nodes)", kdf_graph_get_name (g), (int) kdf_graph_n_nodes (g));
  return 1;
}

static int
node_gc (lua_State *L)
{
  NodeUD *ud = luaL_checkudata (L, 1, NODE_MT);
  ud->n = NULL;
  g_clear_pointer (&ud->g, kdf_graph_unref);
  return 0;
}

/* A port handle: { node = <node>, port = "name", delay = d, oracle = b, initial = t } */
static void
push_port (lua_State *L, int node_index, const char *port)
{
  node_index = lua_absindex (L, node_index);
  lua_createtable (L, 0, 2);
  lua_pushvalue (L, node_index);
  lua_setfield (L, -2, "node");
  lua_pushstring (L, port);
  lua_setfield (L, -2, "port");
  luaL_setmetatable (L, PORT_MT);
}

static gboolean
is_port (lua_State *L, int index)
{
  if (!lua_istable (L, index))
    return FALSE;
  if (!lua_getmetatable (L, index))
    return FALSE;
  luaL_getmetatable (L, PORT_MT);
  gboolean same = lua_rawequal (L, -1, -2);
  lua_pop (L, 2);
  return same;
}

typedef struct {
  NodeUD *node;
  const char *port;
  KdfEdgeOptions opts; /* opts.initial is borrowed from a userdata on the stack */
} PortRef;

/* Reads the port table at INDEX. Leaves one value on the stack: the userdata that
 * owns opts.initial, or nil. */
static void
read_port (lua_State *L, int index, PortRef *ref)
{
  index = lua_absindex (L, index);
  memset (ref, 0, sizeof *ref);
  lua_getfield (L, index, "node");
  ref->node = check_node (L, -1);
  lua_pop (L, 1);
  lua_getfield (L, index, "port");
  ref->port = lua_tostring (L, -1); /* kept alive by the port table */
  lua_pop (L, 1);
  lua_getfield (L, index, "delay");
  if (!lua_isnil (L, -1)) {
    lua_Integer d = luaL_checkinteger (L, -1);
    if (d < 0)
      luaL_error (L, "delay must be ≥ 0");
    ref->opts.delay = (guint) d;
  }
  lua_getfield (L, index, "oracle");
  ref->opts.oracle = lua_toboolean (L, -1);
  lua_pop (L, 2);
  lua_getfield (L, index, "initial");
  if (!lua_isnil (L, -1)) {
    ref->opts.initial = push_tensor_value (L, -1, KDF_DTYPE_F32);
    lua_remove (L, -2);
  }
}

/* Applies connection options from table OPTS (delay, oracle, initial) onto REF.
 * Leaves one value on the stack: the userdata owning an initial value, or nil. */
static void
read_edge_options (lua_State *L, int opts, PortRef *ref, KdfDType initial_dtype)
{
  if (lua_isnoneornil (L, opts)) {
    lua_pushnil (L);
    return;
  }
  luaL_checktype (L, opts, LUA_TTABLE);
  lua_getfield (L, opts, "delay");
  if (!lua_isnil (L, -1)) {
    lua_Integer d = luaL_checkinteger (L, -1);
    if (d < 0)
      luaL_error (L, "delay must be ≥ 0");
    ref->opts.delay = (guint) d;
  }
  lua_getfield (L, opts, "oracle");
  if (!lua_isnil (L, -1))
    ref->opts.oracle = lua_toboolean (L, -1);
  lua_pop (L, 2);
  lua_getfield (L, opts, "initial");
  if (!lua_isnil (L, -1)) {
    ref->opts.initial = push_tensor_value (L, -1, initial_dtype);
    lua_remove (L, -2);
  }
}

static void
connect_ref (lua_State *L, KdfGraph *g, PortRef *ref, KdfNode *dst, const char *in_port)
{
  if (ref->node->g != g) {
    luaL_error (L, "cannot connect '%s.%s' to '%s.%s': the nodes are in different graphs",
                kdf_node_get_name (ref->node->n), ref->port, kdf_node_get_name (dst), in_port);
  }
  GError *error = NULL;
  gboolean ok = kdf_graph_connect (g, ref->node->n, ref->port, dst, in_port, &ref->opts, &error);
  if (!ok)
    raise_gerror (L, error);
}

static char *
where_string (lua_State *L)
{
  luaL_where (L, 1);
  char *s = g_strdup (lua_tostring (L, -1));
  lua_pop (L, 1);
  g_strchomp (s);
  if (g_str_has_suffix (s, ":"))
    s[strlen (s) - 1] = '\0';
  return s;
}

static KdfDType
input_dtype (const KdfPortType *in)
{
  return in->dtype == KDF_DTYPE_ANY ? KDF_DTYPE_F32 : in->dtype;
}

/* A tensor given for an input becomes a constant node. */
static void
connect_constant (lua_State *L, KdfGraph *g, KdfNode *dst, const char *port,
                  const KdfPortType *in, int value)
{
  KdfTensor *t = push_tensor_value (L, value, input_dtype (in));
  char *name = g_strdup_printf ("%s.%s", kdf_node_get_name (dst), port);
  for (guint k = 2; kdf_graph_find_node (g, name); k++) {
    g_free (name);
    name = g_strdup_printf ("%s.%s.%u", kdf_node_get_name (dst), port, k);
  }
  GError *error = NULL;
  KdfNode *c = kdf_graph_add_constant (g, name, t, &error);
  g_free (name);
  if (!c || !kdf_graph_connect (g, c, "value", dst, port, NULL, &error))
    raise_gerror (L, error);
  lua_pop (L, 1);
}

/* A model or loss object given for an input (the best model of an earlier stage)
 * becomes a constant_model / constant_loss node. */
static void
connect_object (lua_State *L, KdfGraph *g, KdfNode *dst, const char *port,
                const KdfPortType *in, int value)
{
  ObjectUD *ud = luaL_testudata (L, value, OBJECT_MT);
  if (!ud || !ud->obj || ((KdfObject *) ud->obj)->kind != in->kind)
    luaL_error (L, "node '%s': input '%s' takes a %s (a port or a %s value), got a %s",
                kdf_node_get_name (dst), port, kdf_value_kind_name (in->kind),
                kdf_value_kind_name (in->kind), ud ? "value of another kind" : luaL_typename (L, value));
  char *name = g_strdup_printf ("%s.%s", kdf_node_get_name (dst), port);
  GError *error = NULL;
  KdfNode *c = kdf_graph_add_constant_object (g, name, ud->obj, &error);
  g_free (name);
  if (!c || !kdf_graph_connect (g, c, "value", dst, port, NULL, &error))
    raise_gerror (L, error);
}

/* Schedules: a Lua function (or callable) of the tick. */
typedef struct {
  lua_State *L;
  int ref;
  char *what;
} LuaSchedule;

static void
schedule_free (gpointer data)
{
  LuaSchedule *s = data;
  luaL_unref (s->L, LUA_REGISTRYINDEX, s->ref);
  g_free (s->what);
  g_free (s);
}

static gboolean
schedule_call (gpointer data, guint tick, double *value, GError **error)
{
  LuaSchedule *s = data;
  lua_State *L = running_L ? running_L : s->L;
  lua_rawgeti (L, LUA_REGISTRYINDEX, s->ref);
  lua_pushinteger (L, tick);
  if (lua_pcall (L, 1, 1, 0) != LUA_OK) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_LUA, "%s", lua_tostring (L, -1));
    lua_pop (L, 1);
    return FALSE;
  }
  gboolean ok = TRUE;
  if (lua_isboolean (L, -1))
    *value = lua_toboolean (L, -1);
  else if (lua_isnumber (L, -1))
    *value = lua_tonumber (L, -1);
  else {
    g_set_error (error, KDF_ERROR, KDF_ERROR_LUA, "%s returned a %s, not a number", s->what,
                 luaL_typename (L, -1));
    ok = FALSE;
  }
  lua_pop (L, 1);
  return ok;
}

static gboolean
is_callable (lua_State *L, int index)
{
  if (lua_isfunction (L, index))
    return TRUE;
  if (luaL_getmetafield (L, index, "__call") != LUA_TNIL) {
    lua_pop (L, 1);
    return TRUE;
  }
  return FALSE;
}

static void
set_param_from_lua (lua_State *L, KdfNode *n, const char *key, int value)
{
  GError *error = NULL;
  gboolean ok;
  value = lua_absindex (L, value);
  if (lua_isboolean (L, value))
    ok = kdf_node_set_param_bool (n, key, lua_toboolean (L, value), &error);
  else if (lua_isinteger (L, value))
    ok = kdf_node_set_param_int (n, key, lua_tointeger (L, value), &error);
  else if (lua_type (L, value) == LUA_TNUMBER)
    ok = kdf_node_set_param_double (n, key, lua_tonumber (L, value), &error);
  else if (lua_type (L, value) == LUA_TSTRING)
    ok = kdf_node_set_param_string (n, key, lua_tostring (L, value), &error);
  else if (is_callable (L, value) && !is_port (L, value)) {
    LuaSchedule *s = g_new0 (LuaSchedule, 1);
    lua_rawgeti (L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->L = lua_tothread (L, -1);
    lua_pop (L, 1);
    lua_pushvalue (L, value);
    s->ref = luaL_ref (L, LUA_REGISTRYINDEX);
    g_autofree char *desc = NULL;
    if (lua_istable (L, value)) {
      lua_getfield (L, value, "desc");
      desc = g_strdup (lua_tostring (L, -1));
      lua_pop (L, 1);
    }
    s->what = g_strdup_printf ("schedule for '%s.%s'", kdf_node_get_name (n), key);
    ok = kdf_node_set_param_schedule (n, key, schedule_call, s, schedule_free,
                                      desc ? desc : "lua function", &error);
  } else {
    luaL_error (L, "node '%s': param '%s' takes a number, bool, string or schedule, got a %s%s",
                kdf_node_get_name (n), key, luaL_typename (L, value),
                is_port (L, value) ? " (a port: only inputs take ports)" : "");
    return;
  }
  if (!ok)
    raise_gerror (L, error);
}

static int
compare_cstr (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Applies a params-and-inputs table at index T to node N (at index NODE_INDEX on the
 * stack). Keys are handled in sorted order so that edges are made in the same order
 * every run. */
static void
apply_table (lua_State *L, KdfGraph *g, KdfNode *n, int t)
{
  t = lua_absindex (L, t);
  /* the sorted keys live in a userdata, so an error raised below frees them */
  size_t n_keys = 0;
  lua_pushnil (L);
  while (lua_next (L, t)) {
    lua_pop (L, 1);
    if (lua_type (L, -1) != LUA_TSTRING)
      luaL_error (L, "node '%s': keys of the params table must be names, got a %s",
                  kdf_node_get_name (n), luaL_typename (L, -1));
    n_keys++;
  }
  const char **keys = lua_newuserdatauv (L, MAX (n_keys, 1) * sizeof (char *), 0);
  int keys_index = lua_gettop (L);
  size_t k = 0;
  lua_pushnil (L);
  while (lua_next (L, t)) {
    lua_pop (L, 1);
    keys[k++] = lua_tostring (L, -1); /* anchored in the table */
  }
  qsort (keys, n_keys, sizeof (char *), compare_cstr);
  for (size_t i = 0; i < n_keys; i++) {
    const char *key = keys[i];
    if (strcmp (key, "name") == 0)
      continue;
    lua_getfield (L, t, key);
    int v = lua_gettop (L);
    guint in_flags = 0;
    const KdfPortType *in = kdf_node_input_type (n, key, &in_flags);
    if (in) {
      if (is_port (L, v)) {
        PortRef ref;
        read_port (L, v, &ref);
        connect_ref (L, g, &ref, n, key);
      } else if (lua_istable (L, v) && (in_flags & KDF_PORT_MULTI) && luaL_len (L, v) > 0 &&
                 lua_geti (L, v, 1) != LUA_TNIL && (is_port (L, -1) || to_tensor (L, -1))) {
        /* a list into a multi input: each port an edge, each tensor a constant */
        for (lua_Integer j = 1, len = luaL_len (L, v); j <= len; j++) {
          lua_geti (L, v, j);
          if (is_port (L, -1)) {
            PortRef ref;
            read_port (L, -1, &ref);
            connect_ref (L, g, &ref, n, key);
            lua_pop (L, 2);
          } else {
            if (in->kind != KDF_VALUE_TENSOR)
              luaL_error (L, "node '%s': input '%s': entry %d of the list is not a port",
                          kdf_node_get_name (n), key, (int) j);
            connect_constant (L, g, n, key, in, lua_gettop (L));
            lua_pop (L, 1);
          }
        }
      } else {
        /* anything else is a constant (the stack is reset after each key) */
        if (in->kind != KDF_VALUE_TENSOR)
          connect_object (L, g, n, key, in, v);
        else
          connect_constant (L, g, n, key, in, v);
      }
    } else if (kdf_node_output_type (n, key, NULL)) {
      luaL_error (L, "node '%s': '%s' is an output port; connect it to an input of another node",
                  kdf_node_get_name (n), key);
    } else if (is_port (L, v) && !kdf_node_has_param (n, key)) {
      /* not an input: the engine's message names the inputs there are */
      PortRef ref;
      read_port (L, v, &ref);
      connect_ref (L, g, &ref, n, key);
    } else {
      set_param_from_lua (L, n, key, v);
    }
    lua_settop (L, v - 1);
  }
  lua_remove (L, keys_index);
}

/* Runs apply_table in protected mode: (graph ud, node ud, table). */
static int
apply_protected (lua_State *L)
{
  NodeUD *ud = check_node (L, 2);
  apply_table (L, ud->g, ud->n, 3);
  return 0;
}

/* Applies the table at index T to the node on top of the stack; if that fails the
 * node is removed again, so a caught error leaves no half-built node behind. */
static void
apply_or_remove (lua_State *L, KdfGraph *g, int t)
{
  int node = lua_gettop (L);
  t = lua_absindex (L, t);
  luaL_where (L, 1); /* inside the protected call, level 1 is a C function */
  int where = lua_gettop (L);
  lua_pushcfunction (L, apply_protected);
  lua_pushnil (L);
  lua_pushvalue (L, node);
  lua_pushvalue (L, t);
  if (lua_pcall (L, 3, 0, 0) != LUA_OK) {
    NodeUD *ud = lua_touserdata (L, node);
    kdf_graph_remove_node (g, ud->n);
    ud->n = NULL;
    /* give the error the script's file:line */
    if (lua_type (L, -1) == LUA_TSTRING) {
      lua_pushvalue (L, where);
      lua_insert (L, -2);
      lua_concat (L, 2);
    } else if (lua_istable (L, -1)) {
      lua_pushvalue (L, where);
      lua_getfield (L, -2, "message");
      lua_concat (L, 2);
      lua_setfield (L, -2, "message");
    }
    lua_error (L);
  }
  lua_remove (L, where);
}

static void
set_origin (lua_State *L, KdfNode *n)
{
  char *origin = where_string (L);
  kdf_node_set_origin (n, origin);
  g_free (origin);
}

/* g:node(kind [, params_and_inputs]) */
static int
graph_node (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  const char *kind = luaL_checkstring (L, 2);
  if (!lua_isnoneornil (L, 3))
    luaL_checktype (L, 3, LUA_TTABLE);
  const char *name = NULL;
  if (lua_istable (L, 3)) {
    lua_getfield (L, 3, "name");
    if (!lua_isnil (L, -1))
      name = luaL_checkstring (L, -1);
    lua_pop (L, 1);
  }
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_node (g, kind, name, &error);
  if (!n)
    return raise_gerror (L, error);
  set_origin (L, n);
  push_node (L, g, n);
  if (lua_istable (L, 3))
    apply_or_remove (L, g, 3);
  return 1;
}

/* g:connect(src_port, dst_port [, { delay = 1, oracle = true, initial = ... }]) */
static int
graph_connect (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  luaL_argcheck (L, is_port (L, 2), 2, "an output port expected (node.port)");
  luaL_argcheck (L, is_port (L, 3), 3, "an input port expected (node.port)");
  PortRef dst, src;
  read_port (L, 3, &dst);
  const KdfPortType *in = kdf_node_input_type (dst.node->n, dst.port, NULL);
  read_port (L, 2, &src);
  read_edge_options (L, 4, &src, in ? input_dtype (in) : KDF_DTYPE_F32);
  connect_ref (L, g, &src, dst.node->n, dst.port);
  return 0;
}

/* g:disconnect(node.port) → edges removed from that input */
static int
graph_disconnect (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  luaL_argcheck (L, is_port (L, 2), 2, "an input port expected (node.port)");
  PortRef ref;
  read_port (L, 2, &ref);
  if (ref.node->g != g)
    return luaL_error (L, "the port is in another graph");
  GError *error = NULL;
  guint n = kdf_graph_disconnect (g, ref.node->n, ref.port, &error);
  if (error)
    return raise_gerror (L, error);
  lua_pushinteger (L, n);
  return 1;
}

static int
graph_prepare (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  GError *error = NULL;
  if (!kdf_graph_prepare (g, &error))
    return raise_gerror (L, error);
  lua_pushboolean (L, 1);
  return 1;
}

static int
graph_dot (lua_State *L)
{
  g_autofree char *dot = kdf_graph_to_dot (check_graph (L, 1));
  lua_pushstring (L, dot);
  return 1;
}

static int
graph_write_dot (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  const char *path = luaL_checkstring (L, 2);
  GError *error = NULL;
  if (!kdf_graph_write_dot (g, path, &error)) {
    lua_pushnil (L);
    lua_pushstring (L, error->message);
    g_error_free (error);
    return 2;
  }
  lua_pushboolean (L, 1);
  return 1;
}

typedef struct {
  gboolean tty;
  gboolean quiet;
  guint last_tick_printed;
} Progress;

static void
print_progress (const KdfProgress *p, gpointer user_data)
{
  Progress *pr = user_data;
  if (pr->quiet)
    return;
  if (pr->tty) {
    double frac = p->ticks_total ? (p->tick + (p->tick_done ? 1.0 : (double) p->nodes_done / MAX (1, p->nodes_total))) /
                                       (double) p->ticks_total
                                 : 0;
    /* relative to this run's ticks is unknown here; show absolute progress */
    int width = 30, fill = (int) (CLAMP (frac, 0, 1) * width);
    char bar[64];
    for (int i = 0; i < width; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    g_autofree char *node = p->node && p->node_fraction >= 0
                                ? g_strdup_printf (" %s %3.0f%%", p->node, p->node_fraction * 100)
                                : g_strdup (p->node ? p->node : "");
    fprintf (stderr, "\r\033[K[%s] tick %u/%u%s  %.1f s", bar, p->tick + 1, p->ticks_total,
             p->tick_done ? "" : node, p->elapsed);
    if (p->tick_done && p->tick + 1 == p->ticks_total)
      fputc ('\n', stderr);
    fflush (stderr);
  } else if (p->tick_done && p->ticks_total > 1) {
    fprintf (stderr, "tick %u/%u done, %.2f s\n", p->tick + 1, p->ticks_total, p->elapsed);
  }
}

/* g:run { ticks = E, threads = N, out = DIR } */
static int
graph_run (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  const KdfLuaConfig *config = get_config (L);
  KdfRunOptions opts = { 0 };
  opts.ticks = 1;
  opts.threads = config->threads;
  const char *out = config->run_dir;
  if (!lua_isnoneornil (L, 2)) {
    luaL_checktype (L, 2, LUA_TTABLE);
    lua_getfield (L, 2, "ticks");
    if (!lua_isnil (L, -1)) {
      lua_Integer t = luaL_checkinteger (L, -1);
      if (t < 1)
        return luaL_error (L, "g:run: ticks must be ≥ 1, got %d", (int) t);
      opts.ticks = (guint) t;
    }
    lua_getfield (L, 2, "threads");
    if (!lua_isnil (L, -1))
      opts.threads = (int) luaL_checkinteger (L, -1);
    lua_getfield (L, 2, "out");
    if (!lua_isnil (L, -1))
      out = luaL_checkstring (L, -1);
    lua_pop (L, 3);
  }
  GError *error = NULL;
  if (config->dot_only) {
    /* `kdflow dot`: build, check, draw, stop. */
    if (!kdf_graph_prepare (g, &error))
      return raise_gerror (L, error);
    if (config->dot_path) {
      if (!kdf_graph_write_dot (g, config->dot_path, &error))
        return raise_gerror (L, error);
    } else {
      g_autofree char *dot = kdf_graph_to_dot (g);
      fputs (dot, stdout);
      fflush (stdout);
    }
    lua_pushlightuserdata (L, &dot_stop_sentinel);
    return lua_error (L);
  }
  Progress pr = { isatty (2), config->quiet, 0 };
  opts.run_dir = out;
  opts.progress = print_progress;
  opts.user_data = &pr;
  lua_State *saved = running_L;
  running_L = L;
  gboolean ok = kdf_graph_run (g, &opts, &error);
  running_L = saved;
  if (!ok) {
    if (pr.tty && !pr.quiet)
      fputc ('\n', stderr);
    return raise_gerror (L, error);
  }
  lua_pushboolean (L, 1);
  return 1;
}

static int
graph_tick (lua_State *L)
{
  lua_pushinteger (L, kdf_graph_get_tick (check_graph (L, 1)));
  return 1;
}

/* g:find(name) → node or nil */
static int
graph_find (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  KdfNode *n = kdf_graph_find_node (g, luaL_checkstring (L, 2));
  if (!n)
    lua_pushnil (L);
  else
    push_node (L, g, n);
  return 1;
}

static int
graph_stats (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  lua_createtable (L, 0, (int) kdf_graph_n_nodes (g));
  for (guint i = 0; i < kdf_graph_n_nodes (g); i++) {
    KdfNode *n = kdf_graph_nth_node (g, i);
    KdfNodeStats s;
    kdf_node_get_stats (n, &s);
    lua_createtable (L, 0, 3);
    lua_pushinteger (L, s.calls);
    lua_setfield (L, -2, "calls");
    lua_pushnumber (L, s.seconds);
    lua_setfield (L, -2, "seconds");
    lua_pushinteger (L, s.last_threads);
    lua_setfield (L, -2, "threads");
    lua_setfield (L, -2, kdf_node_get_name (n));
  }
  return 1;
}

static int
graph_index (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  const char *key = luaL_checkstring (L, 2);
  if (strcmp (key, "name") == 0) {
    lua_pushstring (L, kdf_graph_get_name (g));
    return 1;
  }
  if (strcmp (key, "seed") == 0) {
    lua_pushinteger (L, (lua_Integer) kdf_graph_get_seed (g));
    return 1;
  }
  luaL_getmetafield (L, 1, "methods");
  lua_getfield (L, -1, key);
  return 1;
}

/* ---- port declarations: "name:f32[N,C]", "name:model", "name:f32[N]?" ---------- */

/* The ports of a run-time class: specs (names and types owned) and parsed types. */
typedef struct {
  KdfPortSpec *specs; /* { NULL }-terminated */
  KdfPortType *types;
  guint n;
} PortList;

static void
port_list_clear (PortList *p)
{
  for (guint i = 0; p->specs && p->specs[i].name; i++) {
    g_free ((char *) p->specs[i].name);
    g_free ((char *) p->specs[i].type);
  }
  g_clear_pointer (&p->specs, g_free);
  g_clear_pointer (&p->types, g_free);
  p->n = 0;
}

/* Reads the list of port declarations in field FIELD of table T into OUT; FALSE with
 * *WHY set (not raising, so that the caller can free what it holds first). */
static gboolean
read_port_decls (lua_State *L, int t, const char *field, const char *what, PortList *out,
                 char **why)
{
  memset (out, 0, sizeof *out);
  lua_getfield (L, t, field);
  int list = lua_gettop (L);
  if (!lua_isnil (L, list) && !lua_istable (L, list)) {
    lua_pop (L, 1);
    *why = g_strdup_printf ("%s: '%s' must be a list of port declarations like \"x:f32[N]\"",
                            what, field);
    return FALSE;
  }
  lua_Integer n = lua_istable (L, list) ? luaL_len (L, list) : 0;
  if (n < 0 || n > 256) {
    lua_pop (L, 1);
    *why = g_strdup_printf ("%s: '%s' lists %lld ports, at most 256", what, field, (long long) n);
    return FALSE;
  }
  out->specs = g_new0 (KdfPortSpec, n + 1);
  out->types = g_new0 (KdfPortType, n + 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti (L, list, i);
    const char *decl = lua_type (L, -1) == LUA_TSTRING ? lua_tostring (L, -1) : NULL;
    char *name = NULL;
    gboolean optional = FALSE;
    GError *error = NULL;
    if (!decl || !kdf_port_decl_parse (decl, &name, &out->types[i - 1], &optional, &error)) {
      *why = g_strdup_printf ("%s: %s", what,
                              error ? error->message : "port declarations are strings");
      g_clear_error (&error);
      port_list_clear (out);
      lua_pop (L, 2);
      return FALSE;
    }
    out->specs[i - 1].name = name;
    out->specs[i - 1].type = kdf_port_type_to_string (&out->types[i - 1]);
    out->specs[i - 1].flags = optional ? KDF_PORT_OPTIONAL : 0;
    out->n = (guint) i;
    lua_pop (L, 1);
  }
  lua_pop (L, 1);
  return TRUE;
}

static int
raise_owned (lua_State *L, char *msg)
{
  luaL_where (L, 1);
  lua_pushstring (L, msg);
  g_free (msg);
  lua_concat (L, 2);
  return lua_error (L);
}

static char **
read_string_list (lua_State *L, int t, const char *field)
{
  lua_getfield (L, t, field);
  if (lua_isnil (L, -1)) {
    lua_pop (L, 1);
    return NULL;
  }
  luaL_checktype (L, -1, LUA_TTABLE);
  lua_Integer n = luaL_len (L, -1);
  char **out = g_new0 (char *, n + 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti (L, -1, i);
    out[i - 1] = g_strdup (luaL_tolstring (L, -1, NULL));
    lua_pop (L, 2);
  }
  lua_pop (L, 1);
  return out;
}

/* g:foreign { name =, library =, symbol =, sig =, inputs = {...}, outputs = {...},
 *             dims = {...}, scalars = {...}, result =, <params and inputs> } */
static int
graph_foreign (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  luaL_checktype (L, 2, LUA_TTABLE);
  lua_getfield (L, 2, "library");
  lua_getfield (L, 2, "symbol");
  lua_getfield (L, 2, "sig");
  lua_getfield (L, 2, "name");
  lua_getfield (L, 2, "result");
  const char *library = luaL_optstring (L, -5, NULL), *symbol = luaL_optstring (L, -4, NULL);
  const char *sig = luaL_optstring (L, -3, NULL), *name = luaL_optstring (L, -2, NULL);
  const char *result = luaL_optstring (L, -1, NULL);
  if (!library || !symbol || !sig)
    return luaL_error (L, "g:foreign needs library, symbol and sig");
  char **inputs = read_string_list (L, 2, "inputs");
  char **outputs = read_string_list (L, 2, "outputs");
  char **dims = read_string_list (L, 2, "dims");
  char **scalars = read_string_list (L, 2, "scalars");
  KdfForeignSpec spec = { library, symbol, sig, (const char *const *) inputs,
                          (const char *const *) outputs, (const char *const *) dims,
                          (const char *const *) scalars, result };
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_foreign (g, name, &spec, &error);
  g_strfreev (inputs);
  g_strfreev (outputs);
  g_strfreev (dims);
  g_strfreev (scalars);
  if (!n)
    return raise_gerror (L, error);
  set_origin (L, n);
  push_node (L, g, n);
  /* the rest of the table: params and inputs */
  lua_newtable (L);
  lua_pushnil (L);
  while (lua_next (L, 2)) {
    const char *k = lua_type (L, -2) == LUA_TSTRING ? lua_tostring (L, -2) : NULL;
    static const char *reserved[] = { "library", "symbol", "sig", "name", "result",
                                      "inputs", "outputs", "dims", "scalars", NULL };
    if (k && !g_strv_contains (reserved, k)) {
      lua_pushvalue (L, -2);
      lua_insert (L, -2);
      lua_settable (L, -4);
    } else {
      lua_pop (L, 1);
    }
  }
  lua_insert (L, -2); /* table below the node */
  apply_or_remove (L, g, -2);
  lua_remove (L, -2);
  return 1;
}

/* ---- Lua nodes ---------------------------------------------------------------- */

typedef struct {
  KdfNodeClass klass;
  PortList inputs, outputs;
  lua_State *L;
  int fn_ref;
} LuaNode;

static void
lua_node_free (gpointer data)
{
  LuaNode *ln = data;
  luaL_unref (ln->L, LUA_REGISTRYINDEX, ln->fn_ref);
  port_list_clear (&ln->inputs);
  port_list_clear (&ln->outputs);
  g_free ((char *) ln->klass.name);
  g_free (ln);
}

/* Converts the value at INDEX into something for output PORT, or sets WHY. */
static gboolean
lua_output_value (lua_State *L, int index, const KdfPortSpec *spec, const KdfPortType *port,
                  KdfValueKind *kind, gpointer *value, char **why)
{
  if (port->kind == KDF_VALUE_TENSOR) {
    KdfTensor *t = to_tensor (L, index);
    if (t) {
      *value = kdf_tensor_ref (t);
    } else if (lua_isnumber (L, index) || lua_isboolean (L, index) || lua_istable (L, index)) {
      /* tables and numbers: we run under the caller's pcall */
      *value = kdf_tensor_ref (push_tensor_value (L, index, input_dtype (port)));
      lua_pop (L, 1);
    } else {
      *why = g_strdup_printf ("output '%s' must be a tensor, a number or a table of numbers, "
                              "got a %s",
                              spec->name, luaL_typename (L, index));
      return FALSE;
    }
    *kind = KDF_VALUE_TENSOR;
    return TRUE;
  }
  ObjectUD *ud = luaL_testudata (L, index, OBJECT_MT);
  if (!ud || !ud->obj || ((KdfObject *) ud->obj)->kind != port->kind) {
    *why = g_strdup_printf ("output '%s' must be a %s", spec->name, kdf_value_kind_name (port->kind));
    return FALSE;
  }
  *value = kdf_object_ref (ud->obj);
  *kind = port->kind;
  return TRUE;
}

/* Runs inside lua_pcall: calls the node's function and stores the outputs.
 * Upvalue-free: arguments are (ctx lightuserdata, LuaNode lightuserdata). */
static int
lua_node_call (lua_State *L)
{
  KdfNodeCtx *ctx = lua_touserdata (L, 1);
  LuaNode *ln = lua_touserdata (L, 2);
  lua_rawgeti (L, LUA_REGISTRYINDEX, ln->fn_ref);
  lua_createtable (L, 0, 4);
  for (guint i = 0; i < ln->inputs.n; i++) {
    const char *in = ln->inputs.specs[i].name;
    push_value (L, ln->inputs.types[i].kind, kdf_ctx_input_nth (ctx, in, 0));
    lua_setfield (L, -2, in);
  }
  lua_createtable (L, 0, 3);
  lua_pushinteger (L, kdf_ctx_tick (ctx));
  lua_setfield (L, -2, "tick");
  lua_pushstring (L, kdf_ctx_node_name (ctx));
  lua_setfield (L, -2, "node");
  lua_pushinteger (L, (lua_Integer) kdf_ctx_seed (ctx));
  lua_setfield (L, -2, "seed");
  lua_call (L, 2, 1);
  int ret = lua_gettop (L);
  if (lua_isnil (L, ret))
    return 0;
  if (!lua_istable (L, ret))
    return luaL_error (L, "a Lua node returns a table of outputs (or nil), got a %s",
                       luaL_typename (L, ret));
  lua_pushnil (L);
  while (lua_next (L, ret)) {
    const char *key = lua_type (L, -2) == LUA_TSTRING ? lua_tostring (L, -2) : NULL;
    const KdfPortSpec *port = NULL;
    const KdfPortType *type = NULL;
    for (guint i = 0; key && i < ln->outputs.n; i++)
      if (strcmp (ln->outputs.specs[i].name, key) == 0) {
        port = &ln->outputs.specs[i];
        type = &ln->outputs.types[i];
      }
    if (!port)
      return luaL_error (L, "returned an output '%s' that the node does not declare",
                         key ? key : luaL_typename (L, -2));
    KdfValueKind kind;
    gpointer value = NULL;
    char *why = NULL;
    if (!lua_output_value (L, lua_gettop (L), port, type, &kind, &value, &why)) {
      lua_pushstring (L, why);
      g_free (why);
      return lua_error (L);
    }
    if (kind == KDF_VALUE_TENSOR)
      kdf_ctx_set_output_tensor (ctx, port->name, value);
    else if (kind == KDF_VALUE_MODEL)
      kdf_ctx_set_output_model (ctx, port->name, value);
    else
      kdf_ctx_set_output_loss (ctx, port->name, value);
    lua_pop (L, 1);
  }
  return 0;
}

static gboolean
lua_node_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  LuaNode *ln = kdf_ctx_get_class_data (ctx);
  lua_State *L = running_L;
  if (!L) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_LUA, "a Lua node can only run from g:run in Lua");
    return FALSE;
  }
  int top = lua_gettop (L);
  lua_pushcfunction (L, lua_node_call);
  lua_pushlightuserdata (L, ctx);
  lua_pushlightuserdata (L, ln);
  if (lua_pcall (L, 2, 0, 0) != LUA_OK) {
    char *msg = kdf_lua_error_message (L, -1);
    g_set_error (error, KDF_ERROR, KDF_ERROR_NODE, "Lua error: %s", msg);
    g_free (msg);
    lua_settop (L, top);
    return FALSE;
  }
  lua_settop (L, top);
  return TRUE;
}

/* g:lua { name =, inputs = {...}, outputs = {...}, fn = function (inputs, ctx) ... end,
 *         every_tick = false, <inputs> } */
static int
graph_lua (lua_State *L)
{
  KdfGraph *g = check_graph (L, 1);
  luaL_checktype (L, 2, LUA_TTABLE);
  lua_getfield (L, 2, "fn");
  if (!lua_isfunction (L, -1))
    return luaL_error (L, "g:lua needs fn = function (inputs, ctx) ... end");
  lua_pop (L, 1);
  lua_getfield (L, 2, "name");
  const char *name = luaL_optstring (L, -1, NULL);
  lua_getfield (L, 2, "every_tick");
  gboolean every = lua_toboolean (L, -1);
  lua_pop (L, 2);
  char *why = NULL;
  PortList inputs, outputs;
  if (!read_port_decls (L, 2, "inputs", "g:lua", &inputs, &why))
    return raise_owned (L, why);
  if (!read_port_decls (L, 2, "outputs", "g:lua", &outputs, &why)) {
    port_list_clear (&inputs);
    return raise_owned (L, why);
  }
  LuaNode *ln = g_new0 (LuaNode, 1);
  ln->inputs = inputs;
  ln->outputs = outputs;
  lua_rawgeti (L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  ln->L = lua_tothread (L, -1);
  lua_pop (L, 1);
  lua_getfield (L, 2, "fn");
  ln->fn_ref = luaL_ref (L, LUA_REGISTRYINDEX);
  ln->klass.struct_size = sizeof (KdfNodeClass);
  ln->klass.name = g_strdup ("lua");
  ln->klass.summary = "a Lua function";
  ln->klass.inputs = ln->inputs.specs;
  ln->klass.outputs = ln->outputs.specs;
  ln->klass.run = lua_node_run;
  ln->klass.flags = KDF_NODE_CONTROL_THREAD | (every ? KDF_NODE_EVERY_TICK : 0);
  GError *error = NULL;
  KdfNode *n = kdf_graph_add_node_with_class (g, &ln->klass, name, ln, lua_node_free, &error);
  if (!n)
    return raise_gerror (L, error);
  set_origin (L, n);
  lua_newtable (L);
  for (guint i = 0; i < ln->inputs.n; i++) {
    lua_getfield (L, 2, ln->inputs.specs[i].name);
    lua_setfield (L, -2, ln->inputs.specs[i].name);
  }
  push_node (L, g, n);
  apply_or_remove (L, g, -2);
  lua_remove (L, -2);
  return 1;
}

/* ---- node handles ------------------------------------------------------------- */

static int
node_index (lua_State *L)
{
  NodeUD *ud = check_node (L, 1);
  const char *key = luaL_checkstring (L, 2);
  luaL_getmetafield (L, 1, "methods");
  lua_getfield (L, -1, key);
  if (!lua_isnil (L, -1))
    return 1;
  if (kdf_node_output_type (ud->n, key, NULL) || kdf_node_input_type (ud->n, key, NULL)) {
    push_port (L, 1, key);
    return 1;
  }
  return luaL_error (L, "node '%s' (%s) has no port or method '%s'", kdf_node_get_name (ud->n),
                     kdf_node_get_kind (ud->n), key);
}

static int
node_tostring (lua_State *L)
{
  NodeUD *ud = check_node (L, 1);
  lua_pushfstring (L, "node '%s' (%s)", kdf_node_get_name (ud->n), kdf_node_get_kind (ud->n));
  return 1;
}

/* n:port(name): a port handle even if a method has the same name */
static int
node_port (lua_State *L)
{
  NodeUD *ud = check_node (L, 1);
  const char *key = luaL_checkstring (L, 2);
  if (!kdf_node_output_type (ud->n, key, NULL) && !kdf_node_input_type (ud->n, key, NULL))
    return luaL_error (L, "node '%s' has no port '%s'", kdf_node_get_name (ud->n), key);
  push_port (L, 1, key);
  return 1;
}

/* n:set { params and inputs } or n:set(name, value) */
static int
node_set (lua_State *L)
{
  NodeUD *ud = check_node (L, 1);
  if (lua_istable (L, 2) && !is_port (L, 2)) {
    apply_table (L, ud->g, ud->n, 2);
    return 0;
  }
  const char *key = luaL_checkstring (L, 2);
  luaL_checkany (L, 3);
  lua_createtable (L, 0, 1);
  lua_pushvalue (L, 3);
  lua_setfield (L, -2, key);
  apply_table (L, ud->g, ud->n, -1);
  return 0;
}

/* n:output(port): the value of the last tick, or nil */
static int
node_output (lua_State *L)
{
  NodeUD *ud = check_node (L, 1);
  const char *port = luaL_checkstring (L, 2);
  if (!kdf_node_output_type (ud->n, port, NULL))
    return luaL_error (L, "node '%s' has no output '%s'", kdf_node_get_name (ud->n), port);
  KdfValueKind kind;
  gpointer v = kdf_node_get_output (ud->n, port, &kind);
  push_value (L, kind, v);
  return 1;
}

static int
node_name (lua_State *L)
{
  lua_pushstring (L, kdf_node_get_name (check_node (L, 1)->n));
  return 1;
}

static int
node_kind (lua_State *L)
{
  lua_pushstring (L, kdf_node_get_kind (check_node (L, 1)->n));
  return 1;
}

static int
node_stats (lua_State *L)
{
  KdfNodeStats s;
  kdf_node_get_stats (check_node (L, 1)->n, &s);
  lua_createtable (L, 0, 4);
  lua_pushinteger (L, s.calls);
  lua_setfield (L, -2, "calls");
  lua_pushnumber (L, s.seconds);
  lua_setfield (L, -2, "seconds");
  lua_pushnumber (L, s.last_seconds);
  lua_setfield (L, -2, "last_seconds");
  lua_pushinteger (L, s.last_threads);
  lua_setfield (L, -2, "threads");
  return 1;
}

/* port:value() → the producer's last value */
static int
port_value (lua_State *L)
{
  PortRef ref;
  read_port (L, 1, &ref);
  if (!kdf_node_output_type (ref.node->n, ref.port, NULL))
    return luaL_error (L, "'%s.%s' is an input port; only outputs have values",
                       kdf_node_get_name (ref.node->n), ref.port);
  KdfValueKind kind;
  gpointer v = kdf_node_get_output (ref.node->n, ref.port, &kind);
  push_value (L, kind, v);
  return 1;
}

static int
port_tostring (lua_State *L)
{
  PortRef ref;
  read_port (L, 1, &ref);
  lua_pushfstring (L, "port '%s.%s'", kdf_node_get_name (ref.node->n), ref.port);
  return 1;
}

/* ---- registry ----------------------------------------------------------------- */

static KdfRegistry *
check_registry (lua_State *L)
{
  GError *error = NULL;
  KdfRegistry *reg = kdf_registry_get_default (&error);
  if (!reg)
    raise_gerror (L, error);
  return reg;
}

static int
l_nodes (lua_State *L)
{
  KdfRegistry *reg = check_registry (L);
  g_autoptr (GPtrArray) names = kdf_registry_list (reg);
  lua_createtable (L, (int) names->len, 0);
  for (guint i = 0; i < names->len; i++) {
    lua_pushstring (L, names->pdata[i]);
    lua_rawseti (L, -2, i + 1);
  }
  return 1;
}

static void
push_ports (lua_State *L, const KdfPortSpec *ports)
{
  lua_newtable (L);
  for (guint i = 0; ports && ports[i].name; i++) {
    const KdfPortSpec *p = &ports[i];
    KdfPortType t;
    kdf_port_type_parse (p->type, &t, NULL); /* the registry checked it */
    lua_createtable (L, 0, 6);
    lua_pushstring (L, p->name);
    lua_setfield (L, -2, "name");
    g_autofree char *type = kdf_port_type_to_string (&t);
    lua_pushstring (L, type);
    lua_setfield (L, -2, "type");
    lua_pushstring (L, kdf_value_kind_name (t.kind));
    lua_setfield (L, -2, "kind");
    if (t.kind == KDF_VALUE_TENSOR) {
      lua_pushstring (L, kdf_dtype_name (t.dtype));
      lua_setfield (L, -2, "dtype");
      lua_pushinteger (L, t.rank);
      lua_setfield (L, -2, "rank");
    }
    if (t.rank >= 0) {
      lua_pushstring (L, t.shape);
      lua_setfield (L, -2, "shape");
    }
    lua_pushboolean (L, (p->flags & KDF_PORT_OPTIONAL) != 0);
    lua_setfield (L, -2, "optional");
    lua_pushboolean (L, (p->flags & KDF_PORT_MULTI) != 0);
    lua_setfield (L, -2, "multi");
    lua_pushboolean (L, (p->flags & KDF_PORT_ORACLE) != 0);
    lua_setfield (L, -2, "oracle");
    if (p->summary) {
      lua_pushstring (L, p->summary);
      lua_setfield (L, -2, "summary");
    }
    lua_rawseti (L, -2, i + 1);
  }
}

/* kdf.describe(kind) → { name, summary, file, inputs, outputs, params } */
static int
l_describe (lua_State *L)
{
  KdfRegistry *reg = check_registry (L);
  const char *kind = luaL_checkstring (L, 1);
  const KdfNodeClass *k = kdf_registry_lookup (reg, kind);
  if (!k) {
    g_autofree char *hint = kdf_registry_suggest (reg, kind);
    lua_pushnil (L);
    lua_pushfstring (L, "unknown node kind '%s'%s", kind, hint);
    return 2;
  }
  lua_createtable (L, 0, 6);
  lua_pushstring (L, k->name);
  lua_setfield (L, -2, "name");
  lua_pushstring (L, k->summary ? k->summary : "");
  lua_setfield (L, -2, "summary");
  lua_pushstring (L, kdf_registry_origin (reg, kind));
  lua_setfield (L, -2, "file");
  push_ports (L, k->inputs);
  lua_setfield (L, -2, "inputs");
  push_ports (L, k->outputs);
  lua_setfield (L, -2, "outputs");
  lua_newtable (L);
  for (guint i = 0; k->params && k->params[i].name; i++) {
    const KdfParamSpec *p = &k->params[i];
    lua_createtable (L, 0, 6);
    lua_pushstring (L, p->name);
    lua_setfield (L, -2, "name");
    lua_pushstring (L, kdf_param_type_name (p->type));
    lua_setfield (L, -2, "type");
    if (p->type == KDF_PARAM_STRING || p->type == KDF_PARAM_ENUM)
      lua_pushstring (L, p->def_string);
    else if (p->type == KDF_PARAM_BOOL)
      lua_pushboolean (L, p->def != 0);
    else
      lua_pushnumber (L, p->def);
    lua_setfield (L, -2, "default");
    if (!(p->min == 0 && p->max == 0)) {
      lua_pushnumber (L, p->min);
      lua_setfield (L, -2, "min");
      lua_pushnumber (L, p->max);
      lua_setfield (L, -2, "max");
    }
    if (p->choices) {
      lua_newtable (L);
      for (int c = 0; p->choices[c].name; c++) {
        lua_pushstring (L, p->choices[c].name);
        lua_rawseti (L, -2, c + 1);
      }
      lua_setfield (L, -2, "choices");
    }
    lua_pushboolean (L, (p->flags & KDF_PARAM_REQUIRED) != 0);
    lua_setfield (L, -2, "required");
    if (p->summary) {
      lua_pushstring (L, p->summary);
      lua_setfield (L, -2, "summary");
    }
    lua_rawseti (L, -2, i + 1);
  }
  lua_setfield (L, -2, "params");
  return 1;
}

/* kdf.load_plugin(path) → true or nil, message */
static int
l_load_plugin (lua_State *L)
{
  KdfRegistry *reg = check_registry (L);
  const char *path = luaL_checkstring (L, 1);
  GError *error = NULL;
  if (!kdf_registry_load_file (reg, path, &error)) {
    lua_pushnil (L);
    lua_pushstring (L, error->message);
    g_error_free (error);
    return 2;
  }
  lua_pushboolean (L, 1);
  return 1;
}

/* kdf.run_dir() → the run directory `kdflow run` gives graphs (--out), or nil */
static int
l_run_dir (lua_State *L)
{
  const KdfLuaConfig *config = get_config (L);
  if (config->run_dir && !config->dot_only) {
    g_mkdir_with_parents (config->run_dir, 0755);
    lua_pushstring (L, config->run_dir);
  } else {
    lua_pushnil (L);
  }
  return 1;
}

/* kdf.clock() → seconds on a monotonic wall clock (for timing stages) */
static int
l_clock (lua_State *L)
{
  lua_pushnumber (L, (lua_Number) g_get_monotonic_time () * 1e-6);
  return 1;
}

/* ---- args --------------------------------------------------------------------- */

static int
args_index (lua_State *L)
{
  /* args[key]: record the read, then look in the raw values */
  lua_getfield (L, LUA_REGISTRYINDEX, ARGS_READ_KEY);
  if (lua_istable (L, -1)) {
    lua_pushvalue (L, 2);
    lua_pushboolean (L, 1);
    lua_rawset (L, -3);
  }
  lua_pop (L, 1);
  lua_getmetatable (L, 1);
  lua_getfield (L, -1, "values");
  lua_pushvalue (L, 2);
  lua_rawget (L, -2);
  return 1;
}

static void
push_args (lua_State *L)
{
  lua_getfield (L, LUA_REGISTRYINDEX, ARGS_KEY);
  if (!lua_isnil (L, -1))
    return;
  lua_pop (L, 1);
  lua_newtable (L);                  /* the proxy */
  lua_createtable (L, 0, 3);         /* its metatable */
  lua_newtable (L);
  lua_setfield (L, -2, "values");
  lua_pushcfunction (L, args_index);
  lua_setfield (L, -2, "__index");
  lua_setmetatable (L, -2);
  lua_pushvalue (L, -1);
  lua_setfield (L, LUA_REGISTRYINDEX, ARGS_KEY);
  lua_newtable (L);
  lua_setfield (L, LUA_REGISTRYINDEX, ARGS_READ_KEY);
}

void
kdf_lua_set_args (lua_State *L, char **pairs)
{
  push_args (L);
  lua_getmetatable (L, -1);
  lua_getfield (L, -1, "values");
  for (char **p = pairs; p && *p; p++) {
    const char *eq = strchr (*p, '=');
    if (!eq)
      continue;
    lua_pushlstring (L, *p, (size_t) (eq - *p));
    lua_pushstring (L, eq + 1);
    lua_rawset (L, -3);
  }
  lua_pop (L, 2);
  lua_setglobal (L, "args");
}

char **
kdf_lua_unread_args (lua_State *L)
{
  GPtrArray *out = g_ptr_array_new ();
  push_args (L);
  lua_getmetatable (L, -1);
  lua_getfield (L, -1, "values");
  lua_getfield (L, LUA_REGISTRYINDEX, ARGS_READ_KEY);
  lua_pushnil (L);
  while (lua_next (L, -3)) {
    lua_pop (L, 1);
    lua_pushvalue (L, -1);
    lua_rawget (L, -3);
    if (!lua_toboolean (L, -1))
      g_ptr_array_add (out, g_strdup (lua_tostring (L, -2)));
    lua_pop (L, 1);
  }
  lua_pop (L, 4);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

/* ---- the module --------------------------------------------------------------- */

/* Helpers that are clearer in Lua than in C: typed args and schedules. */
static const char module_lua[] =
    "local kdf = ...\n"
    "function kdf.arg(name, default)\n"
    "  local v = kdf.args[name]\n"
    "  if v == nil then return default end\n"
    "  local t = type(default)\n"
    "  if t == 'number' then\n"
    "    local n = tonumber(v)\n"
    "    if n == nil then error(('--set %s=%s: a number is expected'):format(name, v), 2) end\n"
    "    if math.type(default) == 'integer' then\n"
    "      if math.type(n) ~= 'integer' and n ~= math.floor(n) then\n"
    "        error(('--set %s=%s: an integer is expected'):format(name, v), 2) end\n"
    "      n = math.tointeger(n)\n"
    "    end\n"
    "    return n\n"
    "  elseif t == 'boolean' then\n"
    "    if v == 'true' or v == '1' or v == 'yes' then return true end\n"
    "    if v == 'false' or v == '0' or v == 'no' then return false end\n"
    "    error(('--set %s=%s: true or false is expected'):format(name, v), 2)\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "local function schedule(desc, f)\n"
    "  return setmetatable({ desc = desc }, { __call = function(_, t) return f(t) end })\n"
    "end\n"
    "-- from a at tick 0 to b at tick n, then b\n"
    "function kdf.linear(a, b, n)\n"
    "  return schedule(('linear(%g, %g, %d)'):format(a, b, n), function(t)\n"
    "    if t >= n then return b end\n"
    "    return a + (b - a) * t / n end)\n"
    "end\n"
    "-- cosine from a at tick 0 to b at tick n\n"
    "function kdf.cosine(a, b, n)\n"
    "  return schedule(('cosine(%g, %g, %d)'):format(a, b, n), function(t)\n"
    "    if t >= n then return b end\n"
    "    return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t / n)) end)\n"
    "end\n"
    "-- a, multiplied by gamma at every tick in milestones\n"
    "function kdf.step(a, gamma, milestones)\n"
    "  return schedule(('step(%g, %g, {%s})'):format(a, gamma, table.concat(milestones, ',')),\n"
    "    function(t)\n"
    "      local v = a\n"
    "      for _, m in ipairs(milestones) do if t >= m then v = v * gamma end end\n"
    "      return v end)\n"
    "end\n"
    "-- linear warm-up from 0 over n ticks, then the schedule (or value) s\n"
    "function kdf.warmup(n, s)\n"
    "  local desc = type(s) == 'table' and s.desc or tostring(s)\n"
    "  return schedule(('warmup(%d, %s)'):format(n, desc), function(t)\n"
    "    local v = type(s) == 'number' and s or s(t)\n"
    "    if t < n then return v * (t + 1) / (n + 1) end\n"
    "    return v end)\n"
    "end\n"
    "-- an architecture from a Lua table, as the seq: string student_update takes:\n"
    "-- kdf.arch { input = {1, 28, 28}, {'conv', 32, k = 3, p = 1}, 'relu', {'max', 2},\n"
    "--            'flatten', {'linear', 256}, 'relu', 'tap', {'linear', 10} }\n"
    "function kdf.arch(t)\n"
    "  if type(t) ~= 'table' or type(t.input) ~= 'table' or #t.input == 0 then\n"
    "    error('kdf.arch: give input = {D} or {C, H, W} and a list of layers', 2) end\n"
    "  local parts = { table.concat(t.input, 'x') }\n"
    "  for i, l in ipairs(t) do\n"
    "    local kind = type(l) == 'table' and l[1] or l\n"
    "    local s\n"
    "    if kind == 'linear' then s = 'linear' .. assert(tonumber(l[2]), 'linear needs a width')\n"
    "      if l.bias == false then s = s .. 'nb' end\n"
    "    elseif kind == 'conv' then\n"
    "      s = 'conv' .. assert(tonumber(l[2]), 'conv needs channels') .. 'k' .. (l.k or 3) ..\n"
    "          's' .. (l.s or 1) .. 'p' .. (l.p or 1)\n"
    "      if l.bias == false then s = s .. 'nb' end\n"
    "    elseif kind == 'max' then local k = type(l) == 'table' and l[2] or 2\n"
    "      s = 'max' .. k .. 's' .. (type(l) == 'table' and l.s or k)\n"
    "    elseif kind == 'dropout' then s = 'drop' .. assert(tonumber(l[2]), 'dropout needs p')\n"
    "    elseif kind == 'relu' or kind == 'flatten' or kind == 'l2norm' or kind == 'tap' then s = kind\n"
    "    else error(('kdf.arch: layer %d: unknown kind %s'):format(i, tostring(kind)), 2) end\n"
    "    parts[#parts + 1] = s\n"
    "  end\n"
    "  return 'seq:' .. table.concat(parts, '-')\n"
    "end\n"
    "-- port wrappers for params tables: a delayed or an oracle edge\n"
    "function kdf.delay(port, d, initial)\n"
    "  local p = setmetatable({}, getmetatable(port))\n"
    "  for k, v in pairs(port) do p[k] = v end\n"
    "  p.delay = d or 1; p.initial = initial\n"
    "  return p\n"
    "end\n"
    "function kdf.oracle(port)\n"
    "  local p = setmetatable({}, getmetatable(port))\n"
    "  for k, v in pairs(port) do p[k] = v end\n"
    "  p.oracle = true\n"
    "  return p\n"
    "end\n"
    "return kdf\n";

static void
new_metatable (lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
  luaL_newmetatable (L, name);
  luaL_setfuncs (L, meta, 0);
  if (methods) {
    lua_newtable (L);
    luaL_setfuncs (L, methods, 0);
    lua_setfield (L, -2, "methods");
  }
  lua_pop (L, 1);
}

int
luaopen_kdflow (lua_State *L)
{
  luaL_checkversion (L);
  kdf_init ();

  static const luaL_Reg graph_meta[] = { { "__gc", graph_gc }, { "__close", graph_gc },
                                         { "__index", graph_index },
                                         { "__tostring", graph_tostring }, { NULL, NULL } };
  static const luaL_Reg graph_methods[] = {
    { "node", graph_node },       { "connect", graph_connect }, { "foreign", graph_foreign },
    { "lua", graph_lua },         { "prepare", graph_prepare }, { "disconnect", graph_disconnect }, { "run", graph_run },
    { "dot", graph_dot },         { "write_dot", graph_write_dot }, { "tick", graph_tick },
    { "find", graph_find },       { "stats", graph_stats },     { NULL, NULL } };
  new_metatable (L, GRAPH_MT, graph_meta, graph_methods);

  static const luaL_Reg node_meta[] = { { "__gc", node_gc }, { "__index", node_index },
                                        { "__tostring", node_tostring }, { NULL, NULL } };
  static const luaL_Reg node_methods[] = { { "port", node_port },   { "set", node_set },
                                           { "output", node_output }, { "name", node_name },
                                           { "kind", node_kind },   { "stats", node_stats },
                                           { NULL, NULL } };
  new_metatable (L, NODE_MT, node_meta, node_methods);

  static const luaL_Reg port_meta[] = { { "__tostring", port_tostring }, { NULL, NULL } };
  luaL_newmetatable (L, PORT_MT);
  luaL_setfuncs (L, port_meta, 0);
  lua_newtable (L);
  lua_pushcfunction (L, port_value);
  lua_setfield (L, -2, "value");
  lua_setfield (L, -2, "__index");
  lua_pop (L, 1);

  static const luaL_Reg tensor_meta[] = { { "__gc", tensor_gc }, { "__index", tensor_index },
                                          { "__tostring", tensor_tostring },
                                          { "__len", tensor_len }, { NULL, NULL } };
  static const luaL_Reg tensor_methods[] = { { "shape", tensor_shape },   { "get", tensor_get },
                                             { "item", tensor_item },     { "totable", tensor_totable },
                                             { "numel", tensor_numel },   { "sum", tensor_sum },
                                             { NULL, NULL } };
  new_metatable (L, TENSOR_MT, tensor_meta, tensor_methods);

  static const luaL_Reg object_meta[] = { { "__gc", object_gc }, { "__tostring", object_tostring },
                                          { NULL, NULL } };
  new_metatable (L, OBJECT_MT, object_meta, NULL);

  static const luaL_Reg error_meta[] = { { "__tostring", error_tostring }, { NULL, NULL } };
  new_metatable (L, ERROR_MT, error_meta, NULL);

  static const luaL_Reg funcs[] = { { "graph", l_graph },       { "tensor", l_tensor },
                                    { "zeros", l_zeros },       { "nodes", l_nodes },
                                    { "describe", l_describe }, { "load_plugin", l_load_plugin },
                                    { "run_dir", l_run_dir },   { "clock", l_clock },
                                    { NULL, NULL } };
  luaL_newlib (L, funcs);
  lua_pushstring (L, KDF_VERSION);
  lua_setfield (L, -2, "version");
  push_args (L);
  lua_setfield (L, -2, "args");
  if (luaL_loadbuffer (L, module_lua, sizeof module_lua - 1, "=kdflow") != LUA_OK)
    return lua_error (L);
  lua_pushvalue (L, -2);
  lua_call (L, 1, 1);
  return 1;
}
