-- ce: the CE baseline — a student trained with plain cross-entropy on the noisy labels.
-- Every method must beat it. Paper setting (as in the methods' papers): ResNet/CIFAR,
-- 100-200 epochs. Ours (METHODS §3): Fashion-MNIST from Debian, MLP 784-256-10,
-- SGD lr 0.05 momentum 0.9, batch 128, 20 epochs, 10 % noisy validation split.
--
--   kdflow run graphs/ce.lua [--set noise=symmetric --set rate=0.4 --set seed=1
--                             --set epochs=20 --set subset=0 --set student=mlp:784-256-10
--                             --set drop_open=false]
--
-- drop_open=true is an upper reference for open-set noise, not a method: the rows the
-- oracle says are open-set (data_loader's open_mask) leave the loss through a deliberate,
-- visible oracle edge, so the student learns from the in-set rows only (reported as
-- ce_open_dropped).
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.options()
o.drop_open = kdf.arg("drop_open", false)
local t0 = kdf.clock()
local g = kdf.graph { name = "ce", seed = o.seed }
local data = common.data(g, o)
local weights = o.drop_open and common.in_set_weights(g, data) or nil
local ce = g:node("ce_loss", { targets = data.labels, weights = weights })
local st = g:node("student_update", common.trainer(o, { name = "student", x = data.x, losses = { ce.loss },
                                                       with_features = false }))
local mon = common.monitor(g, data, st.model, "student", o)
local r = common.train(g, mon, o.epochs)
r.seconds = kdf.clock() - t0
common.report(o.drop_open and "ce_open_dropped" or "ce", o, r)
