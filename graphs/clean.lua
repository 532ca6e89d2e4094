-- clean: the upper bound — the same student trained on the *clean* labels. It reads
-- ground truth on purpose (kdf.oracle), which no method may do.
-- Ours: Fashion-MNIST, MLP 784-256-10, as ce.lua.
--
--   kdflow run graphs/clean.lua [--set epochs=20 --set seed=1 --set subset=0]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.options()
local t0 = kdf.clock()
local g = kdf.graph { name = "clean", seed = o.seed }
local data = common.data(g, o)
local ce = g:node("ce_loss", { targets = kdf.oracle(data.clean_labels) })
local st = g:node("student_update", common.trainer(o, { name = "student", x = data.x, losses = { ce.loss } }))
local mon = common.monitor(g, data, st.model, "student", o)
local r = common.train(g, mon, o.epochs)
r.seconds = kdf.clock() - t0
common.report("clean", o, r)
