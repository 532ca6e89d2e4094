-- Loading Fashion-MNIST (gzip IDX, 47 MB decompressed): Ctrl-C must stop it between
-- 1 MB reads.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end
local g = kdf.graph { name = "load" }
g:node("data_loader", { name = "data", subset = 600, test_subset = 200 })
io.stderr:write("ready\n")
g:run { ticks = 1 }
