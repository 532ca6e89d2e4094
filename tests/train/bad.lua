-- One bad input per --set case=..., each must fail with exit status 2 and a message.
local kdf = require "kdflow"
local case = kdf.arg("case", "")
local g = kdf.graph { name = "bad-" .. case }
local x = kdf.zeros({ 8, 4 })
local y = kdf.tensor({ 0, 1, 2, 0, 1, 2, 0, 1 }, "i32")
if case == "no_arch" then
  local ce = g:node("ce_loss", { targets = y })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss } })
elseif case == "bad_arch" then
  local ce = g:node("ce_loss", { targets = y })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss }, arch = "mlp:4-x-3" })
elseif case == "wrong_n" then
  local ce = g:node("ce_loss", { targets = kdf.tensor({ 0, 1, 2 }, "i32") })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss }, arch = "mlp:4-3" })
elseif case == "wrong_classes" then
  local ce = g:node("ce_loss", { targets = kdf.zeros({ 8, 5 }) })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss }, arch = "mlp:4-3" })
elseif case == "wrong_width" then
  local ce = g:node("ce_loss", { targets = y })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss }, arch = "mlp:5-3" })
elseif case == "no_model" then
  g:node("teacher_forward", { name = "tf", x = x })
elseif case == "missing_checkpoint" then
  g:node("teacher_forward", { name = "tf", x = x, checkpoint = "/nonexistent/teacher.safetensors" })
elseif case == "corrupt_checkpoint" then
  local path = os.tmpname()
  local f = io.open(path, "wb"); f:write("\16\0\0\0\0\0\0\0{\"a\": 1"); f:close()
  g:node("teacher_forward", { name = "tf", x = x, checkpoint = path })
elseif case == "label_range" then
  local m = g:node("student_update", { name = "st", x = x, arch = "mlp:4-3",
                                       losses = { g:node("ce_loss", { targets = y }).loss } })
  g:node("teacher_forward", { name = "tf", x = x, model = m.model,
                              labels = kdf.tensor({ 0, 1, 2, 3, 0, 1, 2, 0 }, "i32") })
elseif case == "partner_missing" then
  local ce = g:node("ce_loss", { targets = y, net = "partner" })
  g:node("student_update", { name = "st", x = x, losses = { ce.loss }, arch = "mlp:4-3" })
elseif case == "oracle_into_loss" then
  -- a method must not train on the clean labels by accident
  local data = g:node("data_loader", { name = "data" })
  g:node("ce_loss", { name = "ce", targets = data.clean_labels })
else
  error("unknown case " .. case)
end
g:run { ticks = 1 }
