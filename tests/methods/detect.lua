-- The nodes agreement, tipping_point and topk_refine: hand-worked values, METHODS §1's
-- two tipping-point histories fed one tick at a time, and the kept scores.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local near = dofile(dir .. "util.lua").near

-- ---- agreement ----------------------------------------------------------------------
-- p^T = (.7 .2 .1), p^S = (.5 .3 .2): product (.35 .06 .02), p_A = (.813953 .139535
-- .046512); label 1 → a = .139535, prediction 0. Disjoint rows give the uniform 1/3.
do
  local g = kdf.graph { name = "agreement" }
  local pt = { { 0.7, 0.2, 0.1 }, { 1, 0, 0 } }
  local ps = { { 0.5, 0.3, 0.2 }, { 0, 1, 0 } }
  local y = kdf.tensor({ 1, 0 }, "i32")
  local a = g:node("agreement", { name = "probs", teacher_probs = pt, student_probs = ps, labels = y })
  -- the same from logits (log p + a row constant): softmax gives p back
  local lt = { { math.log(0.7) + 3, math.log(0.2) + 3, math.log(0.1) + 3 } }
  local ls = { { math.log(0.5) - 1, math.log(0.3) - 1, math.log(0.2) - 1 } }
  local b = g:node("agreement", { name = "logits", teacher_logits = lt, student_logits = ls,
                                  labels = kdf.tensor({ 1 }, "i32") })
  local c = g:node("agreement", { name = "nolabels", teacher_probs = pt, student_logits = { { 0, 0, 0 }, { 0, 0, 0 } } })
  g:run {}
  local pa = a.probs:value()
  for j, v in ipairs { 0.35 / 0.43, 0.06 / 0.43, 0.02 / 0.43 } do
    near(pa:get(1, j), v, 1e-6, "p_A[1," .. j .. "]")
    near(b.probs:value():get(1, j), v, 1e-6, "p_A from logits [1," .. j .. "]")
    near(pa:get(2, j), 1 / 3, 1e-7, "disjoint row")
  end
  near(a.scores:value():get(1), 0.139535, 1e-6, "score")
  near(a.scores:value():get(2), 1 / 3, 1e-7, "disjoint score")
  near(b.scores:value():get(1), 0.139535, 1e-6, "score from logits")
  assert(a.predictions:value():get(1) == 0 and a.predictions:value():get(2) == 0, "predictions")
  -- a uniform student leaves the teacher: p_A = p^T; no labels, no scores
  near(c.probs:value():get(1, 1), 0.7, 1e-6, "uniform student")
  assert(c.scores:value() == nil, "scores without labels")
  assert(c.predictions:value():get(1) == 0)
end

-- ---- tipping_point: METHODS §1 -------------------------------------------------------
-- (.30 .45 .52 .55 .54 .53 .56) → 3, known at the 6th tick; (.30 .45 .52 .55 .54 .56
-- .60) → none. The student's probabilities arrive one tick at a time from a Lua node:
-- one row (m, (1−m)/3, (1−m)/3, (1−m)/3), whose mean max is m; the scores are the tick.
local function history_run(h, with_logits)
  local g = kdf.graph { name = "tipping" }
  local src = g:lua { name = "student", outputs = { "p:f32[N,C]", "z:f32[N,C]", "s:f32[N]" },
    every_tick = true,
    fn = function (inputs, ctx)
      local m = h[ctx.tick + 1]
      local o = (1 - m) / 3
      return { p = { { m, o, o, o } }, z = { { math.log(m), math.log(o), math.log(o), math.log(o) } },
               s = { ctx.tick } }
    end }
  local tp = g:node("tipping_point", with_logits and { logits = src.z, scores = src.s }
                                                  or { probs = src.p, scores = src.s })
  local seen = {}
  for t = 1, #h do
    g:run { ticks = 1 }
    seen[t] = { reached = tp.reached:value():item(), epoch = tp.epoch:value():item(),
                scores_at = tp.scores_at:value():get(1), m = tp.mean_max:value():item() }
  end
  return seen, tp
end

for _, with_logits in ipairs { false, true } do
  local h = { 0.30, 0.45, 0.52, 0.55, 0.54, 0.53, 0.56 }
  local seen, tp = history_run(h, with_logits)
  for t = 1, 7 do
    near(seen[t].m, h[t], 1e-6, "m at tick " .. (t - 1))
    local want = t >= 6 and 1 or 0
    assert(seen[t].reached == want, ("reached at tick %d: %d"):format(t - 1, seen[t].reached))
    assert(seen[t].epoch == (t >= 6 and 3 or -1), ("epoch at tick %d: %d"):format(t - 1, seen[t].epoch))
    -- the scores: the latest until reached, then those of the tipping epoch (tick 3)
    assert(seen[t].scores_at == (t >= 6 and 3 or t - 1), ("scores_at at tick %d: %g"):format(t - 1, seen[t].scores_at))
  end
  local hist = tp.history:value()
  assert(hist:numel() == 7)
  for t = 1, 7 do near(hist:get(t), h[t], 1e-6, "history " .. t) end

  local climb = { 0.30, 0.45, 0.52, 0.55, 0.54, 0.56, 0.60 }
  seen = history_run(climb, with_logits)
  for t = 1, 7 do
    assert(seen[t].reached == 0 and seen[t].epoch == -1, "the climbing history has no tipping point")
    assert(seen[t].scores_at == t - 1)
  end
end

-- an input that does not change is one entry, however many ticks pass
do
  local g = kdf.graph { name = "tipping-constant" }
  local tp = g:node("tipping_point", { probs = { { 0.4, 0.6 } } })
  g:run { ticks = 8 }
  assert(tp.history:value():numel() == 1, "a constant input counted " .. tp.history:value():numel() .. " times")
  near(tp.history:value():get(1), 0.6, 1e-7, "m of the constant")
  assert(tp.reached:value():item() == 0 and tp.scores_at:value() == nil)
end

-- ---- topk_refine ---------------------------------------------------------------------
do
  local g = kdf.graph { name = "topk" }
  local probs = { { 0.1, 0.5, 0.3, 0.1 }, { 0.25, 0.25, 0.25, 0.25 }, { 0.6, 0.1, 0.1, 0.2 } }
  local t2 = g:node("topk_refine", { name = "k2", probs = probs })
  local t3 = g:node("topk_refine", { name = "k3", logits = probs, k = 3 })
  g:run {}
  local want = { { 0, 1, 1, 0 }, { 1, 1, 0, 0 }, { 1, 0, 0, 1 } }
  for i = 1, 3 do
    for j = 1, 4 do
      assert(t2.candidates:value():get(i, j) == want[i][j], ("mask %d,%d"):format(i, j))
      near(t2.soft:value():get(i, j), want[i][j] / 2, 0, ("soft %d,%d"):format(i, j))
    end
  end
  local top = t2.top:value()
  assert(top:get(1, 1) == 1 and top:get(1, 2) == 2 and top:get(2, 1) == 0 and top:get(2, 2) == 1)
  assert(t2.labels:value():get(1) == 1 and t2.labels:value():get(3) == 0)
  -- k = 3: row 1 ties 0.1 at classes 0 and 3, the lower wins
  assert(t3.top:value():get(1, 3) == 0 and t3.top:value():shape()[2] == 3)
  near(t3.soft:value():get(1, 2), 1 / 3, 1e-7, "soft 1/3")
end
print("agreement, tipping_point, topk_refine ok")
