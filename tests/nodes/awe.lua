-- awe: ambiguity-aware weights (METHODS §1 awe), each mode against values computed by
-- hand here; the centres output and input; weights that follow their samples when the
-- rows are permuted, and that come out the same from the training pass's features
-- (shuffled batches scattered back to dataset order) as from a plain forward in
-- dataset order — the released code computes weights in the loader's shuffled order
-- and applies them in dataset order; the net mode's weights as its network computes
-- them, and its term training that network with the student in student_update; bad
-- inputs.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

-- six 2-d features, labels 0 0 1 1 1 0: row 4 lies with class 0, row 5 between.
local F = { { 1, 0 }, { 0.8, 0.6 }, { 0, 1 }, { 0.6, 0.8 }, { 0.9, 0.1 }, { 0.5, 0.5 } }
local Y = { 0, 0, 1, 1, 1, 0 }

-- by hand: μ0 = mean of rows 0 1 5 = (2.3, 1.1)/3, μ1 = mean of rows 2 3 4 = (1.5, 1.9)/3
local mu = { { 2.3 / 3, 1.1 / 3 }, { 1.5 / 3, 1.9 / 3 } }
local function cosv(a, b)
  local d, na, nb = 0, 0, 0
  for j = 1, #a do d = d + a[j] * b[j]; na = na + a[j] ^ 2; nb = nb + b[j] ^ 2 end
  return d / math.sqrt(na * nb)
end
local cos = {}
for i = 1, 6 do cos[i] = { cosv(F[i], mu[1]), cosv(F[i], mu[2]) } end
-- the numbers, for the record: cos row 0 = (0.902134, 0.619644), row 4 = (0.944263, 0.702530)
near(cos[1][1], 0.902134, 1e-6, "hand cos[0][0]")
near(cos[5][2], 0.702530, 1e-6, "hand cos[4][1]")
local function sigmoid(z) return 1 / (1 + math.exp(-z)) end
local want_cos, want_margin = {}, {}
for i = 1, 6 do
  local y = Y[i] + 1
  want_cos[i] = sigmoid(cos[i][y])
  want_margin[i] = (cos[i][y] - cos[i][3 - y] + 2) / 4
end
-- the printed values: cosine 0.711388 0.727223 0.686732 0.730998 0.668749 0.719703,
-- margin 0.570622 0.503484 0.588357 0.528312 0.439567 0.487460
near(want_cos[5], 0.668749, 1e-6, "hand cosine w[4]")
near(want_margin[5], 0.439567, 1e-6, "hand margin w[4]")

local g = kdf.graph { name = "awe" }
local x, y = kdf.tensor(F), kdf.tensor(Y, "i32")
local a_cos = g:node("awe", { name = "a_cos", features = x, labels = y, mode = "cosine" })
local a_mar = g:node("awe", { name = "a_mar", features = x, labels = y, mode = "margin" })
-- given centres, swapped: each sample is weighed against the other class's centre
local a_swap = g:node("awe", { name = "a_swap", features = x, labels = y, mode = "cosine",
                               centers = kdf.tensor({ mu[2], mu[1] }) })
-- the rows permuted: the weights follow their samples
local perm = { 4, 6, 1, 3, 5, 2 }
local Fp, Yp = {}, {}
for i, p in ipairs(perm) do Fp[i] = F[p]; Yp[i] = Y[p] end
local a_perm = g:node("awe", { name = "a_perm", features = kdf.tensor(Fp), labels = kdf.tensor(Yp, "i32"),
                               mode = "margin" })
-- net mode: g(cos ⊕ onehot) through the node, and through teacher_forward on the
-- node's snapshot of its network and the input built here by hand
local a_net = g:node("awe", { name = "a_net", features = x, labels = y, mode = "net" })
local xin = {}
for i = 1, 6 do xin[i] = { cos[i][1], cos[i][2], Y[i] == 0 and 1 or 0, Y[i] == 1 and 1 or 0 } end
local tf = g:node("teacher_forward", { name = "tf", model = a_net.net, x = xin })
g:run { ticks = 1 }

local wc, wm = a_cos.weights:value(), a_mar.weights:value()
for i = 1, 6 do
  near(wc:get(i), want_cos[i], 1e-6, "cosine w[" .. (i - 1) .. "]")
  near(wm:get(i), want_margin[i], 1e-6, "margin w[" .. (i - 1) .. "]")
  near(a_swap.weights:value():get(i), sigmoid(cos[i][2 - Y[i]]), 1e-6, "swapped centres w[" .. (i - 1) .. "]")
  near(a_perm.weights:value():get(i), want_margin[perm[i]], 1e-6, "permuted rows w[" .. (i - 1) .. "]")
  near(a_net.weights:value():get(i), sigmoid(tf.logits:value():get(i, 1)), 1e-6, "net w[" .. (i - 1) .. "]")
end
-- the mislabelled row 4 and the ambiguous row 5 are the two lowest margins
assert(wm:get(5) < 0.5 and wm:get(6) < 0.5 and wm:get(1) > 0.5 and wm:get(3) > 0.5)
local c = a_cos.centers:value()
for k = 1, 2 do for j = 1, 2 do near(c:get(k, j), mu[k][j], 1e-6, "centre " .. k .. "," .. j) end end
near(a_swap.centers:value():get(1, 1), mu[2][1], 1e-7, "given centres pass through")

