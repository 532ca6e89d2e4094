-- uncertainty_split as a node (MODUL, METHODS §1): METHODS' three evidential-loss
-- vectors; the loss of every row against the formula evaluated here in plain Lua; the
-- split of a synthetic set whose three populations (confident and right = clean;
-- uncertain = open-set; confident and wrong = closed-set) are known; the masks and
-- metrics; bad input. Every check is an assert.
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g (tolerance %g)"):format(what, a, b, tol))
end

local function evidential(z, y)
  local s, e = 0, {}
  for k, v in ipairs(z) do e[k] = math.max(v, 0) + 1; s = s + e[k] end
  local l = 0
  for k = 1, #z do
    local d = (k == y + 1 and 1 or 0) - e[k] / s
    l = l + d * d + e[k] * (s - e[k]) / (s * s * (s + 1))
  end
  return l
end

-- ---- METHODS: z = (5, 0, −1): y = 0 → 0.138889, y = 1 → 1.388889;
--      z = (0.2, 0.1, 0), y = 2 → 0.883721 -------------------------------------------
local g = kdf.graph { name = "uncertainty-vectors" }
local v = g:node("uncertainty_split", { logits = { { 5, 0, -1 }, { 5, 0, -1 }, { 0.2, 0.1, 0 } },
                                        labels = kdf.tensor({ 0, 1, 2 }, "i32") })
g:run {}
near(v.loss:value():get(1), 0.138889, 5e-7, "loss (5,0,-1) y=0")
near(v.loss:value():get(2), 1.388889, 5e-7, "loss (5,0,-1) y=1")
near(v.loss:value():get(3), 0.883721, 5e-7, "loss (.2,.1,0) y=2")

-- ---- a set of three known populations, C = 4 -----------------------------------------
-- rows 1..180 clean: the labelled class's logit 5..7, others near 0;
-- rows 181..240 open-set: every logit near 0 (the network knows no class);
-- rows 241..300 closed-set: another class's logit 5..7, the label's near 0.
local Z, Y, want = {}, {}, {}
for i = 1, 300 do
  local y = i % 4
  local z = { 0.1 * math.sin(i), 0.1 * math.cos(i), 0.1 * math.sin(2 * i), 0.1 * math.cos(3 * i) }
  if i <= 180 then
    z[y + 1] = 6 + math.sin(5 * i); want[i] = 0
  elseif i <= 240 then
    want[i] = 1
  else
    z[(y + 1) % 4 + 1] = 6 + math.sin(5 * i); want[i] = 2
  end
  Z[i], Y[i] = z, y
end
local gs = kdf.graph { name = "uncertainty-split" }
local s = gs:node("uncertainty_split", { logits = Z, labels = kdf.tensor(Y, "i32") })
local s1 = gs:node("uncertainty_split", { name = "one", logits = Z, labels = kdf.tensor(Y, "i32"),
                                          bounds = "fixed", components = 1 })
local sf = gs:node("uncertainty_split", { name = "fixed", logits = Z, labels = kdf.tensor(Y, "i32"),
                                          bounds = "fixed" })
gs:run {}
local loss, groups, post = s.loss:value(), s.groups:value(), s.posterior:value()
local lo, hi = math.huge, -math.huge
for i = 1, 300 do
  local l = evidential(Z[i], Y[i])
  near(loss:get(i), l, 2e-6, "loss row " .. i)
  lo, hi = math.min(lo, l), math.max(hi, l)
end
local counts = { [0] = 0, 0, 0 }
for i = 1, 300 do
  near(s.normalized:value():get(i), (loss:get(i) - lo) / (hi - lo), 1e-5, "normalized row " .. i)
  local gi = groups:get(i)
  assert(gi == want[i], ("row %d: group %d, expected %d"):format(i, gi, want[i]))
  counts[gi] = counts[gi] + 1
  near(post:get(i, 1) + post:get(i, 2) + post:get(i, 3), 1, 1e-5, "posterior sum row " .. i)
  assert(post:get(i, gi + 1) >= math.max(post:get(i, 1), post:get(i, 2), post:get(i, 3)),
         "group is not the largest posterior, row " .. i)
  assert(s.clean:value():get(i) == (gi == 0 and 1 or 0), "clean mask row " .. i)
  assert(s.open:value():get(i) == (gi == 1 and 1 or 0), "open mask row " .. i)
  assert(s.closed:value():get(i) == (gi == 2 and 1 or 0), "closed mask row " .. i)
  assert(s.noisy:value():get(i) == (gi ~= 0 and 1 or 0), "noisy mask row " .. i)
end
assert(counts[0] == 180 and counts[1] == 60 and counts[2] == 60,
       ("group sizes %d / %d / %d"):format(counts[0], counts[1], counts[2]))
-- one component: its mean (the average normalised loss) sits in one band only, so
-- every row lands in the same group
local first = s1.groups:value():get(1)
for i = 2, 300 do assert(s1.groups:value():get(i) == first, "one component, row " .. i) end

-- ---- bad input ------------------------------------------------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "uncertainty-" .. name }
  gb:node("uncertainty_split", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
local z2 = { { 1, 0 }, { 0, 1 } }
fails("label", { logits = z2, labels = kdf.tensor({ 0, 2 }, "i32") }, "input 'labels' row 1 is 2")
fails("nan", { logits = { { 1, 0 / 0 }, { 0, 1 } }, labels = kdf.tensor({ 0, 1 }, "i32") },
      "logits")
fails("bounds", { logits = z2, labels = kdf.tensor({ 0, 1 }, "i32"), clean_below = 0.8,
                  closed_from = 0.5 }, "clean_below ≤ closed_from")
print("ok")
