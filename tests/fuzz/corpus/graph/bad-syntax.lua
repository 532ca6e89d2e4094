local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source" { n = 3 }
