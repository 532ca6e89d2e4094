-- tipping_point as a node (Blind KD, METHODS §1): m_e = mean_i max_c p^S_ic, one entry
-- per new input; the tipping epoch is the first i with m_i strictly greater than
-- m_{i−2}, m_{i−1}, m_{i+1}, m_{i+2}, looked for only with ≥ 6 entries; once found,
-- `reached` = 1 and `epoch` stay; `scores_at` = the latest scores until then, the
-- tipping epoch's from then on. Checked: m by hand (probabilities and logits), METHODS'
-- two histories and hand-made ones fed one tick at a time, the rule evaluated in plain
-- Lua on pseudo-random histories, the constant input, and bad inputs with the node's
-- messages. Every check is an assert.
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g (tolerance %g)"):format(what, a, b, tol))
end

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- ---- m by hand ----------------------------------------------------------------------
-- probs (.7 .3) (.4 .6) (.5 .5): maxima .7 .6 .5 → m = 1.8/3 = .6
-- logits (0, ln 3) → softmax (.25 .75); (ln 4, 0) → (.8 .2): maxima .75 .8 → m = .775
do
  local g = kdf.graph { name = "tipping-m" }
  local tp = g:node("tipping_point", { probs = { { 0.7, 0.3 }, { 0.4, 0.6 }, { 0.5, 0.5 } } })
  local tl = g:node("tipping_point", { name = "logits", logits = { { 0, math.log(3) }, { math.log(4), 0 } } })
  g:run {}
  near(tp.mean_max:value():item(), 0.6, 1e-7, "m of probs")
  near(tl.mean_max:value():item(), 0.775, 1e-7, "m of logits")
  assert(tp.history:value():numel() == 1 and tl.history:value():numel() == 1, "one entry each")
  near(tp.history:value():get(1), 0.6, 1e-7, "history of probs")
  assert(tp.reached:value():item() == 0 and tp.epoch:value():item() == -1, "nothing reached after one entry")
  assert(tp.scores_at:value() == nil, "scores_at without scores")
end

-- ---- histories fed one tick at a time --------------------------------------------------
-- A Lua node emits each tick two rows of 10 classes whose maximum is h[tick]
-- (m, (1−m)/9, …) and ((1−m)/9, …, m): their mean max is m. The scores are
-- (tick, 100 + tick), so scores_at tells which tick's scores the node kept.
local function feed(h, with_logits, budget)
  local g = kdf.graph { name = "tipping-feed" }
  local src = g:lua { name = "student", outputs = { "p:f32[N,C]", "z:f32[N,C]", "s:f32[N]" },
    every_tick = true,
    fn = function (_, ctx)
      local m = h[ctx.tick + 1]
      local o = (1 - m) / 9
      local r1, r2, z1, z2 = {}, {}, {}, {}
      for j = 1, 10 do
        r1[j] = j == 1 and m or o
        r2[j] = j == 10 and m or o
        z1[j], z2[j] = math.log(r1[j]), math.log(r2[j])
      end
      return { p = { r1, r2 }, z = { z1, z2 }, s = { ctx.tick, 100 + ctx.tick } }
    end }
  local tp = g:node("tipping_point", with_logits and { logits = src.z, scores = src.s, budget = budget or 0 }
                                                  or { probs = src.p, scores = src.s, budget = budget or 0 })
  local seen = {}
  for t = 1, #h do
    g:run { ticks = 1 }
    local sa = tp.scores_at:value()
    seen[t] = { reached = tp.reached:value():item(), epoch = tp.epoch:value():item(),
                m = tp.mean_max:value():item(), s1 = sa:get(1), s2 = sa:get(2),
                fallback = tp.fallback:value():item() }
  end
  return seen, tp.history:value()
end

