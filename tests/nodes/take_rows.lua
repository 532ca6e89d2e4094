-- take_rows as a node: rows = x[index] in index order (repeats allowed), any dtype and
-- rank ≥ 1, the oracle flag travelling with the data (docs/nodes.md "Rows"). Worked by
-- hand, then evaluated in plain Lua on a pseudo-random index, then bad inputs with the
-- node's messages. Every check is an assert.
local kdf = require "kdflow"

-- ---- worked by hand --------------------------------------------------------------------
-- x f32[5,3], x[i][j] = 10i + j (0-based); index (4 0 0 2) → rows (40 41 42) (0 1 2)
-- (0 1 2) (20 21 22): f32[4,3]
local x = {}
for i = 0, 4 do x[i + 1] = { 10 * i, 10 * i + 1, 10 * i + 2 } end
local idx = kdf.tensor({ 4, 0, 0, 2 }, "i32")
-- i32[5] (7 8 9 10 11) at the same index → (11 7 7 9)
local labels = kdf.tensor({ 7, 8, 9, 10, 11 }, "i32")
-- u8[3,2,2], element (i,a,b) = 4i + 2a + b; index (2 0) → (8 9 10 11) (0 1 2 3), u8[2,2,2]
local cube = {}
for i = 0, 2 do cube[i + 1] = { { 4 * i, 4 * i + 1 }, { 4 * i + 2, 4 * i + 3 } } end
local g = kdf.graph { name = "take-hand" }
local tx = g:node("take_rows", { name = "x", x = x, index = idx })
local ty = g:node("take_rows", { name = "labels", x = labels, index = idx })
local tc = g:node("take_rows", { name = "cube", x = kdf.tensor(cube, "u8"), index = kdf.tensor({ 2, 0 }, "i32") })
local te = g:node("take_rows", { name = "empty", x = x, index = kdf.tensor({}, "i32") })
g:run {}
local rx = tx.rows:value()
assert(rx.dtype == "f32" and rx:shape()[1] == 4 and rx:shape()[2] == 3, "x rows: " .. tostring(rx))
local want = { { 40, 41, 42 }, { 0, 1, 2 }, { 0, 1, 2 }, { 20, 21, 22 } }
for r = 1, 4 do
  for j = 1, 3 do
    assert(rx:get(r, j) == want[r][j], ("x rows[%d,%d] = %g, expected %g"):format(r, j, rx:get(r, j), want[r][j]))
  end
end
local ry = ty.rows:value()
assert(ry.dtype == "i32" and ry.rank == 1, "label rows: " .. tostring(ry))
for r, v in ipairs { 11, 7, 7, 9 } do assert(ry:get(r) == v, ("label rows[%d] = %d, expected %d"):format(r, ry:get(r), v)) end
local rc = tc.rows:value()
assert(rc.dtype == "u8" and rc.rank == 3 and rc:shape()[1] == 2 and rc:shape()[2] == 2 and rc:shape()[3] == 2,
       "cube rows: " .. tostring(rc))
for r, i in ipairs { 2, 0 } do
  for a = 0, 1 do
    for b = 0, 1 do
      assert(rc:get(r, a + 1, b + 1) == 4 * i + 2 * a + b, ("cube rows[%d,%d,%d]"):format(r, a + 1, b + 1))
    end
  end
end
local re = te.rows:value()
assert(re:shape()[1] == 0 and re:shape()[2] == 3 and re:numel() == 0, "empty index: " .. tostring(re))

