-- keep_best: the model and tensor of the best-scoring tick so far; ties keep the earlier
-- tick, NaN never wins, min mode, the checkpoint of the best model, and a score from the
-- test split refused (selection on the test split is training on it).
local kdf = require "kdflow"

-- scores by tick, with a tie (tick 3 = tick 1) and a NaN (tick 4)
local scores = { 0.5, 0.7, 0.6, 0.7, 0 / 0, 0.9, 0.2 }
local g = kdf.graph { name = "keep" }
local src = g:lua { name = "src", outputs = { "s:f32[]", "v:f32[2]" }, every_tick = true,
  fn = function(_, ctx)
    local t = ctx.tick + 1
    return { s = scores[t], v = { t, 10 * t } }
  end }
local kb = g:node("keep_best", { name = "kb", score = src.s, value = src.v })
local kmin = g:node("keep_best", { name = "kmin", score = src.s, mode = "min" })
-- expected after each tick: the best tick (0-based) and score, worked by hand
local want_max = { { 0, 0.5 }, { 1, 0.7 }, { 1, 0.7 }, { 1, 0.7 }, { 1, 0.7 }, { 5, 0.9 }, { 5, 0.9 } }
local want_min = { { 0, 0.5 }, { 0, 0.5 }, { 0, 0.5 }, { 0, 0.5 }, { 0, 0.5 }, { 0, 0.5 }, { 6, 0.2 } }
for t = 1, #scores do
  g:run()
  local tick, best = kb.tick:value():item(), kb.best:value():item()
  assert(tick == want_max[t][1] and math.abs(best - want_max[t][2]) < 1e-6,
         ("max, after tick %d: best tick %d (%g), expected %d (%g)"):format(t - 1, tick, best,
                                                                           want_max[t][1], want_max[t][2]))
  local v = kb.value:value():totable()
  assert(v[1] == want_max[t][1] + 1 and v[2] == 10 * (want_max[t][1] + 1), "the value of the best tick")
  assert(kmin.tick:value():item() == want_min[t][1]
         and math.abs(kmin.best:value():item() - want_min[t][2]) < 1e-6, "min, after tick " .. (t - 1))
end

-- the best model's checkpoint: a network trained a tick at a time, chosen by a score that
-- peaks at tick 1; the checkpoint holds tick 1's weights, not the last ones
local csv = os.tmpname()
local fh = assert(io.open(csv, "w"))
fh:write("a,b,label\n")
for i = 0, 31 do fh:write(("%d,%d,%d\n"):format(i % 4, (i * 7) % 5, i % 2)) end
fh:close()
local g2 = kdf.graph { name = "keep-model", seed = 2 }
local d = g2:node("data_loader", { name = "data", dataset = "csv", path = csv, val_fraction = 0 })
local ce = g2:node("ce_loss", { targets = d.labels })
local st = g2:node("student_update", { name = "st", arch = "mlp:2-4-2", x = d.x, losses = { ce.loss },
                                       lr = 0.5, batch = 8 })
local peak = { 0.1, 0.8, 0.3 }
local sc = g2:lua { name = "sc", outputs = { "s:f32[]" }, every_tick = true,
  fn = function(_, ctx) return { s = peak[ctx.tick + 1] } end }
local kb2 = g2:node("keep_best", { name = "kb2", score = sc.s, model = st.model, save = "best.safetensors" })
local at1 = g2:node("teacher_forward", { name = "at_best", model = kb2.model, x = d.x })
local snap = {}
for t = 1, 3 do
  g2:run()
  snap[t] = st.logits:value():sum()
end
local from_file = kdf.graph { name = "from-file" }
local d3 = from_file:node("data_loader", { name = "data", dataset = "csv", path = csv, val_fraction = 0 })
local tf3 = from_file:node("teacher_forward", { checkpoint = kdf.run_dir() .. "/best.safetensors", x = d3.x })
from_file:run()
assert(kb2.tick:value():item() == 1, "the best tick")
assert(math.abs(tf3.logits:value():sum() - at1.logits:value():sum()) < 1e-4,
       "the checkpoint is the kept model")
assert(math.abs(at1.logits:value():sum() - st.logits:value():sum()) > 1e-3,
       "the kept model is not the last one")

-- a score computed from the test split is refused
local g4 = kdf.graph { name = "keep-test" }
local d4 = g4:node("data_loader", { name = "data", dataset = "csv", path = csv, test_path = csv,
                                    val_fraction = 0 })
local ev = g4:node("evaluate", { name = "ev", predictions = d4.y_test, labels = d4.y_test })
g4:node("keep_best", { name = "pick", score = ev.accuracy })
local ok, err = pcall(g4.run, g4)
assert(not ok and tostring(err):find("node 'pick' (keep_best)", 1, true)
       and tostring(err):find("input 'score' received the test split", 1, true), tostring(err))
os.remove(csv)
print("keep_best ok")
