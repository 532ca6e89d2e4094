-- rotation_loss: 4-way rotation prediction through a linear head on the student's
-- features (docs/nodes.md; gradients against central differences through the
-- trainer's rotated view in tests/nn/test-contrastive.c). On a Fashion-MNIST subset:
--   1. a student trained on the rotation term alone learns to tell the four turns
--      apart: its loss falls from about log 4 = 1.386 (chance) to well below;
--   2. a mask keeps rows out: with an all-zero mask the term is 0 and so is every
--      row's sample loss; with a half mask only those rows carry a loss;
--   3. the head is the student's (its checkpoint carries heads.rot);
--   4. bad inputs: a non-square input, mixup, a mask of the wrong length.
local kdf = require "kdflow"
if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
  print("skip: Debian's dataset-fashion-mnist is not installed")
  os.exit(77)
end

local function metric(graph, key)
  local vals = {}
  for line in io.lines(kdf.run_dir() .. "/metrics.jsonl") do
    if line:find('"graph":"' .. graph .. '"', 1, true) then
      local v = line:match('"' .. key:gsub("%p", "%%%0") .. '":([^,}]+)')
      if v then vals[#vals + 1] = tonumber(v) end
    end
  end
  assert(#vals > 0, "metric " .. key .. " not found")
  return vals
end

local N = 600
local g = kdf.graph { name = "rot", seed = 2 }
local data = g:node("data_loader", { name = "data", subset = N, test_subset = 10, val_fraction = 0 })
local rot = g:node("rotation_loss", { name = "rot" })
local st = g:node("student_update", { name = "st", arch = "mlp:784-64-10", x = data.x, batch = 100,
                                      lr = 0.05, losses = { rot.loss }, save = "st.safetensors" })
local half = {}
for i = 1, N do half[i] = i <= N / 2 and 1 or 0 end
local rh = g:node("rotation_loss", { name = "rh", mask = kdf.tensor(half, "u8") })
local sh = g:node("student_update", { name = "sh", arch = "mlp:784-64-10", x = data.x, batch = 100,
                                      lr = 0.1, losses = { rh.loss } })
local r0 = g:node("rotation_loss", { name = "r0", mask = kdf.zeros({ N }, "u8") })
local s0 = g:node("student_update", { name = "s0", arch = "mlp:784-64-10", x = data.x, batch = 100,
                                      lr = 0.1, losses = { r0.loss } })
g:run { ticks = 8 }
local l = metric("rot", "st.loss")
print("rotation loss by tick: " .. table.concat(l, " "))
assert(l[1] > 0.9 and l[1] < 1.5, "first tick's loss " .. l[1] .. " is not near chance (1.386)")
assert(l[#l] < l[1], "the loss did not fall")
-- a quarter below chance, with room to spare: a student that learnt nothing stays at 1.386
assert(l[#l] < 0.75 * math.log(4), "the student did not learn the rotations: last loss " .. l[#l])
for _, v in ipairs(metric("rot", "s0.loss")) do assert(v == 0, "an all-zero mask gave loss " .. v) end
local sl0, slh = s0.sample_loss:value(), sh.sample_loss:value()
for i = 1, N do
  assert(sl0:get(i) == 0, "all-zero mask: row " .. i .. " has a loss")
  if i > N / 2 then assert(slh:get(i) == 0, "half mask: row " .. i .. " has a loss")
  else assert(slh:get(i) > 0, "half mask: row " .. i .. " has no loss") end
end
local f = assert(io.open(kdf.run_dir() .. "/st.safetensors", "rb"))
local head = f:read(4096)
f:close()
assert(head:find('"heads.rot.0.weight"', 1, true) and head:find("rot=4", 1, true),
       "the student's checkpoint has no rotation head")

local function fails(name, params, want, x, trainer_params)
  local gb = kdf.graph { name = "rot-bad-" .. name }
  local ok, err = pcall(function ()
    params.name = "bad"
    local lb = gb:node("rotation_loss", params)
    local tp = { arch = "mlp:" .. x:shape()[2] .. "-3-2", x = x, batch = 4, losses = { lb.loss } }
    for k, v in pairs(trainer_params or {}) do tp[k] = v end
    gb:node("student_update", tp)
    gb:run {}
  end)
  assert(not ok, name .. ": did not fail")
  assert(tostring(err):find(want, 1, true), name .. ": message: " .. tostring(err))
  if type(err) ~= "string" then assert(err.status == 2, name .. ": status " .. tostring(err.status)) end
end
fails("not square", {}, "not a square image", kdf.zeros({ 4, 10 }))
fails("mixup", {}, "does not combine with mixup", kdf.zeros({ 4, 9 }), { mixup = 0.4 })
fails("mask rows", { mask = kdf.zeros({ 3 }, "u8") }, "loss term 1 ('rotation') is bound to 3 samples, 'x' has 4",
      kdf.zeros({ 4, 9 }))
print("rotation_loss ok")
