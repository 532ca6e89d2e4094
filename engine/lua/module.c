/* The `kdflow` module for plain lua5.4: `require "kdflow"`. */
#include "config.h"

#include "kdflow-lua.h"

/* luaopen_kdflow is defined in binding.c and exported from this module. */
int luaopen_kdflow_module_anchor (void);
int
luaopen_kdflow_module_anchor (void)
{
  return 0;
}
