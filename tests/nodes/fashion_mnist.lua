-- data_loader on Debian's Fashion-MNIST (dataset-fashion-mnist): a stratified subset
-- of 500, exact symmetric noise before a noisy 10 % validation split, the default
-- asymmetric map by class name, and classification accuracy through evaluate.
-- Skipped (exit 77) when the package is not installed.
local kdf = require "kdflow"
local dir = "/usr/share/datasets/fashion-mnist"
local f = io.open(dir .. "/train-images-idx3-ubyte.gz", "rb")
if not f then
  print("skip: " .. dir .. " not found (apt install dataset-fashion-mnist)")
  os.exit(77, true)
end
f:close()

local g = kdf.graph { name = "fmnist", seed = 3 }
local sym = g:node("data_loader", { name = "sym", subset = 500, test_subset = 200,
                                    noise = "symmetric", rate = 0.4, seed = 7 })
-- the Fashion-MNIST map, written with class names: T-shirt→Shirt, Pullover→Coat,
-- Sandal→Sneaker, Shirt→T-shirt, Coat→Pullover
local asym = g:node("data_loader", { name = "asym", subset = 500, noise = "asymmetric", rate = 0.4,
  val_fraction = 0, class_map = "T-shirt/top:Shirt, Pullover:Coat, Sandal:Sneaker, Shirt:T-shirt/top, Coat:Pullover" })
-- the test labels as their own predictions: accuracy 1 on the test subset
local ev = g:node("evaluate", { name = "ev", predictions = sym.y_test, labels = sym.y_test })
-- Ground truth and the test split are read the one way a graph may: inside a Lua node
-- wired with a deliberate oracle edge (their values do not leave a node's outputs as
-- Lua tables otherwise). tab(port) reads a port, through such a node where needed.
local seen, n_peek = {}, 0
local function peek(port)
  local key = tostring(port)
  n_peek = n_peek + 1
  g:lua { name = "peek" .. n_peek, inputs = { "v:any" }, outputs = {},
          v = kdf.oracle(port), fn = function(i) seen[key] = i.v:totable() end }
end
for _, port in ipairs { sym.clean_labels, sym.clean_labels_val, asym.clean_labels } do peek(port) end
g:run {}

local x = sym.x:value()
assert(x:shape()[1] == 450 and x:shape()[2] == 784, tostring(x))
assert(sym.x_val:value():shape()[1] == 50)
assert(sym.num_classes:value():item() == 10)
-- ⌊0.4·500⌋ = 200 flips over training + validation
assert(sym.noisy_mask:value():sum() + sym.noisy_mask_val:value():sum() == 200)
-- stratified: 50 of each class over both splits (by clean class)
local counts = {}
for _, port in ipairs { sym.clean_labels, sym.clean_labels_val } do
  for _, v in ipairs(seen[tostring(port)]) do counts[v] = (counts[v] or 0) + 1 end
end
for c = 0, 9 do assert(counts[c] == 50, ("class %d: %s"):format(c, tostring(counts[c]))) end
-- pixels in [0,1]
local lo, hi = math.huge, -math.huge
for _, row in ipairs(x:totable()) do
  for _, v in ipairs(row) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
end
assert(lo >= 0 and hi <= 1 and hi > 0.9, ("pixels in [%g, %g]"):format(lo, hi))
-- rows came from the file in ascending order
local idx = sym.index:value():totable()
for k = 2, #idx do assert(idx[k] > idx[k - 1]) end
-- test subset: 20 per class
assert(sym.y_test:value():shape()[1] == 200)
assert(ev.accuracy:value():item() == 1)

-- asymmetric: 5 mapped classes of 50, ⌊0.4·50⌋ = 20 flips each, along the map
local map = { [0] = 6, [2] = 4, [4] = 2, [5] = 7, [6] = 0 }
local y, c = asym.labels:value():totable(), seen[tostring(asym.clean_labels)]
local n = 0
for i = 1, #y do
  if y[i] ~= c[i] then
    assert(map[c[i]] == y[i], ("row %d: %d → %d"):format(i - 1, c[i], y[i]))
    n = n + 1
  end
end
assert(n == 100, "asymmetric flips " .. n)
print("fashion_mnist ok")
