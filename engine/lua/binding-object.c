/* The `kdflow` Lua module: models and loss terms as Object userdata (printable, and
 * given back to inputs that take them), and values of any kind pushed to Lua. */
#include <string.h>

#include "binding-private.h"

/* ---- objects (models, loss terms) -------------------------------------------- */

static void
push_object (lua_State *L, gpointer obj)
{
  ObjectUD *ud = lua_newuserdatauv (L, sizeof (ObjectUD), 0);
  memset (ud, 0, sizeof *ud);
  luaL_setmetatable (L, OBJECT_MT);
  ud->obj = kdf_object_ref (obj);
}

void
kdf_lua_push_value (lua_State *L, KdfValueKind kind, gpointer p)
{
  if (!p)
    lua_pushnil (L);
  else if (kind == KDF_VALUE_TENSOR)
    kdf_lua_push_tensor (L, p);
  else
    push_object (L, p);
}

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

void
kdf_lua_open_object (lua_State *L)
{
  static const luaL_Reg object_meta[] = { { "__gc", object_gc }, { "__tostring", object_tostring },
                                          { NULL, NULL } };
  kdf_lua_new_metatable (L, OBJECT_MT, object_meta, NULL);
}
