-- aml_kd: AML-KD, ambiguity-guided mutual label refinery (Jiang et al., "Knowledge
-- Distillation Meets Label Noise Learning", IEEE TNNLS 2023), METHODS §2.
--
-- A pretrained teacher (trained here on the noisy labels first, as kd.lua does, unless
-- --set teacher=CHECKPOINT) is frozen; one label_propagation node carries the labels
-- the student learns from, tick by tick:
--   initial LP  on the teacher's feature tap, seeded by the teacher's argmax (soft seeds,
--               one-hot); the `init_percentile` % least confident rows keep the given
--               label ỹ (METHODS: 5 %);
--   warm-up     `warmup` ticks: the student learns CE on those labels + KD (T = 4);
--   stage 1     `stage1` ticks: the student's CE keeps only the small-loss rows of each
--               of the trainer's shuffled mini-batches (Otsu on the batch's losses, so
--               no noise rate is needed; --set select=rate keeps (1−r)·B as the paper);
--               AWE in `net` mode weighs each row (its network learns the selection,
--               inside the student's optimizer); LP on the teacher's features, seeded
--               by the previous tick's labels (a delay edge) on the rows the batches
--               kept, weighted by AWE; the kept rows keep their label, the dropped ones
--               take LP's;
--   stage 2     the rest of the ticks: mutual LP — the graph alternates tick by tick
--               between the student's features (the previous tick's training pass,
--               through a delay edge) and the teacher's, seeded by every row's previous
--               label, weighted by AWE in `cosine` mode; no selection.
-- Student loss throughout: ce_weight · mean_i w_i·CE(refined label) + kd_weight ·
-- T²·KL (T = 4). The refined labels are scored each tick against the clean labels by an
-- evaluate node (the oracle only reaches the evaluator); the result gives their
-- accuracy at the end of each stage. Stage lengths and term weights are our choices
-- (docs/design.md, "AML-KD pipeline").
--
-- Paper setting: CIFAR-10/100, Clothing1M, ResNets. Ours: Fashion-MNIST from Debian, the
-- MLP teacher of train_teacher.lua (784-1024-1024-10), an MLP 784-256-10 student.
--
--   kdflow run graphs/aml_kd.lua [--set noise=symmetric --set rate=0.4 --set seed=1
--       --set epochs=20 --set subset=0 --set teacher=CHECKPOINT --set T=4
--       --set kd_weight=0.9 --set ce_weight=1 --set warmup=2 --set stage1=8
--       --set select=otsu|rate --set k=20 --set lp_alpha=0.99 --set init_percentile=5
--       --set keep_selected=true --set awe_weight=1 --set mixup=0]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.teacher_options(common.options())
o.T = kdf.arg("T", 4.0)
o.kd_weight = kdf.arg("kd_weight", 0.9)
o.ce_weight = kdf.arg("ce_weight", 1.0)
-- stage lengths: a tenth of the ticks warm-up, four tenths stage 1, the rest stage 2
o.warmup = kdf.arg("warmup", math.max(1, (o.epochs + 5) // 10), { min = 1 })
o.stage1 = kdf.arg("stage1", math.max(1, (4 * o.epochs + 5) // 10), { min = 1 })
o.select = kdf.arg("select", "otsu")
o.k = kdf.arg("k", 20, { min = 1 })
o.lp_alpha = kdf.arg("lp_alpha", 0.99)
o.init_percentile = kdf.arg("init_percentile", 5.0)
o.keep_selected = kdf.arg("keep_selected", true)
o.awe_weight = kdf.arg("awe_weight", 1.0)
o.mixup = kdf.arg("mixup", 0.0) -- Beta(α, α) mixup in the student's batches, off at 0
assert(o.select == "otsu" or o.select == "rate",
       "--set select=" .. o.select .. ": otsu (Otsu on each batch's losses) or rate (keep 1 − rate)")
local stage2 = o.epochs - o.warmup - o.stage1
assert(stage2 >= 1, ("--set epochs=%d: warm-up (%d) and stage 1 (%d) leave no tick for stage 2; "
  .. "lower --set warmup / --set stage1"):format(o.epochs, o.warmup, o.stage1))

local t0 = kdf.clock()
local teacher = o.teacher ~= "" and o.teacher or common.train_teacher(o)

local g = kdf.graph { name = "aml_kd", seed = o.seed }
local data = common.data(g, o)
local tf = g:node("teacher_forward", { name = "teacher", checkpoint = teacher, x = data.x })

-- initial LP: soft seeds one-hot at the teacher's argmax, the least confident keep ỹ
local onehot = g:lua { name = "teacher_onehot", inputs = { "pred:i32[N]", "logits:f32[N,C]" },
  outputs = { "y:f32[N,C]" }, pred = tf.predictions, logits = tf.logits,
  fn = function(i)
    local c = i.logits:shape()[2]
    local rows = {}
    for r, p in ipairs(i.pred:totable()) do
      local row = {}
      for j = 1, c do row[j] = 0 end
      row[p + 1] = 1
      rows[r] = row
    end
    return { y = kdf.tensor(rows) }
  end }
local lp = g:node("label_propagation", { name = "lp", features = tf.features, seeds = data.labels,
                                         seed_probs = onehot.y, percentile = o.init_percentile,
                                         k = o.k, alpha = o.lp_alpha })
-- the refined labels against the clean ones (evaluation only), and as a detector: the
-- rows whose refined label differs from the given one
local relabelled = g:lua { name = "relabelled", inputs = { "a:i32[N]", "b:i32[N]" },
  outputs = { "mask:u8[N]" }, a = lp.labels, b = data.labels,
  fn = function(i)
    local a, b, m = i.a:totable(), i.b:totable(), {}
    for r = 1, #a do m[r] = a[r] ~= b[r] and 1 or 0 end
    return { mask = kdf.tensor(m, "u8") }
  end }
local ev = g:node("evaluate", { name = "refined", refined = lp.labels, flagged = relabelled.mask,
                                clean_labels = data.clean_labels, truth = data.noisy_mask })

local ce = g:node("ce_loss", { targets = lp.labels, weight = o.ce_weight })
local kd = g:node("kd_loss", { teacher_logits = tf.logits, T = o.T, weight = o.kd_weight })
local st = g:node("student_update", common.trainer(o, { name = "student", x = data.x,
                                                        losses = { ce.loss, kd.loss },
                                                        mixup = o.mixup }))
local mon = common.monitor(g, data, st.model, "student", o)

local function losses(list)
  g:disconnect(st.losses)
  st:set { losses = list }
end
-- the student's features of the tick just run, delivered to the next tick
local function student_features() return kdf.delay(st.features, 1, st.features:value()) end

local awe_net, awe_cos
local stages = {}
local function record(name)
  stages[#stages + 1] = { stage = name, tick = g:tick(),
                          refined = ev.refined_accuracy:value():item() }
  print(("aml_kd: %s ends at tick %d: refined-label accuracy %.4f"):format(
    name, g:tick(), stages[#stages].refined))
end

-- stage 1, after the warm-up: in-batch selection, AWE net, LP on the teacher's features
local function start_stage1()
  g:disconnect(lp.seeds)
  g:disconnect(lp.seed_probs)
  g:connect(lp.labels, lp.seeds, { delay = 1, initial = lp.labels:value() })
  lp:set { percentile = 0 }
  -- the rows the last epoch's batches kept seed LP (and keep their label); none kept
  -- yet on the first stage-1 tick: every row seeds
  g:connect(st.selected, lp.seed_mask, { delay = 1 })
  if o.keep_selected then g:connect(st.selected, lp.keep_mask, { delay = 1 }) end
  awe_net = g:node("awe", { name = "awe_net", mode = "net", labels = lp.labels,
                            features = student_features(), weight = o.awe_weight })
  g:connect(awe_net.weights, lp.weights, { delay = 1 })
  if o.select == "otsu" then ce:set { otsu = true } else ce:set { keep = 1 - o.rate } end
  ce:set { weights = awe_net.weights }
  losses { ce.loss, awe_net.loss, kd.loss }
end

-- stage 2: mutual LP, AWE cosine, every row seeds
local function start_stage2()
  awe_cos = g:node("awe", { name = "awe_cos", mode = "cosine", labels = lp.labels,
                            features = student_features() })
  for _, p in ipairs { lp.seed_mask, lp.keep_mask, lp.weights, ce.weights } do g:disconnect(p) end
  g:connect(awe_cos.weights, lp.weights, { delay = 1, initial = awe_net.weights:value() })
  ce:set { weights = awe_cos.weights, otsu = false, keep = 1 }
  losses { ce.loss, kd.loss }
end

local function lp_features(tick)
  -- stage 2's ticks alternate: the student's graph first, then the teacher's
  g:disconnect(lp.features)
  if (tick - o.warmup - o.stage1) % 2 == 0 then
    lp:set { features = student_features() }
  else
    lp:set { features = tf.features }
  end
end

local r = common.train(g, mon, o.epochs, function(t)
  if t == 1 then
    stages[1] = { stage = "initial LP", tick = 0, refined = ev.refined_accuracy:value():item() }
    print(("aml_kd: initial LP on the teacher's features: refined-label accuracy %.4f")
      :format(stages[1].refined))
  end
  if t == o.warmup then
    if o.warmup > 0 then record("warm-up") end
    start_stage1()
  elseif t == o.warmup + o.stage1 then
    record("stage 1")
    start_stage2()
  end
  if t >= o.warmup + o.stage1 and t < o.epochs then lp_features(t) end
end)
record("stage 2")
r.seconds = kdf.clock() - t0
r.teacher = teacher
r.stages = stages
r.refined = ev.refined_accuracy:value():item()
r.detection = { precision = ev.precision:value():item(), recall = ev.recall:value():item(),
                f1 = ev.f1:value():item() }
common.report("aml_kd", o, r)
for _, s in ipairs(stages) do
  print(("  refined-label accuracy, %-11s %.4f (tick %d)"):format(s.stage .. ":", s.refined, s.tick))
end