-- ---- alignment through the trainer --------------------------------------------------
-- A student trained with a negligible learning rate on shuffled batches of 16: its
-- training-pass features (scattered back to dataset order) and a forward of the same
-- model in dataset order must give the same weights row by row.
local N, D, C = 120, 6, 3
local R = { 0x9e3779b9 }
local function rnd() R[1] = (R[1] * 1103515245 + 12345) % 2147483648; return R[1] / 2147483648 end
local centres = {}
for k = 1, C do centres[k] = {}; for j = 1, D do centres[k][j] = 3 * rnd() - 1.5 end end
local X, Yc, Yn, flipped = {}, {}, {}, {}
for i = 1, N do
  local k = (i - 1) % C
  X[i] = {}
  for j = 1, D do X[i][j] = centres[k + 1][j] + 1.2 * (rnd() - 0.5) end
  Yc[i] = k
  flipped[i] = i % 4 == 0 -- a quarter of the labels moved to the next class
  Yn[i] = flipped[i] and (k + 1) % C or k
end
local g2 = kdf.graph { name = "awe-align", seed = 3 }
local xt, yt = kdf.tensor(X), kdf.tensor(Yn, "i32")
local ce = g2:node("ce_loss", { targets = yt })
local st = g2:node("student_update", { name = "st", arch = "mlp:6-16-3", x = xt, losses = { ce.loss },
                                       lr = 1e-12, momentum = 0, weight_decay = 0, batch = 16 })
local fw = g2:node("teacher_forward", { name = "fw", model = st.model, x = xt })
local a_tr = g2:node("awe", { name = "a_tr", features = st.features, labels = yt, mode = "cosine" })
local a_fw = g2:node("awe", { name = "a_fw", features = fw.features, labels = yt, mode = "cosine" })
g2:run { ticks = 1 }
local w1, w2 = a_tr.weights:value(), a_fw.weights:value()
local spread = 0
for i = 1, N do
  near(w1:get(i), w2:get(i), 1e-5, "training-pass vs forward weight of row " .. (i - 1))
  spread = math.max(spread, math.abs(w1:get(i) - w1:get(1)))
end
assert(spread > 1e-3, "the weights differ between rows, so a misalignment would show")

-- ---- net mode trains with the student ---------------------------------------------
-- ce_loss keeps each batch's 70 % smallest CEs; the awe term after it trains the weight
-- network on that selection, in student_update's optimizer. The features reach awe
-- through a delay edge (this tick's weights from last tick's features).
local g3 = kdf.graph { name = "awe-net", seed = 4 }
local ce3 = g3:node("ce_loss", { name = "ce3", targets = yt, keep = 0.7 })
local zeros = {}
for i = 1, N do zeros[i] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } end
local aw = g3:node("awe", { name = "aw", labels = yt, mode = "net" })
local st3 = g3:node("student_update", { name = "st3", arch = "mlp:6-16-3", x = xt,
                                        losses = { ce3.loss, aw.loss }, lr = 0.05, batch = 16 })
g3:connect(st3.features, aw.features, { delay = 1, initial = kdf.tensor(zeros) })
local probe_x = { { 0.9, 0.1, 0.2, 1, 0, 0 }, { 0.1, 0.9, 0.2, 1, 0, 0 } }
local pb = g3:node("teacher_forward", { name = "pb", model = aw.net, x = probe_x })
g3:run { ticks = 2 }
local sel = st3.selected:value():totable()
local kept = 0
for i = 1, N do kept = kept + sel[i] end
-- batches of 16 keep 11 each; the last batch of 8 keeps 5: 7·11 + 5 = 82
assert(kept == 82, "selected " .. kept .. " of " .. N .. ", expected 82")
local z1 = { pb.logits:value():get(1, 1), pb.logits:value():get(2, 1) }
g3:run { ticks = 12 }
local z2 = { pb.logits:value():get(1, 1), pb.logits:value():get(2, 1) }
assert(math.abs(z1[1] - z2[1]) + math.abs(z1[2] - z2[2]) > 1e-3, "the weight network did not train")
-- it learnt the selection: the flipped quarter gets lower weights than the rest
local w = aw.weights:value():totable()
local sc, sn, nc, nn = 0, 0, 0, 0
for i = 1, N do
  if flipped[i] then sn = sn + w[i]; nn = nn + 1 else sc = sc + w[i]; nc = nc + 1 end
end
assert(sc / nc > sn / nn + 0.1, ("mean weight clean %.3f, flipped %.3f"):format(sc / nc, sn / nn))
print(("awe net: mean weight clean %.3f, flipped %.3f"):format(sc / nc, sn / nn))

-- ---- bad inputs ---------------------------------------------------------------------
local function bad(params, pattern)
  local gb = kdf.graph { name = "awe-bad" }
  params.name = "bad"
  gb:node("awe", params)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok and err.status == 2, "expected a failure: " .. tostring(err))
  assert(tostring(err):find(pattern), tostring(err))
  assert(tostring(err):find("bad"), "the message names the node: " .. tostring(err))
end
bad({ features = x, labels = kdf.tensor({ 0, 1 }, "i32") }, "N = 2")
bad({ features = x, labels = y, centers = { { 1, 0, 0 }, { 0, 1, 0 } } }, "'centers'")
bad({ features = x, labels = kdf.tensor({ 0, 0, 0, 0, 0, 0 }, "i32"), mode = "margin" }, "margin")
bad({ features = x, labels = kdf.tensor({ 0, 5, 0, 0, 0, 0 }, "i32"), n_classes = 2 }, "outside")
print("awe ok")
