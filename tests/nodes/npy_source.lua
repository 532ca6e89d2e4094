-- npy_source: the label-errors files (float64 → f32, uint16 → i32), dtype choices,
-- the probability check, and the oracle flag.
local kdf = require "kdflow"
local src = assert(os.getenv("KDF_TEST_SRCDIR"), "KDF_TEST_SRCDIR is not set")
local data = kdf.arg("data", src .. "/../data/label-errors")

local g = kdf.graph { name = "npy" }
local p = g:node("npy_source", { name = "p", path = data .. "/cifar10_test_set_pyx.npy", probs = true })
local any = g:node("npy_source", { name = "any", path = data .. "/cifar10_test_set_original_labels.npy" })
local f32 = g:node("npy_source", { name = "f32", path = data .. "/mnist_test_set_original_labels.npy", dtype = "f32" })
local u8 = g:node("npy_source", { name = "u8", path = data .. "/mnist_test_set_original_labels.npy", dtype = "u8" })
local truth = g:node("npy_source", { name = "truth", path = data .. "/mnist_test_set_original_labels.npy",
                                     dtype = "i32", oracle = true })
g:run { ticks = 2 }
local pv = p.value:value()
assert(pv.dtype == "f32" and pv:shape()[1] == 10000 and pv:shape()[2] == 10)
local row = 0
for j = 1, 10 do row = row + pv:get(1, j) end
assert(math.abs(row - 1) < 1e-5)
assert(p.rows:value():item() == 10000)
assert(any.value:value().dtype == "i32" and f32.value:value().dtype == "f32" and u8.value:value().dtype == "u8")
assert(any.value:value():sum() == 45000, "cifar10: 1000 of each class 0..9")
assert(u8.value:value():sum() == f32.value:value():sum())
-- a reader runs once: no input, no param change
assert(g:stats().p.calls == 1)

-- the oracle flag: a method node fed the value fails at run time
local g2 = kdf.graph { name = "npy-oracle" }
local t2 = g2:node("npy_source", { name = "truth", path = data .. "/mnist_test_set_original_labels.npy",
                                   dtype = "i32", oracle = true })
g2:node("loss_ranking", { name = "method", loss = {}, labels = t2.value })
local ok, err = pcall(g2.run, g2, {})
assert(not ok and err.status == 2 and tostring(err):find("received ground truth"), tostring(err))
print("npy_source ok")
