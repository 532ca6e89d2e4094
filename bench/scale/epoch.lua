-- bench/scale/epoch.lua: one epoch of an MLP student with cross-entropy on an npy data
-- set (bench/scale/make-synthetic), then the test accuracy — the graph of
-- bench/scale/epoch-u8, which measures its peak RSS with the inputs dense (f32 in memory)
-- and kept on disk (data_loader keep_u8).
--
--   kdflow run bench/scale/epoch.lua --threads 1 --set path=DIR [--set keep_u8=true]
--       [--set student=mlp:784-256-10 --set epochs=1 --set batch=128 --set val=0.1
--        --set normalize=unit --set score_val=false --set subset=0]
--
-- Nothing reads per-sample features, so the student and the scoring nodes make none
-- (with_features = false); score_val scores the validation split as well.
local kdf = require "kdflow"
local o = {
  path = kdf.arg("path", ""),
  keep_u8 = kdf.arg("keep_u8", false),
  student = kdf.arg("student", "mlp:784-256-10"),
  epochs = kdf.arg("epochs", 1, { min = 1 }),
  batch = kdf.arg("batch", 128, { min = 1 }),
  lr = kdf.arg("lr", 0.05),
  val = kdf.arg("val", 0.1),
  normalize = kdf.arg("normalize", "unit"),
  noise = kdf.arg("noise", "symmetric"),
  rate = kdf.arg("rate", 0.2),
  seed = kdf.arg("seed", 1),
  score_val = kdf.arg("score_val", false),
  subset = kdf.arg("subset", 0, { min = 0 }),
}
assert(o.path ~= "", "set path=DIR (a data set written by bench/scale/make-synthetic)")
local t0 = kdf.clock()
local g = kdf.graph { name = "epoch", seed = o.seed }
local data = g:node("data_loader", { name = "data", dataset = "npy", path = o.path,
                                     keep_u8 = o.keep_u8, normalize = o.normalize,
                                     noise = o.noise, rate = o.rate, val_fraction = o.val,
                                     subset = o.subset })
local ce = g:node("ce_loss", { targets = data.labels })
local st = g:node("student_update", { name = "student", arch = o.student, x = data.x,
                                      losses = { ce.loss }, lr = o.lr, batch = o.batch,
                                      epochs = o.epochs, with_features = false, save = "" })
local test = g:node("teacher_forward", { name = "test", model = st.model, x = data.x_test,
                                         with_features = false })
local ev = g:node("evaluate", { name = "eval", logits = test.logits, labels = data.y_test,
                                save = false })
local val
if o.score_val and o.val > 0 then
  val = g:node("teacher_forward", { name = "val", model = st.model, x = data.x_val,
                                    labels = data.labels_val, with_features = false })
end
g:run { ticks = 1 }
print(("epoch: keep_u8=%s rows=%d loss=%.4f test=%.4f%s seconds=%.1f"):format(
  tostring(o.keep_u8), st.logits:value():shape()[1], st.sample_loss:value():sum() /
  st.sample_loss:value():shape()[1], ev.accuracy:value():item(),
  val and (" val_rows=%d"):format(val.sample_loss:value():shape()[1]) or "",
  kdf.clock() - t0))
