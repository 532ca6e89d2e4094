/* Graph scripts: arbitrary Lua text run as `kdflow run` runs a script (the kdflow
 * module, the node registry with the test plugins, one thread, quiet), in a fresh Lua
 * state per input. A script may fail (it must, mostly) with any error; the engine must
 * not crash, leak, hang or trip a sanitizer.
 *
 * A fuzzed script is arbitrary code, so it runs fenced in: no io, os or debug library,
 * no dofile/loadfile, `require` finds only the preloaded kdflow module, text chunks only
 * (binary chunks can crash Lua by design), a budget of Lua instructions per input, the
 * memory budget of fuzz-common.h, at most 8 ticks per g:run (larger counts that pass
 * the range checks are cut, so a trivial graph cannot run for hours; values outside
 * the range still reach the checks). Nothing it names can leave a scratch directory:
 * the harness works in one, and a path with '/' or '..' is refused wherever a script
 * can give one (node params, g:run's out, g:write_dot, kdf.write_file); kdf.load_plugin
 * is refused and g:foreign may only call the test kernels library (KDF_TEST_KERNELS) —
 * a foreign call into libc could do anything. (A file-size rlimit would fence writes
 * too, but it also stops libFuzzer writing its corpus and crash inputs.) */
#include "fuzz-common.h"

#include "kdflow-lua.h"
#include <lauxlib.h>
#include <lualib.h>

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

/* what the script sees before its own first line (FUZZ_KERNELS: set by the harness) */
static const char prelude[] =
  "local kdf = require 'kdflow'\n"
  "local kernels = FUZZ_KERNELS\n"
  "FUZZ_KERNELS = nil\n"
  "local function fenced(what) return function() error('fuzz: ' .. what .. ' is fenced', 0) end end\n"
  "local function safe(v)\n"
  "  return type(v) ~= 'string' or (not v:find('/', 1, true) and not v:find('..', 1, true))\n"
  "end\n"
  "local function check(v, what)\n"
  "  if not safe(v) then error('fuzz: ' .. what .. ': a path with / or .. is fenced', 0) end\n"
  "end\n"
  "kdf.load_plugin = fenced('kdf.load_plugin')\n"
  "local write_file = kdf.write_file\n"
  "kdf.write_file = function(p, ...) check(p, 'kdf.write_file') return write_file(p, ...) end\n"
  "local m = getmetatable(kdf.graph { name = 'fuzz-probe' }).methods\n"
  "local node, run, foreign, write_dot = m.node, m.run, m.foreign, m.write_dot\n"
  "m.node = function(g, kind, p, ...)\n"
  "  if type(p) == 'table' then for k, v in pairs(p) do check(v, 'param ' .. tostring(k)) end end\n"
  "  return node(g, kind, p, ...)\n"
  "end\n"
  "m.run = function(g, o, ...)\n"
  "  if type(o) == 'table' then\n"
  "    check(o.out, 'g:run out')\n"
  "    if math.type(o.ticks) == 'integer' and o.ticks > 8 and o.ticks < 2^31 then o.ticks = 8 end\n"
  "  end\n"
  "  return run(g, o, ...)\n"
  "end\n"
  "m.foreign = function(g, t, ...)\n"
  "  if type(t) == 'table' and t.library ~= kernels then\n"
  "    error('fuzz: g:foreign may call the test kernels library only', 0)\n"
  "  end\n"
  "  return foreign(g, t, ...)\n"
  "end\n"
  "m.write_dot = function(g, p, ...) check(p, 'g:write_dot') return write_dot(g, p, ...) end\n";

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
  const char *kernels = g_getenv ("KDF_TEST_KERNELS");
  lua_pushstring (L, kernels ? kernels : "");
  lua_setglobal (L, "FUZZ_KERNELS");
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
