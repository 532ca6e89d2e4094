local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
g:node("test_params", { path = "x", rate = 1.5 })
