local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
g:foreign { name = "sdot", library = "libblas.so.3", symbol = "cblas_sdot", sig = "f(ipipi",
            inputs = { "x:f32[N]", "y:f32[N]" }, dims = { "N", "1", "1" }, result = "dot" }
