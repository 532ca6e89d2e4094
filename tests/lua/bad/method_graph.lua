local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:nod("test_source")
