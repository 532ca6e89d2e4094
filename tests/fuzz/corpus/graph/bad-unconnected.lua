local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source")
g:node("test_add", { a = a.x, name = "sum" })
g:run { ticks = 2 }
