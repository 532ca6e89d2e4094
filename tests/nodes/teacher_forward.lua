-- teacher_forward: a model's forward pass over a data set (docs/nodes.md, METHODS §1),
-- on a network whose outputs are computed here in Lua: an MLP 2-2-3 (Linear, ReLU,
-- Linear) with chosen weights written as a checkpoint. Checks logits, the feature tap
-- (the input of the final Linear, nn.h: the ReLU's output), probs = softmax(z/T) at
-- T = 2, predictions (argmax), sample_loss (CE against the labels) and the metric
-- accuracy, in batches of 2 over 5 rows and in one batch; the `model` input path; a
-- relative checkpoint found in the run directory; that a frozen checkpoint over
-- unchanged inputs runs once; and the node's errors.
local kdf = require "kdflow"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local U = dofile(dir .. "../methods/util.lua")
local near = U.near

local W1, b1 = { { 1, -1 }, { 0.5, 2 } }, { 0.1, -0.2 }
local W2, b2 = { { 1, 0.5 }, { -1, 1 }, { 0.3, -0.7 } }, { 0, 0.2, -0.1 }
local rd = assert(kdf.run_dir(), "no run directory (run this with kdflow run)")
local name = "teacher_forward-mlp.safetensors"
U.write_checkpoint(rd .. "/" .. name, "mlp:2-2-3", {
  { "0.weight", { 2, 2 }, { W1[1][1], W1[1][2], W1[2][1], W1[2][2] } }, { "0.bias", { 2 }, b1 },
  { "2.weight", { 3, 2 }, { W2[1][1], W2[1][2], W2[2][1], W2[2][2], W2[3][1], W2[3][2] } },
  { "2.bias", { 3 }, b2 } })

-- the network in Lua: h = relu(W1 x + b1), z = W2 h + b2
local function forward(x)
  local h, z = {}, {}
  for k = 1, 2 do h[k] = math.max(0, W1[k][1] * x[1] + W1[k][2] * x[2] + b1[k]) end
  for k = 1, 3 do z[k] = W2[k][1] * h[1] + W2[k][2] * h[2] + b2[k] end
  return h, z
end
local function log_softmax(z, t)
  local mx = math.max(table.unpack(z))
  local s = 0
  for _, v in ipairs(z) do s = s + math.exp((v - mx) / t) end
  local out = {}
  for j, v in ipairs(z) do out[j] = (v - mx) / t - math.log(s) end
  return out
end

-- By hand, row 1, x = (1, 0): W1 x + b1 = (1.1, 0.3) → h = (1.1, 0.3);
-- z = (1.1 + 0.15, −1.1 + 0.3 + 0.2, 0.33 − 0.21 − 0.1) = (1.25, −0.6, 0.02) → class 0.
-- Row 2, x = (0, 1): W1 x + b1 = (−0.9, 1.8) → h = (0, 1.8) (the ReLU cuts unit 1);
-- z = (0.9, 2.0, −1.36) → class 1.
local xs = { { 1, 0 }, { 0, 1 }, { -1, 0.5 }, { 2, -1 }, { -0.5, -0.5 } }
local ys = { 0, 0, 1, 2, 1 }
local g = kdf.graph { name = "teacher-forward" }
local x = kdf.tensor(xs)
local tf = g:node("teacher_forward", { name = "tf", checkpoint = name, x = x, T = 2, batch = 2,
                                       labels = kdf.tensor(ys, "i32") })
local tf2 = g:node("teacher_forward", { name = "tf2", model = tf.model, x = x })
g:run { ticks = 2 }

near(tf.logits:value():get(1, 1), 1.25, 1e-6, "row 1 logit 0 (by hand)")
near(tf.logits:value():get(1, 2), -0.6, 1e-6, "row 1 logit 1 (by hand)")
near(tf.logits:value():get(1, 3), 0.02, 1e-6, "row 1 logit 2 (by hand)")
near(tf.features:value():get(2, 1), 0, 0, "row 2: the ReLU cuts unit 1")
near(tf.logits:value():get(2, 2), 2.0, 1e-6, "row 2 logit 1 (by hand)")
local right = 0
for i, xi in ipairs(xs) do
  local h, z = forward(xi)
  local lp2, lp1 = log_softmax(z, 2), log_softmax(z, 1)
  local best = 1
  for c = 2, 3 do if z[c] > z[best] then best = c end end
  for k = 1, 2 do near(tf.features:value():get(i, k), h[k], 1e-6, ("features %d,%d"):format(i, k)) end
  for c = 1, 3 do
    near(tf.logits:value():get(i, c), z[c], 1e-6, ("logits %d,%d"):format(i, c))
    near(tf2.logits:value():get(i, c), z[c], 1e-6, ("model input: logits %d,%d"):format(i, c))
    near(tf.probs:value():get(i, c), math.exp(lp2[c]), 1e-6, ("probs at T = 2, %d,%d"):format(i, c))
    near(tf2.probs:value():get(i, c), math.exp(lp1[c]), 1e-6, ("probs at T = 1, %d,%d"):format(i, c))
  end
  assert(tf.predictions:value():get(i) == best - 1,
         ("prediction %d: %d, expected %d"):format(i, tf.predictions:value():get(i), best - 1))
  assert(tf2.predictions:value():get(i) == best - 1, "model input: prediction " .. i)
  -- sample_loss: CE of the labels under softmax(z) (T = 1, whatever T the probs use)
  near(tf.sample_loss:value():get(i), -lp1[ys[i] + 1], 2e-6, "sample_loss " .. i)
  if best - 1 == ys[i] then right = right + 1 end
end
assert(right == 2, "the labels were chosen to give accuracy 2/5, got " .. right)
assert(tf2.sample_loss:value() == nil, "no labels, no sample_loss")
-- the metric accuracy (metrics.jsonl: one line per tick; tick 0's carries it)
local acc
for line in io.lines(rd .. "/metrics.jsonl") do
  if line:find('"graph":"teacher-forward"', 1, true) and line:find('"tick":0', 1, true) then
    acc = tonumber(line:match('"tf%.accuracy":([^,}]+)'))
  end
end
near(assert(acc, "metric tf.accuracy not found"), 2 / 5, 1e-12, "accuracy")
-- frozen checkpoint, unchanged inputs: one run in two ticks
assert(tf:stats().calls == 1, "the frozen teacher ran " .. tf:stats().calls .. " times in 2 ticks")

-- param arch: an untrained network drawn from the node's seed, a fixed random feature
-- map. The tap has the hidden width; it is a ReLU output (≥ 0, some zeros); the same
-- graph seed and node name give the same map in another graph, another seed another
-- map; the `model` output runs the same network; frozen, it runs once in two ticks.
local xr = {}
for i = 1, 40 do xr[i] = { math.sin(i), math.cos(3 * i) } end
local function random_map(seed)
  local gr = kdf.graph { name = "tf-random", seed = seed }
  local r = gr:node("teacher_forward", { name = "rand", arch = "mlp:2-16-3", x = kdf.tensor(xr) })
  local again = gr:node("teacher_forward", { name = "again", model = r.model, x = kdf.tensor(xr) })
  gr:run { ticks = 2 }
  assert(r:stats().calls == 1, "the random map ran " .. r:stats().calls .. " times in 2 ticks")
  return r.features:value():totable(), r.logits:value():totable(), again.logits:value():totable()
end
local f1, z1, z1b = random_map(3)
local f2 = random_map(3)
local f3 = random_map(4)
assert(#f1 == 40 and #f1[1] == 16, "tap width 16")
local zeros, pos, same, other = 0, 0, true, false
for i = 1, 40 do
  for k = 1, 16 do
    assert(f1[i][k] >= 0, "a ReLU tap")
    if f1[i][k] == 0 then zeros = zeros + 1 else pos = pos + 1 end
    same = same and f1[i][k] == f2[i][k]
    other = other or f1[i][k] ~= f3[i][k]
  end
  for c = 1, 3 do near(z1b[i][c], z1[i][c], 0, "the model output, logits " .. i) end
end
assert(zeros > 40 and pos > 40, ("a ReLU map of random weights: %d zeros, %d positive"):format(zeros, pos))
assert(same, "the same seed draws the same map")
assert(other, "another seed draws another map")

-- bad inputs: exit status 2 and the node's message
local function fails(what, params, want)
  local gb = kdf.graph { name = "tf-bad-" .. what }
  local ok, err = pcall(function ()
    params.name = "bad"
    params.x = params.x or x
    if params.model then -- a model from this graph
      params.model = gb:node("teacher_forward", { name = "src", checkpoint = name, x = x }).model
    end
    gb:node("teacher_forward", params)
    gb:run {}
  end)
  assert(not ok, what .. ": did not fail")
  assert(tostring(err):find(want, 1, true), what .. ": message: " .. tostring(err))
  assert(type(err) ~= "string" and err.status == 2, what .. ": not a run error of status 2: " .. tostring(err))
end
fails("no model", {}, "no model: connect the 'model' input or set param 'checkpoint' or 'arch'")
fails("both", { checkpoint = name, model = true },
      "give one of the 'model' input, param 'checkpoint' and param 'arch', not two")
fails("arch and checkpoint", { checkpoint = name, arch = "mlp:2-4-3" }, "not two")
fails("bad arch", { arch = "mlp:2" }, "param 'arch': architecture 'mlp:2'")
fails("arch width", { arch = "mlp:3-4-3" }, "3")
fails("label rows", { checkpoint = name, labels = kdf.tensor({ 0, 1, 2 }, "i32") },
      "input 'labels' has 3 rows, 'x' has 5")
fails("label range", { checkpoint = name, labels = kdf.tensor({ 0, 1, 3, 0, 1 }, "i32") },
      "input 'labels' row 2 is 3, outside [0, 3)")

-- with_features = false: logits as before, no features; a node reading them fails naming the output
do
  local gf = kdf.graph { name = "tf-no-features" }
  local full = gf:node("teacher_forward", { name = "full", checkpoint = name, x = x })
  local lean = gf:node("teacher_forward", { name = "lean", checkpoint = name, x = x, with_features = false })
  gf:run {}
  assert(lean.features:value() == nil, "features made with with_features = false")
  local a, b = full.logits:value():totable(), lean.logits:value():totable()
  for i = 1, #a do for j = 1, #a[i] do assert(a[i][j] == b[i][j], "logits changed") end end
  local gr = kdf.graph { name = "tf-no-features-read" }
  local l2 = gr:node("teacher_forward", { name = "lean", checkpoint = name, x = x, with_features = false })
  gr:node("awe", { features = l2.features, labels = kdf.tensor({ 0, 1, 2, 0, 1 }, "i32") })
  local ok, err = pcall(gr.run, gr, {})
  assert(not ok and tostring(err):find("did not set output 'features'", 1, true), tostring(err))
end

os.remove(rd .. "/" .. name)
print("teacher_forward ok")
