-- Rank 1 fails alone between two training runs while rank 0 goes on into the second
-- one's collectives (tests/dist/fail.sh): the job must end, not hang.
local kdf = require "kdflow"
local ticks = kdf.arg("ticks", 1000)
local xs, ys = {}, {}
for i = 1, 64 do
  xs[i] = { (i % 4) / 4, (i % 3) / 3, (i % 5) / 5 }
  ys[i] = i % 2
end
local g = kdf.graph { name = "alone", seed = 1 }
local ce = g:node("ce_loss", { targets = kdf.tensor(ys, "i32") })
g:node("student_update", { name = "st", x = kdf.tensor(xs, "f32"), arch = "mlp:3-8-2",
                            losses = { ce.loss }, batch = 8 })
g:run { ticks = 1 }
if kdf.rank() == 1 then error("rank 1 gives up here") end
g:run { ticks = ticks }
