-- The cost of the representation terms (contrastive_loss, rotation_loss, hint_loss) next
-- to plain CE: one student per wiring on the same Fashion-MNIST subset, E epochs each,
-- seconds per epoch and the test accuracy after the last. The teacher (for proto,
-- instance and hint) is trained first on the same rows with CE; its time is not counted.
--   build/engine/cli/kdflow run bench/representation_terms.lua --threads 1 \
--     [--set n=10000] [--set epochs=3] [--set arch=mlp:784-256-10] [--set seed=1]
local kdf = require "kdflow"
local o = { n = 10000, epochs = 3, arch = "mlp:784-256-10", seed = 1, noise = "none", rate = 0 }
for k, v in pairs(o) do
  local a = kdf.args[k]
  if a ~= nil then o[k] = type(v) == "number" and assert(tonumber(a), k) or a end
end

local function run(name, build)
  local g = kdf.graph { name = name, seed = o.seed }
  local data = g:node("data_loader", { name = "data", subset = o.n, test_subset = 2000, val_fraction = 0,
                                       noise = o.noise, rate = o.rate })
  local tce = g:node("ce_loss", { name = "tce", targets = data.labels })
  local teacher = g:node("student_update", { name = "teacher", arch = "mlp:784-256-10", x = data.x,
                                             losses = { tce.loss }, lr = 0.1, epochs = 3 })
  local tf = g:node("teacher_forward", { name = "tf", model = teacher.model, x = data.x })
  g:run { ticks = 1 } -- the teacher
  local ce = g:node("ce_loss", { name = "ce", targets = data.labels })
  local losses = build(g, data, tf, ce)
  local st = g:node("student_update", { name = "student", arch = o.arch, x = data.x, losses = losses,
                                        lr = 0.05, augment = "shift", noise = 0.1 })
  local test = g:node("teacher_forward", { name = "test", model = st.model, x = data.x_test })
  local ev = g:node("evaluate", { name = "ev", logits = test.logits, labels = data.y_test, save = false })
  local t0 = kdf.clock()
  g:run { ticks = o.epochs }
  local dt = (kdf.clock() - t0) / o.epochs
  print(("| %s | %.2f | %.4f |"):format(name, dt, ev.accuracy:value():item()))
end

print(("%d rows, %s, %d epochs, seed %d (teacher mlp:784-256-10, 3 epochs of CE)"):format(
  o.n, o.arch, o.epochs, o.seed))
print("| student loss | s / epoch | test accuracy |")
print("|---|---:|---:|")
run("CE", function (g, d, tf, ce) return { ce.loss } end)
run("CE + supcon", function (g, d, tf, ce)
  return { ce.loss, g:node("contrastive_loss", { name = "sc", mode = "supcon", labels = d.labels }).loss }
end)
run("CE + simclr", function (g, d, tf, ce)
  return { ce.loss, g:node("contrastive_loss", { name = "sc", mode = "simclr" }).loss }
end)
run("CE + proto + instance", function (g, d, tf, ce)
  local p = g:node("contrastive_loss", { name = "p", mode = "proto", labels = d.labels, embeddings = tf.features })
  local i = g:node("contrastive_loss", { name = "i", mode = "instance", embeddings = tf.features })
  return { ce.loss, p.loss, i.loss }
end)
run("CE + rotation", function (g, d, tf, ce)
  return { ce.loss, g:node("rotation_loss", { name = "r" }).loss }
end)
run("CE + hint", function (g, d, tf, ce)
  return { ce.loss, g:node("hint_loss", { name = "h", teacher_features = tf.features }).loss }
end)
run("CE + proto + instance + rotation + hint", function (g, d, tf, ce)
  local p = g:node("contrastive_loss", { name = "p", mode = "proto", labels = d.labels, embeddings = tf.features })
  local i = g:node("contrastive_loss", { name = "i", mode = "instance", embeddings = tf.features })
  local r = g:node("rotation_loss", { name = "r" })
  local h = g:node("hint_loss", { name = "h", teacher_features = tf.features })
  return { ce.loss, p.loss, i.loss, r.loss, h.loss }
end)
