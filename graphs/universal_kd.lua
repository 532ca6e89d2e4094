-- universal_kd: a student under universal label noise — open-set rows (inputs of no class
-- in the label space) and closed-set rows (wrong in-set labels) mixed — distilled from a
-- teacher trained on clean data (MODUL, Tang et al., IEEE TIP 2024; METHODS §2).
--
--   1. The teacher is trained on clean data. Here that is the training rows' clean labels
--      with the open-set rows left out, through deliberate oracle edges (kdf.oracle), as
--      clean.lua does: it stands for the paper's teacher trained on a clean data set.
--      It is the only place ground truth enters.
--   2. uncertainty_split, once, on the teacher's logits against the given labels: the
--      evidential loss; clean vs noisy by a mixture on it, then open-set vs closed-set
--      among the noisy rows by a mixture on the teacher's open-set score (1 − its
--      largest softmax probability) — bounds from the data (split_bounds=fitted; fixed:
--      METHODS' 0.3 / 0.9 bounds on a 20-component mixture; docs/design.md says why).
--   3. Closed-set rows take the teacher's argmax as their label; open-set rows leave the
--      classification terms; clean rows keep the given label.
--   4. The student's loss, per batch:
--        CE on those labels (clean + refined closed rows)
--      + hint_weight  · feature hint: MSE of a linear adapter of the student's tap to the
--                       teacher's tap (every row)
--      + proto_weight · prototype contrast: the teacher's class means as prototypes
--                       (over the clean and closed groups, refined labels; a class
--                       missing there takes all its rows — a weak teacher's split can
--                       send a whole hard class to the open-set group), the two
--                       views' embeddings mixed, λ ~ Beta(8, 8) (clean and closed rows)
--      + inst_weight  · instance contrast: InfoNCE between the student's and the teacher's
--                       embeddings of the same row (every row)
--      + rot_weight   · rotation prediction on the open-set group
--      (+ kd_weight   · KD to the teacher's logits at T = 4: not a MODUL term, off).
--      The two views differ by Gaussian input noise of std `view_noise`. proto and
--      instance share one projection head to the teacher's tap width.
--   The weights the paper leaves open are 1 (docs/design.md); they are flags.
--
-- Paper setting: CIFAR-80N/100, ResNet, clean teacher. Ours: Fashion-MNIST, classes 8 and
-- 9 held out (20 % of the in-set rows get their inputs) + 20 % symmetric noise on the
-- rest, teacher MLP 784-1024-1024-C, student MLP 784-256-C, 20 epochs.
--
--   kdflow run graphs/universal_kd.lua [--set rate=0.2 --set rate2=0.2 --set heldout=8,9
--       --set open_input=heldout|permuted --set hint_weight=1 --set proto_weight=1
--       --set inst_weight=1 --set rot_weight=1 --set view_noise=0.1 --set kd_weight=0
--       --set split_bounds=fitted|fixed --set open_score=msp|vacuity
--       --set seed=1]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.teacher_options(common.options({
  noise = "openset", rate = 0.2, noise2 = "symmetric", rate2 = 0.2, heldout = "8,9" }))
-- KD (T²·KL to the teacher's logits, every row) is not a MODUL term; off by default
o.kd_weight = kdf.arg("kd_weight", 0.0, { min = 0 })
o.T = kdf.arg("T", 4.0)
o.hint_weight = kdf.arg("hint_weight", 1.0, { min = 0 })
o.proto_weight = kdf.arg("proto_weight", 1.0, { min = 0 })
o.inst_weight = kdf.arg("inst_weight", 1.0, { min = 0 })
o.rot_weight = kdf.arg("rot_weight", 1.0, { min = 0 })
o.view_noise = kdf.arg("view_noise", 0.1, { min = 0 })
-- the split's bounds: fitted (two signals, cuts from the data; docs/design.md) or fixed
-- (METHODS' 0.3 / 0.9 on the normalised loss)
o.split_bounds = kdf.arg("split_bounds", "fitted")
o.open_score = kdf.arg("open_score", "msp")
local t0 = kdf.clock()

-- 1. the teacher, on clean data: CE on the clean labels with the open-set rows at weight
-- 0, both through deliberate oracle edges (common.train_teacher keeps its best
-- noisy-validation tick)
local function clean_loss(g, data)
  return g:node("ce_loss", { targets = kdf.oracle(data.clean_labels),
                             weights = common.in_set_weights(g, data) })
end

-- the class count after the held-out classes leave: the architectures end in C
do
  local probe = kdf.graph { name = "probe", seed = o.seed }
  local d = common.data(probe, o)
  probe:run { ticks = 1 }
  o.classes = math.tointeger(d.num_classes:value():item())
  o.width = d.x:value():shape()[2]
  -- under `kdflow dot` nothing loads: the drawing says where the sizes come from
  if kdf.drawing() then o.classes, o.width = "C", "D" end
  probe, d = nil, nil
  collectgarbage()
end
local function with_classes(arch)
  return (arch:gsub("%-%d+$", "-" .. o.classes))
end
-- the default architectures (784 inputs, 10 classes) fitted to the data; given ones kept
if o.teacher_arch == "mlp:784-1024-1024-10" then
  o.teacher_arch = with_classes("mlp:" .. o.width .. "-1024-1024-10")
end
if o.student == "mlp:784-256-10" then o.student = with_classes("mlp:" .. o.width .. "-256-10") end

local teacher = o.teacher ~= "" and o.teacher or common.train_teacher(o, clean_loss, "clean data")

local g = kdf.graph { name = "universal_kd", seed = o.seed }
local data = common.data(g, o)
local tf = g:node("teacher_forward", { name = "teacher", checkpoint = teacher, x = data.x })

-- 2. the split, on the teacher's logits against the given labels
local split = g:node("uncertainty_split", { name = "split", logits = tf.logits, labels = data.labels,
                                             bounds = o.split_bounds, score = o.open_score })

-- 3. the labels the student learns: closed-set → the teacher's argmax; open-set out
local refine = g:lua { name = "refine",
  inputs = { "groups:i32[N]", "pred:i32[N]", "labels:i32[N]" },
  outputs = { "y:i32[N]", "w:f32[N]", "in_set:u8[N]", "proto_rows:u8[N]" },
  groups = split.groups, pred = tf.predictions, labels = data.labels, fn = function(i)
    local gr, p, l = i.groups:totable(), i.pred:totable(), i.labels:totable()
    local y, w = {}, {}
    for r = 1, #gr do
      y[r] = gr[r] == 2 and p[r] or l[r]
      w[r] = gr[r] == 1 and 0 or 1
    end
    -- the prototypes' rows: the clean and closed groups; a class with none of them there
    -- (a weak teacher's split can send a whole hard class to the open-set group) takes
    -- every row that carries its label
    local have, rows = {}, {}
    for r = 1, #gr do if w[r] == 1 then have[y[r]] = true end end
    for r = 1, #gr do rows[r] = (w[r] == 1 or not have[y[r]]) and 1 or 0 end
    return { y = kdf.tensor(y, "i32"), w = kdf.tensor(w, "f32"), in_set = kdf.tensor(w, "u8"),
             proto_rows = kdf.tensor(rows, "u8") }
  end }

-- 4. the student: CE on the refined labels (open-set rows out), the hint, the two
-- contrastive terms and rotation on the open set
local ce = g:node("ce_loss", { targets = refine.y, weights = refine.w })
local losses = { ce.loss }
if o.hint_weight > 0 then
  losses[#losses + 1] = g:node("hint_loss", { name = "hint", teacher_features = tf.features,
                                              weight = o.hint_weight }).loss
end
if o.proto_weight > 0 then
  losses[#losses + 1] = g:node("contrastive_loss", { name = "proto", mode = "proto",
    labels = refine.y, embeddings = tf.features, clean = refine.proto_rows, mask = refine.in_set,
    weight = o.proto_weight }).loss
end
if o.inst_weight > 0 then
  losses[#losses + 1] = g:node("contrastive_loss", { name = "instance", mode = "instance",
    embeddings = tf.features, weight = o.inst_weight }).loss
end
if o.rot_weight > 0 then
  losses[#losses + 1] = g:node("rotation_loss", { name = "rotation", mask = split.open,
                                                  weight = o.rot_weight }).loss
end
if o.kd_weight > 0 then
  losses[#losses + 1] = g:node("kd_loss", { teacher_logits = tf.logits, T = o.T,
                                            weight = o.kd_weight }).loss
