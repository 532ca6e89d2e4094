-- hint_loss: MSE between a linear adapter of the student's feature tap and the
-- teacher's feature tap (docs/nodes.md; gradients against central differences in
-- tests/nn/test-contrastive.c). On synthetic data whose "teacher features" are a
-- fixed linear map of the inputs:
--   1. a student trained on the hint alone drives the loss down to a small fraction
--      of its first tick's (the tap and the adapter learn the map);
--   2. the value: the metric `loss` of a step equals the mean of the rows' sample
--      losses (each row's mean squared error over the columns) at lr 0;
--   3. a mask: rows outside it carry no loss;
--   4. bad inputs: rows that do not match, a head name taken by another width.
local kdf = require "kdflow"

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

-- x: 64 rows of 6 values from a fixed LCG; teacher features t = A·x (3 columns)
local N, seed = 64, 12345
local function rnd()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648 * 2 - 1
end
local A = { { 1, -0.5, 0, 0.3, 0, 0.2 }, { 0, 1, 0.5, 0, -0.4, 0 }, { 0.2, 0, 0, 1, 0.6, -0.3 } }
local X, T, mask = {}, {}, {}
for i = 1, N do
  X[i] = {}
  for j = 1, 6 do X[i][j] = rnd() end
  T[i] = {}
  for k = 1, 3 do
    local s = 0
    for j = 1, 6 do s = s + A[k][j] * X[i][j] end
    T[i][k] = s
  end
  mask[i] = i % 4 == 0 and 0 or 1
end
local g = kdf.graph { name = "hint", seed = 7 }
local x, t = kdf.tensor(X), kdf.tensor(T)
local h = g:node("hint_loss", { name = "h", teacher_features = t })
local st = g:node("student_update", { name = "st", arch = "mlp:6-32-2", x = x, batch = 16, lr = 0.1,
                                      epochs = 10, weight_decay = 0, losses = { h.loss } })
local h0 = g:node("hint_loss", { name = "h0", teacher_features = t, weight = 2, mask = kdf.tensor(mask, "u8") })
local s0 = g:node("student_update", { name = "s0", arch = "mlp:6-32-2", x = x, batch = N, lr = 1e-12,
                                      momentum = 0, weight_decay = 0, losses = { h0.loss } })
g:run { ticks = 6 }
local l = metric("hint", "st.loss")
print("hint loss by tick: " .. table.concat(l, " "))
assert(l[#l] < 0.1 * l[1], "the hint did not train: " .. l[1] .. " → " .. l[#l])
-- one batch of all rows at lr ≈ 0: loss = weight · mean over kept rows of the row MSE,
-- and sample_loss = weight · the row MSE (0 outside the mask)
local sl = s0.sample_loss:value()
local sum, kept = 0, 0
for i = 1, N do
  if mask[i] == 0 then assert(sl:get(i) == 0, "row " .. i .. " is outside the mask but has a loss")
  else sum, kept = sum + sl:get(i), kept + 1 end
end
local m0 = metric("hint", "s0.loss")
assert(math.abs(m0[#m0] - sum / kept) < 1e-5 * math.max(1, m0[#m0]),
       ("loss %.9g, mean of sample losses %.9g"):format(m0[#m0], sum / kept))
assert(m0[#m0] > 0.01, "an untrained adapter gives a loss far from 0")

local function fails(name, params, want, extra)
  local gb = kdf.graph { name = "hint-bad-" .. name }
  local ok, err = pcall(function ()
    params.name = "bad"
    local lb = gb:node("hint_loss", params)
    local losses = { lb.loss }
    if extra then losses[2] = gb:node("hint_loss", extra).loss end
    gb:node("student_update", { arch = "mlp:6-3-2", x = x, batch = 8, losses = losses })
    gb:run {}
  end)
  assert(not ok, name .. ": did not fail")
  assert(tostring(err):find(want, 1, true), name .. ": message: " .. tostring(err))
  if type(err) ~= "string" then assert(err.status == 2, name .. ": status " .. tostring(err.status)) end
end
fails("rows", { teacher_features = kdf.zeros({ 3, 3 }) }, "loss term 1 ('hint') is bound to 3 samples, 'x' has 64")
fails("head width", { teacher_features = t }, "has a head 'hint' of spec '3', a loss term asks for '4'",
      { name = "other", teacher_features = kdf.zeros({ N, 4 }) })
print("hint_loss ok")
