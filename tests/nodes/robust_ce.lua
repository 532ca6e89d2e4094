-- robust_ce: cross-entropy against t_i = normalise(((1−β_i)·onehot(ỹ_i) + β_i·p_i)^(1+β_i)),
-- β_i = alpha<g_i> by Otsu group (docs/nodes.md, METHODS §1), on a network whose logits
-- are known exactly (a Linear 3→3 with W = I, b = 0 written as a checkpoint: the logits
-- are the inputs). Read through student_update: sample_loss (weight × the per-sample
-- CE, before the step), the networks after one plain SGD step (lr 1, no momentum, no
-- decay), read back through probes, and the metric `split`. Expected values: METHODS'
-- reference targets for β = 0.30 and 0.70, the formula evaluated here for the other
-- groups and alphas; ℓ_i = −Σ_c t_ic log softmax(z_i)_c, ∂ℓ_i/∂z_i = softmax(z_i) − t_i.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local tmp = os.tmpname()
local ident3, fixed3 = tmp .. "-ident3.safetensors", tmp .. "-fixed3.safetensors"
U.linear(ident3, 3, U.identity(3), U.zeros(3))
-- a partner whose logits are log p on every input: its softmax is p exactly
local P = { 0.1, 0.6, 0.3 }
local logP = { math.log(P[1]), math.log(P[2]), math.log(P[3]) }
U.linear(fixed3, 3, U.zeros(9), logP)

local function log_softmax(z)
  local mx = math.max(table.unpack(z))
  local s = 0
  for _, v in ipairs(z) do s = s + math.exp(v - mx) end
  local out = {}
  for j, v in ipairs(z) do out[j] = v - mx - math.log(s) end
  return out
end

-- the robust target for 0-based label y, β and probabilities p
local function target(y, beta, p)
  local t, s = {}, 0
  for c = 1, #p do
    local base = (c == y + 1 and 1 - beta or 0) + beta * p[c]
    t[c] = base > 0 and base ^ (1 + beta) or 0
    s = s + t[c]
  end
  for c = 1, #p do t[c] = t[c] / s end
  return t
end

-- METHODS §1's vectors: p = (0.1, 0.6, 0.3), ỹ = 0
local T30 = { 0.814463, 0.131949, 0.053588 }
local T70 = { 0.381352, 0.473050, 0.145598 }
for c = 1, 3 do
  near(target(0, 0.30, P)[c], T30[c], 1e-6, "the formula here, β = 0.30, entry " .. c)
  near(target(0, 0.70, P)[c], T70[c], 1e-6, "the formula here, β = 0.70, entry " .. c)
end
-- by hand, β = 1: t = normalise(p²) = (0.01, 0.36, 0.09)/0.46
local T100 = { 0.01 / 0.46, 0.36 / 0.46, 0.09 / 0.46 }

local function ce(z, t)
  local lp, l = log_softmax(z), 0
  for c = 1, 3 do l = l - t[c] * lp[c] end
  return l
end

-- rows: logits (= inputs), labels, groups
local xs = { { 0.5, -1, 2 }, { 0.5, -1, 2 }, { 1, 0.2, -0.4 }, { -0.3, 0.8, 0.1 }, { 2, -1, 0 }, { 0, 0, 0 } }
local ys = { 0, 0, 0, 2, 1, 2 }
local gs = { 1, 4, 2, 3, 4, 1 }
local B = #xs
local default_alpha = { 0.30, 0.45, 0.55, 0.70 }
local custom_alpha = { 0, 0.2, 0.9, 1 }
local function want_target(i, alphas)
  if alphas == default_alpha and ys[i] == 0 and gs[i] == 1 then return T30 end
  if alphas == default_alpha and ys[i] == 0 and gs[i] == 4 then return T70 end
  if alphas[gs[i]] == 1 then return T100 end -- β = 1: the label drops out
  return target(ys[i], alphas[gs[i]], P)
end
local function onehot(y)
  local t = { 0, 0, 0 }
  t[y + 1] = 1
  return t
end

local g = kdf.graph { name = "robust-ce" }
local x, y, grp = kdf.tensor(xs), kdf.tensor(ys, "i32"), kdf.tensor(gs, "i32")
local ident = g:node("teacher_forward", { name = "ident", checkpoint = ident3, x = x }).model
local partner = g:node("teacher_forward", { name = "fixed", checkpoint = fixed3, x = x }).model
local pb, lb = {}, {}
for i = 1, B do
  pb[i] = P
  lb[i] = { logP[1] + 3, logP[2] + 3, logP[3] + 3 }
end
local function train(name, params, lr, pair)
  local l = g:node("robust_ce", params)
  local st = g:node("student_update", { name = name, model = ident, model2 = pair and partner or nil,
                                        x = x, batch = B, losses = { l.loss }, lr = lr or 1e-9,
                                        momentum = 0, weight_decay = 0 })
  return st
end
local s_bound = train("s_bound", { name = "bound", labels = y, groups = grp, probs = pb, weight = 3 }, 1)
local s_logits = train("s_logits", { name = "blog", labels = y, groups = grp, logits = lb })
local s_custom = train("s_custom", { name = "custom", labels = y, groups = grp, probs = pb, alpha1 = 0,
                                     alpha2 = 0.2, alpha3 = 0.9, alpha4 = 1 })
local s_open = train("s_open", { name = "open", labels = y, groups = grp, probs = pb,
                                 reached = kdf.tensor(1, "u8") })
