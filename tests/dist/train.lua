-- Data-parallel training (kdflow/dist.h): the same script is run once as one process
-- and once under `mpirun -np N`; tests/dist/train.sh compares what the two wrote.
-- A synthetic set (no files): N rows of D features, 4 classes, 20 % shifted labels;
-- one student (SGD with momentum and weight decay) and a pair (student and partner
-- trained jointly by one optimizer, a term for each) for two ticks. N = 241 rows in
-- batches of 16: the last batch has one row, so one rank trains on none of it.
-- Written to values.txt: each output's values, one per line ("name index value").
local kdf = require "kdflow"
local N, D, C = 241, 12, 4
local state = 2024
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local xs, ys = {}, {}
for i = 1, N do
  local c = (i * 7) % C
  local row = {}
  for j = 1, D do row[j] = (j % C == c and 2 or 0) + rnd() - 0.5 end
  xs[i] = row
  ys[i] = (i % 5 == 0) and (c + 1) % C or c
end
local x, y = kdf.tensor(xs, "f32"), kdf.tensor(ys, "i32")

local g = kdf.graph { name = "dist_train", seed = kdf.arg("seed", 3) }
local ce = g:node("ce_loss", { name = "ce", targets = y })
local st = g:node("student_update", { name = "st", x = x, arch = "mlp:12-32-4",
                                       losses = { ce.loss }, lr = 0.1, momentum = 0.9,
                                       weight_decay = 5e-4, batch = 16, epochs = 2 })
local ce1 = g:node("ce_loss", { name = "ce_pair", targets = y })
local ce2 = g:node("ce_loss", { name = "ce_partner", targets = y, net = "partner" })
local pair = g:node("student_update", { name = "pair", x = x, arch = "mlp:12-16-4",
                                         arch2 = "mlp:12-8-4", losses = { ce1.loss, ce2.loss },
                                         optimizer = "adam", lr = 0.01, batch = 16 })
local tf = g:node("teacher_forward", { name = "tf", model = st.model, x = x })
g:run { ticks = 2 }

local lines = {}
local function put(name, t)
  local v = t:totable()
  for i = 1, #v do
    if type(v[i]) == "table" then
      for j = 1, #v[i] do lines[#lines + 1] = ("%s %d.%d %.9g"):format(name, i, j, v[i][j]) end
    else
      lines[#lines + 1] = ("%s %d %.9g"):format(name, i, v[i])
    end
  end
end
put("probs", tf.probs:value())
put("logits", st.logits:value())
put("sample_loss", st.sample_loss:value())
put("features", st.features:value())
put("selected", st.selected:value())
put("pair_logits", pair.logits:value())
put("pair_logits2", pair.logits2:value())
kdf.write_file(kdf.run_dir() .. "/values.txt", table.concat(lines, "\n") .. "\n")
-- which rank wrote the run directory, of how many
kdf.write_file(kdf.run_dir() .. "/ranks.txt", ("rank %d of %d\n"):format(kdf.rank(), kdf.ranks()))