end
local st = g:node("student_update", common.trainer(o, { name = "student", x = data.x, losses = losses,
                                                        noise = o.view_noise }))
local mon = common.monitor(g, data, st.model, "student", o)

-- the split against the oracle (evaluation only): clean, open-set, closed-set, and both
-- noisy groups as one noise detector
local closed_truth = g:lua { name = "closed_truth", inputs = { "noisy:u8[N]", "open:u8[N]" },
  outputs = { "m:u8[N]", "clean:u8[N]" }, noisy = kdf.oracle(data.noisy_mask),
  open = kdf.oracle(data.open_mask), fn = function(i)
    local n, op, m, c = i.noisy:totable(), i.open:totable(), {}, {}
    for r = 1, #n do
      m[r] = (n[r] == 1 and op[r] == 0) and 1 or 0
      c[r] = 1 - n[r]
    end
    return { m = kdf.tensor(m, "u8"), clean = kdf.tensor(c, "u8") }
  end }
local ev_clean = g:node("evaluate", { name = "split_clean", flagged = split.clean,
                                      truth = closed_truth.clean, save = false })
local ev_open = g:node("evaluate", { name = "split_open", flagged = split.open, truth = data.open_mask,
                                     save = false })
local ev_closed = g:node("evaluate", { name = "split_closed", flagged = split.closed,
                                       truth = closed_truth.m, save = false })
