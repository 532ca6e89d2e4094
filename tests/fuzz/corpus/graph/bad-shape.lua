local kdf = require "kdflow"
local g = kdf.graph { name = "shapes" }
local a = g:node("test_source", { name = "a", n = 4 })
local b = g:node("test_source", { name = "b", n = 6 })
g:node("test_add", { name = "sum", a = a.x, b = b.x })
g:run()
