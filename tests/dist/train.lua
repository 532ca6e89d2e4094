-- Data-parallel training (kdflow/dist.h): the same script is run once as one process
-- and once under `mpirun -np N`; tests/dist/train.sh compares what the two wrote.
-- A synthetic set (no files): N rows of D features, 4 classes, 20 % shifted labels;
-- one student (SGD with momentum and weight decay) and a pair (student and partner
-- trained jointly by one optimizer, a term for each) for two ticks. N = 241 rows in
-- batches of 16: the last batch has one row, so one rank trains on none of it.
-- Written to values.txt: each output's values, one per line ("name index value").
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lib/?.lua;" .. package.path
local T = require "testlib"
local N, D, C = 241, 12, 4
local rnd = T.lcg(2024)
local xs, ys = T.set { n = N, d = D, classes = C, step = 7, shift = 5,
                       value = function(on) return (on and 2 or 0) + rnd.uniform() - 0.5 end }
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

local out = T.values()
out.put("probs", tf.probs:value())
out.put("logits", st.logits:value())
out.put("sample_loss", st.sample_loss:value())
out.put("features", st.features:value())
out.put("selected", st.selected:value())
out.put("pair_logits", pair.logits:value())
out.put("pair_logits2", pair.logits2:value())
out.write() -- values.txt, and ranks.txt: which rank wrote the run directory, of how many
