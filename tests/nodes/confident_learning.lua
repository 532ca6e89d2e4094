-- confident_learning as a node: the hand-worked case of tests/detect/test-cl.c
-- (every step by hand there), the filters, the order and the outputs' shapes.
local kdf = require "kdflow"

-- 11 samples, 3 classes; rows 2 and 6 look mislabelled, row 10 is unconfident with
-- an argmax ≠ its label. Thresholds .625 / .516667 / .65; confident joint
-- [3 1 0; 0 2 1; 0 0 3]; calibrated [3 1 0; 0 2 1; 0 0 4]; prune_by_noise_rate
-- flags rows 2 and 6; predicted_neq_given flags 2, 6 and 10.
local p = {
  { 0.9, 0.05, 0.05 }, { 0.8, 0.1, 0.1 }, { 0.1, 0.8, 0.1 }, { 0.7, 0.2, 0.1 },
  { 0.1, 0.8, 0.1 }, { 0.2, 0.7, 0.1 }, { 0.15, 0.05, 0.8 }, { 0.1, 0.1, 0.8 },
  { 0.05, 0.05, 0.9 }, { 0.1, 0.2, 0.7 }, { 0.5, 0.3, 0.2 },
}
local y = kdf.tensor({ 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2 }, "i32")

local function rows(mask)
  local out = {}
  for i, v in ipairs(mask:totable()) do if v ~= 0 then out[#out + 1] = i - 1 end end
  return table.concat(out, ",")
end

local g = kdf.graph { name = "cl-hand" }
local cl = g:node("confident_learning", { name = "cl", probs = p, labels = y })
local margin = g:node("confident_learning", { name = "margin", probs = p, labels = y,
                                              rank_by = "normalized_margin" })
local neq = g:node("confident_learning", { name = "neq", probs = p, labels = y,
                                           filter = "predicted_neq_given" })
local filters = {}
for _, f in ipairs { "prune_by_class", "both", "confident_learning" } do
  filters[f] = g:node("confident_learning", { name = f, probs = p, labels = y, filter = f })
end
g:run {}
assert(rows(cl.flagged:value()) == "2,6", rows(cl.flagged:value()))
for f, n in pairs(filters) do
  assert(rows(n.flagged:value()) == "2,6", f .. ": " .. rows(n.flagged:value()))
end
assert(rows(neq.flagged:value()) == "2,6,10", rows(neq.flagged:value()))
local order = cl.order:value():totable()
assert(#order == 2 and order[1] == 6 and order[2] == 2, "order by self-confidence")
local order_n = neq.order:value():totable()
assert(order_n[1] == 6 and order_n[2] == 2 and order_n[3] == 10, "order of three")
local cj = cl.confident_joint:value()
local want = { { 3, 1, 0 }, { 0, 2, 1 }, { 0, 0, 3 } }
for i = 1, 3 do for j = 1, 3 do
  assert(cj:get(i, j) == want[i][j], ("joint[%d][%d] = %d"):format(i, j, cj:get(i, j)))
end end
local thr = cl.thresholds:value()
assert(math.abs(thr:get(1) - 0.625) < 1e-6 and math.abs(thr:get(2) - 1.55 / 3) < 1e-6
       and math.abs(thr:get(3) - 0.65) < 1e-6, "thresholds")
-- the calibrated joint has 2 of 11 off the diagonal
assert(math.abs(cl.noise_rate:value():item() - 2 / 11) < 1e-6, "noise rate")
-- score = 1 − p[i, ỹ_i]; with the margin: 1 − (p_y − max other + 1)/2
assert(math.abs(cl.score:value():get(7) - 0.95) < 1e-6, "score row 6")
assert(math.abs(margin.score:value():get(7) - (1 - 0.125)) < 1e-6, "margin score row 6")

-- a label outside [0, C) is a value error (exit status 2) naming the input
local g2 = kdf.graph { name = "cl-bad" }
g2:node("confident_learning", { probs = p, labels = kdf.tensor({ 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3 }, "i32") })
local ok, err = pcall(g2.run, g2, {})
assert(not ok and err.status == 2 and tostring(err):find("input 'labels' row 10 is 3, outside %[0, 3%)"), tostring(err))
print("confident_learning ok")
