-- agreement as a node (Blind KD, METHODS §1): p_A = normalise(p^T ⊙ p^S) row-wise,
-- scores a_i = p_A[i, ỹ_i], predictions argmax p_A (first maximum), an all-zero product
-- row → uniform 1/C; logits go through a softmax (T = 1). Rows worked by hand, the
-- metrics, the formula evaluated in plain Lua from logits, then bad inputs that must
-- fail with the node's messages. Every check is an assert.
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g (tolerance %g)"):format(what, a, b, tol))
end

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- ---- worked by hand ------------------------------------------------------------------
-- row 0: T (.6 .3 .1) ⊙ S (.2 .5 .3) = (.12 .15 .03), sum .30 → (.4 .5 .1); ỹ = 0 → .4, pred 1
-- row 1: T (.5 .5 0) ⊙ S (.5 .25 .25) = (.25 .125 0), sum .375 → (2/3 1/3 0); ỹ = 2 → 0, pred 0
-- row 2: T (1 0 0) ⊙ S (0 .5 .5) = 0: uniform (1/3 1/3 1/3); ỹ = 1 → 1/3, pred 0 (first max)
-- row 3: T (.2 .2 .6) ⊙ S (.3 .3 .4) = (.06 .06 .24), sum .36 → (1/6 1/6 2/3); ỹ = 2 → 2/3, pred 2
-- row 4: T (.5 .45 .05) ⊙ S (.05 .45 .5) = (.025 .2025 .025), sum .2525
--        → (.0990099 .8019802 .0990099); ỹ = 1 → .8019802, pred 1: neither network's
--        argmax (T says 0, S says 2), only the product's
-- metrics: mean_score = (.4 + 0 + 1/3 + 2/3 + .8019802)/5 = .44039604;
--          label_agreement = rows 3 and 4 predict their label = 2/5
local T = { { 0.6, 0.3, 0.1 }, { 0.5, 0.5, 0 }, { 1, 0, 0 }, { 0.2, 0.2, 0.6 }, { 0.5, 0.45, 0.05 } }
local S = { { 0.2, 0.5, 0.3 }, { 0.5, 0.25, 0.25 }, { 0, 0.5, 0.5 }, { 0.3, 0.3, 0.4 }, { 0.05, 0.45, 0.5 } }
local Y = kdf.tensor({ 0, 2, 1, 2, 1 }, "i32")
local PA = { { 0.4, 0.5, 0.1 }, { 2 / 3, 1 / 3, 0 }, { 1 / 3, 1 / 3, 1 / 3 }, { 1 / 6, 1 / 6, 2 / 3 },
             { 0.025 / 0.2525, 0.2025 / 0.2525, 0.025 / 0.2525 } }
local SCORE = { 0.4, 0, 1 / 3, 2 / 3, 0.2025 / 0.2525 }
local PRED = { 1, 0, 0, 2, 1 }

local g = kdf.graph { name = "agreement-hand" }
local a = g:node("agreement", { teacher_probs = T, student_probs = S, labels = Y })
-- the product commutes: the networks swapped give the same p_A
local sw = g:node("agreement", { name = "swapped", teacher_probs = S, student_probs = T, labels = Y })
-- without labels: p_A and predictions, no scores
local nl = g:node("agreement", { name = "nolabels", teacher_probs = T, student_probs = S })
g:run {}
for i = 1, 5 do
  for j = 1, 3 do
    near(a.probs:value():get(i, j), PA[i][j], 1e-6, ("p_A[%d,%d]"):format(i, j))
    near(sw.probs:value():get(i, j), PA[i][j], 1e-6, ("swapped p_A[%d,%d]"):format(i, j))
    near(nl.probs:value():get(i, j), PA[i][j], 1e-6, ("no-labels p_A[%d,%d]"):format(i, j))
  end
  near(a.scores:value():get(i), SCORE[i], 1e-6, "score " .. i)
  assert(a.predictions:value():get(i) == PRED[i],
         ("prediction %d: %d, expected %d"):format(i, a.predictions:value():get(i), PRED[i]))
  assert(nl.predictions:value():get(i) == PRED[i], "no-labels prediction " .. i)
end
assert(nl.scores:value() == nil, "scores without labels")

