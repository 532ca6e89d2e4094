-- ce_loss: the term's per-sample value, its batch mean and its gradient on a network
-- whose logits are known exactly (a Linear 3→3 with W = I, b = 0 written as a
-- checkpoint: the logits are the inputs). Read through student_update: sample_loss
-- (term weight × the per-sample CE, recorded in the training pass before the step),
-- the metric `loss` (the batch mean, here one batch) and the weights after one plain
-- SGD step (lr 1, no momentum, no decay), read back through probes. Expected values
-- are computed here in Lua from the formula of docs/nodes.md / METHODS §1:
--   ℓ_i = H(t_i, softmax(z_i)),  L = weight · mean_i w_i ℓ_i,
--   ∂L/∂z_i = weight · (w_i / B) · (Σ_c t_ic · softmax(z_i) − t_i).
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local tmp = os.tmpname()
local ident3 = tmp .. "-ident3.safetensors"
U.linear(ident3, 3, U.identity(3), U.zeros(3))

local function log_softmax(z)
  local mx = math.max(table.unpack(z))
  local s = 0
  for _, v in ipairs(z) do s = s + math.exp(v - mx) end
  local out = {}
  for j, v in ipairs(z) do out[j] = v - mx - math.log(s) end
  return out
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

-- Probes of a trained Linear: logits(0) = b', logits(e_j) − b' = column j of W'.
local function probe(g, model, name)
  return g:node("teacher_forward", { name = name, model = model,
                                     x = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } } })
end

-- W = I, b = 0 and one SGD step of lr 1 on per-sample logit gradients GZ (rows of x X):
-- b' = −Σ_i gz_i, W'[k][j] = δ_kj − Σ_i gz_i[k]·x_i[j].
local function check_step(tf, xs, gz, tol, what)
  local lg = tf.logits:value()
  for k = 1, 3 do
    local gb = 0
    for i = 1, #xs do gb = gb + gz[i][k] end
    near(lg:get(1, k), -gb, tol, what .. ": bias " .. k)
    for j = 1, 3 do
      local gw = 0
      for i = 1, #xs do gw = gw + gz[i][k] * xs[i][j] end
      near(lg:get(j + 1, k) - lg:get(1, k), (k == j and 1 or 0) - gw, tol,
           what .. (": weight %d,%d"):format(k, j))
    end
  end
end

-- logits (= inputs), labels, soft targets, per-sample weights
local xs = { { 1, 2, 3 }, { 0.5, -1, 2 }, { -2, 0, 1 }, { 3, 3, -1 } }
local ys = { 2, 0, 1, 1 }
local soft = { { 0.2, 0.3, 0.5 }, { 1, 0, 0 }, { 0, 0.5, 0.5 }, { 0.6, 0.1, 0.3 } }
local ws = { 0.5, 2, 0, 1 }
local B = #xs

local g = kdf.graph { name = "ce-loss" }
local x, y = kdf.tensor(xs), kdf.tensor(ys, "i32")
local ident = g:node("teacher_forward", { name = "ident", checkpoint = ident3, x = x }).model
local function train(name, losses)
  return g:node("student_update", { name = name, model = ident, x = x, batch = B, losses = losses,
                                    lr = 1, momentum = 0, weight_decay = 0 })
end
local hard = g:node("ce_loss", { name = "hard", targets = y })
local s_hard = train("s_hard", { hard.loss })
local softn = g:node("ce_loss", { name = "soft", targets = soft, weight = 2 })
local s_soft = train("s_soft", { softn.loss })
local wtd = g:node("ce_loss", { name = "wtd", targets = y, weights = ws })
local s_wtd = train("s_wtd", { wtd.loss })
local p_soft, p_wtd = probe(g, s_soft.model, "p_soft"), probe(g, s_wtd.model, "p_wtd")
-- in-batch selection: the batch is the 4 rows (in a shuffled order); keep 0.5 keeps the
-- two smallest CEs; the same through the keep_fraction input
local selc = g:node("ce_loss", { name = "selc", targets = y, weights = ws, keep = 0.5 })
local s_sel = train("s_sel", { selc.loss })
local p_sel = probe(g, s_sel.model, "p_sel")
local selk = g:node("ce_loss", { name = "selk", targets = y, weights = ws,
                                 keep_fraction = kdf.tensor(0.5, "f32") })
