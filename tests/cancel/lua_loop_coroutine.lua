-- An endless loop inside a coroutine made by a Lua node.
local kdf = require "kdflow"
local g = kdf.graph { name = "loop-co" }
g:lua { name = "spin", outputs = { "t:f32[]" }, fn = function()
  local co = coroutine.wrap(function()
    io.stderr:write("ready\n")
    while true do end
  end)
  co()
end }
g:run { ticks = 1 }
