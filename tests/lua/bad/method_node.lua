local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source", { name = "src" })
g:node("test_add", { a = a.xx, b = a.x })
