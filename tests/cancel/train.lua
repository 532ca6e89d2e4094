-- One tick that trains a wide MLP on synthetic data for a very long time (epochs per
-- tick, synthetic inputs): a Ctrl-C must stop it between mini-batches, whatever the
-- thread count. args: width (default 1024), epochs (default 100000).
local kdf = require "kdflow"
local n, d, c = 512, 256, 10
local width = tonumber(args.width or 1024)
local epochs = tonumber(args.epochs or 100000)
local xs, ys = {}, {}
for i = 1, n do
  local row = {}
  for j = 1, d do row[j] = ((i * 7 + j * 13) % 29) / 29 end
  xs[i], ys[i] = row, i % c
end
local g = kdf.graph { name = "train-long" }
local ce = g:node("ce_loss", { targets = kdf.tensor(ys, "i32") })
g:node("student_update", { name = "student", arch = ("mlp:%d-%d-%d-%d"):format(d, width, width, c),
                           x = kdf.tensor(xs), losses = { ce.loss }, epochs = epochs, batch = 64,
                           lr = 0.01 })
io.stderr:write("ready\n")
g:run { ticks = 1 }
