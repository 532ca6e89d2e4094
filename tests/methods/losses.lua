-- The loss-term nodes blind_loss, robust_ce and gce_loss through student_update: the
-- METHODS §1 vectors read off sample_loss (weight × the per-sample loss, recorded in
-- the training pass before the step), on networks whose logits are set exactly by
-- checkpoints (Linear layers with chosen weights), on one network, on a pair, and
-- against bound per-sample inputs. Then a few ticks of real training with each term.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "util.lua")
local near = U.near

local tmp = os.tmpname()
local ident3, ident4 = tmp .. "-ident3.safetensors", tmp .. "-ident4.safetensors"
local fixed3 = tmp .. "-fixed3.safetensors"
local blindt = tmp .. "-blindt.safetensors"
U.linear(ident3, 3, U.identity(3), U.zeros(3))
U.write_checkpoint(ident4, "linear:4-4:nobias", { { "0.weight", { 4, 4 }, U.identity(4) } })
-- a partner whose logits are log(0.1, 0.6, 0.3) on every input: softmax = p exactly
U.linear(fixed3, 3, U.zeros(9), { math.log(0.1), math.log(0.6), math.log(0.3) })
-- a teacher whose logits are (1, 2, 3) on every input
U.linear(blindt, 3, U.zeros(9), { 1, 2, 3 })

-- A network from a checkpoint, as a model port.
local function net(g, path, x, name)
  return g:node("teacher_forward", { name = name, checkpoint = path, x = x }).model
end

local function train(g, params)
  local p = { lr = 1e-9, weight_decay = 0, momentum = 0, epochs = 1 }
  for k, v in pairs(params) do p[k] = v end
  return g:node("student_update", p)
end

-- ---- gce_loss: z_S = (2, 1, 0, −1), candidates {1, 2} → 1.038497 --------------------
do
  local g = kdf.graph { name = "gce-vector" }
  local x = kdf.tensor({ { 2, 1, 0, -1 } })
  local m = net(g, ident4, x, "ident")
  -- the candidate set three ways: a mask, topk_refine's mask and its ½/½ soft targets
  local mask = g:node("gce_loss", { name = "mask", candidates = kdf.tensor({ { 0, 1, 1, 0 } }, "u8") })
  local top = g:node("topk_refine", { probs = { { 0.1, 0.5, 0.3, 0.1 } } })
  local tmask = g:node("gce_loss", { name = "tmask", candidates = top.candidates, weight = 2 })
  local tsoft = g:node("gce_loss", { name = "tsoft", candidates = top.soft })
  local s1 = train(g, { name = "s1", model = m, x = x, batch = 1, losses = { mask.loss } })
  local s2 = train(g, { name = "s2", model = m, x = x, batch = 1, losses = { tmask.loss } })
  local s3 = train(g, { name = "s3", model = m, x = x, batch = 1, losses = { tsoft.loss } })
  g:run {}
  near(s1.sample_loss:value():get(1), 1.038497, 1e-6, "gce, mask")
  near(s2.sample_loss:value():get(1), 2 * 1.038497, 2e-6, "gce, topk mask, weight 2")
  near(s3.sample_loss:value():get(1), 1.038497, 1e-6, "gce, topk soft")
  near(s1.logits:value():get(1, 1), 2, 0, "the identity network's logit")
end

