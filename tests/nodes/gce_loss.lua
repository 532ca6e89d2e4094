-- gce_loss: generalised cross-entropy over candidate sets, ℓ_i = Σ_k w_ik (1 − p_ik^q)/q
-- with w_i the row's normalised candidate weights (a mask: 1/|set| each; f32 weights:
-- w/Σw; i32 labels: one candidate), p = softmax(z_i) (docs/nodes.md, METHODS §1), on a
-- network whose logits are known exactly (a Linear 4→4 with W = I, b = 0 written as a
-- checkpoint: the logits are the inputs). Read through student_update: sample_loss
-- (weight × the per-sample term, before the step) and the network after one plain SGD
-- step (lr 1, no momentum, no decay), read back through probes. Expected values: the
-- METHODS vector, by hand, and the formula evaluated here with its gradient
--   ∂ℓ_i/∂z_j = p_j Σ_k w_k p_k^q − w_j p_j^q.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local C = 4
local tmp = os.tmpname()
local ident4 = tmp .. "-ident4.safetensors"
U.linear(ident4, C, U.identity(C), U.zeros(C))

local function softmax(z)
  local mx = math.max(table.unpack(z))
  local s, p = 0, {}
  for j, v in ipairs(z) do p[j] = math.exp(v - mx); s = s + p[j] end
  for j = 1, #p do p[j] = p[j] / s end
  return p
end

-- the term and its gradient for logits Z, candidate weights W (any scale ≥ 0), exponent Q
local function gce(z, w, q)
  local p, tot = softmax(z), 0
  for _, v in ipairs(w) do tot = tot + v end
  local l, wpq, g = 0, 0, {}
  for k = 1, #z do
    l = l + w[k] / tot * (1 - p[k] ^ q) / q
    wpq = wpq + w[k] / tot * p[k] ^ q
  end
  for j = 1, #z do g[j] = p[j] * wpq - w[j] / tot * p[j] ^ q end
  return l, g
end

-- logits (= inputs) and candidate sets. Row 1 is METHODS' vector: z = (2, 1, 0, −1),
-- candidates {1, 2}, q = 0.7 → 1.038497. By hand: Σ e^z = 7.389056 + 2.718282 + 1 +
-- 0.367879 = 11.475217, p_1 = 0.236883, p_2 = 0.087144; p_1^0.7 = e^(0.7·ln 0.236883)
-- = e^(−1.008133) = 0.364900, p_2^0.7 = e^(0.7·ln 0.087144) = e^(−1.708133) = 0.181207;
-- ((1 − 0.364900) + (1 − 0.181207))/0.7/2 = (0.907286 + 1.169704)/2 = 1.038495 (1.038497
-- unrounded). With q = 1 (MAE): ((1 − 0.236883) + (1 − 0.087144))/2 = 0.837987.
local xs = { { 2, 1, 0, -1 }, { 0.5, -0.5, 1, 0 }, { -1, 2, 0.3, 0.7 } }
local mask = { { 0, 1, 1, 0 }, { 1, 1, 1, 1 }, { 0, 0, 0, 1 } }
local wts = { { 0, 1, 3, 0 }, { 0.5, 0.5, 0.5, 0.5 }, { 0, 0, 0, 2 } }
local labels = { 1, 3, 0 }
local B = #xs

local g = kdf.graph { name = "gce-loss" }
local x = kdf.tensor(xs)
local ident = g:node("teacher_forward", { name = "ident", checkpoint = ident4, x = x }).model
local function train(name, params)
  local l = g:node("gce_loss", params)
  return g:node("student_update", { name = name, model = ident, x = x, batch = B, losses = { l.loss },
                                    lr = 1, momentum = 0, weight_decay = 0 })
end
local s_mask = train("s_mask", { name = "mask", candidates = kdf.tensor(mask, "u8") })
local s_wts = train("s_wts", { name = "wts", candidates = wts, weight = 2 })
local s_lab = train("s_lab", { name = "lab", candidates = kdf.tensor(labels, "i32") })
local s_mae = train("s_mae", { name = "mae", candidates = kdf.tensor(mask, "u8"), q = 1 })
local s_q3 = train("s_q3", { name = "q3", candidates = kdf.tensor(mask, "u8"), q = 0.3 })
local probe = { { 0, 0, 0, 0 }, { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } }
local p_mask = g:node("teacher_forward", { name = "p_mask", model = s_mask.model, x = probe })
local p_wts = g:node("teacher_forward", { name = "p_wts", model = s_wts.model, x = probe })
g:run {}

