-- a script of two graphs (stages), for the run directory's stages.dot and KDFLOW_DOT_DIR
local kdf = require "kdflow"
local first = kdf.graph { name = "first" }
local a = first:node("test_source", { n = 3, value = 2 })
first:run { ticks = 1 }
local second = kdf.graph { name = "second" }
local b = second:node("test_source", { n = 2, value = a.x:value():sum() })
second:run { ticks = 1 }
print("sum", b.x:value():sum())