local s_gated = train("s_gated", { name = "gated", labels = y, groups = grp, probs = pb,
                                            reached = kdf.tensor(0, "u8") })
local s_plain = train("s_plain", { name = "plain", labels = y })
local s_pair = train("s_pair", { name = "pair", labels = y, groups = grp }, 1, true)
local probe = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }
local p_bound = g:node("teacher_forward", { name = "p_bound", model = s_bound.model, x = probe })
local p_pair = g:node("teacher_forward", { name = "p_pair", model = s_pair.model, x = probe })
local p_partner = g:node("teacher_forward", { name = "p_partner", model = s_pair.model2, x = probe })
g:run {}

local gz = {}
for i = 1, B do
  local t = want_target(i, default_alpha)
  local l = ce(xs[i], t)
  near(s_bound.sample_loss:value():get(i), 3 * l, 6e-6, "bound p, weight 3, row " .. i)
  near(s_logits.sample_loss:value():get(i), l, 2e-6, "bound logits, row " .. i)
  near(s_open.sample_loss:value():get(i), l, 2e-6, "reached = 1, row " .. i)
  near(s_pair.sample_loss:value():get(i), l, 2e-6, "the partner's softmax, row " .. i)
  near(s_custom.sample_loss:value():get(i), ce(xs[i], want_target(i, custom_alpha)), 2e-6,
       "alphas 0, 0.2, 0.9, 1, row " .. i)
  -- before the split: plain CE on the label
  near(s_gated.sample_loss:value():get(i), ce(xs[i], onehot(ys[i])), 2e-6, "reached = 0, row " .. i)
  near(s_plain.sample_loss:value():get(i), ce(xs[i], onehot(ys[i])), 2e-6, "no groups, row " .. i)
  local lp = log_softmax(xs[i])
  gz[i] = {}
  for c = 1, 3 do gz[i][c] = (math.exp(lp[c]) - t[c]) / B end
end
-- rows 1 and 2: the same logits and label, group 1 vs group 4 → different losses
assert(math.abs(s_bound.sample_loss:value():get(1) - s_bound.sample_loss:value():get(2)) > 0.5,
       "the group must change the target")
-- the step: b' = −w·Σ_i gz_i, W' = I − w·Σ_i gz_i x_iᵀ (w = 3 on the bound term, 1 on the pair)
local function check_step(tf, w, what)
  local lg = tf.logits:value()
  for k = 1, 3 do
    local gb = 0
    for i = 1, B do gb = gb + w * gz[i][k] end
    near(lg:get(1, k), -gb, 6e-6, what .. ": bias " .. k)
    for j = 1, 3 do
      local gw = 0
      for i = 1, B do gw = gw + w * gz[i][k] * xs[i][j] end
      near(lg:get(j + 1, k) - lg:get(1, k), (k == j and 1 or 0) - gw, 6e-6, what .. (": weight %d,%d"):format(k, j))
    end
  end
end
check_step(p_bound, 3, "bound p, weight 3: step")
check_step(p_pair, 1, "partner p: step")
-- the partner's p is a target: no gradient reaches the partner (W = 0, b = log p stay)
for k = 1, 3 do
  near(p_partner.logits:value():get(1, k), logP[k], 1e-6, "the partner's bias " .. k .. " does not move")
  for j = 1, 3 do
    near(p_partner.logits:value():get(j + 1, k), logP[k], 1e-6, "the partner's weight " .. k .. "," .. j)
  end
end
-- the metric split: 1 with groups, 0 behind a closed gate
local rd = assert(kdf.run_dir(), "no run directory (run this with kdflow run)")
local line
for l in io.lines(rd .. "/metrics.jsonl") do
  if l:find('"graph":"robust-ce"', 1, true) then line = l end
end
assert(line and line:find('"bound.split":1', 1, true), "split of bound: " .. tostring(line))
assert(line:find('"gated.split":0', 1, true), "split of gated: " .. line)

-- bad inputs: exit status 2 and the node's message
local function fails(name, params, want)
  local gb = kdf.graph { name = "robust-bad-" .. name }
  local xb = kdf.tensor(xs)
  local m = gb:node("teacher_forward", { name = "ident", checkpoint = ident3, x = xb }).model
  local ok, err = pcall(function ()
    params.name = "bad"
    local l = gb:node("robust_ce", params)
    gb:node("student_update", { model = m, x = xb, batch = B, losses = { l.loss } })
    gb:run {}
  end)
  assert(not ok, name .. ": did not fail")
  assert(tostring(err):find(want, 1, true), name .. ": message: " .. tostring(err))
  if type(err) ~= "string" then assert(err.status == 2, name .. ": status " .. tostring(err.status)) end
end
fails("group", { labels = y, groups = kdf.tensor({ 1, 2, 3, 4, 0, 1 }, "i32"), probs = pb },
      "robust_ce: group 0 of row 4 is outside 1..4")
fails("alphas", { labels = y, groups = grp, probs = pb, alpha2 = 0.2 },
      "the alphas must not decrease from group 1 (highest agreement) to group 4, got alpha1 = 0.3 > alpha2 = 0.2")
fails("both", { labels = y, groups = grp, probs = pb, logits = lb },
      "connect at most one of 'probs' and 'logits'")

for _, p in ipairs { ident3, fixed3 } do os.remove(p) end
os.remove(tmp)
print("robust_ce ok")
