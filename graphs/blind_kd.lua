-- blind_kd: Blind Knowledge Distillation (Kaiser et al., arXiv 2211.11355), METHODS §2.
-- A teacher and a student of the same architecture train together online, with one
-- optimizer: the teacher with cross-entropy on the given labels, the student with
-- blind_loss alone — it matches the teacher's logits with the given label's logit
-- masked, so it must predict that class blind, and it never sees the given labels
-- before the split. Every tick the agreement a_i = p_A[i, ỹ_i], p_A = normalise(p^T ⊙
-- p^S), scores each label, and tipping_point watches the student's mean confidence; at
-- its peak (the tipping epoch) otsu_threshold (blind criterion) splits the tipping
-- epoch's agreement into four groups, and from the next tick both networks also train
-- with robust_ce (targets between the given label and the other network's prediction,
-- by group). If no peak comes within `budget` ticks (default half the epochs, at least
-- 6), the last of them is taken as the tipping epoch and the run says so (a warning,
-- summary.json, the result's "tipping_fallback"). Outputs: the predicted-noisy mask
-- (group 4) and argmax p_A as the prediction.
--
-- Other wirings, under --set wiring=: "released" (robust_ce trains both networks from
-- the first tick — plain CE on the given labels before the split — as the released
-- code does, so the student is not blind) and "blind_student" (the student learns by
-- blind_loss only, throughout; robust_ce trains the teacher alone).
--
-- Paper setting: CIFAR-10/100 and Animal-10N, PreAct-ResNet-18, 200+ epochs. Ours:
-- Fashion-MNIST from Debian, two MLPs 784-256-10, SGD lr 0.05 momentum 0.9, batch 128,
-- 20 epochs, 10 % noisy validation split (model selection never looks at the test set).
-- With --set teacher=CHECKPOINT the teacher is frozen and pretrained (e.g. by
-- graphs/train_teacher.lua; --set teacher=train trains one here first, as kd.lua does):
-- only the student trains, blind, against its logits.
--
--   kdflow run graphs/blind_kd.lua [--set noise=symmetric --set rate=0.4 --set seed=1
--       --set epochs=20 --set subset=0 --set student=mlp:784-256-10
--       --set teacher=CHECKPOINT --set alpha1=0.30 ... --set alpha4=0.70
--       --set wiring=paper|released|blind_student --set budget=N]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.teacher_options(common.options())
local alphas = { kdf.arg("alpha1", 0.30), kdf.arg("alpha2", 0.45), kdf.arg("alpha3", 0.55),
                 kdf.arg("alpha4", 0.70) }
o.wiring = kdf.arg("wiring", "paper")
assert(o.wiring == "paper" or o.wiring == "released" or o.wiring == "blind_student",
       "--set wiring=" .. o.wiring .. ": paper, released or blind_student")
o.budget = kdf.arg("budget", math.max(6, o.epochs // 2))
local t0 = kdf.clock()
local frozen = o.teacher ~= ""
if o.teacher == "train" then o.teacher = common.train_teacher(o) end
local g = kdf.graph { name = frozen and "blind_kd_frozen" or "blind_kd", seed = o.seed }
local data = common.data(g, o)

-- the networks: a pair trained online, or a student against a frozen teacher
local pair, teacher_logits, teacher_model
local blind, robust
if frozen then
  local tf = g:node("teacher_forward", { name = "teacher", checkpoint = o.teacher, x = data.x })
  blind = g:node("blind_loss", { labels = data.labels, teacher_logits = tf.logits })
  pair = g:node("student_update", common.trainer(o, { name = "pair", x = data.x,
                                                      losses = { blind.loss } }))
  teacher_logits, teacher_model = tf.logits, tf.model
else
  -- the teacher (arch2, the partner): CE on the given labels, robust targets after the
  -- split; the student: blind_loss, and robust targets after the split (paper), or
  -- robust_ce on both from the first tick (released), or blind throughout
  local robust_params = { labels = data.labels, alpha1 = alphas[1], alpha2 = alphas[2],
                          alpha3 = alphas[3], alpha4 = alphas[4] }
  local function robust_ce(name, net, before)
    local p = { name = name, net = net, before_split = before }
    for k, v in pairs(robust_params) do p[k] = v end
    return g:node("robust_ce", p)
  end
  robust = {}
  if o.wiring == "released" then
    robust[1] = robust_ce("robust", "both", "ce")
  else
    robust[1] = robust_ce("robust_teacher", "partner", "ce")
    if o.wiring == "paper" then robust[2] = robust_ce("robust_student", "student", "none") end
  end
  blind = g:node("blind_loss", { labels = data.labels })
  local losses = { blind.loss }
  for _, r in ipairs(robust) do losses[#losses + 1] = r.loss end
  pair = g:node("student_update", common.trainer(o, { name = "pair", arch2 = o.student, x = data.x,
                                                      losses = losses }))
  teacher_logits, teacher_model = pair.logits2, pair.model2
end

-- scoring, the tipping point and the four-group split
local ag = g:node("agreement", { teacher_logits = teacher_logits, student_logits = pair.logits,
                                 labels = data.labels })
local tp = g:node("tipping_point", { logits = pair.logits, scores = ag.scores, budget = o.budget })
local ot = g:node("otsu_threshold", { scores = tp.scores_at, criterion = "blind" })
for _, r in ipairs(robust or {}) do
  g:connect(ot.groups, r.groups, { delay = 1 })
  g:connect(tp.reached, r.reached, { delay = 1 })
end
local g4 = g:lua { name = "group4", inputs = { "groups:i32[N]" }, outputs = { "mask:u8[N]" },
  groups = ot.groups, fn = function(i)
    local m = {}
    for r, v in ipairs(i.groups:totable()) do m[r] = v == 4 and 1 or 0 end
    return { mask = kdf.tensor(m, "u8") }
  end }
local det = g:node("evaluate", { name = "detection", flagged = g4.mask, clean_score = ag.scores,
                                 truth = data.noisy_mask, refined = ag.predictions,
                                 clean_labels = data.clean_labels })

-- the prediction, argmax p_A, on the test and the noisy validation split
local function predicted(split, x, labels)
  local t = g:node("teacher_forward", { name = "teacher_" .. split, model = teacher_model, x = x })
  local s = g:node("teacher_forward", { name = "student_" .. split, model = pair.model, x = x })
  local a = g:node("agreement", { name = "agreement_" .. split, teacher_logits = t.logits,
                                  student_logits = s.logits })
  return g:node("evaluate", { name = split .. "_eval", predictions = a.predictions,
                              labels = labels, save = split == "test" })
end
local mon = { eval = predicted("test", data.x_test, data.y_test) }
if o.val > 0 then mon.eval_val = predicted("noisy_val", data.x_val, data.labels_val) end

local split_at
local r = common.train(g, mon, o.epochs, function(t, test, val)
  if not split_at and tp.reached:value():item() == 1 then
    split_at = t
    local fb = tp.fallback:value():item() == 1
    print(("blind_kd: tipping epoch %d (known at tick %d%s); training on with the split")
      :format(math.tointeger(tp.epoch:value():item()), t - 1,
              fb and ("; no peak within the budget of " .. o.budget .. " ticks: the fallback") or ""))
  end
end)
r.seconds = kdf.clock() - t0
r.variant = frozen and "frozen teacher" or ("online, wiring " .. o.wiring)
if split_at then
  r.tipping_epoch = math.tointeger(tp.epoch:value():item())
  r.tipping_fallback = tp.fallback:value():item() == 1
  r.detection = { precision = det.precision:value():item(), recall = det.recall:value():item(),
                  f1 = det.f1:value():item() }
  r.flagged = math.tointeger(det.n_flagged:value():item())
else
  print(("blind_kd: no tipping point in %d ticks (budget %d): no split, no detection"):format(
    o.epochs, o.budget))
end
r.refined = det.refined_accuracy:value():item()
r.auroc = det.auroc:value():item()
common.report("blind_kd", o, r)
if split_at then
  print(("  tipping epoch %d; group 4 (predicted noisy): %d rows; agreement AUROC %.4f")
    :format(r.tipping_epoch, r.flagged, r.auroc))
end
