-- cl_filter: the confident-learning filter — K-fold cross-validated probabilities
-- (each fold's model never saw the rows it scores), confident_learning
-- (prune_by_noise_rate, as cleanlab's find_label_issues), then the student trained
-- with CE on the rows kept. Paper setting: Northcutt et al. 2021, ResNet on CIFAR.
-- Ours: 4 folds of the MLP 784-256-10 trained 10 epochs each (the four fold models
-- train side by side on the thread pool), then the student as in ce.lua.
--
--   kdflow run graphs/cl_filter.lua [--set folds=4 --set fold_epochs=10
--                                    --set noise=symmetric --set rate=0.4 --set epochs=20]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.options()
o.folds = kdf.arg("folds", 4)
o.fold_epochs = kdf.arg("fold_epochs", 10)
local t0 = kdf.clock()

-- Stage 1: out-of-sample probabilities by K-fold cross-validation. The folds are index
-- views of the one copy of the data (student_update and teacher_forward take `rows`),
-- not copies of it, and the fold models make no per-sample features (nothing reads
-- them); the stage's graph is closed before stage 2 loads the data again.
local probs, n
do
  local g <close> = kdf.graph { name = "cl_folds", seed = o.seed }
  local data = common.data(g, o)
  g:run()
  n = data.labels:value():shape()[1]
  -- a seeded permutation split into K held-out parts
  math.randomseed(o.seed)
  local perm = {}
  for i = 1, n do perm[i] = i - 1 end
  for i = n, 2, -1 do
    local j = math.random(i)
    perm[i], perm[j] = perm[j], perm[i]
  end
  local parts, held = {}, {}
  for k = 1, o.folds do
    local held_k, train_k = {}, {}
    for i = 1, n do
      if (i - 1) % o.folds == k - 1 then held_k[#held_k + 1] = perm[i] else train_k[#train_k + 1] = perm[i] end
    end
    table.sort(held_k)
    table.sort(train_k)
    local hidx, tidx = kdf.tensor(held_k, "i32"), kdf.tensor(train_k, "i32")
    local yk = g:node("take_rows", { name = "labels_fold" .. k, x = data.labels, index = tidx })
    local ce = g:node("ce_loss", { name = "ce_fold" .. k, targets = yk.rows })
    local st = g:node("student_update", common.trainer(o, { name = "fold" .. k, x = data.x, rows = tidx,
                                                           losses = { ce.loss }, save = "",
                                                           with_features = false }))
    local tf = g:node("teacher_forward", { name = "score_fold" .. k, model = st.model, x = data.x,
                                           rows = hidx })
    parts[k], held[k] = tf.probs, hidx
  end
  local oos = g:node("put_rows", { name = "out_of_sample", values = parts, index = held, n = n })
  g:run { ticks = o.fold_epochs }
  probs = oos.out:value()
end
collectgarbage()

-- Stage 2: find the label issues, train the student on the rest.
local g2 = kdf.graph { name = "cl_filter", seed = o.seed }
local data2 = common.data(g2, o)
local cl = g2:node("confident_learning", { probs = probs, labels = data2.labels })
local det = g2:node("evaluate", { name = "detection", flagged = cl.flagged, truth = data2.noisy_mask })
local kept = g2:lua { name = "kept_rows", inputs = { "flagged:u8[N]" }, outputs = { "index:i32[K]" },
  flagged = cl.flagged, fn = function(i)
    local rows = {}
    local f = i.flagged:totable()
    for r = 1, #f do if f[r] == 0 then rows[#rows + 1] = r - 1 end end
    return { index = kdf.tensor(rows, "i32") }
  end }
local yk = g2:node("take_rows", { name = "labels_kept", x = data2.labels, index = kept.index })
local ce = g2:node("ce_loss", { targets = yk.rows })
local st = g2:node("student_update", common.trainer(o, { name = "student", x = data2.x, rows = kept.index,
                                                        losses = { ce.loss } }))
local mon = common.monitor(g2, data2, st.model, "student", o)
local r = common.train(g2, mon, o.epochs)
r.seconds = kdf.clock() - t0
r.detection = { precision = det.precision:value():item(), recall = det.recall:value():item(),
                f1 = det.f1:value():item() }
r.flagged = math.tointeger(det.n_flagged:value():item())
common.report("cl_filter", o, r)
print(("  rows flagged by confident learning:  %d of %d"):format(r.flagged, n))
