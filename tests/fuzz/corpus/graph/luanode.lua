local kdf = require "kdflow"
local g = kdf.graph { name = "keep", seed = 3 }
local src = g:lua { name = "src", outputs = { "s:f32[]", "v:f32[2]" }, every_tick = true,
  fn = function(_, ctx) return { s = ctx.tick * 0.5, v = { ctx.tick, 10 } } end }
local kb = g:node("keep_best", { name = "kb", score = src.s, value = src.v, mode = "min" })
local sq = g:lua { name = "sq", inputs = { "v:f32[2]" }, outputs = { "w:f32[2]" },
  fn = function(inp) local t = inp.v:totable() return { w = { t[1] * t[1], t[2] } } end }
g:connect(src.v, sq.v)
g:run { ticks = 3 }
assert(kb.tick:value():item() == 0)
print(sq.w:value():get(1))
