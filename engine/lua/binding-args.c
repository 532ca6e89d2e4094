/* The `kdflow` Lua module: the global `args` (also kdf.args), the --set KEY=VALUE pairs
 * of `kdflow run` as strings. Reads go through a proxy that records each key read, so
 * the command line can warn about the keys a script never read (a typo, usually). */
#include <string.h>

#include "binding-private.h"

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

void
kdf_lua_push_args (lua_State *L)
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
  kdf_lua_push_args (L);
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
  GPtrArray *unread = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *read = g_ptr_array_new_with_free_func (g_free);
  kdf_lua_push_args (L);
  lua_getmetatable (L, -1);
  lua_getfield (L, -1, "values");
  lua_getfield (L, LUA_REGISTRYINDEX, ARGS_READ_KEY);
  lua_pushnil (L);
  while (lua_next (L, -3)) {
    lua_pop (L, 1);
    lua_pushvalue (L, -1);
    lua_rawget (L, -3);
    if (!lua_toboolean (L, -1))
      g_ptr_array_add (unread, g_strdup (lua_tostring (L, -2)));
    lua_pop (L, 1);
  }
  /* the keys the script did read: candidates for "did you mean" */
  lua_pushnil (L);
  while (lua_next (L, -2)) {
    lua_pop (L, 1);
    if (lua_type (L, -1) == LUA_TSTRING)
      g_ptr_array_add (read, g_strdup (lua_tostring (L, -1)));
  }
  lua_pop (L, 4);
  GPtrArray *out = g_ptr_array_new ();
  for (guint i = 0; i < unread->len; i++) {
    g_autofree char *hint = kdf_suggest (unread->pdata[i], (const char *const *) read->pdata, read->len);
    g_ptr_array_add (out, g_strdup_printf ("%s\t%s", (char *) unread->pdata[i], hint));
  }
  g_ptr_array_free (unread, TRUE);
  g_ptr_array_free (read, TRUE);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}
