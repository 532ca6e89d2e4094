-- Index views (student_update's and teacher_forward's `rows` input): training and
-- scoring on rows of x through an index equals training and scoring on a copy of
-- those rows (take_rows) — bit for bit, since the same rows reach the same batches in
-- the same order. Checked for one training node (logits, sample_loss, features,
-- selected, then a forward of its model), and for the K-fold out-of-sample
-- probabilities and confident_learning flags of graphs/cl_filter.lua on a small
-- synthetic set (copies vs views); then bad `rows` inputs and their messages.
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lib/?.lua;" .. package.path
local T = require "testlib"

-- a synthetic set: N rows of D features, 4 classes, a class-dependent mean plus a
-- deterministic pseudo-random part (an LCG), and 20 % of the labels shifted
local N, D, C = 240, 12, 4
local rnd = T.lcg(12345)
local xs, ys = T.set { n = N, d = D, classes = C, step = 7, shift = 5,
                       value = function(on) return (on and 3 or 0) + rnd.uniform() - 0.5 end }
local x, y = kdf.tensor(xs, "f32"), kdf.tensor(ys, "i32")

-- 1. one training node, copy vs view; an unsorted index with a repeat
local idx = {}
for i = 0, N - 1, 3 do idx[#idx + 1] = (i * 37) % N end
idx[#idx + 1] = idx[5]
local index = kdf.tensor(idx, "i32")
local function train(view)
  local g = kdf.graph { name = "views", seed = 4 }
  local yk = g:node("take_rows", { name = "labels_k", x = y, index = index })
  local ce = g:node("ce_loss", { name = "ce", targets = yk.rows })
  local p = { name = "st", arch = "mlp:12-16-4", losses = { ce.loss }, lr = 0.1, batch = 16,
              epochs = 2, save = "" }
  if view then
    p.x, p.rows = x, index
  else
    p.x = g:node("take_rows", { name = "x_k", x = x, index = index }).rows
  end
  local st = g:node("student_update", p)
  local tp = { name = "tf", model = st.model }
  if view then tp.x, tp.rows = x, index else tp.x = p.x end
  local tf = g:node("teacher_forward", tp)
  g:run { ticks = 3 }
  return { logits = st.logits:value(), sample_loss = st.sample_loss:value(),
           features = st.features:value(), selected = st.selected:value(), probs = tf.probs:value() }
end
local a, b = train(false), train(true)
assert(a.logits:shape()[1] == #idx, "one row per index entry: " .. tostring(a.logits))
for _, k in ipairs { "logits", "sample_loss", "features", "selected", "probs" } do
  T.same(a[k], b[k], "copy vs view: " .. k)
end

-- 2. cl_filter's stage 1 and confident_learning: K folds as copies vs as views
local K = 3
local function folds(view)
  local g = kdf.graph { name = "folds", seed = 9 }
  local parts, held = {}, {}
  for k = 1, K do
    local h, t = {}, {}
    for i = 0, N - 1 do if i % K == k - 1 then h[#h + 1] = i else t[#t + 1] = i end end
    local hidx, tidx = kdf.tensor(h, "i32"), kdf.tensor(t, "i32")
    local yk = g:node("take_rows", { name = "labels_fold" .. k, x = y, index = tidx })
    local ce = g:node("ce_loss", { name = "ce_fold" .. k, targets = yk.rows })
    local p = { name = "fold" .. k, arch = "mlp:12-8-4", losses = { ce.loss }, lr = 0.3,
                batch = 32, save = "" }
    local tp = { name = "score_fold" .. k }
    if view then
      p.x, p.rows, tp.x, tp.rows = x, tidx, x, hidx
    else
      p.x = g:node("take_rows", { name = "x_fold" .. k, x = x, index = tidx }).rows
      tp.x = g:node("take_rows", { name = "x_held" .. k, x = x, index = hidx }).rows
    end
    tp.model = g:node("student_update", p).model
    parts[k], held[k] = g:node("teacher_forward", tp).probs, hidx
  end
  local oos = g:node("put_rows", { name = "oos", values = parts, index = held, n = N })
  local cl = g:node("confident_learning", { probs = oos.out, labels = y })
  g:run { ticks = 8 }
  return oos.out:value(), cl.flagged:value()
end
local pa, fa = folds(false)
local pb, fb = folds(true)
T.same(pa, pb, "folds: out-of-sample probs")
T.same(fa, fb, "folds: confident_learning flags")
local nflag = 0
for _, v in ipairs(fa:totable()) do nflag = nflag + v end
assert(nflag > N / 8 and nflag < N / 2, "about the 20 % shifted labels flagged: " .. nflag)
print(("folds: %d of %d rows flagged, the same with copies and views"):format(nflag, N))

-- 3. bad rows: exit status 2 and the node's message
local function fails(what, kind, params, want)
  local g = kdf.graph { name = "views-bad" }
  local ok, err = pcall(function ()
    if kind == "student_update" then
      local ce = g:node("ce_loss", { targets = params.targets })
      params.losses = { ce.loss }
      params.targets = nil
    end
    g:node(kind, params)
    g:run {}
  end)
  assert(not ok, what .. ": did not fail")
  assert(tostring(err):find(want, 1, true), what .. ": message: " .. tostring(err))
  assert(type(err) ~= "string" and err.status == 2, what .. ": not status 2: " .. tostring(err))
end
local two = kdf.tensor({ 0, 1 }, "i32")
fails("train rows outside x", "student_update",
      { arch = "mlp:12-4-4", x = x, rows = kdf.tensor({ 3, N }, "i32"), targets = two, save = "" },
      "input 'rows' entry 1 is 240, outside the 240 rows of 'x'")
fails("negative train row", "student_update",
      { arch = "mlp:12-4-4", x = x, rows = kdf.tensor({ -1, 2 }, "i32"), targets = two, save = "" },
      "input 'rows' entry 0 is -1")
fails("targets vs rows", "student_update",
      { arch = "mlp:12-4-4", x = x, rows = kdf.tensor({ 1, 2, 3 }, "i32"), targets = two, save = "" },
      "3")
fails("score rows outside x", "teacher_forward",
      { arch = "mlp:12-4-4", x = x, rows = kdf.tensor({ 0, 999 }, "i32") },
      "input 'rows' entry 1 is 999, outside the 240 rows of 'x'")
fails("labels vs rows", "teacher_forward",
      { arch = "mlp:12-4-4", x = x, rows = two, labels = kdf.tensor({ 0, 1, 2 }, "i32") },
      "so N = 2, but input 'labels' set N = 3")

-- with_features = false: no per-sample features; a node that reads them fails naming the output
do
  local g = kdf.graph { name = "no-features", seed = 4 }
  local ce = g:node("ce_loss", { targets = y })
  local st = g:node("student_update", { arch = "mlp:12-8-4", x = x, losses = { ce.loss },
                                        save = "", with_features = false })
  g:run {}
  assert(st.logits:value():shape()[1] == N, "logits still made")
  assert(st.features:value() == nil, "features made with with_features = false")
  local g2 = kdf.graph { name = "no-features-read", seed = 4 }
  local ce2 = g2:node("ce_loss", { targets = y })
  local st2 = g2:node("student_update", { arch = "mlp:12-8-4", x = x, losses = { ce2.loss },
                                          save = "", with_features = false })
  g2:node("awe", { features = st2.features, labels = y })
  local ok, err = pcall(g2.run, g2, {})
  assert(not ok and tostring(err):find("did not set output 'features'", 1, true),
         "reading absent features: " .. tostring(err))
end
print("row views ok")
