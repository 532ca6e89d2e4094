-- the smallest graph: used for plugin-path and run-directory cases
local kdf = require "kdflow"
local g = kdf.graph { name = "plain" }
local a = g:node("test_source", { n = 3, value = 2 })
g:run { ticks = 2 }
print("sum", a.x:value():sum())