-- ---- robust_ce: p = (0.1, 0.6, 0.3), ỹ = 0, β = 0.30 and 0.70 --------------------------
-- Rows e_0, e_1, e_2 (groups 1) and again (groups 4) through the identity: CE(e_j, t) =
-- log(e + 2) − t_j, so each row's loss gives one entry of the target.
local want = { 0.814463, 0.131949, 0.053588, 0.381352, 0.473050, 0.145598 }
local x6 = kdf.tensor({ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } })
local y6 = kdf.tensor({ 0, 0, 0, 0, 0, 0 }, "i32")
local g6 = kdf.tensor({ 1, 1, 1, 4, 4, 4 }, "i32")
local L = math.log(math.exp(1) + 2)
do
  local g = kdf.graph { name = "robust-vector" }
  local m, partner = net(g, ident3, x6, "ident"), net(g, fixed3, x6, "fixed")
  local p6 = {}
  for i = 1, 6 do p6[i] = { 0.1, 0.6, 0.3 } end
  -- bound probabilities, one network
  local bound = g:node("robust_ce", { name = "bound", labels = y6, groups = g6, probs = p6 })
  local s1 = train(g, { name = "s1", model = m, x = x6, batch = 6, losses = { bound.loss } })
  -- bound logits (softmax in the node)
  local lg = {}
  for i = 1, 6 do lg[i] = { math.log(0.1) + 5, math.log(0.6) + 5, math.log(0.3) + 5 } end
  local blog = g:node("robust_ce", { name = "blog", labels = y6, groups = g6, logits = lg })
  local s2 = train(g, { name = "s2", model = m, x = x6, batch = 6, losses = { blog.loss } })
  -- the partner network on the same batch (student = the identity, partner = fixed p)
  local pair = g:node("robust_ce", { name = "pair", labels = y6, groups = g6 })
  local s3 = train(g, { name = "s3", model = m, model2 = partner, x = x6, batch = 3,
                        losses = { pair.loss } })
  -- the same term on the partner side: net = partner trains the fixed net against the
  -- identity's softmax; its sample_loss is not net 0's, so net 0 records nothing
  local other = g:node("robust_ce", { name = "other", labels = y6, groups = g6, net = "partner" })
  local s4 = train(g, { name = "s4", model = m, model2 = partner, x = x6, batch = 6,
                        losses = { other.loss } })
  -- the gate: reached = 0 is plain CE on the labels
  local gated = g:node("robust_ce", { name = "gated", labels = y6, groups = g6,
                                      reached = kdf.tensor(0, "u8") })
  local s5 = train(g, { name = "s5", model = m, model2 = partner, x = x6, batch = 6,
                        losses = { gated.loss } })
  g:run {}
  for _, s in ipairs { s1, s2, s3 } do
    local sl = s.sample_loss:value()
    for i = 1, 6 do near(L - sl:get(i), want[i], 2e-6, s:name() .. " robust target row " .. i) end
  end
  for i = 1, 6 do
    assert(s4.sample_loss:value():get(i) == 0, "net 0 has no per-sample loss of a partner term")
    near(L - s5.sample_loss:value():get(i), (i - 1) % 3 == 0 and 1 or 0, 2e-6, "gated row " .. i)
  end
end

-- ---- blind_loss: z^T = (1, 2, 3); z^S = 0 with ỹ = 1 → (1 + 9)/2 = 5; z^S = (1, 1, 1)
-- with ỹ = 2 → (0 + 1)/2 = 0.5 -------------------------------------------------------
do
  local g = kdf.graph { name = "blind-vector" }
  local x = kdf.tensor({ { 0, 0, 0 }, { 1, 1, 1 } })
  local y = kdf.tensor({ 1, 2 }, "i32")
  local m, teacher = net(g, ident3, x, "ident"), net(g, blindt, x, "teacher")
  local pair = g:node("blind_loss", { name = "pair", labels = y, weight = 2 })
  local s1 = train(g, { name = "s1", model = m, model2 = teacher, x = x, batch = 2, losses = { pair.loss } })
  local both = g:node("blind_loss", { name = "both", labels = y, net = "both" })
  local s2 = train(g, { name = "s2", model = m, model2 = teacher, x = x, batch = 2, losses = { both.loss } })
  local frozen = g:node("blind_loss", { name = "frozen", labels = y,
                                        teacher_logits = { { 1, 2, 3 }, { 1, 2, 3 } } })
  local s3 = train(g, { name = "s3", model = m, x = x, batch = 1, losses = { frozen.loss } })
  g:run {}
  near(s1.sample_loss:value():get(1), 10, 1e-5, "blind, pair, weight 2, row 1")
  near(s1.sample_loss:value():get(2), 1, 1e-6, "blind, pair, weight 2, row 2")
  for i, v in ipairs { 5, 0.5 } do
    near(s2.sample_loss:value():get(i), v, 1e-5, "blind, both, row " .. i)
    near(s3.sample_loss:value():get(i), v, 1e-5, "blind, frozen teacher, row " .. i)
  end
end

