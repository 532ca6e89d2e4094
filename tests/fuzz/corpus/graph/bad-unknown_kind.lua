local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
g:node("test_sorce", { n = 3 })
