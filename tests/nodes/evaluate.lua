-- evaluate as a node, worked by hand: accuracy, per-class accuracy and confusion
-- from predictions or logits; detection precision / recall / F1 from a flagged or
-- kept mask; AUROC from a score or a clean score; refined-label accuracy overall
-- and on the noisy / clean rows; a human review file; the files it writes.
local kdf = require "kdflow"
local out = kdf.arg("out", "")

local function near(a, b, what)
  assert(math.abs(a - b) < 1e-6, ("%s: %.9g, expected %.9g"):format(what, a, b))
end

local pred = kdf.tensor({ 0, 1, 1, 2, 2, 0 }, "i32")
local labels = kdf.tensor({ 0, 1, 2, 2, 1, 0 }, "i32")
local logits = { { 3, 1, 0 }, { 0, 2, 1 }, { 0, 5, 1 }, { 0, 0, 1 }, { 1, 0, 4 }, { 9, 0, 0 } }
local flagged = kdf.tensor({ 1, 1, 0, 0, 1, 0 }, "u8")
local kept = kdf.tensor({ 0, 0, 1, 1, 0, 1 }, "u8")
local truth = kdf.tensor({ 1, 0, 0, 1, 1, 0 }, "u8")
local score = { 0.9, 0.8, 0.1, 0.3, 0.7, 0.2 }
local clean_score = { 0.1, 0.2, 0.9, 0.7, 0.3, 0.8 }

-- a review: rows 0 and 4 confirmed errors (given < 3 of 5), row 3 not
local review = os.tmpname()
local f = assert(io.open(review, "w"))
f:write('[{"id": 0, "mturk": {"given": 1, "guessed": 4}},',
        ' {"id": 3, "mturk": {"given": 4, "guessed": 1}},',
        ' {"id": 4, "mturk": {"given": 0, "guessed": 5}}]')
f:close()

-- the run directory may hold lines of earlier runs: count only the new ones
local function lines(path)
  local n, fh = 0, io.open(path, "r")
  if not fh then return 0 end
  for _ in fh:lines() do n = n + 1 end
  fh:close()
  return n
end
local before = out ~= "" and lines(out .. "/metrics.jsonl") or 0

local g = kdf.graph { name = "eval" }
local ev = g:node("evaluate", { name = "ev", predictions = pred, labels = labels, flagged = flagged,
  score = score, truth = truth, refined = kdf.tensor({ 0, 1, 2, 2, 1, 1 }, "i32"),
  clean_labels = kdf.tensor({ 0, 1, 2, 1, 1, 0 }, "i32"), review = review })
local ev2 = g:node("evaluate", { name = "ev2", logits = logits, labels = labels, kept = kept,
  clean_score = clean_score, truth = truth })
g:run { ticks = 2 }
os.remove(review)

-- 4 of 6 right; per class 1, .5, .5; confusion [true][pred]
for _, e in ipairs { ev, ev2 } do
  near(e.accuracy:value():item(), 4 / 6, "accuracy")
  local pc = e.per_class:value()
  near(pc:get(1), 1, "class 0"); near(pc:get(2), 0.5, "class 1"); near(pc:get(3), 0.5, "class 2")
  local c = e.confusion:value()
  local want = { { 2, 0, 0 }, { 0, 1, 1 }, { 0, 1, 1 } }
  for i = 1, 3 do for j = 1, 3 do assert(c:get(i, j) == want[i][j], "confusion") end end
  -- tp 2 (rows 0, 4), fp 1 (row 1), fn 1 (row 3)
  near(e.precision:value():item(), 2 / 3, "precision")
  near(e.recall:value():item(), 2 / 3, "recall")
  near(e.f1:value():item(), 2 / 3, "f1")
  -- positives .9 .3 .7 against negatives .8 .1 .2: 7 of 9 pairs ordered
  near(e.auroc:value():item(), 7 / 9, "auroc")
  assert(e.n_flagged:value():item() == 3)
  assert(table.concat(e.flagged_index:value():totable(), ",") == "0,1,4")
end
-- refined: rows 0 1 2 4 right; on the noisy rows (0 3 4) 2 of 3, on the clean 2 of 3
near(ev.refined_accuracy:value():item(), 4 / 6, "refined accuracy")
-- the review: flagged rows 0 1 4 catch both confirmed errors
assert(ev.caught:value():item() == 2 and ev.confirmed:value():item() == 2)
near(ev.review_precision:value():item(), 2 / 3, "review precision")
-- the node runs every tick, so both ticks' metrics lines carry its numbers
assert(g:stats().ev.calls == 2)

if out ~= "" then
  for _, name in ipairs { "ev.predictions.npy", "ev.confusion.npy", "ev.flagged.npy",
                          "ev.flagged_index.npy", "ev.score.npy", "ev.refined.npy",
                          "ev.caught_index.npy", "ev2.predictions.npy", "metrics.jsonl" } do
    local fh = io.open(out .. "/" .. name, "rb")
    assert(fh, "missing " .. out .. "/" .. name)
    fh:close()
  end
  -- metrics.jsonl: one line per tick, each with ev's numbers (no NaN written)
  local n = 0
  for line in io.lines(out .. "/metrics.jsonl") do
    n = n + 1
    if n > before then
      assert(line:find('"ev.accuracy":0.66666') and line:find('"ev.review_caught":2'), line)
      assert(not line:lower():find("nan"), line)
    end
  end
  assert(n == before + 2, ("metrics lines %d, expected %d"):format(n, before + 2))
end

-- a mask that arrives through a delay edge has no value at tick 0: the detection
-- numbers start at tick 1, and the truth alone is no error
local g4 = kdf.graph { name = "eval-delay" }
local src = g4:node("loss_ranking", { name = "src", loss = score, keep = 0.5 })
local late = g4:node("evaluate", { name = "late", flagged = kdf.delay(src.flagged, 1), truth = truth })
g4:run { ticks = 1 }
assert(late.precision:value() == nil)
g4:run { ticks = 1 }
-- flagged are the three largest scores: rows 0 1 4; tp 2
near(late.precision:value():item(), 2 / 3, "delayed precision")

-- bad use: a review that cannot be read; predictions and logits together
local g2 = kdf.graph { name = "eval-bad" }
g2:node("evaluate", { flagged = flagged, review = "/nonexistent/x_mturk.json" })
local ok, err = pcall(g2.run, g2, {})
assert(not ok and err.status == 2 and tostring(err):find("/nonexistent/x_mturk.json"), tostring(err))
local g3 = kdf.graph { name = "eval-bad2" }
g3:node("evaluate", { labels = labels, predictions = pred, logits = logits })
ok, err = pcall(g3.run, g3, {})
assert(not ok and err.status == 2 and tostring(err):find("give one"), tostring(err))
print("evaluate ok")
