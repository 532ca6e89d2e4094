-- A tick that takes 0.1 s, a hundred times: for the interrupt test.
local kdf = require "kdflow"
local g = kdf.graph { name = "long" }
g:lua { name = "slow", outputs = { "t:f32[]" }, every_tick = true, fn = function(i, ctx)
  local t0 = kdf.clock(); while kdf.clock() - t0 < 0.1 do end
  return { t = ctx.tick } end }
g:run { ticks = 100 }
