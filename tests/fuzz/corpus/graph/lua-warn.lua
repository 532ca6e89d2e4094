-- A node's warning (kdf_ctx_warning): stderr unless --quiet, summary.json always.
local kdf = require "kdflow"
local g = kdf.graph { name = "warned" }
g:node("test_warn", { name = "w", message = "the tipping point was not reached" })
g:run { ticks = 2 }
print("warn ok")
