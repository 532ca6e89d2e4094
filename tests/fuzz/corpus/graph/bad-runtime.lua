local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source")
a:no_such_method()
