-- A run long enough to be killed half-way (tests/dist/killed.sh): a student trained
-- for many ticks on a synthetic set, writing a checkpoint every tick.
local kdf = require "kdflow"
local N, D, C = 4000, 64, 4
local xs, ys = {}, {}
for i = 1, N do
  local row = {}
  for j = 1, D do row[j] = ((i * 31 + j * 17) % 97) / 97 end
  xs[i] = row
  ys[i] = i % C
end
local g = kdf.graph { name = "slow", seed = 1 }
local ce = g:node("ce_loss", { name = "ce", targets = kdf.tensor(ys, "i32") })
g:node("student_update", { name = "st", x = kdf.tensor(xs, "f32"), arch = "mlp:64-512-512-4",
                            losses = { ce.loss }, batch = 32, save = "st.safetensors" })
g:run { ticks = 10000 }
