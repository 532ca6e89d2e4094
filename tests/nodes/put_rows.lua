-- put_rows as a node: out[index_k[i]] = values_k[i] for the pairs (values_k, index_k)
-- wired in order, N = param n rows, `filled` u8[N]; with `complete` (default) every row
-- written exactly once, without it unwritten rows stay zero (docs/nodes.md "Rows").
-- Worked by hand, the take_rows round trip of a K-fold split checked in plain Lua, and
-- bad inputs with the node's messages. Every check is an assert.
local kdf = require "kdflow"

local function f32t(t) return kdf.tensor(t, "f32") end
local function i32t(t) return kdf.tensor(t, "i32") end

-- ---- worked by hand --------------------------------------------------------------------
-- part 1: rows (1 2) (3 4) at index (3 0); part 2: (5 6) (7 8) (9 10) at (1 4 2); n = 5
-- → out (3 4) (5 6) (9 10) (1 2) (7 8), filled (1 1 1 1 1)
local g = kdf.graph { name = "put-hand" }
local pr = g:node("put_rows", { values = { f32t { { 1, 2 }, { 3, 4 } }, f32t { { 5, 6 }, { 7, 8 }, { 9, 10 } } },
                                index = { i32t { 3, 0 }, i32t { 1, 4, 2 } }, n = 5 })
-- i32 rows, complete = false, n = 6: (10 11) at (0 2), (12) at (5) → (10 0 11 0 0 12),
-- filled (1 0 1 0 0 1): the rows no part wrote are zero
local pl = g:node("put_rows", { name = "partial", values = { i32t { 10, 11 }, i32t { 12 } },
                                index = { i32t { 0, 2 }, i32t { 5 } }, n = 6, complete = false })
g:run {}
local out = pr.out:value()
assert(out.dtype == "f32" and out:shape()[1] == 5 and out:shape()[2] == 2, "out: " .. tostring(out))
local want = { { 3, 4 }, { 5, 6 }, { 9, 10 }, { 1, 2 }, { 7, 8 } }
for i = 1, 5 do
  for j = 1, 2 do
    assert(out:get(i, j) == want[i][j], ("out[%d,%d] = %g, expected %g"):format(i, j, out:get(i, j), want[i][j]))
  end
  assert(pr.filled:value():get(i) == 1, "filled " .. i)
end
assert(pr.filled:value().dtype == "u8", "filled dtype")
local po = pl.out:value()
assert(po.dtype == "i32" and po.rank == 1 and po:numel() == 6, "partial out: " .. tostring(po))
for i, v in ipairs { 10, 0, 11, 0, 0, 12 } do
  assert(po:get(i) == v, ("partial out[%d] = %d, expected %d"):format(i, po:get(i), v))
end
for i, v in ipairs { 1, 0, 1, 0, 0, 1 } do
  assert(pl.filled:value():get(i) == v, ("partial filled[%d] = %d, expected %d"):format(i, pl.filled:value():get(i), v))
end

-- ---- the take_rows round trip, checked in plain Lua ------------------------------------
-- f32[11,3] rows split into 3 held-out parts of a pseudo-random permutation (unsorted):
-- take_rows gives each part, put_rows must assemble X again, row for row
local state = 31
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local n, c, folds = 11, 3, 3
local X, perm = {}, {}
for i = 1, n do
  X[i] = {}
  for j = 1, c do X[i][j] = math.floor(rnd() * 4000) / 16 - 125 end
  perm[i] = i - 1
end
for i = n, 2, -1 do
  local j = math.floor(rnd() * i) + 1
  perm[i], perm[j] = perm[j], perm[i]
end
local g2 = kdf.graph { name = "put-round-trip" }
local parts, held, expect = {}, {}, {}
for k = 1, folds do
  local h = {}
  for i = k, n, folds do h[#h + 1] = perm[i] end
  local t = g2:node("take_rows", { name = "fold" .. k, x = X, index = i32t(h) })
  parts[k], held[k] = t.rows, i32t(h)
  -- the rule: out[h[r]] = part_k[r] = X[h[r]]
  for r, row in ipairs(h) do expect[row + 1] = X[row + 1] end
end
local rt = g2:node("put_rows", { values = parts, index = held, n = n })
g2:run {}
local ro = rt.out:value()
assert(ro:shape()[1] == n and ro:shape()[2] == c, "round trip: " .. tostring(ro))
for i = 1, n do
  assert(expect[i], "row " .. (i - 1) .. " is in no fold")
  for j = 1, c do
    assert(ro:get(i, j) == X[i][j], ("round trip out[%d,%d] = %g, expected %g"):format(i, j, ro:get(i, j), X[i][j]))
  end
end

-- ---- bad inputs: exit status 2 and the node's message ----------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "put-" .. name }
  gb:node("put_rows", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
local a, b = f32t { { 1, 2 }, { 3, 4 } }, f32t { { 5, 6 }, { 7, 8 }, { 9, 10 } }
fails("twice", { values = { a, b }, index = { i32t { 3, 0 }, i32t { 1, 3, 2 } }, n = 5 },
      "row 3 is written by two parts")
fails("missing", { values = { a, b }, index = { i32t { 3, 0 }, i32t { 1, 4, 2 } }, n = 6 },
      "row 5 is written by no part %(set complete = false to allow it%)")
fails("past-end", { values = { a, b }, index = { i32t { 3, 0 }, i32t { 1, 5, 2 } }, n = 5 },
      "part 2: index entry 1 is 5, outside %[0, 5%)")
fails("negative", { values = { a, b }, index = { i32t { -1, 0 }, i32t { 1, 4, 2 } }, n = 5, complete = false },
      "part 1: index entry 0 is %-1, outside %[0, 5%)")
fails("rows", { values = { a, b }, index = { i32t { 3, 0 }, i32t { 1, 4 } }, n = 5 },
      "part 2: values f32%[3,2%] with index i32%[2%] do not fit the first part f32%[2,2%]")
fails("columns", { values = { a, f32t { { 5, 6, 0 } } }, index = { i32t { 3, 0 }, i32t { 1 } }, n = 5, complete = false },
      "part 2: values f32%[1,3%] with index i32%[1%] do not fit the first part f32%[2,2%]")
fails("dtype", { values = { a, i32t { { 5, 6 } } }, index = { i32t { 3, 0 }, i32t { 1 } }, n = 5, complete = false },
      "part 2: values i32%[1,2%] with index i32%[1%] do not fit the first part f32%[2,2%]")
fails("edges", { values = { a, b }, index = { i32t { 3, 0 } }, n = 5 },
      "inputs 'values' and 'index' need the same number of edges %(got 2 and 1%)")
fails("no-n", { values = { a }, index = { i32t { 1, 0 } } }, "param 'n' is required")
print("put_rows ok")
