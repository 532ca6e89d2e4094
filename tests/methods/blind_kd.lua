-- Blind KD wired from the methods' nodes on a small Fashion-MNIST sample with 40 %
-- symmetric noise (METHODS §2 blind_kd, scaled down): teacher and student trained
-- online by one student_update (the teacher is arch2: CE, then robust CE after the
-- split; the student learns blind from the teacher's masked logits); every tick
-- agreement and tipping_point; at the tipping point otsu_threshold (blind criterion)
-- splits the tipping epoch's agreement into four groups, which robust_ce uses from the
-- next tick on. The predicted-noisy mask is G4 and the prediction argmax p_A.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end
local ticks = kdf.arg("ticks", 14)

local g = kdf.graph { name = "blind-kd-small", seed = 7 }
local data = g:node("data_loader", { name = "data", subset = 3000, test_subset = 1000, val_fraction = 0,
                                     noise = "symmetric", rate = 0.4 })
local robust = g:node("robust_ce", { labels = data.labels, net = "partner" })
local blind = g:node("blind_loss", { labels = data.labels })
local st = g:node("student_update", { name = "pair", arch = "mlp:784-128-10", arch2 = "mlp:784-128-10",
                                      x = data.x, losses = { robust.loss, blind.loss },
                                      lr = 0.05, batch = 64 })
local ag = g:node("agreement", { teacher_logits = st.logits2, student_logits = st.logits, labels = data.labels })
local tp = g:node("tipping_point", { logits = st.logits, scores = ag.scores })
local ot = g:node("otsu_threshold", { scores = tp.scores_at, criterion = "blind" })
g:connect(ot.groups, robust.groups, { delay = 1 })
g:connect(tp.reached, robust.reached, { delay = 1 })
local g4 = g:lua { name = "g4", inputs = { "groups:i32[N]" }, outputs = { "mask:u8[N]" }, groups = ot.groups,
  fn = function (inputs)
    local m = {}
    for i, v in ipairs(inputs.groups:totable()) do m[i] = v == 4 and 1 or 0 end
    return { mask = kdf.tensor(m, "u8") }
  end }
local det = g:node("evaluate", { name = "detect", flagged = g4.mask, truth = data.noisy_mask })
-- test accuracy of argmax p_A, the pair's prediction
local tt = g:node("teacher_forward", { name = "teacher_test", model = st.model2, x = data.x_test })
local ts = g:node("teacher_forward", { name = "student_test", model = st.model, x = data.x_test })
local at = g:node("agreement", { name = "agree_test", teacher_logits = tt.logits, student_logits = ts.logits })
local ev = g:node("evaluate", { name = "test", predictions = at.predictions, labels = data.y_test })

local reached_at
for t = 1, ticks do
  g:run { ticks = 1 }
  local m = tp.mean_max:value():item()
  local r = tp.reached:value():item()
  print(("tick %2d: student mean max %.4f, test accuracy (argmax p_A) %.3f%s"):format(
    t - 1, m, ev.accuracy:value():item(), r == 1 and (" — tipping epoch " .. tp.epoch:value():item()) or ""))
  if r == 1 and not reached_at then reached_at = t - 1 end
end
assert(tp.history:value():numel() == ticks, "one history entry per tick")
assert(ev.accuracy:value():item() > 0.6, "the pair did not learn")
if reached_at then
  local e = tp.epoch:value():item()
  assert(reached_at >= e + 2, "a tipping epoch is known two ticks after it")
  local f1 = det.f1:value():item()
  print(("G4 as the noisy mask: precision %.3f, recall %.3f, F1 %.3f"):format(
    det.precision:value():item(), det.recall:value():item(), f1))
  assert(det.precision:value():item() > 0.6, "G4 is not mostly noisy labels")
else
  print("no tipping point within " .. ticks .. " ticks")
end
print("blind_kd ok")