local s_selk = train("s_selk", { selk.loss })
g:run {}

-- by hand, row 1: z = (1, 2, 3), ỹ = 2: CE = log(e¹ + e² + e³) − 3 = log(1 + e⁻¹ + e⁻²)
-- = log(1 + 0.3678794 + 0.1353353) = log(1.5032147) = 0.4076059
near(s_hard.sample_loss:value():get(1), 0.4076059, 1e-6, "hard CE, row 1 (by hand)")
local ce, gz_soft, gz_wtd = {}, {}, {}
for i = 1, B do
  local lp = log_softmax(xs[i])
  ce[i] = -lp[ys[i] + 1]
  near(s_hard.sample_loss:value():get(i), ce[i], 2e-6, "hard CE, row " .. i)
  local h, st = 0, 0
  for c = 1, 3 do h = h - soft[i][c] * lp[c]; st = st + soft[i][c] end
  near(s_soft.sample_loss:value():get(i), 2 * h, 4e-6, "soft CE × weight 2, row " .. i)
  -- per-sample weights do not enter sample_loss (docs/nodes.md: term weight × the
  -- unweighted loss): the same values as without them
  near(s_wtd.sample_loss:value():get(i), ce[i], 2e-6, "weighted term's sample_loss, row " .. i)
  gz_soft[i], gz_wtd[i] = {}, {}
  for c = 1, 3 do
    local p = math.exp(lp[c])
    gz_soft[i][c] = 2 / B * (st * p - soft[i][c])
    gz_wtd[i][c] = ws[i] / B * (p - (c == ys[i] + 1 and 1 or 0))
  end