-- ---- the oracle flag travels with the data ---------------------------------------------
-- a four-row CSV through data_loader: clean_labels is an oracle output; its rows stay
-- oracle (so a non-evaluation node refuses them), the rows of x do not become oracle
local csv = os.tmpname()
local fh = assert(io.open(csv, "w"))
fh:write("a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,1\n")
fh:close()
do
  local g2 = kdf.graph { name = "take-oracle" }
  local d = g2:node("data_loader", { dataset = "csv", path = csv, val_fraction = 0, normalize = "none" })
  local i2 = kdf.tensor({ 3, 0 }, "i32")
  local tl = g2:node("take_rows", { name = "clean", x = kdf.oracle(d.clean_labels), index = i2 })
  local txd = g2:node("take_rows", { name = "x", x = d.x, index = i2 })
  -- the rows' values, read the one way ground truth may be: in a Lua node on an oracle edge
  local got
  g2:lua { name = "peek", inputs = { "v:i32[K]" }, outputs = {}, v = kdf.oracle(tl.rows),
           fn = function(i) got = i.v:totable() end }
  g2:run {}
  local cl = tl.rows:value()
  assert(cl.oracle == true, "the rows of an oracle tensor lost the flag")
  assert(not pcall(cl.get, cl, 1), "per-sample ground truth left the graph")
  assert(got[1] == 1 and got[2] == 0, "oracle rows: " .. got[1] .. " " .. got[2])
  assert(txd.rows:value().oracle == false, "the rows of x became oracle")
  assert(txd.rows:value():get(1, 1) == 7 and txd.rows:value():get(2, 2) == 2, "x rows of the CSV")

  local g3 = kdf.graph { name = "take-oracle-leak" }
  local d3 = g3:node("data_loader", { dataset = "csv", path = csv, val_fraction = 0, normalize = "none" })
  local t3 = g3:node("take_rows", { x = kdf.oracle(d3.clean_labels), index = kdf.tensor({ 0, 1, 2, 3 }, "i32") })
  g3:node("self_confidence", { probs = kdf.zeros({ 4, 3 }), labels = t3.rows })
  local ok, err = pcall(g3.run, g3, {})
  assert(not ok and tostring(err):find("input 'labels' received ground truth %(an oracle tensor%) from 'take_rows%.rows'"),
         "oracle rows reached a detector: " .. tostring(err))
end
os.remove(csv)

-- ---- the rule in plain Lua: 50 indices into f32[13,4] ----------------------------------
local state = 5
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local n, c, k = 13, 4, 50
local X, I = {}, {}
for i = 1, n do X[i] = {}; for j = 1, c do X[i][j] = math.floor(rnd() * 2000) / 8 - 100 end end
for r = 1, k do I[r] = math.floor(rnd() * n) end
local g4 = kdf.graph { name = "take-formula" }
local t4 = g4:node("take_rows", { x = X, index = kdf.tensor(I, "i32") })
g4:run {}
local r4 = t4.rows:value()
assert(r4:shape()[1] == k and r4:shape()[2] == c, "formula shape " .. tostring(r4))
for r = 1, k do
  for j = 1, c do
    assert(r4:get(r, j) == X[I[r] + 1][j], ("formula rows[%d,%d] = %g, expected x[%d,%d] = %g"):format(
      r, j, r4:get(r, j), I[r], j - 1, X[I[r] + 1][j]))
  end
end

-- ---- bad inputs: exit status 2 and the node's message ----------------------------------
local function fails(name, tbl, pattern)
  local gb = kdf.graph { name = "take-" .. name }
  gb:node("take_rows", tbl)
  local ok, err = pcall(gb.run, gb, {})
  assert(not ok, name .. ": the run did not fail")
  assert(err.status == 2, name .. ": status " .. tostring(err.status) .. ": " .. tostring(err))
  assert(tostring(err):find(pattern), name .. ": unexpected message: " .. tostring(err))
end
fails("past-end", { x = x, index = kdf.tensor({ 0, 5, 1 }, "i32") }, "input 'index' entry 1 is 5, outside %[0, 5%)")
fails("negative", { x = x, index = kdf.tensor({ 0, 1, -1 }, "i32") }, "input 'index' entry 2 is %-1, outside %[0, 5%)")
fails("scalar", { x = kdf.tensor(3), index = kdf.tensor({ 0 }, "i32") }, "input 'x' must have rows %(rank ≥ 1%)")
print("take_rows ok")
