-- Training end to end on a small real sample: data_loader → ce_loss → student_update
-- → teacher_forward on the test split → evaluate; determinism; checkpoints and
-- distillation from one; pairs, each net learning its own term; a learning-rate
-- schedule reaching the optimizer; a CNN that learns. Every check asserts an effect
-- against an independent value (chance is 0.1: ten classes).
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end

-- --set seed=K shifts every graph's seed by K: the checks hold for other seeds too (the
-- ranges quoted below are over K = 0, 10, ..., 50)
local base = kdf.arg("seed", 0)

-- A student trained with CE on the data: from a data_loader (2000 training rows, 1000
-- test rows, clean labels), or from the tensors SHARED = { x, labels, x_test, y_test }
-- of an earlier loader (constants: the file is read once for most graphs; x_test and
-- y_test keep their test-split mark, so they still only reach forwards and evaluate).
-- Test-split values stay in the graph: every comparison on the test split is an
-- evaluate node's accuracy, a number a script may read.
local function mlp_graph(seed, extra, shared)
  local g = kdf.graph { name = "train-" .. seed, seed = base + seed }
  local data = shared or g:node("data_loader", { name = "data", subset = 2000, test_subset = 1000,
                                                 val_fraction = 0 })
  local ce = g:node("ce_loss", { targets = data.labels })
  local params = { arch = "mlp:784-128-10", x = data.x, losses = { ce.loss }, lr = 0.05, batch = 64 }
  for k, v in pairs(extra or {}) do params[k] = v end
  local st = g:node("student_update", params)
  local tf = g:node("teacher_forward", { model = st.model, x = data.x_test, labels = data.y_test })
  local ev = g:node("evaluate", { logits = tf.logits, labels = data.y_test })
  return g, st, tf, ev, data, ce
end

-- 1. it learns: 10 classes, chance is 0.1
local g, st, tf, ev, data = mlp_graph(3, { save = "student.safetensors" })
local tfx = g:node("teacher_forward", { name = "forward_x", model = st.model, x = data.x })
g:run { ticks = 3 }
local acc = ev.accuracy:value():item()
print("test accuracy after 3 epochs on 2000 samples:", acc)
assert(acc > 0.65, "the MLP did not learn: " .. acc)
assert(st.sample_loss:value():shape()[1] == 2000)
assert(st.logits:value():shape()[2] == 10 and st.features:value():shape()[2] == 128)
assert(tostring(st.model:value()):find("mlp:784%-128%-10"))
local D = { x = data.x:value(), labels = data.labels:value(), x_test = data.x_test:value(),
            y_test = data.y_test:value() }

-- 2. same seed, same numbers (one thread), data loader included; another seed, other
-- numbers
local g2, st2 = mlp_graph(3, {})
g2:run { ticks = 3 }
local a, b = st.logits:value(), st2.logits:value()
for i = 1, 2000, 97 do
  for j = 1, 10 do assert(a:get(i, j) == b:get(i, j), "not deterministic at row " .. i) end
end
local g3, st3 = mlp_graph(4, {}, D)
g3:run { ticks = 1 }
assert(st3.logits:value():get(1, 1) ~= a:get(1, 1))

-- 3. the checkpoint the student wrote is a teacher: the same predictions as the model it
-- was written from on the test split, the same logits on the training split, probs at
-- its temperature; and a student distilled from it (kd_loss alone, on the training
-- split: the test split never trains) learns the teacher's answers, mistakes included
local function softmax_t(row, t)
  local m, e, s = -math.huge, {}, 0
  for _, v in ipairs(row) do m = math.max(m, v) end
  for j, v in ipairs(row) do e[j] = math.exp((v - m) / t); s = s + e[j] end
  for j = 1, #e do e[j] = e[j] / s end
  return e
end
local g4 = kdf.graph { name = "from-checkpoint", seed = base + 3 }
local t4 = g4:node("teacher_forward", { checkpoint = "student.safetensors", x = D.x_test })
-- the checkpoint's test predictions against the model's, as labels: accuracy 1 = equal
local same = g4:node("evaluate", { name = "same_predictions", predictions = t4.predictions,
                                   labels = tf.predictions:value() })
local t4x = g4:node("teacher_forward", { name = "teacher_x", checkpoint = "student.safetensors",
                                         x = D.x, T = 4 })
local kd = g4:node("kd_loss", { teacher_logits = t4x.logits, T = 4, weight = 1 })
local s4 = g4:node("student_update", { arch = "mlp:784-64-10", x = D.x, losses = { kd.loss },
                                       epochs = 10 })
