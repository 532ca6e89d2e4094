/* The `kdflow` Lua module (require "kdflow", or built into the kdflow program). Graph
 * scripts only wire: every call builds or runs a graph through the public C API;
 * compute runs in C.
 *
 * This file: luaopen_kdflow, the error values a failing call raises, and the
 * configuration the command line gives a run (kdf_lua_configure). The module's
 * functions and userdata live in the files binding-private.h lists; its Lua half is
 * kdflow.lua, compiled in as a GResource (kdflow.gresource.xml). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding-private.h"
#include "kdflow-lua-resources.h" /* generated: kdf_lua_get_resource () */

/* ---- errors ------------------------------------------------------------------- */

static int
error_tostring (lua_State *L)
{
  lua_getfield (L, 1, "message");
  return 1;
}

/* Raises an error object for ERROR (consumed), prefixed with the caller's file:line.
 * A NULL ERROR (an engine call that failed a precondition, g_return_if_fail, which
 * prints a CRITICAL and sets no error) still raises, as an internal error: a script
 * must never crash the process. */
int
kdf_lua_raise_gerror (lua_State *L, GError *error)
{
  if (error == NULL)
    error = g_error_new_literal (KDF_ERROR, KDF_ERROR_FAILED,
                                 "internal error: an engine call failed without saying why "
                                 "(the CRITICAL line above names the check)");
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
kdf_lua_is_kdflow_error (lua_State *L, int index)
{
  index = lua_absindex (L, index);
  if (!lua_istable (L, index) || !lua_getmetatable (L, index))
    return FALSE;
  luaL_getmetatable (L, ERROR_MT);
  gboolean ours = lua_rawequal (L, -1, -2);
  lua_pop (L, 2);
  return ours;
}

int
kdf_lua_error_status (lua_State *L, int index)
{
  /* Only kdflow's own error objects carry a status (1: a node failed, 2: bad graph or
   * input, 130: interrupted); anything else a script throws, error({status = 0})
   * included, is a script error: 2. */
  int status = 2;
  index = lua_absindex (L, index);
  if (lua_istable (L, index) && lua_getmetatable (L, index)) {
    luaL_getmetatable (L, ERROR_MT);
    gboolean ours = lua_rawequal (L, -1, -2);
    lua_pop (L, 2);
    if (ours) {
      lua_getfield (L, index, "status");
      if (lua_isinteger (L, -1)) {
        lua_Integer v = lua_tointeger (L, -1);
        if (v == 1 || v == 2 || v == 130)
          status = (int) v;
      }
      lua_pop (L, 1);
    }
  }
  return status;
}

static int
tostring_protected (lua_State *L)
{
  luaL_tolstring (L, 1, NULL);
  return 1;
}

char *
kdf_lua_error_message (lua_State *L, int index)
{
  /* a thrown value's __tostring may itself fail or return a non-string: call it
   * protected, so that a hostile error value cannot take the program down */
  index = lua_absindex (L, index);
  lua_pushcfunction (L, tostring_protected);
  lua_pushvalue (L, index);
  char *copy;
  if (lua_pcall (L, 1, 1, 0) == LUA_OK && lua_type (L, -1) == LUA_TSTRING)
    copy = g_strdup (lua_tostring (L, -1));
  else
    copy = g_strdup_printf ("a script error (a %s whose __tostring failed)",
                            luaL_typename (L, index));
  lua_pop (L, 1);
  return copy;
}

lua_Integer
kdf_lua_check_count (lua_State *L, int index, const char *what, lua_Integer min, lua_Integer max)
{
  index = lua_absindex (L, index);
  lua_Integer v = 0;
  int isnum = 0;
  if (lua_type (L, index) == LUA_TNUMBER)
    v = lua_tointegerx (L, index, &isnum);
  if (!isnum || v < min || v > max) {
    const char *got = lua_type (L, index) == LUA_TNUMBER || lua_type (L, index) == LUA_TSTRING
                          ? lua_pushfstring (L, "%s", luaL_tolstring (L, index, NULL))
                          : luaL_typename (L, index);
    return luaL_error (L, "%s must be an integer from %I to %I, got %s", what, (lua_Integer) min,
                       (lua_Integer) max, got);
  }
  return v;
}

/* ---- the Lua state ------------------------------------------------------------- */

typedef struct {
  gsize used, limit;
} LuaBudget;

static void *
budget_alloc (void *ud, void *ptr, size_t osize, size_t nsize)
{
  LuaBudget *b = ud;
  if (ptr == NULL)
    osize = 0;
  if (nsize == 0) {
    free (ptr);
    b->used -= osize;
    return NULL;
  }
  if (nsize > osize && (nsize - osize > b->limit || b->used + (nsize - osize) > b->limit))
    return NULL; /* Lua raises "not enough memory" */
  void *p = realloc (ptr, nsize);
  if (p)
    b->used = b->used - osize + nsize;
  return p;
}

static int
lua_panic (lua_State *L)
{
  const char *msg = lua_type (L, -1) == LUA_TSTRING ? lua_tostring (L, -1) : "an error object";
  fprintf (stderr, "kdflow: unprotected Lua error: %s\n", msg);
  fflush (stderr);
  _exit (2);
}

lua_State *
kdf_lua_newstate (void)
{
  LuaBudget *b = g_new0 (LuaBudget, 1);
  guint64 limit = kdf_memory_budget ();
  b->limit = limit > G_MAXSIZE / 2 ? G_MAXSIZE / 2 : (gsize) limit;
  lua_State *L = lua_newstate (budget_alloc, b);
  if (!L) {
    g_free (b);
    return NULL;
  }
  lua_atpanic (L, lua_panic);
  return L; /* B is freed by kdf_lua_closestate, after lua_close's last free */
}

void
kdf_lua_closestate (lua_State *L)
{
  void *ud = NULL;
  lua_getallocf (L, &ud);
  lua_close (L);
  g_free (ud);
}

/* ---- interrupts ----------------------------------------------------------------- */

/* Every INTERRUPT_HOOK_COUNT Lua instructions: stop if kdf_interrupt was called. The
 * count keeps the cost under 1 % while a loop notices within microseconds. */
#define INTERRUPT_HOOK_COUNT 10000

static void
interrupt_hook (lua_State *L, lua_Debug *ar)
{
  (void) ar;
  if (!kdf_interrupted ())
    return;
  /* the same error object a cancelled g:run raises: exit status 1, "interrupted" */
  lua_createtable (L, 0, 3);
  luaL_where (L, 1);
  lua_pushstring (L, "interrupted");
  lua_concat (L, 2);
  lua_setfield (L, -2, "message");
  lua_pushinteger (L, 1);
  lua_setfield (L, -2, "status");
  lua_pushinteger (L, KDF_ERROR_CANCELLED);
  lua_setfield (L, -2, "code");
  luaL_setmetatable (L, ERROR_MT);
  lua_error (L);
}

void
kdf_lua_install_interrupt_hook (lua_State *L)
{
  /* the error metatable, in case the script never loads the module */
  static const luaL_Reg error_meta[] = { { "__tostring", error_tostring }, { NULL, NULL } };
  kdf_lua_new_metatable (L, ERROR_MT, error_meta, NULL);
  /* coroutines made later inherit the hook */
  lua_sethook (L, interrupt_hook, LUA_MASKCOUNT, INTERRUPT_HOOK_COUNT);
}

/* ---- config ------------------------------------------------------------------- */

typedef struct {
  KdfLuaConfig c;
  char *run_dir;
  char *command;
  GPtrArray *claimed; /* char*: run directories taken (kdf_lua_claim_run_dir) */
} ConfigUD;

static int
config_gc (lua_State *L)
{
  ConfigUD *c = lua_touserdata (L, 1);
  g_clear_pointer (&c->run_dir, g_free);
  g_clear_pointer (&c->command, g_free);
  g_clear_pointer (&c->claimed, g_ptr_array_unref);
  return 0;
}

static int
print_nothing (lua_State *L)
{
  (void) L;
  return 0;
}

void
kdf_lua_configure (lua_State *L, const KdfLuaConfig *config)
{
  if (config->dot_only) {
    /* `kdflow dot`: what a script prints about its results would be about placeholders
     * (and stdout is the drawing's) */
    lua_pushcfunction (L, print_nothing);
    lua_setglobal (L, "print");
  }
  ConfigUD *c = lua_newuserdatauv (L, sizeof (ConfigUD), 0);
  memset (c, 0, sizeof *c);
  lua_createtable (L, 0, 1);
  lua_pushcfunction (L, config_gc);
  lua_setfield (L, -2, "__gc");
  lua_setmetatable (L, -2);
  c->c = *config;
  c->run_dir = g_strdup (config->run_dir);
  c->command = g_strdup (config->command);
  c->claimed = g_ptr_array_new_with_free_func (g_free);
  c->c.run_dir = c->run_dir;
  c->c.command = c->command;
  lua_setfield (L, LUA_REGISTRYINDEX, CONFIG_KEY);
}

const KdfLuaConfig *
kdf_lua_get_config (lua_State *L)
{
  static const KdfLuaConfig defaults = { 0 };
  lua_getfield (L, LUA_REGISTRYINDEX, CONFIG_KEY);
  ConfigUD *c = lua_touserdata (L, -1);
  lua_pop (L, 1);
  return c ? &c->c : &defaults;
}

static ConfigUD *
config_ud (lua_State *L)
{
  lua_getfield (L, LUA_REGISTRYINDEX, CONFIG_KEY);
  ConfigUD *c = lua_touserdata (L, -1);
  lua_pop (L, 1);
  return c;
}

gboolean
kdf_lua_claim_run_dir (lua_State *L, const char *dir, GError **error)
{
  ConfigUD *c = config_ud (L);
  if (!c || !c->c.command)
    return TRUE;
  g_autofree char *canon = g_canonicalize_filename (dir, NULL);
  for (guint i = 0; i < c->claimed->len; i++)
    if (strcmp (c->claimed->pdata[i], canon) == 0)
      return TRUE;
  if (!kdf_run_dir_begin (dir, c->c.command, c->c.replace, error))
    return FALSE;
  g_ptr_array_add (c->claimed, g_steal_pointer (&canon));
  return TRUE;
}

gboolean
kdf_lua_end_run_dirs (lua_State *L, int exit_status, const char *message, GError **error)
{
  ConfigUD *c = config_ud (L);
  gboolean ok = TRUE;
  for (guint i = 0; c && i < c->claimed->len; i++) {
    GError *local = NULL;
    if (!kdf_run_dir_end (c->claimed->pdata[i], exit_status, message, &local)) {
      if (ok)
        g_propagate_error (error, local);
      else
        g_clear_error (&local);
      ok = FALSE;
    }
  }
  return ok;
}

/* ---- the module --------------------------------------------------------------- */

void
kdf_lua_new_metatable (lua_State *L, const char *name, const luaL_Reg *meta,
                       const luaL_Reg *methods)
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
kdf_lua_no_member (lua_State *L, int obj, int key_index, const char *what, const char *noun,
                   const char *const *fields, GPtrArray *extra)
{
  if (lua_type (L, key_index) != LUA_TSTRING) {
    if (extra)
      g_ptr_array_unref (extra);
    lua_pushnil (L);
    return 1;
  }
  obj = lua_absindex (L, obj);
  const char *key = lua_tostring (L, key_index);
  GPtrArray *cand = g_ptr_array_new_with_free_func (g_free);
  if (luaL_getmetafield (L, obj, "methods") == LUA_TTABLE) {
    lua_pushnil (L);
    while (lua_next (L, -2)) {
      if (lua_type (L, -2) == LUA_TSTRING)
        g_ptr_array_add (cand, g_strdup (lua_tostring (L, -2)));
      lua_pop (L, 1);
    }
    lua_pop (L, 1);
  }
  for (int i = 0; fields && fields[i]; i++)
    g_ptr_array_add (cand, g_strdup (fields[i]));
  for (guint i = 0; extra && i < extra->len; i++)
    g_ptr_array_add (cand, g_strdup (g_ptr_array_index (extra, i)));
  if (extra)
    g_ptr_array_unref (extra);
  char *hint = kdf_suggest (key, (const char *const *) cand->pdata, cand->len);
  luaL_where (L, 1);
  lua_pushfstring (L, "%s has no %s '%s'%s", what, noun, key, hint);
  lua_concat (L, 2);
  g_free (hint);
  g_ptr_array_unref (cand);
  return lua_error (L);
}

/* Loads kdflow.lua, compiled in, as a function on the stack; raises if it cannot. */
static void
load_kdflow_lua (lua_State *L)
{
  GError *error = NULL;
  GBytes *code = g_resource_lookup_data (kdf_lua_get_resource (), "/org/kdflow/lua/kdflow.lua",
                                         G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
  if (!code) {
    lua_pushfstring (L, "kdflow.lua: %s", error->message);
    g_error_free (error);
    lua_error (L);
  }
  gsize size = 0;
  const char *text = g_bytes_get_data (code, &size);
  int status = luaL_loadbuffer (L, text, size, "@kdflow.lua");
  g_bytes_unref (code);
  if (status != LUA_OK)
    lua_error (L);
}

int
luaopen_kdflow (lua_State *L)
{
  luaL_checkversion (L);
  kdf_init ();

  static const luaL_Reg error_meta[] = { { "__tostring", error_tostring }, { NULL, NULL } };
  kdf_lua_new_metatable (L, ERROR_MT, error_meta, NULL);
  kdf_lua_open_object (L);

  /* the module table: graph, tensor, zeros, nodes, describe, load_plugin, run_dir, clock */
  lua_createtable (L, 0, 8);
  kdf_lua_open_graph (L);
  kdf_lua_open_tensor (L);
  kdf_lua_open_registry (L);
  lua_pushstring (L, KDF_VERSION);
  lua_setfield (L, -2, "version");
  kdf_lua_push_args (L);
  lua_setfield (L, -2, "args");
  /* kdflow.lua adds kdf.arg, the schedules, kdf.arch, kdf.delay, kdf.oracle */
  load_kdflow_lua (L);
  lua_pushvalue (L, -2);
  lua_call (L, 1, 1);
  return 1;
}
