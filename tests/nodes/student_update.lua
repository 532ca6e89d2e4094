-- student_update: the numbers of a fixed seed are pinned. A pair with mixup and
-- augmentation (two epochs per tick, a short last batch, an lr schedule) and a CNN
-- with Adam, each for two ticks at one thread; the values were recorded before the
-- node was moved onto the library's epoch loop (kdf_trainer_epoch), so any change to
-- the shuffle, the batch order, the draws or the scatter back to dataset order shows.
-- The tolerance allows for another CPU's BLIS kernels, not for a changed algorithm:
-- one different permutation moves these sums by whole units.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end

local function sum(t)
  local s = 0
  for _, v in ipairs(t:totable()) do
    if type(v) == "table" then for _, w in ipairs(v) do s = s + w end else s = s + v end
  end
  return s
end

local function near(got, want, what)
  local tol = 2e-4 * math.max(1, math.abs(want))
  assert(math.abs(got - want) <= tol,
         ("%s: %.10g, pinned %.10g (tolerance %g)"):format(what, got, want, tol))
end

-- 1. a pair, one optimizer: each net on its own CE term
local g = kdf.graph { name = "pin-pair", seed = 11 }
local data = g:node("data_loader", { name = "data", subset = 600, test_subset = 100, val_fraction = 0,
                                     noise = "symmetric", rate = 0.2 })
local ce = g:node("ce_loss", { targets = data.labels })
local ce2 = g:node("ce_loss", { name = "ce2", targets = data.labels, net = "partner" })
local st = g:node("student_update", {
  arch = "mlp:784-32-10", arch2 = "mlp:784-16-10", x = data.x, losses = { ce.loss, ce2.loss },
  lr = kdf.linear(0.05, 0.01, 2), batch = 64, epochs = 2, augment = "shift", mixup = 0.4 })
g:run { ticks = 2 }
near(sum(st.sample_loss:value()), 1113.939963, "pair: sum of sample_loss")
near(sum(st.logits:value()), 15.82494052, "pair: sum of logits")
near(sum(st.logits2:value()), -904.4480394, "pair: sum of logits2")
near(sum(st.features:value()), 11750.59624, "pair: sum of features")
near(st.logits:value():get(1, 1), -0.3031001687, "pair: logits[1][1]")
near(st.logits:value():get(600, 10), 2.713907957, "pair: logits[600][10]")

-- 2. a CNN with Adam
local g2 = kdf.graph { name = "pin-cnn", seed = 5 }
local data2 = g2:node("data_loader", { name = "data", subset = 300, test_subset = 100, val_fraction = 0 })
local ce_2 = g2:node("ce_loss", { targets = data2.labels })
local st2 = g2:node("student_update", {
  arch = "cnn:1x28x28-c4-p2-f16-10", x = data2.x, losses = { ce_2.loss }, lr = 0.05, batch = 32,
  optimizer = "adam", weight_decay = 0 })
g2:run { ticks = 2 }
near(sum(st2.sample_loss:value()), 616.314176, "cnn: sum of sample_loss")
near(sum(st2.features:value()), 794.5210162, "cnn: sum of features")
near(st2.logits:value():get(1, 1), 1.911000729, "cnn: logits[1][1]")
near(st2.logits:value():get(300, 10), -0.218405813, "cnn: logits[300][10]")
print("student_update: pinned numbers ok")