local ev_noisy = g:node("evaluate", { name = "split_noisy", flagged = split.noisy,
                                      truth = data.noisy_mask, refined = refine.y,
                                      clean_labels = data.clean_labels, save = false })

local r = common.train(g, mon, o.epochs)
r.seconds = kdf.clock() - t0
local function prf(ev)
  return { precision = ev.precision:value():item(), recall = ev.recall:value():item(),
           f1 = ev.f1:value():item() }
end
r.detection = prf(ev_noisy)
r.split_clean = prf(ev_clean)
r.split_open = prf(ev_open)
r.split_closed = prf(ev_closed)
r.refined = ev_noisy.refined_accuracy:value():item()
local counts = { 0, 0, 0 }
for _, v in ipairs(split.groups:value():totable()) do counts[v + 1] = counts[v + 1] + 1 end
r.groups = { clean = counts[1], open = counts[2], closed = counts[3] }
print(("universal_kd: split clean %d / open-set %d / closed-set %d rows"):format(counts[1], counts[2], counts[3]))
print(("  clean group P / R / F1:      %.4f / %.4f / %.4f"):format(r.split_clean.precision,
  r.split_clean.recall, r.split_clean.f1))
print(("  open-set group P / R / F1:   %.4f / %.4f / %.4f"):format(r.split_open.precision,
  r.split_open.recall, r.split_open.f1))
print(("  closed-set group P / R / F1: %.4f / %.4f / %.4f"):format(r.split_closed.precision,
  r.split_closed.recall, r.split_closed.f1))
local terms = {}
for _, t in ipairs { { "hint", o.hint_weight }, { "proto", o.proto_weight },
                     { "instance", o.inst_weight }, { "rotation", o.rot_weight }, { "KD", o.kd_weight } } do
  if t[2] > 0 then terms[#terms + 1] = t[1] end
end
local all = o.hint_weight > 0 and o.proto_weight > 0 and o.inst_weight > 0 and o.rot_weight > 0
  and o.kd_weight == 0
if not all then r.variant = "CE" .. (#terms > 0 and (" + " .. table.concat(terms, " + ")) or " only") end
common.report("universal_kd", o, r)
