local kdf = require "kdflow"
local g = kdf.graph { name = "failing" }
g:node("test_fail", { name = "breaker", at_tick = 3 })
g:run { ticks = 10 }
print("not reached")
