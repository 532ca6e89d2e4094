/* The `kdflow` Lua module: g:foreign, a plain C function in a shared library as a node
 * (kdf_graph_add_foreign, through libffi). */
#include "binding-private.h"

/* ---- foreign kernels ---------------------------------------------------------- */

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
int
kdf_lua_graph_foreign (lua_State *L)
{
  KdfGraph *g = kdf_lua_check_graph (L, 1);
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
    return kdf_lua_raise_gerror (L, error);
  kdf_lua_set_origin (L, n);
  kdf_lua_push_node (L, g, n);
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
  kdf_lua_apply_or_remove (L, g, -2);
  lua_remove (L, -2);
  return 1;
}