local f4 = g4:node("teacher_forward", { name = "distilled", model = s4.model, x = D.x })
g4:run { ticks = 1 }
assert(same.accuracy:value():item() == 1, "checkpoint predictions differ: agreement " ..
       same.accuracy:value():item())
local z1, z4, pr4 = tfx.logits:value(), t4x.logits:value(), t4x.probs:value()
for i = 1, 2000, 37 do
  local row = {}
  for j = 1, 10 do
    assert(z4:get(i, j) == z1:get(i, j), ("checkpoint logits differ at %d,%d"):format(i, j))
    row[j] = z4:get(i, j)
  end
  local want, at1 = softmax_t(row, 4), softmax_t(row, 1)
  for j = 1, 10 do
    assert(math.abs(pr4:get(i, j) - want[j]) < 1e-6,
           ("probs at T = 4, row %d: %g, softmax(z/4) = %g"):format(i, pr4:get(i, j), want[j]))
  end
  assert(math.abs(pr4:get(i, 1) - at1[1]) > 1e-4 or math.abs(at1[1] - 0.1) < 1e-3,
         "probs at T = 4 equal the softmax at T = 1 on row " .. i)
end
-- on the training rows the teacher gets wrong, the distilled student mostly gives the
-- teacher's wrong class, rarely the true one (91-95 % of them against 2-5 %)
do
  local tp, y, kp = t4x.predictions:value():totable(), D.labels:totable(), f4.predictions:value():totable()
  local wrong, follows, truth = 0, 0, 0
  for i = 1, #y do
    if tp[i] ~= y[i] then
      wrong = wrong + 1
      if kp[i] == tp[i] then follows = follows + 1 elseif kp[i] == y[i] then truth = truth + 1 end
    end
  end
  print(("distilled student on the teacher's %d mistakes: %d its class, %d the true class")
    :format(wrong, follows, truth))
  assert(wrong > 100, "the teacher is wrong on only " .. wrong .. " rows")
  assert(follows > 0.5 * wrong and follows > 3 * truth,
         ("the distilled student does not follow the teacher: %d of %d, %d true"):format(follows, wrong, truth))
end

-- 4. a pair trained jointly with one optimizer, each net on its own term: the student
-- on the labels y, the partner on (y + 1) mod 10. The student classifies the test set;
-- the partner predicts y + 1 there — it learned its term and not the student's. A term
-- on net = both trains both nets.
local g5, st5, tf5, ev5, data5, ce_a = mlp_graph(5, { arch2 = "mlp:784-64-10" }, D)
local function plus1(name, y)
  return g5:lua { name = name, inputs = { "y:i32[N]" }, outputs = { "s:i32[N]" }, y = y,
    fn = function (i)
      local s = {}
      for k, v in ipairs(i.y:totable()) do s[k] = (v + 1) % 10 end
      return { s = kdf.tensor(s, "i32") }
    end }
end
local shifted = plus1("shifted", data5.labels)
local ce_b = g5:node("ce_loss", { name = "partner_ce", targets = shifted.s, net = "partner" })
st5:set { losses = { ce_a.loss, ce_b.loss } }
local tf5b = g5:node("teacher_forward", { name = "partner_test", model = st5.model2, x = data5.x_test })
local ev5b = g5:node("evaluate", { name = "partner_on_y", predictions = tf5b.predictions,
                                   labels = data5.y_test })
local ev5s = g5:node("evaluate", { name = "partner_on_y1", predictions = tf5b.predictions,
                                   labels = plus1("y_test_plus1", data5.y_test).s })
local both = g5:node("ce_loss", { name = "both_ce", targets = data5.labels, net = "both" })
local pb = g5:node("student_update", { name = "both", arch = "mlp:784-64-10", arch2 = "mlp:784-32-10",
                                       x = data5.x, losses = { both.loss }, lr = 0.05, batch = 64 })
local evb = {}
for k, m in ipairs { pb.model, pb.model2 } do
  local f = g5:node("teacher_forward", { name = "both_" .. k, model = m, x = data5.x_test })
  evb[k] = g5:node("evaluate", { name = "both_eval_" .. k, predictions = f.predictions,
                                 labels = data5.y_test })
