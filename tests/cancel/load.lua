-- Loading Fashion-MNIST (gzip IDX, 47 MB decompressed): Ctrl-C must stop it between
-- 1 MB reads. One load takes well under a second on a quiet machine, so the script
-- loads it again and again (a fresh graph each time): the SIGINT lands in a load.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end
io.stderr:write("ready\n")
for i = 1, 200 do
  local g = kdf.graph { name = "load" .. i }
  g:node("data_loader", { name = "data", subset = 600, test_subset = 200 })
  g:run { ticks = 1 }
  g = nil
  collectgarbage()
end
