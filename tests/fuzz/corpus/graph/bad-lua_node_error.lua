local kdf = require "kdflow"
local g = kdf.graph { name = "luafail" }
local a = g:node("test_source")
g:lua { name = "oops", inputs = { "x:f32[N]" }, outputs = { "y:f32[N]" }, x = a.x,
        fn = function(i, ctx) return { y = i.x:nonsense() } end }
g:run { ticks = 1 }