end
g5:run { ticks = 2 }
assert(st5.logits2:value():shape()[1] == 2000)
assert(tostring(st5.model2:value()):find("784%-64%-10"))
local a_student, a_partner = ev5.accuracy:value():item(), ev5b.accuracy:value():item()
local a_shift = ev5s.accuracy:value():item()
print(("pair: student %.3f, partner %.3f on y and %.3f on y + 1"):format(a_student, a_partner, a_shift))
assert(a_student > 0.55, "the student did not learn its labels: " .. a_student)
assert(a_shift > 0.55, "the partner did not learn its shifted labels: " .. a_shift)
assert(a_partner < 0.05, "the partner learned the student's labels: " .. a_partner)
local b1, b2 = evb[1].accuracy:value():item(), evb[2].accuracy:value():item()
print(("a term on both nets: %.3f and %.3f"):format(b1, b2))
assert(b1 > 0.55 and b2 > 0.55, ("net = both did not train both: %g, %g"):format(b1, b2))

-- 5. a schedule for the learning rate reaches the optimizer: the lr each tick trained
-- with (metrics.jsonl) is kdf.cosine's, computed here from its formula
local g6 = mlp_graph(6, { lr = kdf.cosine(0.05, 0.001, 2) }, D)
g6:run { ticks = 3 }
local dir = kdf.run_dir()
if dir then
  local lrs = {}
  for line in io.lines(dir .. "/metrics.jsonl") do
    if line:find('"graph":"train-6"', 1, true) then
      lrs[#lrs + 1] = tonumber(line:match('"student_update%.lr":([-%d.eE+]+)'))
    end
  end
  assert(#lrs == 3, "lr lines of train-6: " .. #lrs)
  for t = 0, 2 do
    local want = 0.001 + (0.05 - 0.001) * 0.5 * (1 + math.cos(math.pi * math.min(t, 2) / 2))
    assert(math.abs(lrs[t + 1] - want) < 1e-9, ("lr at tick %d: %s, expected %g"):format(t, lrs[t + 1], want))
  end
end
-- kdf.exponential (sd_pll.lua's lr × 0.98 per epoch): 0.05·0.5^t each tick, also when
-- the graph runs one tick at a time (the tick counter carries over between runs)
local g7 = mlp_graph(7, { lr = kdf.exponential(0.05, 0.5) }, D)
for _ = 1, 4 do g7:run { ticks = 1 } end
if dir then
  local lrs = {}
  for line in io.lines(dir .. "/metrics.jsonl") do
    if line:find('"graph":"train-7"', 1, true) then
      lrs[#lrs + 1] = tonumber(line:match('"student_update%.lr":([-%d.eE+]+)'))
    end
  end
  assert(#lrs == 4, "lr lines of train-7: " .. #lrs)
  for t = 0, 3 do
    local want = 0.05 * 0.5 ^ t
    assert(math.abs(lrs[t + 1] - want) < 1e-12, ("exponential lr at tick %d: %s, expected %g"):format(t, lrs[t + 1], want))
  end
end
assert(not pcall(kdf.exponential, 0.1, 0), "gamma 0 is refused")

-- 6. an architecture from a Lua table: the METHODS teacher CNN (scaled down) learns —
-- test accuracy far above chance after two epochs and the training loss falling
-- (0.72-0.77; mean loss 1.27-1.45, then 0.62-0.80, at most 0.56 of the first)
local cnn = kdf.arch { input = { 1, 28, 28 }, { "conv", 8 }, "relu", { "max", 2 }, "flatten",
                       { "linear", 32 }, "relu", "tap", { "linear", 10 } }
assert(cnn == "seq:1x28x28-conv8k3s1p1-relu-max2s2-flatten-linear32-relu-tap-linear10", cnn)
local g7, st7, _, ev7 = mlp_graph(7, { arch = cnn, batch = 32 }, D)
local loss = {}
for t = 1, 2 do
  g7:run { ticks = 1 }
  local sl = st7.sample_loss:value()
  loss[t] = sl:sum() / sl:numel()
end
assert(st7.features:value():shape()[2] == 32)
local acc7 = ev7.accuracy:value():item()
print(("CNN: test accuracy %.3f, mean training loss %.3f then %.3f"):format(acc7, loss[1], loss[2]))
assert(acc7 > 0.6, "the CNN did not learn: " .. acc7)
assert(loss[1] < math.log(10), "the CNN's first epoch stayed at chance loss: " .. loss[1])
assert(loss[2] < 0.8 * loss[1], ("the CNN's loss did not fall: %g then %g"):format(loss[1], loss[2]))
assert(not pcall(kdf.arch, { input = { 4 }, { "bogus", 3 } }))
print("student_update ok")
