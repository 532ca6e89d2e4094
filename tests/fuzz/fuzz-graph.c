/* Graph scripts: arbitrary Lua text run as `kdflow run` runs a script (the kdflow
 * module, the node registry with the test plugins, one thread, quiet), in a fresh Lua
 * state per input. A script may fail (it must, mostly) with any error; the engine must
 * not crash, leak, hang or trip a sanitizer.
 *
 * A fuzzed script is arbitrary code, so it runs fenced in: no io or os library, no
 * dofile/loadfile, `require` finds only the preloaded kdflow module, text chunks only
 * (binary chunks can crash Lua by design), a budget of Lua instructions per input, the
 * memory budget of fuzz-common.h, at most 8 ticks per g:run (larger counts that pass
 * the range checks are cut, so a trivial graph cannot run for hours; values outside
 * the range still reach the checks), and no file can be written: the harness works in
 * a temporary directory and sets RLIMIT_FSIZE to 0 (a write fails with EFBIG, which
 * the engine must report as an I/O error like a full disk). */
#include "fuzz-common.h"

#include "kdflow-lua.h"
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <sys/resource.h>

#define HOOK_EVERY 1000
#define INSTRUCTION_BUDGET 20000000L

static long instructions;

static void
budget_hook (lua_State *L, lua_Debug *ar)
{
  (void) ar;
  instructions += HOOK_EVERY;
  if (instructions > INSTRUCTION_BUDGET)
    luaL_error (L, "fuzz: instruction budget spent");
}

/* what the script sees before its own first line */
static const char prelude[] =
  "local kdf = require 'kdflow'\n"
  "local mt = getmetatable(kdf.graph { name = 'fuzz-probe' })\n"
  "local methods = type(mt) == 'table' and type(mt.__index) == 'table' and mt.__index\n"
  "if methods and methods.run then\n"
  "  local run = methods.run\n"
  "  methods.run = function(g, o, ...)\n"
  "    if type(o) == 'table' and math.type(o.ticks) == 'integer' and o.ticks > 8\n"
  "       and o.ticks < 2^31 then o.ticks = 8 end\n"
  "    return run(g, o, ...)\n"
  "  end\n"
  "end\n";

static void
setup_once (void)
{
  static gboolean done = FALSE;
  if (done)
    return;
  done = TRUE;
  kdf_memory_set_budget (64u << 20);
  g_autofree char *dir = g_dir_make_tmp ("kdf-fuzz-graph-XXXXXX", NULL);
  if (!dir || chdir (dir) != 0)
    g_error ("fuzz-graph: no temporary directory to work in");
  struct rlimit no_files = { 0, 0 };
  signal (SIGXFSZ, SIG_IGN);
  if (setrlimit (RLIMIT_FSIZE, &no_files) != 0)
    g_error ("fuzz-graph: setrlimit(RLIMIT_FSIZE) failed");
}

static void
open_fenced_libs (lua_State *L)
{
  static const luaL_Reg libs[] = {
    { LUA_GNAME, luaopen_base },       { LUA_LOADLIBNAME, luaopen_package },
    { LUA_COLIBNAME, luaopen_coroutine }, { LUA_TABLIBNAME, luaopen_table },
    { LUA_STRLIBNAME, luaopen_string },  { LUA_MATHLIBNAME, luaopen_math },
    { LUA_UTF8LIBNAME, luaopen_utf8 },   { NULL, NULL },
  };
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref (L, lib->name, lib->func, 1);
    lua_pop (L, 1);
  }
  lua_pushnil (L);
  lua_setglobal (L, "dofile");
  lua_pushnil (L);
  lua_setglobal (L, "loadfile");
  /* load(): text only */
  luaL_dostring (L, "local load = load; _G.load = function(c, n, m, e) "
                    "return load(c, n, 't', e) end");
  /* require: the preload searcher only, no path */
  luaL_getsubtable (L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction (L, luaopen_kdflow);
  lua_setfield (L, -2, "kdflow");
  lua_pop (L, 1);
  luaL_dostring (L, "package.path = '' package.cpath = '' "
                    "package.searchers = { package.searchers[1] } package.loadlib = nil");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  setup_once ();
  lua_State *L = kdf_lua_newstate ();
  open_fenced_libs (L);
  KdfLuaConfig config = { .threads = 1, .quiet = TRUE };
  kdf_lua_configure (L, &config);
  kdf_lua_set_args (L, NULL);
  instructions = 0;
  lua_sethook (L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
  if (luaL_loadbufferx (L, prelude, sizeof prelude - 1, "=prelude", "t") != LUA_OK ||
      lua_pcall (L, 0, 0, 0) != LUA_OK)
    g_error ("fuzz-graph: the prelude failed: %s", lua_tostring (L, -1));
  if (luaL_loadbufferx (L, (const char *) data, size, "=fuzz", "t") == LUA_OK &&
      lua_pcall (L, 0, 0, 0) != LUA_OK) {
    /* what `kdflow run` makes of the error: a status and a message, whatever was thrown */
    int status = kdf_lua_error_status (L, -1);
    g_assert (status == 1 || status == 2 || status == 130);
    g_free (kdf_lua_error_message (L, -1));
  }
  kdf_lua_closestate (L);
  return 0;
}
