local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
g:node("test_params", { path = "x", big = 2 ^ 40 })     -- 'big' is an int field: 32 bits
