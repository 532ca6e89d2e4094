-- topk_refine as a node (SD/PLL, METHODS §1): the teacher's k most probable classes per
-- row, ties to the lower class; outputs candidates (u8 mask), soft (1/k on the
-- candidates), top (i32[N,k], best first) and labels (the top-1). Rows worked by hand
-- for k = 1..4, logits (the same sets as their softmax), the rule evaluated in plain Lua
-- on a matrix full of ties, and bad inputs with the node's messages. Every check is an
-- assert.
local kdf = require "kdflow"

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- ---- worked by hand (C = 4) -----------------------------------------------------------
-- row 0 (.1 .5 .3 .1):     order 1 (.5), 2 (.3), then the tie .1 at 0 and 3 → 0 first
-- row 1 (.25 .25 .25 .25): all tied → 0, 1, 2, 3
-- row 2 (.6 .1 .1 .2):     0, 3, then the tie at 1 and 2 → 1
-- row 3 (.05 .15 .35 .45): 3, 2, 1, 0 (best first, not in class order)
local probs = { { 0.1, 0.5, 0.3, 0.1 }, { 0.25, 0.25, 0.25, 0.25 }, { 0.6, 0.1, 0.1, 0.2 },
                { 0.05, 0.15, 0.35, 0.45 } }
local order = { { 1, 2, 0, 3 }, { 0, 1, 2, 3 }, { 0, 3, 1, 2 }, { 3, 2, 1, 0 } }
local g = kdf.graph { name = "topk-hand" }
local nodes = {}
for k = 1, 4 do
  nodes[k] = g:node("topk_refine", { name = "k" .. k, probs = probs, k = k })
end
local default = g:node("topk_refine", { name = "default", probs = probs })
-- logits with a tie at the top: (−1 2 .5 2) → 1, 3 (tie, lower first), 2, 0;
-- (0 0 −3 1) → 3, 0, 1, 2
local z = { { -1, 2, 0.5, 2 }, { 0, 0, -3, 1 } }
local zorder = { { 1, 3, 2, 0 }, { 3, 0, 1, 2 } }
local lg = g:node("topk_refine", { name = "logits", logits = z, k = 3 })
g:run {}

local function check(node, k, ord, what)
  local n = #ord
  local cand, soft, top, labels = node.candidates:value(), node.soft:value(), node.top:value(), node.labels:value()
  assert(cand.dtype == "u8" and soft.dtype == "f32" and top.dtype == "i32" and labels.dtype == "i32", what .. ": dtypes")
  assert(top:shape()[1] == n and top:shape()[2] == k, what .. ": top is " .. tostring(top))
  for i = 1, n do
    local chosen = {}
    for r = 1, k do
      local want = ord[i][r]
      assert(top:get(i, r) == want, ("%s: top[%d,%d] = %d, expected %d"):format(what, i, r, top:get(i, r), want))
      chosen[want] = true
    end
    assert(labels:get(i) == ord[i][1], ("%s: label %d = %d"):format(what, i, labels:get(i)))
    for j = 1, #ord[i] do
      local on = chosen[j - 1] and 1 or 0
      assert(cand:get(i, j) == on, ("%s: candidates[%d,%d] = %d, expected %d"):format(what, i, j, cand:get(i, j), on))
      local s = on == 1 and f32(1 / k) or 0
      assert(soft:get(i, j) == s, ("%s: soft[%d,%d] = %.9g, expected %.9g"):format(what, i, j, soft:get(i, j), s))
    end
  end
end
for k = 1, 4 do check(nodes[k], k, order, "k = " .. k) end
check(default, 2, order, "default k = 2")
check(lg, 3, zorder, "logits k = 3")
-- k = 2, spelled out: candidate masks (0 1 1 0) (1 1 0 0) (1 0 0 1) (0 0 1 1), soft ½ on them
assert(nodes[2].soft:value():get(1, 2) == 0.5 and nodes[2].soft:value():get(3, 4) == 0.5 and
       nodes[2].soft:value():get(3, 2) == 0, "k = 2: soft targets ½/½")

-- ---- the rule in plain Lua: 30 rows × 6 classes in steps of .1 (many ties) ------------
-- logits and their softmax must give the same sets
local state = 99
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local n, c = 30, 6
local Z, P = {}, {}
for i = 1, n do
  Z[i], P[i] = {}, {}
  local m, s = -math.huge, 0
  for j = 1, c do Z[i][j] = math.floor(rnd() * 5) / 10; m = math.max(m, Z[i][j]) end
  for j = 1, c do P[i][j] = math.exp(Z[i][j] - m); s = s + P[i][j] end
  for j = 1, c do P[i][j] = P[i][j] / s end
end
local ties = 0
local ref = {}
for i = 1, n do
  local idx = {}
  for j = 1, c do idx[j] = j - 1 end
  local zr = {}
  for j = 1, c do zr[j] = f32(Z[i][j]) end
  table.sort(idx, function (a, b)
    if zr[a + 1] ~= zr[b + 1] then return zr[a + 1] > zr[b + 1] end
    return a < b
  end)
  ref[i] = idx
  for r = 1, c - 1 do if zr[idx[r] + 1] == zr[idx[r + 1] + 1] then ties = ties + 1 end end
end
assert(ties > 20, "the matrix should hold many ties: " .. ties)
local g2 = kdf.graph { name = "topk-formula" }
local fz, fp = {}, {}
for k = 1, c do
  fz[k] = g2:node("topk_refine", { name = "z" .. k, logits = Z, k = k })
  fp[k] = g2:node("topk_refine", { name = "p" .. k, probs = P, k = k })
end
g2:run {}
for k = 1, c do
  check(fz[k], k, ref, "formula logits k = " .. k)
  check(fp[k], k, ref, "formula softmax k = " .. k)
end

-- ---- bad inputs: exit status 2 and the node's message ----------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "topk-" .. name }
  gb:node("topk_refine", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
fails("k", { probs = probs, k = 5 }, "param 'k' = 5 exceeds the 4 classes of input 'probs'")
fails("k-logits", { logits = z, k = 5 }, "param 'k' = 5 exceeds the 4 classes of input 'logits'")
fails("nan", { probs = { { 0.5, 0.5, 0 }, { 0.5, 0 / 0, 0.5 } } },
      "input 'probs': topk_refine: probabilities: expected finite values, found %-?nan at element 4")
fails("both", { probs = probs, logits = probs }, "connect exactly one of 'probs' and 'logits' %(both are%)")
fails("neither", { k = 2 }, "connect exactly one of 'probs' and 'logits' %(neither is%)")
-- k < 1 is refused when the param is set
local gk = kdf.graph { name = "topk-k0" }
local ok, err = pcall(gk.node, gk, "topk_refine", { probs = probs, k = 0 })
assert(not ok and tostring(err):find("param 'k' = 0 is out of range %[1,"), "k = 0: " .. tostring(err))
print("topk_refine ok")
