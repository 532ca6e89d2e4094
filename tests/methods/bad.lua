-- One bad input per --set case=..., each must fail with exit status 2 and a message
-- (tests/expect-fail.sh): the methods' node kinds.
local kdf = require "kdflow"
local case = kdf.arg("case", "")
local g = kdf.graph { name = "bad-" .. case }
local x = kdf.zeros({ 8, 4 })
local y = kdf.tensor({ 0, 1, 2, 0, 1, 2, 0, 1 }, "i32")
local y3 = kdf.tensor({ 0, 1, 2, 3, 1, 2, 0, 1 }, "i32") -- 3 is out of range for 3 classes
local p23 = { { 0.7, 0.2, 0.1 }, { 0.2, 0.3, 0.5 } }
local p24 = { { 0.7, 0.2, 0.1, 0 }, { 0.2, 0.3, 0.4, 0.1 } }
local grp = kdf.tensor({ 1, 2, 3, 4, 1, 2, 3, 4 }, "i32")

local function student(losses, extra)
  local p = { name = "st", x = x, arch = "mlp:4-3", losses = losses }
  for k, v in pairs(extra or {}) do p[k] = v end
  return g:node("student_update", p)
end

if case == "agreement_shape" then
  g:node("agreement", { teacher_probs = p23, student_probs = p24, labels = kdf.tensor({ 0, 1 }, "i32") })
elseif case == "agreement_label" then
  g:node("agreement", { teacher_probs = p23, student_probs = p23, labels = kdf.tensor({ 0, 3 }, "i32") })
elseif case == "agreement_both" then
  g:node("agreement", { teacher_probs = p23, teacher_logits = p23, student_probs = p23 })
elseif case == "agreement_none" then
  g:node("agreement", { teacher_probs = p23 })
elseif case == "topk_k" then
  g:node("topk_refine", { probs = p24, k = 5 })
elseif case == "topk_nan" then
  g:node("topk_refine", { probs = { { 0.5, 0 / 0, 0.5 } } })
elseif case == "tipping_none" then
  g:node("tipping_point", {})
elseif case == "tipping_nan" then
  g:node("tipping_point", { probs = { { 0.5, 0 / 0 } } })
elseif case == "tipping_scores_shape" then
  g:node("tipping_point", { probs = p23, scores = { 0.1, 0.2, 0.3 } })
elseif case == "robust_alphas" then
  student({ g:node("robust_ce", { labels = y, groups = grp, alpha2 = 0.6 }).loss })
elseif case == "robust_alpha_range" then
  student({ g:node("robust_ce", { labels = y, alpha4 = 1.5 }).loss })
elseif case == "robust_group" then
  student({ g:node("robust_ce", { labels = y, groups = kdf.tensor({ 1, 2, 3, 4, 5, 1, 1, 1 }, "i32") }).loss },
          { arch2 = "mlp:4-3" })
elseif case == "robust_groups_shape" then
  student({ g:node("robust_ce", { labels = y, groups = kdf.tensor({ 1, 2, 3 }, "i32") }).loss },
          { arch2 = "mlp:4-3" })
elseif case == "robust_label" then
  local p = {}
  for i = 1, 8 do p[i] = { 0.2, 0.3, 0.5 } end
  student({ g:node("robust_ce", { labels = y3, groups = grp, probs = p }).loss })
elseif case == "robust_partner_missing" then
  student({ g:node("robust_ce", { labels = y, groups = grp }).loss })
elseif case == "robust_probs_and_logits" then
  student({ g:node("robust_ce", { labels = y, groups = grp, probs = kdf.zeros({ 8, 3 }),
                                  logits = kdf.zeros({ 8, 3 }) }).loss })
elseif case == "blind_label" then
  student({ g:node("blind_loss", { labels = y3 }).loss }, { arch2 = "mlp:4-3" })
elseif case == "blind_teacher_rows" then
  g:node("blind_loss", { labels = y, teacher_logits = kdf.zeros({ 6, 3 }) })
elseif case == "blind_classes" then
  student({ g:node("blind_loss", { labels = y, teacher_logits = kdf.zeros({ 8, 5 }) }).loss })
elseif case == "blind_one_class" then
  g:node("blind_loss", { labels = kdf.tensor({ 0, 0 }, "i32"), teacher_logits = kdf.zeros({ 2, 1 }) })
elseif case == "blind_partner_missing" then
  student({ g:node("blind_loss", { labels = y }).loss })
elseif case == "blind_partner_classes" then
  student({ g:node("blind_loss", { labels = y }).loss }, { arch2 = "mlp:4-5" })
elseif case == "gce_empty" then
  local m = {}
  for i = 1, 8 do m[i] = { 1, 0, 0 } end
  m[6] = { 0, 0, 0 }
  student({ g:node("gce_loss", { candidates = kdf.tensor(m, "u8") }).loss })
elseif case == "gce_dtype" then
  g:node("gce_loss", { candidates = kdf.zeros({ 8 }) })
elseif case == "gce_q" then
  g:node("gce_loss", { candidates = y, q = 0 })
elseif case == "gce_label" then
  student({ g:node("gce_loss", { candidates = y3 }).loss })
elseif case == "gce_classes" then
  local m = {}
  for i = 1, 8 do m[i] = { 1, 1, 0, 0 } end
  student({ g:node("gce_loss", { candidates = kdf.tensor(m, "u8") }).loss })
else
  error("unknown case " .. case)
end
g:run { ticks = 1 }
