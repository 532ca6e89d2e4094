-- kd_loss: Hinton distillation, T²·KL(softmax_T(z^T) ‖ softmax_T(z^S)) per sample, mean
-- over the batch (docs/nodes.md, METHODS §1), on a student whose logits are known
-- exactly (a Linear 3→3 with W = I, b = 0 written as a checkpoint: the logits are the
-- inputs) and teacher logits bound per sample. Read through student_update:
-- sample_loss (weight × the per-sample term, before the step), the metric `loss` and
-- the weights after one plain SGD step (lr 1, no momentum, no decay), read back
-- through probes. Expected values are computed here in Lua from the formula, with
--   ∂ℓ_i/∂z^S = T·(softmax_T(z^S) − softmax_T(z^T)),  L = weight · mean_i ℓ_i.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local tmp = os.tmpname()
local ident3 = tmp .. "-ident3.safetensors"
U.linear(ident3, 3, U.identity(3), U.zeros(3))

local function log_softmax(z, t)
  local mx = math.max(table.unpack(z))
  local s = 0
  for _, v in ipairs(z) do s = s + math.exp((v - mx) / t) end
  local out = {}
  for j, v in ipairs(z) do out[j] = (v - mx) / t - math.log(s) end
  return out
end

-- T²·KL(softmax_T(zt) ‖ softmax_T(zs)) and its gradient w.r.t. zs (unscaled)
local function kd(zs, zt, t)
  local lq, lp = log_softmax(zt, t), log_softmax(zs, t)
  local kl, grad = 0, {}
  for c = 1, #zs do
    kl = kl + math.exp(lq[c]) * (lq[c] - lp[c])
    grad[c] = t * (math.exp(lp[c]) - math.exp(lq[c]))
  end
  return t * t * kl, grad
end

-- the metric KEY of the last tick of GRAPH, from the run directory's metrics.jsonl
local function metric(graph, key)
  local rd = assert(kdf.run_dir(), "no run directory (run this with kdflow run)")
  local v
  for line in io.lines(rd .. "/metrics.jsonl") do
    if line:find('"graph":"' .. graph .. '"', 1, true) then
      v = line:match('"' .. key:gsub("%p", "%%%0") .. '":([^,}]+)')
    end
  end
  return assert(tonumber(v), "metric " .. key .. " of graph " .. graph .. " not found")
end

-- student logits (= inputs) and teacher logits. Row 1 by hand at T = 1: q = (⅓, ⅓, ⅓),
-- p = softmax(0, 0, log 4) = (⅙, ⅙, ⅔): KL = ⅓·(log 2 + log 2 + log ½) = ⅓·log 2
-- = 0.2310491. Row 2: the same logits → 0; row 3: the teacher's shifted by +1 → 0
-- (softmax is shift-invariant). Rows 4, 5: general.
local zs = { { 0, 0, math.log(4) }, { 1, -1, 0.5 }, { 2, 0, -1 }, { 0.3, -0.7, 1.2 }, { -1, 2, 0 } }
local zt = { { 0, 0, 0 }, { 1, -1, 0.5 }, { 3, 1, 0 }, { 2, -1, 0.5 }, { 1, 0, 3 } }
local B = #zs

local g = kdf.graph { name = "kd-loss" }
local x = kdf.tensor(zs)
local ident = g:node("teacher_forward", { name = "ident", checkpoint = ident3, x = x }).model
local function train(name, losses)
  return g:node("student_update", { name = name, model = ident, x = x, batch = B, losses = losses,
                                    lr = 1, momentum = 0, weight_decay = 0 })
end
local kd4 = g:node("kd_loss", { name = "kd4", teacher_logits = zt }) -- defaults T = 4, weight 0.9
local s4 = train("s4", { kd4.loss })
local kd1 = g:node("kd_loss", { name = "kd1", teacher_logits = zt, T = 1, weight = 1 })
local s1 = train("s1", { kd1.loss })
-- probes of the T = 4 student after its step: logits(0) = b', logits(e_j) − b' = W' column j
local pr = g:node("teacher_forward", { name = "probe", model = s4.model,
                                       x = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } } })
