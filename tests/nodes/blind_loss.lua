-- blind_loss: Blind KD's masked-logit term, Σ_{c≠ỹ_i} (z^T_ic − z^S_ic)² / (C−1) per sample,
-- mean over the batch (docs/nodes.md, METHODS §1), on networks whose logits are known
-- exactly: the student a Linear 4→4 with W = I, b = 0 (its logits are the inputs), the
-- partner (the online teacher) a Linear with chosen W_T, b_T, both written as
-- checkpoints. Read through student_update: sample_loss (weight × the per-sample term,
-- before the step) and the networks after one plain SGD step (lr 1, no momentum, no
-- decay), read back through probes. Expected values are computed here in Lua from the
-- formula and its gradient, ∂ℓ_i/∂z^S_c = 2·(z^S_c − z^T_c)/(C−1) for c ≠ ỹ_i, 0 at ỹ_i;
-- with net = both the teacher gets the opposite, with net = student none.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local C = 4
local tmp = os.tmpname()
local ident4, teach4 = tmp .. "-ident4.safetensors", tmp .. "-teach4.safetensors"
U.linear(ident4, C, U.identity(C), U.zeros(C))
local WT = { { 1, 0.5, 0, -1 }, { 0, 2, 0, 0 }, { -1, 0, 1, 0.5 }, { 0.25, 0, 0, 1 } }
local bT = { 0.5, -0.5, 1, 0 }
do
  local w = {}
  for k = 1, C do for j = 1, C do w[#w + 1] = WT[k][j] end end
  U.linear(teach4, C, w, bT)
end

local function matvec(w, b, x)
  local z = {}
  for k = 1, C do
    z[k] = b[k]
    for j = 1, C do z[k] = z[k] + w[k][j] * x[j] end
  end
  return z
end

-- the term of one sample (0-based label y) and its gradient w.r.t. the student's logits
local function blind(zs, zt, y)
  local l, g = 0, {}
  for c = 1, C do
    if c == y + 1 then
      g[c] = 0
    else
      l = l + (zt[c] - zs[c]) ^ 2 / (C - 1)
      g[c] = 2 * (zs[c] - zt[c]) / (C - 1)
    end
  end
  return l, g
end

-- Probes: logits(0) = b', logits(e_j) − b' = column j of W'.
local probes = { U.zeros(C) }
for j = 1, C do
  probes[j + 1] = U.zeros(C)
  probes[j + 1][j] = 1
end
-- A Linear that started at W0, b0 and took one SGD step (lr 1) on per-sample logit
-- gradients GZ at inputs XS: b' = b0 − Σ_i gz_i, W' = W0 − Σ_i gz_i x_iᵀ (GZ nil: unchanged).
local function check_linear(tf, w0, b0, xs, gz, tol, what)
  local lg = tf.logits:value()
  for k = 1, C do
    local gb = 0
    for i = 1, #xs do gb = gb + (gz and gz[i][k] or 0) end
    near(lg:get(1, k), b0[k] - gb, tol, what .. ": bias " .. k)
    for j = 1, C do
      local gw = 0
      for i = 1, #xs do gw = gw + (gz and gz[i][k] * xs[i][j] or 0) end
      near(lg:get(j + 1, k) - lg:get(1, k), w0[k][j] - gw, tol, what .. (": weight %d,%d"):format(k, j))
    end
  end
end
local I4 = {}
for k = 1, C do
  I4[k] = {}
  for j = 1, C do I4[k][j] = k == j and 1 or 0 end
end

-- ---- a frozen teacher, bound per sample --------------------------------------------
-- By hand: row 1, z^S = 0, z^T = (1, 2, 3, 100), ỹ = 3 (the 100 is masked):
-- (1 + 4 + 9)/3 = 14/3 = 4.6666667. Row 2, z^S = (0.5, −1, 2, 0), z^T = (0.5, 1, 2, −3),
-- ỹ = 1 (the −1 vs 1 is masked): (0 + 0 + 9)/3 = 3. Rows 3, 4: general.
local xs = { { 0, 0, 0, 0 }, { 0.5, -1, 2, 0 }, { 0.3, -0.2, 1.1, -0.5 }, { -1, 2, 0.5, 1 } }
local zt = { { 1, 2, 3, 100 }, { 0.5, 1, 2, -3 }, { 1, 0.5, -0.5, 2 }, { 0, 0, 0, 0 } }
local ys = { 3, 1, 2, 0 }
local B = #xs
do
  local g = kdf.graph { name = "blind-frozen" }
  local x, y = kdf.tensor(xs), kdf.tensor(ys, "i32")
  local m = g:node("teacher_forward", { name = "ident", checkpoint = ident4, x = x }).model
  local frozen = g:node("blind_loss", { name = "frozen", labels = y, teacher_logits = zt, weight = 2 })
  local st = g:node("student_update", { name = "st", model = m, x = x, batch = B, losses = { frozen.loss },
                                        lr = 1, momentum = 0, weight_decay = 0 })
  local pr = g:node("teacher_forward", { name = "probe", model = st.model, x = probes })
  g:run {}
  local sl = st.sample_loss:value()
  near(sl:get(1), 2 * 14 / 3, 2e-6, "frozen, weight 2, row 1 (by hand: 2 × 14/3)")
  near(sl:get(2), 2 * 3, 2e-6, "frozen, weight 2, row 2 (by hand: 2 × 3)")
  local gz = {}
  for i = 1, B do
    local l, gr = blind(xs[i], zt[i], ys[i])
    near(sl:get(i), 2 * l, 4e-6, "frozen, weight 2, row " .. i)
    gz[i] = {}
    for c = 1, C do gz[i][c] = 2 / B * gr[c] end
  end
  -- the masked column takes no gradient: bias 4 moves only through rows 2..4
  check_linear(pr, I4, U.zeros(C), xs, gz, 4e-6, "frozen teacher step")
end

-- ---- the partner network as the teacher (pair training) ----------------------------
do
  local g = kdf.graph { name = "blind-pair" }
  local x, y = kdf.tensor(xs), kdf.tensor(ys, "i32")
  local m = g:node("teacher_forward", { name = "ident", checkpoint = ident4, x = x }).model
  local t = g:node("teacher_forward", { name = "teacher", checkpoint = teach4, x = x }).model
  local function pair(name, net, batch, lr)
    local l = g:node("blind_loss", { name = name .. "_loss", labels = y, net = net })
    local st = g:node("student_update", { name = name, model = m, model2 = t, x = x, batch = batch,
                                          losses = { l.loss }, lr = lr, momentum = 0, weight_decay = 0 })
    local p1 = g:node("teacher_forward", { name = name .. "_p1", model = st.model, x = probes })
    local p2 = g:node("teacher_forward", { name = name .. "_p2", model = st.model2, x = probes })
    return st, p1, p2
  end
  -- batches of 3 over 4 rows (shuffled; lr ~0 so the second batch sees the same nets):
  -- each row must meet its own teacher row
  local vals = pair("vals", "student", 3, 1e-9)
  local stu, stu1, stu2 = pair("stu", "student", B, 1)
  local both, both1, both2 = pair("both", "both", B, 1)
  local rev, rev1, rev2 = pair("rev", "partner", B, 1)
  g:run {}
  local gs, gt = {}, {}
  for i = 1, B do
    local zti = matvec(WT, bT, xs[i])
    local l, gr = blind(xs[i], zti, ys[i])
    near(vals.sample_loss:value():get(i), l, 1e-5, "partner teacher, row " .. i)
    near(stu.sample_loss:value():get(i), l, 1e-5, "partner teacher, one batch, row " .. i)
    near(both.sample_loss:value():get(i), l, 1e-5, "net = both, row " .. i)
    assert(rev.sample_loss:value():get(i) == 0, "net = partner: the student (net 0) records nothing")
    near(vals.logits2:value():get(i, 1), zti[1], 1e-6, "the partner's logits, row " .. i)
    gs[i], gt[i] = {}, {}
    for c = 1, C do
      gs[i][c] = gr[c] / B
      gt[i][c] = -gr[c] / B -- ∂ℓ/∂z^T = −∂ℓ/∂z^S
    end
  end
  -- net = student: the student moves, the teacher's logits are a target (no gradient)
  check_linear(stu1, I4, U.zeros(C), xs, gs, 1e-5, "net = student: student step")
  check_linear(stu2, WT, bT, xs, nil, 1e-6, "net = student: the teacher does not move")
  -- net = both: the one MSE w.r.t. both networks
  check_linear(both1, I4, U.zeros(C), xs, gs, 1e-5, "net = both: student step")
  check_linear(both2, WT, bT, xs, gt, 1e-5, "net = both: teacher step")
  -- net = partner: the roles reversed; the teacher (arch2) learns from the student's
  -- logits with its own label column masked, i.e. the same gradient as net = both's
  -- teacher side, and the student does not move
  check_linear(rev1, I4, U.zeros(C), xs, nil, 1e-6, "net = partner: the student does not move")
  check_linear(rev2, WT, bT, xs, gt, 1e-5, "net = partner: teacher step")
end

-- ---- bad inputs: exit status 2 and the node's message ------------------------------
local function fails(name, build, want)
  local gb = kdf.graph { name = "blind-bad-" .. name }
  local xb = kdf.tensor(xs)
  local m = gb:node("teacher_forward", { name = "ident", checkpoint = ident4, x = xb }).model
  local t = gb:node("teacher_forward", { name = "teacher", checkpoint = teach4, x = xb }).model
  local l = build(gb)
  gb:node("student_update", { model = m, model2 = t, x = xb, batch = B, losses = { l.loss } })
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2 and tostring(err):find(want, 1, true),
         name .. ": status " .. tostring(err.status) .. ", message: " .. tostring(err))
end
fails("nan", function (gb)
  local bad = { { 1, 2, 3, 4 }, { 1, 2, 3, 4 }, { 1, 2, 0 / 0, 4 }, { 1, 2, 3, 4 } }
  return gb:node("blind_loss", { name = "bad", labels = kdf.tensor(ys, "i32"), teacher_logits = bad })
end, "at row 2, column 2 (expected finite values)")
fails("label", function (gb)
  return gb:node("blind_loss", { name = "bad", labels = kdf.tensor({ 3, 1, 4, 0 }, "i32") })
end, "loss 'blind': label 4 of row 2 is outside [0, 4)")

for _, p in ipairs { ident4, teach4 } do os.remove(p) end
os.remove(tmp)
print("blind_loss ok")
