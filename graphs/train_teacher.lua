-- train_teacher: trains the teacher the distillation baselines read, on the noisy
-- labels, and writes the checkpoint of its best noisy-validation tick (safetensors,
-- readable by numpy and PyTorch) to teacher.safetensors in the run directory.
-- Paper setting: a pretrained ResNet teacher. Ours (METHODS §3): the MLP
-- 784-1024-1024-10 (feature tap 1024), SGD lr 0.02, 10 epochs; METHODS' CNN
-- (--set teacher_arch=cnn:1x28x28-c32-p2-c64-p2-f256-10) is ~10× slower per epoch on
-- a CPU.
--
--   kdflow run graphs/train_teacher.lua [--set teacher_arch=... --set teacher_epochs=10
--       --set noise=symmetric --set rate=0.4 --set seed=1 --set subset=0]
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local common = require "common"

local o = common.teacher_options(common.options())
o.epochs = o.teacher_epochs
local t0 = kdf.clock()
local path, r = common.train_teacher(o)
r.seconds = kdf.clock() - t0
r.checkpoint = path
common.report("train_teacher", o, r)
print("  teacher checkpoint:                  " .. path)
