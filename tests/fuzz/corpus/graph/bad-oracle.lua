local kdf = require "kdflow"
local g = kdf.graph { name = "cheat" }
local data = g:node("test_oracle", { name = "data" })
g:node("test_mask_user", { name = "method", mask = data.truth })