end
-- the batch mean: mean_i w_i·CE_i, not mean(w)·mean(CE) (AML-KD's code); the two differ
local mean_wce, mean_w, mean_ce = 0, 0, 0
for i = 1, B do
  mean_wce, mean_w, mean_ce = mean_wce + ws[i] * ce[i] / B, mean_w + ws[i] / B, mean_ce + ce[i] / B
end
assert(math.abs(mean_wce - mean_w * mean_ce) > 0.1, "the weights must tell the two means apart")
near(metric("ce-loss", "s_wtd.loss"), mean_wce, 1e-6, "weighted batch mean mean_i w_i·CE_i")
near(metric("ce-loss", "s_hard.loss"), mean_ce, 1e-6, "batch mean CE")
-- the gradient: the step moves W and b by −Σ_i ∂L/∂z_i (x_i)
check_step(p_wtd, xs, gz_wtd, 2e-6, "weighted hard CE step")
check_step(p_soft, xs, gz_soft, 4e-6, "soft CE × 2 step")
-- selection: rows by CE, the two smallest count, the mean over those two
local order = { 1, 2, 3, 4 }
table.sort(order, function(a, b) return ce[a] < ce[b] end)
local keep = { [order[1]] = true, [order[2]] = true }
local sel, sel_k = s_sel.selected:value():totable(), s_selk.selected:value():totable()
local gz_sel, mean_sel = {}, 0
for i = 1, B do
  assert(sel[i] == (keep[i] and 1 or 0), "selected row " .. i .. ": " .. sel[i])
  assert(sel_k[i] == sel[i], "keep_fraction input: selected row " .. i)
  gz_sel[i] = {}
  for c = 1, 3 do gz_sel[i][c] = keep[i] and gz_wtd[i][c] * B / 2 or 0 end
  if keep[i] then mean_sel = mean_sel + ws[i] * ce[i] / 2 end
  -- sample_loss still reports every row
  near(s_sel.sample_loss:value():get(i), ce[i], 2e-6, "selecting term's sample_loss, row " .. i)
end
near(metric("ce-loss", "s_sel.loss"), mean_sel, 1e-6, "selected mean Σ_K w_i·CE_i / |K|")
near(metric("ce-loss", "s_sel.selected"), 0.5, 1e-9, "selected fraction")
check_step(p_sel, xs, gz_sel, 2e-6, "selected weighted CE step")
print(("ce: sample_loss %.6f %.6f %.6f %.6f; weighted mean %.6f (mean(w)·mean(CE) would be %.6f)")
      :format(ce[1], ce[2], ce[3], ce[4], mean_wce, mean_w * mean_ce))

-- r from Otsu on the previous tick's losses: loss_ranking (otsu) on student_update's
-- sample_loss, its kept fraction into keep_fraction through a delay edge; each tick
-- the one batch of 8 keeps ⌊kept_fraction·8⌋ rows of the tick before
local g2 = kdf.graph { name = "ce-otsu-prev", seed = 2 }
local x8 = kdf.tensor({ { 3, 0, 0 }, { 0, 3, 0 }, { 0, 0, 3 }, { 2, 1, 0 }, { 0, 2, 1 }, { 1, 0, 2 },
                        { 1, 1, 1 }, { 3, 0, 0 } })
local y8 = kdf.tensor({ 0, 1, 2, 0, 1, 2, 0, 2 }, "i32") -- the last row's label is wrong
local ce8 = g2:node("ce_loss", { name = "ce8", targets = y8 })
local st8 = g2:node("student_update", { name = "st8", arch = "mlp:3-4-3", x = x8, losses = { ce8.loss },
                                        batch = 8, lr = 0.01 })
local rk = g2:node("loss_ranking", { name = "rk", loss = st8.sample_loss, otsu = true })
g2:connect(rk.kept_fraction, ce8.keep_fraction, { delay = 1, initial = kdf.tensor(1, "f32") })
g2:run { ticks = 1 }
assert(st8.selected:value():sum() == 8, "tick 0: keep_fraction starts at 1")
for _ = 1, 3 do
  local kf = rk.kept_fraction:value():item()
  g2:run { ticks = 1 }
  local want = math.floor(kf * 8 + 1e-9)
  assert(st8.selected:value():sum() == want,
         ("selected %d, expected ⌊%.3f·8⌋ = %d"):format(st8.selected:value():sum(), kf, want))
  assert(want < 8, "Otsu on the losses keeps fewer than all")
end

-- bad inputs: the node's own checks, exit status 2
local function fails(name, params, want)
  local gb = kdf.graph { name = "ce-bad-" .. name }
  local xb = kdf.tensor(xs)
  local m = gb:node("teacher_forward", { name = "ident", checkpoint = ident3, x = xb }).model
  params.name = "bad"
  local l = gb:node("ce_loss", params)
  gb:node("student_update", { model = m, x = xb, batch = B, losses = { l.loss } })
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2 and tostring(err):find(want, 1, true),
         name .. ": status " .. tostring(err.status) .. ", message: " .. tostring(err))
end
fails("targets", { targets = { 0, 1, 2, 1 } },
      "input 'targets' must be i32[N] labels or f32[N,C] soft targets, got f32[4]")
fails("weights", { targets = y, weights = { 1, 1, 1 } }, "input 'weights' has 3 rows, 'targets' 4")
fails("otsu and keep", { targets = y, otsu = true, keep = 0.5 }, "param 'otsu' is true and a kept fraction")
fails("keep_fraction", { targets = y, keep_fraction = kdf.tensor(1.5, "f32") },
      "input 'keep_fraction' is 1.5")

os.remove(ident3)
os.remove(tmp)
print("ce_loss ok")
