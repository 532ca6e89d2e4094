-- Training end to end on a small real sample: data_loader → ce_loss → student_update
-- → teacher_forward on the test split → evaluate; determinism; checkpoints; pairs.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end

local function mlp_graph(seed, extra)
  local g = kdf.graph { name = "train-" .. seed, seed = seed }
  local data = g:node("data_loader", { name = "data", subset = 2000, test_subset = 1000, val_fraction = 0 })
  local ce = g:node("ce_loss", { targets = data.labels })
  local params = { arch = "mlp:784-128-10", x = data.x, losses = { ce.loss }, lr = 0.05, batch = 64 }
  for k, v in pairs(extra or {}) do params[k] = v end
  local st = g:node("student_update", params)
  local tf = g:node("teacher_forward", { model = st.model, x = data.x_test, labels = data.y_test })
  local ev = g:node("evaluate", { logits = tf.logits, labels = data.y_test })
  return g, st, tf, ev, data
end

-- 1. it learns: 10 classes, chance is 0.1
local g, st, tf, ev = mlp_graph(3, { save = "student.safetensors" })
g:run { ticks = 3 }
local acc = ev.accuracy:value():item()
print("test accuracy after 3 epochs on 2000 samples:", acc)
assert(acc > 0.65, "the MLP did not learn: " .. acc)
assert(st.sample_loss:value():shape()[1] == 2000)
assert(st.logits:value():shape()[2] == 10 and st.features:value():shape()[2] == 128)
assert(tostring(st.model:value()):find("mlp:784%-128%-10"))

-- 2. same seed, same numbers (one thread); another seed, other numbers
local g2, st2 = mlp_graph(3, {})
g2:run { ticks = 3 }
local a, b = st.logits:value(), st2.logits:value()
for i = 1, 2000, 97 do
  for j = 1, 10 do assert(a:get(i, j) == b:get(i, j), "not deterministic at row " .. i) end
end
local g3, st3 = mlp_graph(4, {})
g3:run { ticks = 1 }
assert(st3.logits:value():get(1, 1) ~= a:get(1, 1))

-- 3. the checkpoint the student wrote is a teacher: same predictions as the model
local g4 = kdf.graph { name = "from-checkpoint", seed = 3 }  -- same data subset as g
local data4 = g4:node("data_loader", { name = "data", subset = 2000, test_subset = 1000, val_fraction = 0 })
local t4 = g4:node("teacher_forward", { checkpoint = "student.safetensors", x = data4.x_test,
                                        labels = data4.y_test, T = 4 })
-- the checkpoint as a teacher for a new student, on the training split (the test split is
-- for evaluation only: the engine refuses it into a loss or a training node)
local t4x = g4:node("teacher_forward", { name = "teacher_x", checkpoint = "student.safetensors",
                                         x = data4.x, T = 4 })
local kd = g4:node("kd_loss", { teacher_logits = t4x.logits, T = 4, weight = 0.9 })
local ce4 = g4:node("ce_loss", { targets = data4.labels, weight = 0.1 })
local s4 = g4:node("student_update", { arch = "mlp:784-32-10", x = data4.x, losses = { ce4.loss, kd.loss } })
g4:run { ticks = 1 }
-- (test-split values stay in the graph: compared through aggregates a script may read)
local ev4 = g4:node("evaluate", { name = "ev4", predictions = t4.predictions, labels = data4.y_test })
g4:run { ticks = 1 }
local p1, p2 = tf.predictions:value(), t4.predictions:value()
assert(p1:sum() == p2:sum(), "checkpoint predictions differ: sums " .. p1:sum() .. ", " .. p2:sum())
assert(ev4.accuracy:value():item() == ev.accuracy:value():item(), "checkpoint accuracy differs")
-- probs at T = 4 are softer than at T = 1: the largest probability of the test split,
-- summed over rows, is lower
local t1 = g4:node("teacher_forward", { name = "teacher_t1", checkpoint = "student.safetensors",
                                        x = data4.x_test, T = 1 })
g4:run { ticks = 1 }
local function max_sum(probs)
  local m = g4:lua { inputs = { "p:f32[N,C]" }, outputs = { "s:f32[]" }, p = probs,
    fn = function(i)
      local s = 0
      for _, row in ipairs(i.p:totable()) do s = s + math.max(table.unpack(row)) end
      return { s = s }
    end }
  g4:run { ticks = 1 }
  return m.s:value():item()
end
local soft, sharp = max_sum(t4.probs), max_sum(t1.probs)
assert(soft < sharp - 50, ("T = 4 is not softer than T = 1: %g vs %g"):format(soft, sharp))
assert(s4.model:value() ~= nil)

-- 4. a pair trained jointly: each net on its own term, and one on both
local g5, st5 = mlp_graph(5, { arch2 = "mlp:784-64-10" })
local ce_b = g5:node("ce_loss", { targets = g5:find("data").labels, net = "partner" })
st5:set { losses = { ce_b.loss } }
g5:run { ticks = 2 }
assert(st5.model2:value() and st5.logits2:value():shape()[1] == 2000)
assert(tostring(st5.model2:value()):find("784%-64%-10"))

-- 5. a schedule for the learning rate
local g6, st6 = mlp_graph(6, { lr = kdf.cosine(0.05, 0.001, 2) })
g6:run { ticks = 3 }
-- 6. an architecture from a Lua table: the METHODS teacher CNN
local cnn = kdf.arch { input = { 1, 28, 28 }, { "conv", 8 }, "relu", { "max", 2 }, "flatten",
                       { "linear", 32 }, "relu", "tap", { "linear", 10 } }
assert(cnn == "seq:1x28x28-conv8k3s1p1-relu-max2s2-flatten-linear32-relu-tap-linear10", cnn)
local g7, st7, tf7 = mlp_graph(7, { arch = cnn, batch = 32 })
g7:run { ticks = 1 }
assert(st7.features:value():shape()[2] == 32)
assert(not pcall(kdf.arch, { input = { 4 }, { "bogus", 3 } }))
print("student_update ok")