near(s_mask.sample_loss:value():get(1), 1.038497, 1e-6, "METHODS vector")
near(s_mae.sample_loss:value():get(1), 0.837987, 1e-6, "q = 1, row 1 (by hand)")
local gz_mask, gz_wts = {}, {}
for i = 1, B do
  local lm, gm = gce(xs[i], mask[i], 0.7)
  local lw, gw = gce(xs[i], wts[i], 0.7)
  local one = { 0, 0, 0, 0 }
  one[labels[i] + 1] = 1
  near(s_mask.sample_loss:value():get(i), lm, 2e-6, "mask, row " .. i)
  near(s_wts.sample_loss:value():get(i), 2 * lw, 4e-6, "f32 weights, weight 2, row " .. i)
  near(s_lab.sample_loss:value():get(i), (gce(xs[i], one, 0.7)), 2e-6, "i32 labels, row " .. i)
  near(s_mae.sample_loss:value():get(i), (gce(xs[i], mask[i], 1)), 2e-6, "q = 1, row " .. i)
  near(s_q3.sample_loss:value():get(i), (gce(xs[i], mask[i], 0.3)), 2e-6, "q = 0.3, row " .. i)
  gz_mask[i], gz_wts[i] = {}, {}
  for c = 1, C do
    gz_mask[i][c] = gm[c] / B
    gz_wts[i][c] = 2 * gw[c] / B
  end
end
-- the weights are a weighted mean, not the mask of their support: row 1 differs
assert(math.abs(s_wts.sample_loss:value():get(1) / 2 - s_mask.sample_loss:value():get(1)) > 0.05,
       "row 1's weights (1, 3) must differ from its mask")
-- rows 2 and 3: equal weights give the mask's value, a single candidate the label's
near(s_wts.sample_loss:value():get(2) / 2, s_mask.sample_loss:value():get(2), 2e-6, "equal weights = mask")
near(s_wts.sample_loss:value():get(3) / 2, s_mask.sample_loss:value():get(3), 2e-6, "one weight = one candidate")
-- the step: b' = −Σ_i gz_i, W' = I − Σ_i gz_i x_iᵀ
local function check_step(tf, gz, what)
  local lg = tf.logits:value()
  for k = 1, C do
    local gb = 0
    for i = 1, B do gb = gb + gz[i][k] end
    near(lg:get(1, k), -gb, 4e-6, what .. ": bias " .. k)
    for j = 1, C do
      local gw = 0
      for i = 1, B do gw = gw + gz[i][k] * xs[i][j] end
      near(lg:get(j + 1, k) - lg:get(1, k), (k == j and 1 or 0) - gw, 4e-6, what .. (": weight %d,%d"):format(k, j))
    end
  end
end
check_step(p_mask, gz_mask, "mask step")
check_step(p_wts, gz_wts, "f32 weights × 2 step")

-- bad inputs: exit status 2 and the node's message
local function fails(name, params, want)
  local gb = kdf.graph { name = "gce-bad-" .. name }
  local xb = kdf.tensor(xs)
  local m = gb:node("teacher_forward", { name = "ident", checkpoint = ident4, x = xb }).model
  params.name = "bad"
  local l = gb:node("gce_loss", params)
  gb:node("student_update", { model = m, x = xb, batch = B, losses = { l.loss } })
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2 and tostring(err):find(want, 1, true),
         name .. ": status " .. tostring(err.status) .. ", message: " .. tostring(err))
end
fails("empty", { candidates = kdf.tensor({ { 0, 1, 0, 0 }, { 0, 0, 0, 0 }, { 1, 0, 0, 0 } }, "u8") },
      "input 'candidates': gce: row 1 has no candidate (an empty set)")
fails("negative", { candidates = { { 0, 1, 0, 0 }, { 1, -0.5, 1, 0 }, { 1, 0, 0, 0 } } },
      "gce: candidate weights has -0.5 at row 1, column 1 (expected finite values ≥ 0)")
fails("zero weights", { candidates = { { 0, 1, 0, 0 }, { 0, 0, 0, 0 }, { 1, 0, 0, 0 } } },
      "gce: row 1 has no candidate")

os.remove(ident4)
os.remove(tmp)
print("gce_loss ok")
