/* The Lua binding: the `kdflow` module (require "kdflow") and the hooks the
 * command line uses to configure runs. */
#pragma once

#include <kdflow/kdflow.h>
#include <lua.h>

G_BEGIN_DECLS

int luaopen_kdflow (lua_State *L);

/* A new Lua state whose allocations count against the memory budget (kdf_memory_budget):
 * a script that builds a huge string or table gets Lua's "not enough memory" error
 * instead of the allocator's abort. Close with lua_close. */
lua_State *kdf_lua_newstate (void);
void kdf_lua_closestate (lua_State *L);

typedef struct {
  int threads;            /* 0 = all cores */
  const char *run_dir;    /* default run directory for g:run, or NULL */
  gboolean quiet;         /* no progress on stderr */
  gboolean dot_only;      /* `kdflow dot`: g:run draws instead of running (placeholder
                           * values; `print` says nothing); kdf_lua_dot_text after */
  /* the program owning the run directories (`kdflow run ...`), or NULL: then g:run
   * { out = } directories are neither checked nor marked (plain lua5.4) */
  const char *command;
  gboolean replace;       /* --replace: an earlier run's directory may be emptied */
} KdfLuaConfig;

/* A debug hook that raises "interrupted" (exit status 1) in any Lua loop of L, or of a
 * coroutine made from it, once kdf_interrupt has been called; for programs whose
 * SIGINT handler calls kdf_interrupt. */
void kdf_lua_install_interrupt_hook (lua_State *L);
/* Copies CONFIG into L's registry; call before running a script. */
void kdf_lua_configure (lua_State *L, const KdfLuaConfig *config);
/* Takes DIR for this script's runs (once per directory): kdf_run_dir_begin with the
 * configured command and replace flag. */
gboolean kdf_lua_claim_run_dir (lua_State *L, const char *dir, GError **error);
/* kdf_run_dir_end on every directory claimed; FALSE (with the first error) if one
 * could not be written. */
gboolean kdf_lua_end_run_dirs (lua_State *L, int exit_status, const char *message,
                               GError **error);
/* Sets the global `args` (and kdflow.args) from KEY=VALUE pairs. */
void kdf_lua_set_args (lua_State *L, char **pairs);
/* Keys of `args` the script never read (transfer full, NULL-terminated). */
/* The --set keys the script never read, each "KEY\tHINT" (HINT: " (did you mean ...)" or ""). */
char **kdf_lua_unread_args (lua_State *L);
/* Is the error value at INDEX one of kdflow's own (a graph, node or input error), not
 * a plain error of the script's Lua code? */
gboolean kdf_lua_is_kdflow_error (lua_State *L, int index);
/* The graphs the script ran so far (under `kdflow dot`: would have run), each drawn at
 * its last g:run. */
guint kdf_lua_dot_n_stages (lua_State *L);
/* The drawing of them all (kdf_dot_book_to_dot; transfer full), titled TITLE; under
 * `kdflow dot` it says that values were placeholders, and with STOPPED (the error that
 * ended the script early, or NULL) that the drawing ends there. */
char *kdf_lua_dot_text (lua_State *L, const char *title, const char *stopped);
/* The exit status an error value asks for: 1 for a node that failed while running,
 * 130 for an interrupted run, 2 otherwise (only kdflow's own error objects choose; any
 * other value a script throws is 2). */
int kdf_lua_error_status (lua_State *L, int index);
/* The message of an error value (transfer full). */
char *kdf_lua_error_message (lua_State *L, int index);
/* `kdflow dot` with a script that never called g:run: the last graph built, or NULL. */
KdfGraph *kdf_lua_last_graph (lua_State *L);

G_END_DECLS
