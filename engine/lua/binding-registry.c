/* The `kdflow` Lua module: the registry of node kinds (kdf.nodes, kdf.describe,
 * kdf.load_plugin; kdf.describe reads the class declarations, hence kdflow-plugin.h)
 * and helpers for scripts: kdf.run_dir, kdf.clock, kdf.write_file, kdf.drawing,
 * kdf.rank and kdf.ranks. */
#include <glib/gstdio.h>

#include <kdflow/kdflow-plugin.h>

#include "binding-private.h"

/* ---- registry ----------------------------------------------------------------- */

static KdfRegistry *
check_registry (lua_State *L)
{
  GError *error = NULL;
  KdfRegistry *reg = kdf_registry_get_default (&error);
  if (!reg)
    kdf_lua_raise_gerror (L, error);
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
  const KdfLuaConfig *config = kdf_lua_get_config (L);
  if (config->run_dir && !config->dot_only) {
    g_mkdir_with_parents (config->run_dir, 0755);
    lua_pushstring (L, config->run_dir);
  } else {
    lua_pushnil (L);
  }
  return 1;
}

/* kdf.drawing() → true under `kdflow dot` (g:run draws instead of running, values read
 * after it are placeholders): a script may then keep what it would compute from data
 * symbolic, e.g. an architecture "mlp:D-256-C" */
static int
l_drawing (lua_State *L)
{
  lua_pushboolean (L, kdf_lua_get_config (L)->dot_only);
  return 1;
}

/* kdf.write_file(path, text): the file whole or not at all (a temporary file renamed
 * over PATH); raises an error naming PATH on failure (full disk, permissions) */
static int
l_write_file (lua_State *L)
{
  const char *path = luaL_checkstring (L, 1);
  size_t len = 0;
  const char *text = luaL_checklstring (L, 2, &len);
  GError *error = NULL;
  if (!kdf_file_write_atomic (path, text, len, &error))
    return kdf_lua_raise_gerror (L, error);
  return 0;
}

/* kdf.clock() → seconds on a monotonic wall clock (for timing stages) */
static int
l_clock (lua_State *L)
{
  lua_pushnumber (L, (lua_Number) g_get_monotonic_time () * 1e-6);
  return 1;
}

/* kdf.rank(), kdf.ranks() → this process's rank and the number of ranks of a
 * data-parallel run (0 and 1 outside mpirun) */
static int
l_rank (lua_State *L)
{
  lua_pushinteger (L, kdf_dist_rank ());
  return 1;
}

static int
l_ranks (lua_State *L)
{
  lua_pushinteger (L, kdf_dist_size ());
  return 1;
}

void
kdf_lua_open_registry (lua_State *L)
{
  static const luaL_Reg funcs[] = { { "nodes", l_nodes },         { "describe", l_describe },
                                    { "load_plugin", l_load_plugin }, { "run_dir", l_run_dir },
                                    { "clock", l_clock },         { "write_file", l_write_file },
                                    { "drawing", l_drawing },     { "rank", l_rank },
                                    { "ranks", l_ranks },         { NULL, NULL } };
  luaL_setfuncs (L, funcs, 0);
}
