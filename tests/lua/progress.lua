-- Progress over g:run calls (tests/report/progress.py watches stderr) and g:metrics().
-- Three ticks, one g:run each with `total = 3`, as the pipelines' common.train runs
-- them; two evaluate nodes record an accuracy ("test") and a validation accuracy.
local kdf = require "kdflow"
local g = kdf.graph { name = "prog", seed = 1 }
local src = g:lua { name = "src", outputs = { "pred:i32[N]", "labels:i32[N]" },
  every_tick = true, fn = function(_, ctx)
    -- tick t: the first t+1 of four predictions are right
    local p = { 9, 9, 9, 9 }
    for k = 1, math.min(4, ctx.tick + 1) do p[k] = k - 1 end
    return { pred = kdf.tensor(p, "i32"), labels = kdf.tensor({ 0, 1, 2, 3 }, "i32") }
  end }
g:node("evaluate", { name = "test_eval", predictions = src.pred, labels = src.labels,
                     n_classes = 10, save = false })
g:node("evaluate", { name = "noisy_val_eval", predictions = src.labels, labels = src.labels,
                     n_classes = 10, save = false })
local seen = {}
for t = 1, 3 do
  g:run { ticks = 1, total = 3 }
  local m = g:metrics()
  seen[t] = m["test_eval.accuracy"]
  assert(m["noisy_val_eval.accuracy"] == 1, "g:metrics(): noisy_val_eval.accuracy")
end
assert(seen[1] == 0.25 and seen[2] == 0.5 and seen[3] == 0.75,
       ("g:metrics() per tick: %s %s %s"):format(seen[1], seen[2], seen[3]))
local keys = 0
for _ in pairs(g:metrics()) do keys = keys + 1 end
assert(keys >= 2, "g:metrics() has " .. keys .. " keys")
