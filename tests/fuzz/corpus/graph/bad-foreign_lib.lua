local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
g:foreign { name = "sdot", library = "libnot-a-library.so.1", symbol = "cblas_sdot", sig = "f(ipipi)",
            inputs = { "x:f32[N]", "y:f32[N]" }, dims = { "N", "1", "1" }, result = "dot" }
