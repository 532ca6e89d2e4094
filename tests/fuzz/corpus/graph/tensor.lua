local kdf = require "kdflow"
local t = kdf.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "f32")
local u = kdf.tensor({ 0, 1 }, "i32")
local m = kdf.tensor({ 1, 0, 1 }, "u8")
print(t:get(2, 3), u:get(2), #t:totable(), m:totable()[3])
local g = kdf.graph { name = "ranks" }
local lr = g:node("loss_ranking", { name = "r", loss = kdf.tensor({ 0.3, 0.1, 0.9, 0.5 }, "f32"), keep = 0.75 })
local ot = g:node("otsu_threshold", { name = "o", scores = kdf.tensor({ 0.1, 0.2, 0.15, 0.9, 0.95, 0.8 }, "f32") })
g:run {}
print(lr.kept_fraction:value():item(), ot.threshold:value():item())
