local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local a = g:node("test_source")
g:node("test_i32_sink", { labels = a.x })
