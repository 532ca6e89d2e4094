/* The `kdflow` Lua module: g:lua, a node whose run is a Lua function. Each call makes
 * a node class at run time from the declared ports ("x:f32[N]", "m:model", "y:f32[N]?")
 * — hence kdflow-plugin.h — and the node runs on the control thread in the Lua state
 * that called g:run. */
#include <string.h>

#include <kdflow/kdflow-plugin.h>

#include "binding-private.h"

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
    KdfTensor *t = kdf_lua_to_tensor (L, index);
    if (t) {
      *value = kdf_tensor_ref (t);
    } else if (lua_isnumber (L, index) || lua_isboolean (L, index) || lua_istable (L, index)) {
      /* tables and numbers: we run under the caller's pcall */
      *value = kdf_tensor_ref (kdf_lua_push_tensor_value (L, index, kdf_lua_input_dtype (port)));
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
    gpointer v = kdf_ctx_input_nth (ctx, in, 0);
    if (v && ln->inputs.types[i].kind == KDF_VALUE_TENSOR)
      kdf_lua_push_tensor_unlocked (L, v);
    else
      kdf_lua_push_value (L, ln->inputs.types[i].kind, v);
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
  lua_State *L = kdf_lua_running_state ();
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
int
kdf_lua_graph_lua (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
    return kdf_lua_raise_gerror (L, error);
  kdf_lua_set_origin (L, n);
  lua_newtable (L);
  for (guint i = 0; i < ln->inputs.n; i++) {
    lua_getfield (L, 2, ln->inputs.specs[i].name);
    lua_setfield (L, -2, ln->inputs.specs[i].name);
  }
  kdf_lua_push_node (L, g, n);
  kdf_lua_apply_or_remove (L, g, -2);
  lua_remove (L, -2);
  return 1;
}