-- ---- training: the terms move the networks the way they should -----------------------
-- Synthetic 3-class data in 8-D; a frozen teacher's logits the student must match off
-- the label; a pair trained online (the teacher on CE, the student blind); GCE on
-- two-class candidate sets. Each loss falls over a few ticks.
do
  local n, d = 96, 8
  local xs, ys, zt, cand = {}, {}, {}, {}
  local r = 12345
  local function rnd() r = (r * 1103515245 + 12345) % 2147483648; return r / 2147483648 end
  for i = 1, n do
    local row = {}
    for j = 1, d do row[j] = rnd() * 2 - 1 end
    local c = (row[1] + row[2] > 0.3) and 0 or ((row[3] > 0) and 1 or 2)
    xs[i], ys[i] = row, c
    zt[i] = { 2 * row[1] - row[3], row[2] + row[4], -row[1] + row[5] }
    cand[i] = { 0, 0, 0 }
    cand[i][c + 1] = 1
    cand[i][(c + 1) % 3 + 1] = 1
  end
  local g = kdf.graph { name = "methods-train", seed = 3 }
  local x, y = kdf.tensor(xs), kdf.tensor(ys, "i32")
  local frozen = g:node("blind_loss", { name = "frozen", labels = y, teacher_logits = zt })
  local s1 = g:node("student_update", { name = "s1", arch = "mlp:8-32-3", x = x, losses = { frozen.loss },
                                        lr = 0.05, batch = 16 })
  local ce = g:node("ce_loss", { targets = y, net = "partner" })
  local blind = g:node("blind_loss", { name = "online", labels = y })
  local s2 = g:node("student_update", { name = "s2", arch = "mlp:8-32-3", arch2 = "mlp:8-32-3", x = x,
                                        losses = { ce.loss, blind.loss }, lr = 0.05, batch = 16 })
  local gce = g:node("gce_loss", { candidates = kdf.tensor(cand, "u8") })
  local s3 = g:node("student_update", { name = "s3", arch = "mlp:8-32-3", x = x, losses = { gce.loss },
                                        lr = 0.1, batch = 16 })
  local function mean(t) return t:sum() / t:numel() end
  g:run { ticks = 1 }
  local first = { mean(s1.sample_loss:value()), mean(s2.sample_loss:value()), mean(s3.sample_loss:value()) }
  local z2 = s2.logits2:value():get(1, 1)
  g:run { ticks = 15 }
  local last = { mean(s1.sample_loss:value()), mean(s2.sample_loss:value()), mean(s3.sample_loss:value()) }
  print(("blind, frozen teacher: per-sample loss %.4f → %.4f"):format(first[1], last[1]))
  assert(last[1] < 0.1 * first[1], "blind with a frozen teacher did not learn")
  -- GCE over two candidates is smallest (0.549) with the mass split evenly on them,
  -- from 0.767 at the uniform start: the mass moves onto the candidate sets
  print(("gce: per-sample loss %.4f → %.4f"):format(first[3], last[3]))
  assert(last[3] < first[3] - 0.1, "gce did not learn")
  local z3, mass = s3.logits:value(), 0
  for i = 1, n do
    local e, tot = {}, 0
    for c = 1, 3 do e[c] = math.exp(z3:get(i, c)); tot = tot + e[c] end
    for c = 1, 3 do if cand[i][c] == 1 then mass = mass + e[c] / tot end end
  end
  print(("gce: mean probability on the candidates %.3f"):format(mass / n))
  assert(mass / n > 0.85, "gce does not move the mass onto the candidates")
  -- online: the teacher learns the labels (its logits grow, so the blind loss need not
  -- fall); the student must follow its off-label logits: compare the off-label squared
  -- error with the teacher's off-label squared size (the error of a silent student)
  assert(s2.logits2:value():get(1, 1) ~= z2, "the partner (the teacher) trains too")
  local zs, ztt = s2.logits:value(), s2.logits2:value()
  local err, size = 0, 0
  for i = 1, n do
    for c = 1, 3 do
      if c ~= ys[i] + 1 then
        err = err + (ztt:get(i, c) - zs:get(i, c)) ^ 2
        size = size + ztt:get(i, c) ^ 2
      end
    end
  end
  print(("blind, online pair: off-label error %.4f of the teacher's %.4f"):format(err / n, size / n))
  assert(size / n > 0.5 and err < 0.2 * size, "the student does not follow the teacher")
end

for _, p in ipairs { ident3, ident4, fixed3, blindt } do os.remove(p) end
os.remove(tmp)
print("loss terms ok")
