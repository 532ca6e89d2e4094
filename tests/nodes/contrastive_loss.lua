-- contrastive_loss: the term wired into student_update as ce_loss and kd_loss are
-- (docs/nodes.md; the formulas and their gradients are checked against hand values
-- and central differences in tests/nn/test-contrastive.c). Here, on a Fashion-MNIST
-- subset:
--   1. supcon + CE trains a small MLP student (two views from shift + noise) to a test
--      accuracy far above chance (0.1), and supcon alone lowers its own loss tick by
--      tick — the term trains the student's tap through the projection head, which the
--      student's checkpoint then carries;
--   2. proto + instance + CE against a teacher's feature tap (the universal_kd wiring)
--      also trains, and the prototypes output is the class means of the clean rows;
--   3. bad inputs: exit status 2 with a message naming the port, param or term.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end

local function metric(graph, key)
  local rd = assert(kdf.run_dir(), "no run directory (run this with kdflow run)")
  local vals = {}
  for line in io.lines(rd .. "/metrics.jsonl") do
    if line:find('"graph":"' .. graph .. '"', 1, true) then
      local v = line:match('"' .. key:gsub("%p", "%%%0") .. '":([^,}]+)')
      if v then vals[#vals + 1] = tonumber(v) end
    end
  end
  assert(#vals > 0, "metric " .. key .. " of graph " .. graph .. " not found")
  return vals
end

local N, TICKS = 1000, 6

-- 1. supcon + CE, and supcon alone
local g = kdf.graph { name = "supcon", seed = 3 }
local data = g:node("data_loader", { name = "data", subset = N, test_subset = 500, val_fraction = 0 })
local sc = g:node("contrastive_loss", { name = "sc", mode = "supcon", labels = data.labels, dim = 32 })
local ce = g:node("ce_loss", { name = "ce", targets = data.labels })
local trainer = { arch = "mlp:784-64-10", x = data.x, batch = 100, lr = 0.05, augment = "shift",
                  noise = 0.1, weight_decay = 0 }
local function student(name, losses, save)
  local p = { name = name, losses = losses, save = save }
  for k, v in pairs(trainer) do p[k] = v end
  return g:node("student_update", p)
end
local both = student("both", { sc.loss, ce.loss }, "both.safetensors")
local alone = student("alone", { sc.loss })
local test = g:node("teacher_forward", { name = "test", model = both.model, x = data.x_test })
local ev = g:node("evaluate", { name = "ev", logits = test.logits, labels = data.y_test, save = false })
g:run { ticks = TICKS }
local acc = ev.accuracy:value():item()
print(("supcon + CE: test accuracy %.4f after %d epochs on %d rows"):format(acc, TICKS, N))
assert(acc > 0.5, "supcon + CE: accuracy " .. acc .. " is not far above chance (0.1)")
local la = metric("supcon", "alone.loss")
print(("supcon alone: loss by tick %s"):format(table.concat(la, " ")))
assert(#la == TICKS and la[TICKS] < la[1] - 0.2, "supcon alone did not lower its loss")
-- the projection head is the student's: its checkpoint carries heads.proj
local f = assert(io.open(kdf.run_dir() .. "/both.safetensors", "rb"))
local head = f:read(4096)
f:close()
assert(head:find('"heads.proj.0.weight"', 1, true), "the student's checkpoint has no projection head")
assert(head:find('proj=32', 1, true), "the checkpoint's metadata does not name the head")

-- 2. the universal_kd wiring: a teacher's tap as embeddings, proto + instance + CE
local g2 = kdf.graph { name = "proto", seed = 4 }
local d2 = g2:node("data_loader", { name = "data", subset = N, test_subset = 500, val_fraction = 0 })
local tce = g2:node("ce_loss", { name = "tce", targets = d2.labels })
local teacher = g2:node("student_update", { name = "teacher", arch = "mlp:784-48-10", x = d2.x,
                                            losses = { tce.loss }, batch = 100, lr = 0.1, epochs = 3 })
local tf = g2:node("teacher_forward", { name = "tf", model = teacher.model, x = d2.x })
-- "clean" rows: every other row (the split would give them)
local cl = {}
for i = 1, N do cl[i] = i % 2 end
local clean = kdf.tensor(cl, "u8")
local pr = g2:node("contrastive_loss", { name = "pr", mode = "proto", labels = d2.labels,
                                         embeddings = tf.features, clean = clean, weight = 0.5 })
local inst = g2:node("contrastive_loss", { name = "inst", mode = "instance", embeddings = tf.features,
                                           weight = 0.5 })
local ce2 = g2:node("ce_loss", { name = "ce", targets = d2.labels })
local st = g2:node("student_update", { name = "student", arch = "mlp:784-64-10", x = d2.x, batch = 100,
                                       lr = 0.05, augment = "shift", noise = 0.1,
                                       losses = { ce2.loss, pr.loss, inst.loss } })
local t2 = g2:node("teacher_forward", { name = "test", model = st.model, x = d2.x_test })
local ev2 = g2:node("evaluate", { name = "ev", logits = t2.logits, labels = d2.y_test, save = false })
g2:run { ticks = 4 }
local acc2 = ev2.accuracy:value():item()
print(("proto + instance + CE: test accuracy %.4f"):format(acc2))
assert(acc2 > 0.5, "proto + instance + CE: accuracy " .. acc2 .. " is not far above chance (0.1)")
local lp = metric("proto", "student.loss")
assert(lp[#lp] < lp[1], "proto + instance + CE did not lower the loss")
-- the prototypes output: the mean of the clean rows' teacher features of class 0, column 1
local P, Fe, Y = pr.prototypes:value(), tf.features:value(), d2.labels:value()
local s, n = 0, 0
for i = 1, N do
  if cl[i] == 1 and Y:get(i) == 0 then s, n = s + Fe:get(i, 1), n + 1 end
end
assert(n > 0 and math.abs(P:get(1, 1) - s / n) < 1e-5 * math.max(1, math.abs(s / n)),
       ("prototype[0][0] %.7g, class mean %.7g"):format(P:get(1, 1), s / n))

-- 3. bad inputs
local function fails(name, params, want, trainer_params)
  local gb = kdf.graph { name = "contrastive-bad-" .. name }
  local x = kdf.zeros({ 8, 4 })
  local ok, err = pcall(function ()
    params.name = "bad"
    local l = gb:node("contrastive_loss", params)
    local tp = { arch = "mlp:4-3-2", x = x, batch = 8, losses = { l.loss } }
    for k, v in pairs(trainer_params or {}) do tp[k] = v end
    gb:node("student_update", tp)
    gb:run {}
  end)
  assert(not ok, name .. ": did not fail")
  assert(tostring(err):find(want, 1, true), name .. ": message: " .. tostring(err))
  if type(err) ~= "string" then assert(err.status == 2, name .. ": status " .. tostring(err.status)) end
end
local y8 = kdf.tensor({ 0, 1, 0, 1, 0, 1, 0, 1 }, "i32")
local e8 = kdf.zeros({ 8, 3 })
fails("no labels", { mode = "supcon" }, "mode supcon needs input 'labels'")
fails("no embeddings", { mode = "instance" }, "mode instance needs input 'embeddings'")
fails("dim", { mode = "instance", embeddings = e8, dim = 5 }, "param 'dim' = 5")
fails("empty class", { mode = "proto", labels = y8, embeddings = e8,
                       clean = kdf.tensor({ 1, 0, 1, 0, 1, 0, 1, 0 }, "u8") },
      "class 1 has no row in the clean set")
fails("tau", { mode = "simclr", tau = 0 }, "'tau' = 0 is out of range")
fails("rows", { mode = "supcon", labels = kdf.tensor({ 0, 1, 0 }, "i32") },
      "loss term 1 ('contrastive:supcon') is bound to 3 samples, 'x' has 8")
fails("mixup", { mode = "supcon", labels = y8 }, "mixup is not supported", { mixup = 0.4 })
-- said, not silent: embeddings that supcon ignores, and two views that are identical
do
  local gw = kdf.graph { name = "contrastive-warn", seed = 1 }
  local dw = gw:node("data_loader", { name = "data", subset = 200, test_subset = 100, val_fraction = 0 })
  local feats = gw:lua { name = "feats", inputs = { "x:f32[N,D]" }, outputs = { "e:f32[N,4]" },
    x = dw.x, fn = function(i)
      local e = {}
      for r = 1, i.x:shape()[1] do e[r] = { 1, 0, 0, r % 3 } end
      return { e = e }
    end }
  local l = gw:node("contrastive_loss", { name = "sw", mode = "supcon", labels = dw.labels,
                                          embeddings = feats.e, dim = 8 })
  gw:node("student_update", { name = "sv", arch = "mlp:784-16-10", x = dw.x, losses = { l.loss },
                              batch = 100 })
  gw:run { ticks = 1 }
  local f = assert(io.open(kdf.run_dir() .. "/summary.json"))
  local text = f:read("a")
  f:close()
  assert(text:find("input 'embeddings' is only read by modes instance and proto", 1, true),
         "ignored embeddings were not reported: " .. text)
  assert(text:find("the two views are identical", 1, true),
         "identical views were not reported: " .. text)
end

print("contrastive_loss ok")
