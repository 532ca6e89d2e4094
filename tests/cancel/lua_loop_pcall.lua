-- A script that swallows every error, including "interrupted": the first Ctrl-C cannot
-- stop it, a second one must exit at once with status 130.
io.stderr:write("ready\n")
while true do
  pcall(function() while true do end end)
end
