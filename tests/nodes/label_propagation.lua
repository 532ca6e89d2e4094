-- label_propagation as a node: METHODS' test vector (8 points, k = 3, γ = 3, α = 0.99:
-- seeds 0 0 1 0 1 1 1 1 → labels 0 0 0 0 1 1 1 1, Z row 0 = (25.259160, 4.961106),
-- row 4 = (0, 20.116602)), the neighbours with self excluded, weights, seed and keep
-- masks, the percentile rule, soft seeds, and bad input. Kernel and its brute-force
-- checks: tests/detect/test-lp.c.
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g"):format(what, a, b))
end
local function list(t)
  local out = {}
  for _, v in ipairs(t:totable()) do
    if type(v) == "table" then for _, u in ipairs(v) do out[#out + 1] = u end
    else out[#out + 1] = v end
  end
  return table.concat(out, ",")
end

local F = { { 1, .1 }, { .9, .2 }, { 1, 0 }, { .8, .1 }, { .1, 1 }, { .2, .9 }, { 0, 1 }, { .1, .8 } }
local seeds = kdf.tensor({ 0, 0, 1, 0, 1, 1, 1, 1 }, "i32")
local exact = { k = 3, tol = 0, iters = 100 }
local function lp(name, extra)
  local t = { name = name, features = F, seeds = seeds }
  for key, v in pairs(exact) do t[key] = v end
  for key, v in pairs(extra or {}) do t[key] = v end
  return t
end

local g = kdf.graph { name = "lp" }
local ref = g:node("label_propagation", lp("ref"))
local default = g:node("label_propagation", { name = "default", features = F, seeds = seeds, k = 3 })
local pct = g:node("label_propagation", lp("pct", { percentile = 25 }))
local keep = g:node("label_propagation", lp("keep", { keep_mask = kdf.tensor({ 0, 0, 1, 0, 0, 0, 0, 0 }, "u8") }))
local wz = g:node("label_propagation", lp("wz", { weights = { 1, 1, 0, 1, 1, 1, 1, 1 } }))
local masked = g:node("label_propagation", lp("masked", { seed_mask = kdf.tensor({ 1, 1, 0, 1, 1, 1, 1, 1 }, "u8") }))
local soft_in = g:node("label_propagation", lp("soft_in", {
  seed_probs = { { 1, 0 }, { 1, 0 }, { 0, 1 }, { 1, 0 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 } } }))
local iter = g:node("label_propagation", lp("iter", { solver = "iterate", iters = 4000 }))
local three = g:node("label_propagation", lp("three", { n_classes = 3 }))
g:run {}

assert(list(ref.labels:value()) == "0,0,0,0,1,1,1,1", list(ref.labels:value()))
assert(list(ref.changed:value()) == "0,0,1,0,0,0,0,0", list(ref.changed:value()))
assert(list(ref.neighbors:value()) == "3,2,1,3,0,2,0,3,1,0,1,2,7,6,5,7,4,6,4,7,5,4,5,6",
       list(ref.neighbors:value()))
local z0, z1, z4 = 25.259160, 4.961106, 20.116602
local soft = ref.soft:value()
near(soft:get(1, 1), z0 / (z0 + z1), 1e-6, "soft[0,0]")
near(soft:get(1, 2), z1 / (z0 + z1), 1e-6, "soft[0,1]")
near(soft:get(5, 1), 0, 1e-7, "soft[4,0]")
near(soft:get(5, 2), 1, 1e-7, "soft[4,1]")
near(ref.confidence:value():get(1), 1 / (1 + math.exp(z1 - z0)), 1e-7, "confidence 0")
near(ref.confidence:value():get(5), 1 / (1 + math.exp(-z4)), 1e-7, "confidence 4")
-- defaults (tol 1e-6, 20 CG iterations): the same labels
assert(list(default.labels:value()) == "0,0,0,0,1,1,1,1", list(default.labels:value()))
-- 25th percentile: rows 2 and 6 are the least confident (Z_i0 − Z_i1 = 19.656, 19.877)
assert(list(pct.labels:value()) == "0,0,1,0,1,1,1,1", list(pct.labels:value()))
assert(list(pct.changed:value()) == "0,0,0,0,0,0,0,0")
assert(list(keep.labels:value()) == "0,0,1,0,1,1,1,1", list(keep.labels:value()))
-- row 2 weighs nothing (or seeds nothing): class 1 never reaches the first cluster
for i = 1, 4 do
  assert(wz.soft:value():get(i, 2) == 0, "weighted: soft[" .. (i - 1) .. ",1]")
  assert(masked.soft:value():get(i, 2) == 0, "masked: soft[" .. (i - 1) .. ",1]")
end
assert(ref.soft:value():get(1, 2) > 0.1)
for i = 1, 8 do
  for j = 1, 2 do
    near(soft_in.soft:value():get(i, j), soft:get(i, j), 1e-7, "soft seeds")
    near(iter.soft:value():get(i, j), soft:get(i, j), 1e-6, "iterate")
  end
  assert(three.soft:value():get(i, 3) == 0, "a class without seeds stays empty")
end

-- ---- bad inputs: exit status 2 and a message naming the port or param ----------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "lp-" .. name }
  gb:node("label_propagation", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(type(err) ~= "string" and err.status == 2,
         name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
fails("seed", { features = F, seeds = kdf.tensor({ 0, 0, 1, 0, 1, 1, 2, 1 }, "i32"), n_classes = 2 },
      "input 'seeds' row 6 is 2, outside %[0, 2%)")
fails("k", { features = F, seeds = seeds, k = 8 }, "param 'k' is 8; with 8 rows")
fails("nan", { features = { { 1, 0 }, { 0, 0 / 0 }, { 1, 1 } }, seeds = kdf.tensor({ 0, 1, 0 }, "i32"), k = 1 },
      "features: expected finite values, found %-?nan at row 1, column 1")
fails("weights", { features = F, seeds = seeds, k = 3, weights = { 1, 1, 1, 1, -1, 1, 1, 1 } },
      "weights row 4 is %-1; expected ≥ 0")
fails("probs", { features = F, seeds = seeds, k = 3, n_classes = 3,
                 seed_probs = { { 1, 0 }, { 1, 0 }, { 0, 1 }, { 1, 0 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 } } },
      "input 'seed_probs' has 2 columns, param 'n_classes' is 3")
-- ---- the k-NN cache: bit-identical features reuse the last two graphs' neighbours ----------
-- features by tick: F, F, G, F, H, G (G, H: F's rows in another order). With two slots
-- (least recently used out) the ticks hit, miss: miss hit miss hit miss miss; every tick's
-- outputs equal an uncached node's on the same inputs.
local function perm(order)
  local out = {}
  for i, j in ipairs(order) do out[i] = F[j] end
  return out
end
local G, H = perm({ 5, 2, 7, 4, 1, 6, 3, 8 }), perm({ 8, 7, 6, 5, 4, 3, 2, 1 })
local feats = { F, F, G, F, H, G }
local gc = kdf.graph { name = "lp-cache" }
local fsrc = gc:lua { name = "fsrc", outputs = { "x:f32[8,2]" }, every_tick = true,
  fn = function(_, ctx) return { x = feats[ctx.tick + 1] } end }
local cached = gc:node("label_propagation", { name = "cached", features = fsrc.x, seeds = seeds, k = 3 })
local fresh = gc:node("label_propagation", { name = "fresh", features = fsrc.x, seeds = seeds, k = 3,
                                              cache = false })
for t = 1, #feats do
  gc:run()
  for _, port in ipairs({ "labels", "neighbors", "soft", "confidence" }) do
    assert(list(cached[port]:value()) == list(fresh[port]:value()),
           ("tick %d, %s: cached %s, uncached %s"):format(t - 1, port, list(cached[port]:value()),
                                                         list(fresh[port]:value())))
  end
end
local dir = kdf.run_dir()
if dir then
  local hits = {}
  for line in io.lines(dir .. "/metrics.jsonl") do
    if line:find('"graph":"lp-cache"', 1, true) then
      local c = line:match('"cached%.knn_cached":([%d.]+)')
      local f = line:match('"fresh%.knn_cached":([%d.]+)')
      assert(c and f, "knn_cached metrics missing: " .. line)
      assert(tonumber(f) == 0, "the uncached node reports a hit")
      hits[#hits + 1] = ("%d"):format(tonumber(c))
    end
  end
  assert(table.concat(hits, ",") == "0,1,0,1,0,0", "cache hits by tick: " .. table.concat(hits, ","))
end
print("label_propagation ok")
