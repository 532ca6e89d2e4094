-- data_loader on Debian's Fashion-MNIST (dataset-fashion-mnist): a stratified subset
-- of 500, exact symmetric noise before a noisy 10 % validation split, the default
-- asymmetric map by class name, and test images that go with their labels (a model
-- trained on the subset classifies the test subset, scored through evaluate).
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
-- the test images go with their labels: a small MLP trained on the 450 training rows
-- (clean labels, a deliberate oracle edge: the point is the data, not the noise)
-- classifies the test subset far above chance (0.1); test images paired with the wrong
-- labels would score about 0.1. Seeds 1-5 gave 0.695-0.77.
local ce = g:node("ce_loss", { targets = kdf.oracle(sym.clean_labels) })
local st = g:node("student_update", { arch = "mlp:784-64-10", x = sym.x, losses = { ce.loss },
                                      lr = 0.05, batch = 32, epochs = 10 })
local tf = g:node("teacher_forward", { model = st.model, x = sym.x_test })
local ev = g:node("evaluate", { name = "ev", predictions = tf.predictions, labels = sym.y_test })
-- the predictions right, counted inside a Lua node (test-split values stay in the graph;
-- the count is one number a script may read)
local right = g:lua { name = "right", inputs = { "p:i32[M]", "y:i32[M]" }, outputs = { "n:f32[]" },
  p = tf.predictions, y = sym.y_test, fn = function (i)
    local p, y, n = i.p:totable(), i.y:totable(), 0
    for k = 1, #y do if p[k] == y[k] then n = n + 1 end end
    return { n = n }
  end }
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
local acc, n_right = ev.accuracy:value():item(), right.n:value():item()
assert(math.abs(acc - n_right / 200) < 1e-6, ("evaluate says %g, the predictions %g"):format(acc, n_right / 200))
print("test accuracy of the model trained on the subset:", acc)
assert(acc > 0.55, ("a model trained on the subset scores %g on the test subset"):format(acc))

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
