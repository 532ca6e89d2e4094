local kdf = require "kdflow"
local g = kdf.graph { name = "loop" }
local src = g:node("test_source", { name = "src" })
local a = g:node("test_add", { name = "alpha", a = src.x })
local b = g:node("test_add", { name = "beta", a = a.y, b = src.x })
g:connect(b.y, a.b)
g:run { ticks = 2 }