-- EPOCH: the expected tipping epoch, or −1; AT: the tick (0-based) it is detected on;
-- BUDGET (0: none) and FALLBACK (whether the epoch is the budget's)
local function check(what, h, epoch, at, budget, fallback)
  for _, with_logits in ipairs { false, true } do
    local w = what .. (with_logits and " (logits)" or " (probs)")
    local seen, hist = feed(h, with_logits, budget)
    assert(hist:numel() == #h, w .. ": history has " .. hist:numel() .. " entries")
    for t = 1, #h do
      local tick = t - 1
      near(hist:get(t), h[t], 1e-6, w .. ": history " .. tick)
      near(seen[t].m, h[t], 1e-6, w .. ": mean_max at tick " .. tick)
      local r = epoch >= 0 and tick >= at
      assert(seen[t].reached == (r and 1 or 0), ("%s: reached at tick %d is %d"):format(w, tick, seen[t].reached))
      assert(seen[t].epoch == (r and epoch or -1), ("%s: epoch at tick %d is %d"):format(w, tick, seen[t].epoch))
      assert(seen[t].fallback == ((r and fallback) and 1 or 0),
             ("%s: fallback at tick %d is %d"):format(w, tick, seen[t].fallback))
      local from = r and epoch or tick
      assert(seen[t].s1 == from and seen[t].s2 == 100 + from,
             ("%s: scores_at at tick %d are tick %g's, expected tick %d's"):format(w, tick, seen[t].s1, from))
    end
  end
end

-- METHODS §1: .55 (index 3) > .45 .52 | .54 .53 → 3, known with entry 5 (tick 5)
check("METHODS peak", { 0.30, 0.45, 0.52, 0.55, 0.54, 0.53, 0.56 }, 3, 5)
-- METHODS §1: .56 > .54 but .60 follows; .55 > .52 .45 | .54 but not .56 → none
check("METHODS climb", { 0.30, 0.45, 0.52, 0.55, 0.54, 0.56, 0.60 }, -1)
-- index 2 (.50 > .10 .20 | .40 .30) is settled by entry 4, but nothing is looked for
-- before 6 entries: detected at tick 5, three entries later, with tick 2's scores
-- (the oldest of the four kept). The later, higher peak .90 (index 6) changes nothing.
check("early peak", { 0.10, 0.20, 0.50, 0.40, 0.30, 0.20, 0.90, 0.10, 0.10 }, 2, 5)
-- strictly greater: the tied pair .50 .50 is no peak, and nothing else is → none
check("tied top", { 0.10, 0.20, 0.50, 0.50, 0.30, 0.20, 0.10 }, -1)
-- index 2 (.40) beats .30 | .35 .30 but not m_{i−2} = .50; nothing else peaks → none
check("not above m_{i-2}", { 0.50, 0.30, 0.40, 0.35, 0.30, 0.20, 0.10 }, -1)
-- a plateau, a dip, then .70 (index 6) > .50 .60 | .65 .60 → 6, known at tick 8
check("late peak", { 0.30, 0.40, 0.50, 0.50, 0.40, 0.60, 0.70, 0.65, 0.60, 0.20 }, 6, 8)

-- the budget: after B entries without a peak, the last of them is the tipping epoch
-- (flagged as a fallback); a peak known by then wins
check("climb, budget 6", { 0.30, 0.45, 0.52, 0.55, 0.54, 0.56, 0.60, 0.70 }, 5, 5, 6, true)
check("peak at the budget", { 0.30, 0.45, 0.52, 0.55, 0.54, 0.53, 0.56 }, 3, 5, 6, false)
check("late peak, budget 6", { 0.30, 0.40, 0.50, 0.50, 0.40, 0.60, 0.70, 0.65, 0.60, 0.20 }, 5, 5, 6, true)
check("late peak, budget 9", { 0.30, 0.40, 0.50, 0.50, 0.40, 0.60, 0.70, 0.65, 0.60, 0.20 }, 6, 8, 9, false)
check("climb, budget 0", { 0.30, 0.45, 0.52, 0.55, 0.54, 0.56, 0.60, 0.70 }, -1, nil, 0, false)
do -- the fallback is said: a warning in summary.json
  local g = kdf.graph { name = "tipping-warn" }
  local h = { 0.3, 0.4, 0.5, 0.6 }
  local src = g:lua { name = "student", outputs = { "p:f32[N,C]" }, every_tick = true,
    fn = function (_, ctx) local m = h[ctx.tick + 1]; return { p = { { m, 1 - m } } } end }
  g:node("tipping_point", { name = "tp", probs = src.p, budget = 3 })
  g:run { ticks = 4 }
  local f = assert(io.open(kdf.run_dir() .. "/summary.json"))
  local text = f:read("a")
  f:close()
  assert(text:find("node 'tp' (tipping_point), tick 2: no tipping point", 1, true)
         and text:find("the split uses entry 2, the last of the budget", 1, true),
         "the fallback was not reported: " .. text)
end

-- ---- the rule in plain Lua on pseudo-random histories ----------------------------------
local state = 77
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local function first_peak(h, n) -- over the first n entries
  if n < 6 then return -1 end
  for i = 3, n - 2 do
    local v = h[i]
    if v > h[i - 2] and v > h[i - 1] and v > h[i + 1] and v > h[i + 2] then return i - 1 end
  end
  return -1
end
local found, fell_back = 0, 0
for _, budget in ipairs { 0, 10 } do
for trial = 1, 8 do
  local h, v = {}, 0.3
  state = 6000 + trial -- the same histories for both budgets (3 without a peak, 6 without one by entry 10)
  for t = 1, 14 do
    v = math.min(0.95, math.max(0.15, v + 0.12 * (rnd() - 0.4)))
    h[t] = f32(v) -- the node sees f32 probabilities; m of two equal maxima is that f32
  end
  local seen = feed(h, false, budget)
  local fixed, fb = -1, false
  for t = 1, #h do
    if fixed < 0 then fixed = first_peak(h, t) end
    if fixed < 0 and budget > 0 and t >= budget then fixed, fb = t - 1, true end
    if fixed >= 0 and t == #h and budget == 0 then found = found + 1 end
    if fb and t == #h then fell_back = fell_back + 1 end
    local w = ("budget %d, random history %d, tick %d"):format(budget, trial, t - 1)
    assert(seen[t].reached == (fixed >= 0 and 1 or 0), w .. ": reached " .. seen[t].reached)
    assert(seen[t].epoch == fixed, w .. ": epoch " .. seen[t].epoch .. ", expected " .. fixed)
    assert(seen[t].fallback == (fb and 1 or 0), w .. ": fallback " .. seen[t].fallback)
    assert(seen[t].s1 == (fixed >= 0 and fixed or t - 1), w .. ": scores_at " .. seen[t].s1)
  end
end
end
assert(fell_back >= 1, "no random history fell back to the budget")
assert(found >= 3 and found <= 7, "the random histories should mix peaks and none: " .. found)

-- ---- an input that does not change is one entry, however many ticks pass -------------
do
  local g = kdf.graph { name = "tipping-constant" }
  local tp = g:node("tipping_point", { probs = { { 0.4, 0.6 } }, scores = { 0.25 } })
  g:run { ticks = 8 }
  assert(tp.history:value():numel() == 1, "a constant input counted " .. tp.history:value():numel() .. " times")
  near(tp.history:value():get(1), 0.6, 1e-7, "m of the constant")
  assert(tp.reached:value():item() == 0 and tp.epoch:value():item() == -1, "constant: not reached")
  near(tp.scores_at:value():get(1), 0.25, 0, "constant: scores_at")
end

-- the node runs when only its scores change (a Lua node emitting new scores every tick),
-- yet an unchanged student output is no new entry; scores_at keeps the scores that
-- arrived with the entry (tick 0's)
do
  local g = kdf.graph { name = "tipping-scores-only" }
  local sc = g:lua { name = "scores", outputs = { "s:f32[N]" }, every_tick = true,
    fn = function (_, ctx) return { s = { ctx.tick } } end }
  local tp = g:node("tipping_point", { probs = { { 0.3, 0.7 } }, scores = sc.s })
  g:run { ticks = 7 }
  assert(tp:stats().calls == 7, "the node ran " .. tostring(tp:stats().calls) .. " times")
  assert(tp.history:value():numel() == 1, "unchanged probs counted " .. tp.history:value():numel() .. " times")
  assert(tp.reached:value():item() == 0 and tp.scores_at:value():get(1) == 0, "scores-only: scores_at")
end

-- ---- bad inputs: the node's messages ---------------------------------------------------
local function fails(name, tbl, pattern)
  local g = kdf.graph { name = "tipping-" .. name }
  g:node("tipping_point", tbl)
  local ok, err = pcall(g.run, g, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
fails("both", { probs = { { 0.5, 0.5 } }, logits = { { 0, 0 } } },
      "connect exactly one of 'probs' and 'logits' %(both are%)")
fails("neither", { scores = { 0.5 } }, "connect exactly one of 'probs' and 'logits' %(neither is%)")
fails("nan", { probs = { { 0.5, 0.5 }, { 0.5, 0 / 0 } } },
      "input 'probs': tipping_point: probabilities: expected finite values, found %-?nan at element 3")
fails("scores-rows", { probs = { { 0.5, 0.5 }, { 0.4, 0.6 } }, scores = { 0.1, 0.2, 0.3 } },
      "input 'scores' is f32%[3%]")

-- scores wired only after the tipping epoch passed: the node cannot give that epoch's
-- scores, and says so (METHODS peak: epoch 3, detected at tick 5; scores from tick 4 on)
do
  local h = { 0.30, 0.45, 0.52, 0.55, 0.54, 0.53, 0.56 }
  local g = kdf.graph { name = "tipping-late-scores" }
  local src = g:lua { name = "student", outputs = { "p:f32[N,C]", "s:f32[N]" }, every_tick = true,
    fn = function (_, ctx)
      local m = h[ctx.tick + 1]
      local o = (1 - m) / 3
      return { p = { { m, o, o, o } }, s = { ctx.tick } }
    end }
  local tp = g:node("tipping_point", { probs = src.p })
  g:run { ticks = 4 }
  tp:set("scores", src.s)
  g:run { ticks = 1 }
  assert(tp.reached:value():item() == 0 and tp.scores_at:value():get(1) == 4, "scores from tick 4")
  local ok, err = pcall(g.run, g, { ticks = 1 })
  assert(not ok and err.status == 2, "late scores: the run did not fail with status 2: " .. tostring(err))
  assert(tostring(err):find("input 'scores': the tipping epoch is 3, but no scores arrived with it"),
         "late scores: unexpected message: " .. tostring(err))
end
print("tipping_point ok")