g:run {}

near(s1.sample_loss:value():get(1), math.log(2) / 3, 1e-6, "T = 1, row 1 (by hand: ⅓·log 2)")
near(s1.sample_loss:value():get(2), 0, 1e-7, "T = 1, equal logits")
near(s1.sample_loss:value():get(3), 0, 1e-6, "T = 1, shifted teacher logits")
near(s4.sample_loss:value():get(3), 0, 1e-6, "T = 4, shifted teacher logits")
local mean1, mean4, gz = 0, 0, {}
for i = 1, B do
  local l1 = kd(zs[i], zt[i], 1)
  local l4, g4 = kd(zs[i], zt[i], 4)
  near(s1.sample_loss:value():get(i), l1, 2e-6, "T = 1, weight 1, row " .. i)
  near(s4.sample_loss:value():get(i), 0.9 * l4, 2e-6, "T = 4, weight 0.9, row " .. i)
  mean1, mean4 = mean1 + l1 / B, mean4 + 0.9 * l4 / B
  gz[i] = {}
  for c = 1, 3 do gz[i][c] = 0.9 / B * g4[c] end
end
-- the temperature matters: T = 4 and T = 1 give different values on row 5
assert(math.abs(kd(zs[5], zt[5], 4) - kd(zs[5], zt[5], 1)) > 0.1, "row 5 must tell T apart")
near(metric("kd-loss", "s1.loss"), mean1, 1e-6, "T = 1 batch mean")
near(metric("kd-loss", "s4.loss"), mean4, 1e-6, "T = 4 batch mean × 0.9")
-- the step: b' = −Σ_i ∂L/∂z_i, W' = I − Σ_i ∂L/∂z_i · x_iᵀ
local lg = pr.logits:value()
for k = 1, 3 do
  local gb = 0
  for i = 1, B do gb = gb + gz[i][k] end
  near(lg:get(1, k), -gb, 2e-6, "T = 4 step: bias " .. k)
  for j = 1, 3 do
    local gw = 0
    for i = 1, B do gw = gw + gz[i][k] * zs[i][j] end
    near(lg:get(j + 1, k) - lg:get(1, k), (k == j and 1 or 0) - gw, 4e-6,
         ("T = 4 step: weight %d,%d"):format(k, j))
  end
end
print(("kd: T = 1 mean %.6f, T = 4 mean × 0.9 %.6f"):format(mean1, mean4))

-- bad inputs: exit status 2 with a message naming the param or the term
local function fails(name, params, want)
  local gb = kdf.graph { name = "kd-bad-" .. name }
  local xb = kdf.tensor(zs)
  local m = gb:node("teacher_forward", { name = "ident", checkpoint = ident3, x = xb }).model
  local ok, err = pcall(function ()
    params.name = "bad"
    local l = gb:node("kd_loss", params)
    gb:node("student_update", { model = m, x = xb, batch = B, losses = { l.loss } })
    gb:run {}
  end)
  assert(not ok, name .. ": did not fail")
  assert(tostring(err):find(want, 1, true), name .. ": message: " .. tostring(err))
  if type(err) ~= "string" then assert(err.status == 2, name .. ": status " .. tostring(err.status)) end
end
fails("classes", { teacher_logits = kdf.zeros({ B, 4 }) }, "loss term 1 ('kd') has 4 classes")
fails("rows", { teacher_logits = kdf.zeros({ 3, 3 }) }, "loss term 1 ('kd') is bound to 3 samples, 'x' has 5")
fails("T", { teacher_logits = zt, T = 0 }, "'T' = 0 is out of range")

os.remove(ident3)
os.remove(tmp)
print("kd_loss ok")
