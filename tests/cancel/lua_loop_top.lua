-- An endless loop at the top of a script: Ctrl-C must stop it (a Lua debug hook).
io.stderr:write("ready\n")
local i = 0
while true do i = i + 1 end
