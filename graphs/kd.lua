-- kd: Hinton distillation from a teacher trained on the noisy labels — the student
-- minimises 0.9·T²·KL(teacher_T ‖ student_T) + 0.1·CE(noisy labels), T = 4.
-- Paper setting: Hinton et al. 2015. Ours: the MLP teacher of train_teacher.lua
-- (trained here first unless --set teacher=CHECKPOINT), MLP 784-256-10 student.
--
--   kdflow run graphs/kd.lua [--set teacher=teacher.safetensors --set T=4 --set alpha=0.9
--                             --set noise=symmetric --set rate=0.4 --set epochs=20]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.teacher_options(common.options())
o.T = kdf.arg("T", 4.0)
o.alpha = kdf.arg("alpha", 0.9)
local t0 = kdf.clock()
local teacher = o.teacher ~= "" and o.teacher or common.train_teacher(o)

local g = kdf.graph { name = "kd", seed = o.seed }
local data = common.data(g, o)
local tf = g:node("teacher_forward", { name = "teacher", checkpoint = teacher, x = data.x })
local kd = g:node("kd_loss", { teacher_logits = tf.logits, T = o.T, weight = o.alpha })
local ce = g:node("ce_loss", { targets = data.labels, weight = 1 - o.alpha })
local st = g:node("student_update", common.trainer(o, { name = "student", x = data.x,
                                                        losses = { ce.loss, kd.loss } }))
local mon = common.monitor(g, data, st.model, "student", o)
local r = common.train(g, mon, o.epochs)
r.seconds = kdf.clock() - t0
r.teacher = teacher
common.report("kd", o, r)
