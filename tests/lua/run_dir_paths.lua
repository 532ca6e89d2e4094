-- A path a script builds from kdf.run_dir() reaches a node's path param as the file it
-- names, with a relative --out too (graphs/lib/common.lua's teacher checkpoint): the
-- checkpoint is where the script says, and nowhere inside a doubled directory.
local kdf = require "kdflow"
local dir = kdf.run_dir()
assert(dir:sub(1, 1) == "/", "kdf.run_dir() is absolute: " .. dir)
local path = dir .. "/teacher.safetensors"
local g = kdf.graph { name = "paths" }
local y = kdf.tensor({ 0, 1, 0, 1 }, "i32")
local ce = g:node("ce_loss", { targets = y })
g:node("student_update", { x = kdf.tensor({ { 0, 1 }, { 1, 0 }, { 0, 1 }, { 1, 0 } }, "f32"),
                           arch = "mlp:2-4-2", losses = { ce.loss }, save = path })
g:run { ticks = 1 }
local f = io.open(path, "rb")
assert(f, "no checkpoint at " .. path)
f:close()
print("checkpoint at", path)
