-- An endless loop inside a Lua node: Ctrl-C must stop it and fail the run.
local kdf = require "kdflow"
local g = kdf.graph { name = "loop" }
g:lua { name = "spin", outputs = { "t:f32[]" }, fn = function()
  io.stderr:write("ready\n")
  local i = 0
  while true do i = i + 1 end
end }
g:run { ticks = 1 }
