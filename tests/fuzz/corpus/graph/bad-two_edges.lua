local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source", { name = "a" })
local b = g:node("test_source", { name = "b" })
local s = g:node("test_add", { a = a.x, b = b.x })
g:connect(b.x, s.a)
