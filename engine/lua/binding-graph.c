/* The `kdflow` Lua module: graph wiring. kdf.graph and the graph's methods (g:node,
 * g:connect, g:disconnect, g:prepare, g:run, g:dot, ...), node handles and their
 * ports, the params-and-inputs tables that set params and make edges, schedules (a
 * Lua function of the tick as a param) and constants (a tensor or a model given for
 * an input). g:lua and g:foreign live in binding-luanode.c and binding-foreign.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kdflow/kdflow-plugin.h> /* KDF_PORT_MULTI */

#include "binding-private.h"

/* The state running g:run on this thread: Lua nodes and schedules call back into it. */
static __thread lua_State *running_L;

lua_State *
kdf_lua_running_state (void)
{
  return running_L;
}

/* ---- graphs ------------------------------------------------------------------- */

KdfGraph *
kdf_lua_check_graph (lua_State *L, int index)
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

void
kdf_lua_push_node (lua_State *L, KdfGraph *g, KdfNode *n)
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
  memset (ud, 0, sizeof *ud);
  luaL_setmetatable (L, GRAPH_MT);
  ud->g = kdf_graph_new (name, (guint64) seed);
  /* `kdflow dot` draws the last graph a script built if it ran none; only then is a
   * reference kept here: otherwise it would keep a finished stage's graph (its data,
   * models, outputs) alive until the next kdf.graph and the next collection */
  const KdfLuaConfig *config = kdf_lua_get_config (L);
  if (config && config->dot_only) {
    lua_pushvalue (L, -1);
    lua_setfield (L, LUA_REGISTRYINDEX, LAST_GRAPH_KEY);
  }
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
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
    lua_Integer d = kdf_lua_check_count (L, -1, "delay", 0, 1000000);
    ref->opts.delay = (guint) d;
  }
  lua_getfield (L, index, "oracle");
  ref->opts.oracle = lua_toboolean (L, -1);
  lua_pop (L, 2);
  lua_getfield (L, index, "initial");
  if (!lua_isnil (L, -1)) {
    ref->opts.initial = kdf_lua_push_tensor_value (L, -1, KDF_DTYPE_F32);
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
    lua_Integer d = kdf_lua_check_count (L, -1, "delay", 0, 1000000);
    ref->opts.delay = (guint) d;
  }
  lua_getfield (L, opts, "oracle");
  if (!lua_isnil (L, -1))
    ref->opts.oracle = lua_toboolean (L, -1);
  lua_pop (L, 2);
  lua_getfield (L, opts, "initial");
  if (!lua_isnil (L, -1)) {
    ref->opts.initial = kdf_lua_push_tensor_value (L, -1, initial_dtype);
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
    kdf_lua_raise_gerror (L, error);
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

/* A tensor given for an input becomes a constant node. */
static void
connect_constant (lua_State *L, KdfGraph *g, KdfNode *dst, const char *port,
                  const KdfPortType *in, int value)
{
  KdfTensor *t = kdf_lua_push_tensor_value (L, value, kdf_lua_input_dtype (in));
  char *name = g_strdup_printf ("%s.%s", kdf_node_get_name (dst), port);
  for (guint k = 2; kdf_graph_find_node (g, name); k++) {
    g_free (name);
    name = g_strdup_printf ("%s.%s.%u", kdf_node_get_name (dst), port, k);
  }
  GError *error = NULL;
  KdfNode *c = kdf_graph_add_constant (g, name, t, &error);
  g_free (name);
  if (!c || !kdf_graph_connect (g, c, "value", dst, port, NULL, &error))
    kdf_lua_raise_gerror (L, error);
  /* a value read from another graph: an edge between the two in the drawing */
  kdf_lua_dot_carry (L, value, g, c);
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
    kdf_lua_raise_gerror (L, error);
  kdf_lua_dot_carry (L, value, g, c);
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
    kdf_lua_raise_gerror (L, error);
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
                 lua_geti (L, v, 1) != LUA_TNIL && (is_port (L, -1) || kdf_lua_to_tensor (L, -1))) {
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
void
kdf_lua_apply_or_remove (lua_State *L, KdfGraph *g, int t)
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

void
kdf_lua_set_origin (lua_State *L, KdfNode *n)
{
  char *origin = where_string (L);
  kdf_node_set_origin (n, origin);
  g_free (origin);
}

/* g:node(kind [, params_and_inputs]) */
static int
graph_node (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
    return kdf_lua_raise_gerror (L, error);
  kdf_lua_set_origin (L, n);
  kdf_lua_push_node (L, g, n);
  if (lua_istable (L, 3))
    kdf_lua_apply_or_remove (L, g, 3);
  return 1;
}

/* g:connect(src_port, dst_port [, { delay = 1, oracle = true, initial = ... }]) */
static int
graph_connect (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  luaL_argcheck (L, is_port (L, 2), 2, "an output port expected (node.port)");
  luaL_argcheck (L, is_port (L, 3), 3, "an input port expected (node.port)");
  PortRef dst, src;
  read_port (L, 3, &dst);
  const KdfPortType *in = kdf_node_input_type (dst.node->n, dst.port, NULL);
  read_port (L, 2, &src);
  read_edge_options (L, 4, &src, in ? kdf_lua_input_dtype (in) : KDF_DTYPE_F32);
  connect_ref (L, g, &src, dst.node->n, dst.port);
  return 0;
}

/* g:disconnect(node.port) → edges removed from that input */
static int
graph_disconnect (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  luaL_argcheck (L, is_port (L, 2), 2, "an input port expected (node.port)");
  PortRef ref;
  read_port (L, 2, &ref);
  if (ref.node->g != g)
    return luaL_error (L, "the port is in another graph");
  GError *error = NULL;
  guint n = kdf_graph_disconnect (g, ref.node->n, ref.port, &error);
  if (error)
    return kdf_lua_raise_gerror (L, error);
  lua_pushinteger (L, n);
  return 1;
}

static int
graph_prepare (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  GError *error = NULL;
  if (!kdf_graph_prepare (g, &error))
    return kdf_lua_raise_gerror (L, error);
  lua_pushboolean (L, 1);
  return 1;
}

static int
graph_dot (lua_State *L)
{
  g_autofree char *dot = kdf_graph_to_dot (kdf_lua_check_graph (L, 1));
  lua_pushstring (L, dot);
  return 1;
}

static int
graph_write_dot (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
  GraphUD *ud;
} Progress;

static void
format_duration (char *buf, gsize size, double s)
{
  if (s < 1)
    g_snprintf (buf, size, "<1 s");
  else if (s < 60)
    g_snprintf (buf, size, "%.0f s", s);
  else if (s < 3600)
    g_snprintf (buf, size, "%dm%02ds", (int) s / 60, (int) s % 60);
  else
    g_snprintf (buf, size, "%dh%02dm", (int) s / 3600, ((int) s % 3600) / 60);
}

/* The last tick's numbers a person watches: the first NODE.loss, the first accuracy
 * of a node whose name says validation ("val") and the first other accuracy (test). */
static char *
tick_numbers (KdfGraph *g)
{
  double loss = NAN, acc = NAN, val = NAN, v;
  const char *key;
  for (guint i = 0; (key = kdf_graph_metric (g, i, &v)); i++) {
    if (g_str_has_suffix (key, ".loss") && isnan (loss))
      loss = v;
    else if (g_str_has_suffix (key, ".accuracy")) {
      g_autofree char *node = g_strndup (key, strlen (key) - strlen (".accuracy"));
      g_auto (GStrv) parts = g_strsplit (node, "_", -1);
      if (g_strv_contains ((const char *const *) parts, "val")) {
        if (isnan (val))
          val = v;
      } else if (isnan (acc))
        acc = v;
    }
  }
  GString *out = g_string_new (NULL);
  if (!isnan (loss))
    g_string_append_printf (out, "  loss %.4f", loss);
  if (!isnan (acc))
    g_string_append_printf (out, "  acc %.4f", acc);
  if (!isnan (val))
    g_string_append_printf (out, "  val %.4f", val);
  return g_string_free (out, FALSE);
}

/* A bar on a terminal (rewritten in place); elsewhere a line per finished tick. Both
 * say the epoch (a tick: one epoch of every trainer) out of the ticks planned (g:run's
 * `total`, else this run's last), the last tick's loss and accuracy, the time so far
 * and, with a total, an ETA from the mean time per tick since the graph's first run. */
static void
print_progress (const KdfProgress *p, gpointer user_data)
{
  Progress *pr = user_data;
  if (pr->quiet)
    return;
  GraphUD *ud = pr->ud;
  KdfGraph *g = ud->g;
  guint total = MAX (ud->total, p->ticks_total);
  double done = p->tick + (p->tick_done ? 1.0 : (double) p->nodes_done / MAX (1, p->nodes_total));
  double elapsed = (double) (g_get_monotonic_time () - ud->t_first) * 1e-6;
  /* the first tick also loads data: once it is done, the rate counts the ticks after */
  if (p->tick_done && p->tick == ud->tick_first)
    ud->t_first_done = g_get_monotonic_time ();
  double since = done - ud->tick_first, base = elapsed;
  if (ud->t_first_done && done > ud->tick_first + 1) {
    since = done - ud->tick_first - 1;
    base = (double) (g_get_monotonic_time () - ud->t_first_done) * 1e-6;
  }
  char eta[32] = "", spent[32];
  format_duration (spent, sizeof spent, elapsed);
  if (total > 1 && since > 0 && done < total) {
    char d[24];
    format_duration (d, sizeof d, base / since * (total - done));
    g_snprintf (eta, sizeof eta, "  ETA %s", d);
  }
  g_autofree char *numbers = p->tick_done || p->tick > 0 ? tick_numbers (g) : g_strdup ("");
  const char *name = kdf_graph_get_name (g);
  if (pr->tty) {
    double frac = total ? done / total : 0;
    int width = 20, fill = (int) (CLAMP (frac, 0, 1) * width);
    char bar[32];
    for (int i = 0; i < width; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    g_autofree char *node = p->tick_done || !p->node ? g_strdup ("")
                            : p->node_fraction >= 0
                                ? g_strdup_printf ("  %s %3.0f%%", p->node, p->node_fraction * 100)
                                : g_strdup_printf ("  %s", p->node);
    fprintf (stderr, "\r\033[K[%s] %s epoch %u/%u%s%s  %s%s", bar, name,
             p->tick_done ? p->tick + 1 : MIN (p->tick + 1, total), total, node, numbers, spent,
             eta);
    if (p->tick_done && p->tick + 1 >= total)
      fputc ('\n', stderr);
    fflush (stderr);
  } else if (p->tick_done && total > 1) {
    fprintf (stderr, "%s: epoch %u/%u%s  %s%s\n", name, p->tick + 1, total, numbers, spent, eta);
    fflush (stderr);
  }
}

/* A node's warning: on its own line, clear of the progress bar; nothing under --quiet
 * (summary.json keeps it either way). */
static void
print_warning (const char *message, gpointer user_data)
{
  Progress *pr = user_data;
  if (pr->quiet)
    return;
  fprintf (stderr, "%swarning: %s\n", pr->tty ? "\r\033[K" : "", message);
  fflush (stderr);
}

/* g:run { ticks = E, threads = N, out = DIR } */
static int
graph_run (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  GraphUD *ud = luaL_checkudata (L, 1, GRAPH_MT);
  const KdfLuaConfig *config = kdf_lua_get_config (L);
  guint total = 0;
  KdfRunOptions opts = { 0 };
  opts.ticks = 1;
  opts.threads = config->threads;
  const char *out = config->run_dir;
  if (!lua_isnoneornil (L, 2)) {
    luaL_checktype (L, 2, LUA_TTABLE);
    lua_getfield (L, 2, "ticks");
    if (!lua_isnil (L, -1)) {
      opts.ticks = (guint) kdf_lua_check_count (L, -1, "g:run: ticks", 1, G_MAXINT32);
    }
    lua_getfield (L, 2, "threads");
    if (!lua_isnil (L, -1))
      opts.threads = (int) kdf_lua_check_count (L, -1, "g:run: threads", 1, 1024);
    lua_getfield (L, 2, "out");
    if (!lua_isnil (L, -1))
      out = luaL_checkstring (L, -1);
    lua_getfield (L, 2, "total");
    if (!lua_isnil (L, -1))
      total = (guint) kdf_lua_check_count (L, -1, "g:run: total", 1, G_MAXINT32);
    lua_pop (L, 4);
  }
  GError *error = NULL;
  if (config->dot_only) {
    /* `kdflow dot`: check and draw the graph as one of the script's stages; no node
     * runs (port:value() gives placeholders) and the script goes on */
    if (!kdf_graph_prepare (g, &error))
      return kdf_lua_raise_gerror (L, error);
    kdf_lua_dot_record (L, g, opts.ticks);
    lua_pushboolean (L, 1);
    return 1;
  }
  /* a directory this script has not used yet must be fresh (or --replace) */
  if (out && !kdf_lua_claim_run_dir (L, out, &error))
    return kdf_lua_raise_gerror (L, error);
  if (total)
    ud->total = total;
  if (!ud->t_first) {
    ud->t_first = g_get_monotonic_time ();
    ud->tick_first = kdf_graph_get_tick (g);
  }
  Progress pr = { isatty (2), config->quiet, ud };
  opts.run_dir = out;
  opts.progress = print_progress;
  opts.warning = print_warning;
  opts.quiet = config->quiet;
  opts.user_data = &pr;
  lua_State *saved = running_L;
  running_L = L;
  gboolean ok = kdf_graph_run (g, &opts, &error);
  running_L = saved;
  /* the drawing of the script's stages (stages.dot) */
  kdf_lua_dot_record (L, g, opts.ticks);
  if (!ok) {
    if (pr.tty && !pr.quiet)
      fputc ('\n', stderr);
    return kdf_lua_raise_gerror (L, error);
  }
  lua_pushboolean (L, 1);
  return 1;
}

/* g:metrics() → { ["node.key"] = value, ... }: what the last tick recorded */
static int
graph_metrics (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  lua_createtable (L, 0, (int) kdf_graph_n_metrics (g));
  double v;
  const char *key;
  for (guint i = 0; (key = kdf_graph_metric (g, i, &v)); i++) {
    lua_pushnumber (L, v);
    lua_setfield (L, -2, key);
  }
  return 1;
}

static int
graph_tick (lua_State *L)
{
  lua_pushinteger (L, kdf_graph_get_tick (kdf_lua_check_graph (L, 1)));
  return 1;
}

/* g:find(name) → node or nil */
static int
graph_find (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  KdfNode *n = kdf_graph_find_node (g, luaL_checkstring (L, 2));
  if (!n)
    lua_pushnil (L);
  else
    kdf_lua_push_node (L, g, n);
  return 1;
}

static int
graph_stats (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
  KdfGraph *g = kdf_lua_check_graph (L, 1);
  if (lua_type (L, 2) != LUA_TSTRING) {
    lua_pushnil (L);
    return 1;
  }
  const char *key = lua_tostring (L, 2);
  if (strcmp (key, "name") == 0) {
    lua_pushstring (L, kdf_graph_get_name (g));
    return 1;
  }
  if (strcmp (key, "seed") == 0) {
    lua_pushinteger (L, (lua_Integer) kdf_graph_get_seed (g));
    return 1;
  }
  luaL_getmetafield (L, 1, "methods");
  if (lua_getfield (L, -1, key) != LUA_TNIL)
    return 1;
  static const char *const fields[] = { "name", "seed", NULL };
  const char *what = lua_pushfstring (L, "graph '%s'", kdf_graph_get_name (g));
  return kdf_lua_no_member (L, 1, 2, what, "method or field", fields, NULL);
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
  const char *what = lua_pushfstring (L, "node '%s' (%s)", kdf_node_get_name (ud->n),
                                     kdf_node_get_kind (ud->n));
  return kdf_lua_no_member (L, 1, 2, what, "port or method", NULL, kdf_node_port_names (ud->n));
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
  kdf_lua_push_value (L, kind, v);
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
  if (!v && kdf_lua_get_config (L)->dot_only) {
    /* `kdflow dot`: nothing ran; what the script reads lets it build its next stage */
    kdf_lua_dot_push_placeholder (L, ref.node->n, ref.port);
    return 1;
  }
  kdf_lua_push_value (L, kind, v);
  kdf_lua_set_origin_top (L, ref.node->n, ref.port);
  return 1;
}

static int
port_index (lua_State *L)
{
  luaL_getmetafield (L, 1, "methods");
  if (lua_type (L, 2) == LUA_TSTRING && lua_getfield (L, -1, lua_tostring (L, 2)) != LUA_TNIL)
    return 1;
  /* a port table's own fields, absent when unset (kdf.delay, kdf.oracle set them); the
   * binding reads them with lua_getfield, so they must give nil, not an error */
  static const char *const fields[] = { "node", "port", "delay", "initial", "oracle", NULL };
  for (int i = 0; lua_type (L, 2) == LUA_TSTRING && fields[i]; i++)
    if (strcmp (lua_tostring (L, 2), fields[i]) == 0) {
      lua_pushnil (L);
      return 1;
    }
  /* raw reads only: read_port's lua_getfield would come back here */
  lua_pushliteral (L, "port");
  lua_rawget (L, 1);
  const char *port = lua_tostring (L, -1);
  lua_pushliteral (L, "node");
  lua_rawget (L, 1);
  NodeUD *ud = luaL_testudata (L, -1, NODE_MT);
  const char *what = lua_pushfstring (L, "port '%s.%s'", ud ? kdf_node_get_name (ud->n) : "?",
                                      port ? port : "?");
  return kdf_lua_no_member (L, 1, 2, what, "method", NULL, NULL);
}

static int
port_tostring (lua_State *L)
{
  PortRef ref;
  read_port (L, 1, &ref);
  lua_pushfstring (L, "port '%s.%s'", kdf_node_get_name (ref.node->n), ref.port);
  return 1;
}

/* ---- registration ------------------------------------------------------------- */

void
kdf_lua_open_graph (lua_State *L)
{
  static const luaL_Reg graph_meta[] = { { "__gc", graph_gc }, { "__close", graph_gc },
                                         { "__index", graph_index },
                                         { "__tostring", graph_tostring }, { NULL, NULL } };
  static const luaL_Reg graph_methods[] = {
    { "node", graph_node },       { "connect", graph_connect }, { "foreign", kdf_lua_graph_foreign },
    { "lua", kdf_lua_graph_lua }, { "prepare", graph_prepare }, { "disconnect", graph_disconnect }, { "run", graph_run },
    { "dot", graph_dot },         { "write_dot", graph_write_dot }, { "tick", graph_tick },
    { "metrics", graph_metrics },
    { "find", graph_find },       { "stats", graph_stats },     { NULL, NULL } };
  kdf_lua_new_metatable (L, GRAPH_MT, graph_meta, graph_methods);

  static const luaL_Reg node_meta[] = { { "__gc", node_gc }, { "__index", node_index },
                                        { "__tostring", node_tostring }, { NULL, NULL } };
  static const luaL_Reg node_methods[] = { { "port", node_port },   { "set", node_set },
                                           { "output", node_output }, { "name", node_name },
                                           { "kind", node_kind },   { "stats", node_stats },
                                           { NULL, NULL } };
  kdf_lua_new_metatable (L, NODE_MT, node_meta, node_methods);

  static const luaL_Reg port_meta[] = { { "__tostring", port_tostring }, { "__index", port_index },
                                        { NULL, NULL } };
  static const luaL_Reg port_methods[] = { { "value", port_value }, { NULL, NULL } };
  kdf_lua_new_metatable (L, PORT_MT, port_meta, port_methods);

  static const luaL_Reg funcs[] = { { "graph", l_graph }, { NULL, NULL } };
  luaL_setfuncs (L, funcs, 0);
}