-- the metrics of the node named "agreement" (the last line of this graph in metrics.jsonl)
local dir = kdf.run_dir()
if dir then
  local last
  for line in io.lines(dir .. "/metrics.jsonl") do
    if line:find('"graph":"agreement-hand"', 1, true) then last = line end
  end
  assert(last, "no metrics line for graph agreement-hand")
  local ms = tonumber(last:match('"agreement%.mean_score":([-%d.eE+]+)'))
  local la = tonumber(last:match('"agreement%.label_agreement":([-%d.eE+]+)'))
  assert(ms and la, "metrics missing: " .. last)
  near(ms, (0.4 + 0 + 1 / 3 + 2 / 3 + 0.2025 / 0.2525) / 5, 1e-6, "mean_score")
  near(la, 2 / 5, 1e-12, "label_agreement")
end

-- ---- the formula in plain Lua, from logits (softmax T = 1) ------------------------------
-- 24 rows × 4 classes of pseudo-random logits for both networks; also the teacher as
-- probabilities with the student as logits (the mixed wiring)
local state = 2024
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local function softmax(z)
  local m, s, p = -math.huge, 0, {}
  for _, v in ipairs(z) do m = math.max(m, v) end
  for j, v in ipairs(z) do p[j] = math.exp(v - m); s = s + p[j] end
  for j = 1, #p do p[j] = p[j] / s end
  return p
end
local n, c = 24, 4
local ZT, ZS, PT, Yl = {}, {}, {}, {}
for i = 1, n do
  ZT[i], ZS[i] = {}, {}
  for j = 1, c do ZT[i][j] = f32(6 * rnd() - 3); ZS[i][j] = f32(6 * rnd() - 3) end
  PT[i] = softmax(ZT[i])
  for j = 1, c do PT[i][j] = f32(PT[i][j]) end
  Yl[i] = math.floor(rnd() * c)
end
local g2 = kdf.graph { name = "agreement-formula" }
local fl = g2:node("agreement", { name = "logits", teacher_logits = ZT, student_logits = ZS,
                                  labels = kdf.tensor(Yl, "i32") })
local fm = g2:node("agreement", { name = "mixed", teacher_probs = PT, student_logits = ZS,
                                  labels = kdf.tensor(Yl, "i32") })
g2:run {}
for i = 1, n do
  local pt, ps = softmax(ZT[i]), softmax(ZS[i])
  local prod, s = {}, 0
  for j = 1, c do prod[j] = pt[j] * ps[j]; s = s + prod[j] end
  local best, arg = -1, -1
  for j = 1, c do
    local v = prod[j] / s
    near(fl.probs:value():get(i, j), v, 2e-6, ("formula p_A[%d,%d]"):format(i, j))
    near(fm.probs:value():get(i, j), v, 2e-6, ("mixed p_A[%d,%d]"):format(i, j))
    if v > best then best, arg = v, j - 1 end
  end
  near(fl.scores:value():get(i), prod[Yl[i] + 1] / s, 2e-6, "formula score " .. i)
  near(fm.scores:value():get(i), prod[Yl[i] + 1] / s, 2e-6, "mixed score " .. i)
  assert(fl.predictions:value():get(i) == arg, ("formula prediction %d: %d, expected %d"):format(
    i, fl.predictions:value():get(i), arg))
end

-- ---- bad inputs: exit status 2 and the node's message ----------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "agreement-" .. name }
  gb:node("agreement", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
local p23 = { { 0.7, 0.2, 0.1 }, { 0.2, 0.3, 0.5 } }
fails("label", { teacher_probs = p23, student_probs = p23, labels = kdf.tensor({ 0, 3 }, "i32") },
      "input 'labels' row 1 is 3, outside %[0, 3%)")
fails("both", { teacher_probs = p23, teacher_logits = p23, student_probs = p23 },
      "connect exactly one of 'teacher_probs' and 'teacher_logits' %(both are%)")
fails("no-student", { teacher_probs = p23 },
      "connect exactly one of 'student_probs' and 'student_logits' %(neither is%)")
fails("nan", { teacher_probs = p23, student_probs = { { 0.7, 0.2, 0.1 }, { 0.2, 0 / 0, 0.5 } } },
      "agreement: student probabilities: expected finite values, found %-?nan at element 4")
fails("classes", { teacher_probs = p23, student_probs = { { 0.7, 0.2, 0.1, 0 }, { 0.2, 0.3, 0.4, 0.1 } } },
      "input 'student_probs' is f32%[2,4%].*so C = 4, but input 'teacher_probs' set C = 3")
print("agreement ok")
