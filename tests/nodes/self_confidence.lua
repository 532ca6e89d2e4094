-- self_confidence as a node: score = p[i,ỹ], loss = −log max(p[i,ỹ], 1e-12),
-- margin = (p[i,ỹ] − max_{k≠ỹ} p[i,k] + 1)/2, pred = first argmax (docs/nodes.md).
-- Rows worked by hand, then the same formulas evaluated in plain Lua on a
-- pseudo-random matrix, then bad probabilities and labels that must fail with the
-- node's messages. Every check is an assert (a failure exits non-zero).
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g (tolerance %g)"):format(what, a, b, tol))
end

-- the f32 a Lua number becomes in a tensor
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- ---- worked by hand ------------------------------------------------------------------
-- row 0: p = (.7 .2 .1), ỹ = 0: score .7, loss −ln .7 = 0.356675, margin (.7−.2+1)/2 = .75, pred 0
-- row 1: the same p, ỹ = 2: score .1, loss −ln .1 = 2.302585, margin (.1−.7+1)/2 = .2, pred 0
-- row 2: p = (.4 .4 .2), ỹ = 1: score .4, loss 0.916291, margin (.4−.4+1)/2 = .5 (the
--        best *other* class is the tied class 0), pred 0 (first maximum)
-- row 3: p = (0 1 0), ỹ = 0: score 0, loss −ln 1e-12 = 27.631021 (clipped), margin
--        (0−1+1)/2 = 0, pred 1
-- row 4: p = (2 1 1) sums to 4: normalised to (.5 .25 .25) (a warning), ỹ = 1: score .25,
--        loss ln 4 = 1.386294, margin (.25−.5+1)/2 = .375, pred 0
-- row 5: p = (.1 .3 .6), ỹ = 2: score .6, loss −ln .6 = 0.510826, margin (.6−.3+1)/2 = .65, pred 2
local probs = { { 0.7, 0.2, 0.1 }, { 0.7, 0.2, 0.1 }, { 0.4, 0.4, 0.2 }, { 0, 1, 0 },
                { 2, 1, 1 }, { 0.1, 0.3, 0.6 } }
local labels = kdf.tensor({ 0, 2, 1, 0, 1, 2 }, "i32")
local want = {
  score = { 0.7, 0.1, 0.4, 0, 0.25, 0.6 },
  loss = { 0.356675, 2.302585, 0.916291, 27.631021, 1.386294, 0.510826 },
  margin = { 0.75, 0.2, 0.5, 0, 0.375, 0.65 },
  pred = { 0, 0, 0, 1, 0, 2 },
}
local g = kdf.graph { name = "self-confidence" }
local sc = g:node("self_confidence", { probs = probs, labels = labels })
g:run {}
for i = 1, 6 do
  near(sc.score:value():get(i), want.score[i], 1e-6, "score " .. i)
  near(sc.loss:value():get(i), want.loss[i], 2e-6, "loss " .. i)
  near(sc.margin:value():get(i), want.margin[i], 1e-6, "margin " .. i)
  assert(sc.pred:value():get(i) == want.pred[i],
         ("pred %d: %d, expected %d"):format(i, sc.pred:value():get(i), want.pred[i]))
end
assert(sc.score:value().dtype == "f32" and sc.pred:value().dtype == "i32", "output dtypes")

-- ---- the formulas in plain Lua, 40 rows × 5 classes ------------------------------------
-- a small LCG (deterministic); every tenth row has a tie for the maximum
local state = 12345
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local n, c = 40, 5
local P, Y = {}, {}
for i = 1, n do
  local row, s = {}, 0
  for j = 1, c do row[j] = rnd() + 0.01; s = s + row[j] end
  for j = 1, c do row[j] = f32(row[j] / s) end
  if i % 10 == 0 then row[4] = row[2] end -- a tie between classes 1 and 3 (may or may not be the max)
  if i % 10 == 5 then local m = math.max(table.unpack(row)); row[1], row[3] = m, m end -- a tied max
  P[i], Y[i] = row, math.floor(rnd() * c)
end
-- rows must sum to 1 within tol = 1e-4 or the node normalises them; ties change the sums
for i = 1, n do
  local s = 0
  for j = 1, c do s = s + P[i][j] end
  for j = 1, c do P[i][j] = f32(P[i][j] / s) end
end
local g2 = kdf.graph { name = "self-confidence-formula" }
local sc2 = g2:node("self_confidence", { probs = P, labels = kdf.tensor(Y, "i32") })
g2:run {}
for i = 1, n do
  local row, y = P[i], Y[i]
  local self, other, best, arg = row[y + 1], -1, -1, -1
  for k = 1, c do
    if k - 1 ~= y and row[k] > other then other = row[k] end
    if row[k] > best then best, arg = row[k], k - 1 end
  end
  near(sc2.score:value():get(i), self, 1e-6, "formula score " .. i)
  near(sc2.loss:value():get(i), -math.log(math.max(self, 1e-12)), 1e-5, "formula loss " .. i)
  near(sc2.margin:value():get(i), (self - other + 1) / 2, 1e-6, "formula margin " .. i)
  assert(sc2.pred:value():get(i) == arg, ("formula pred %d: %d, expected %d"):format(i, sc2.pred:value():get(i), arg))
end

-- ---- bad inputs: exit status 2 and the node's message ----------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "self-confidence-" .. name }
  gb:node("self_confidence", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
fails("nan", { probs = { { 0.5, 0.5, 0 }, { 0.5, 0 / 0, 0.5 } }, labels = kdf.tensor({ 0, 1 }, "i32") },
      "input 'probs': probabilities: row 1 has NaN in column 1")
fails("negative", { probs = { { 1.2, -0.2 } }, labels = kdf.tensor({ 0 }, "i32") },
      "input 'probs': probabilities: row 0 has a negative value %(%-0%.2%) in column 1")
fails("zero-row", { probs = { { 0.5, 0.5 }, { 0, 0 } }, labels = kdf.tensor({ 0, 1 }, "i32") },
      "input 'probs': probabilities: row 1 sums to 0 and cannot be normalised")
fails("label", { probs = { { 0.5, 0.5 }, { 0.5, 0.5 } }, labels = kdf.tensor({ 1, 2 }, "i32") },
      "input 'labels' row 1 is 2, outside %[0, 2%)")
fails("rows", { probs = { { 0.5, 0.5 } }, labels = kdf.tensor({ 0, 1 }, "i32") },
      "input 'labels' is i32%[2%]")
print("self_confidence ok")
