-- tests/lib/testlib.lua: what several Lua tests share — a seeded pseudo-random stream,
-- a small synthetic classification set, a .npy writer, an exact comparison of two
-- tensors, and the values.txt that tests/dist/train.sh compares. A test finds it
-- relative to its own file (it is not a test itself):
--   local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
--   package.path = here .. "../lib/?.lua;" .. package.path
--   local T = require "testlib"
local kdf = require "kdflow"

local M = {}

-- A linear congruential generator from SEED (multiplier 1103515245, increment 12345,
-- modulus 2^31): uniform() is the next state / 2^31, in [0, 1); int(k) the next state
-- mod K. Integer arithmetic, so the stream is the same on every machine.
function M.lcg(seed)
  local state = seed
  local function step()
    state = (state * 1103515245 + 12345) % 2147483648
    return state
  end
  return {
    uniform = function() return step() / 2147483648 end,
    int = function(k) return step() % k end,
  }
end

-- A synthetic classification set as Lua tables: o.n rows of o.d values, o.classes
-- classes. Row i (from 1) is of class c = (i * o.step) % o.classes; its value j is
-- o.value(j % o.classes == c), called in row order (the class pattern plus noise from
-- the caller's generator); the label of every o.shift-th row is shifted to the next
-- class (c + 1) % o.classes. With o.repeat_every, every such row is the row before it
-- (the same table, no values drawn). Returns the rows and the labels.
function M.set(o)
  local C = o.classes
  local xs, ys = {}, {}
  for i = 1, o.n do
    local c = (i * o.step) % C
    local row = {}
    if o.repeat_every and i % o.repeat_every == 0 then
      row = xs[i - 1]
    else
      for j = 1, o.d do row[j] = o.value(j % C == c) end
    end
    xs[i] = row
    ys[i] = (i % o.shift == 0) and (c + 1) % C or c
  end
  return xs, ys
end

-- A .npy file at PATH: version 1.0, DESCR (a NumPy dtype string: '<f4', '<i4', '|u1'),
-- SHAPE (a list of sizes), then BYTES, the raw little-endian data as given.
function M.npy(path, descr, shape, bytes)
  local d = ("{'descr': '%s', 'fortran_order': False, 'shape': (%s%s), }"):format(
    descr, table.concat(shape, ", "), #shape == 1 and "," or "")
  local pad = 64 - (10 + #d + 1) % 64
  d = d .. (" "):rep(pad) .. "\n"
  local f = assert(io.open(path, "wb"))
  f:write("\x93NUMPY\x01\x00", string.pack("<I2", #d), d, bytes)
  f:close()
end

-- Asserts that tensors A and B hold the same values exactly (a vector or a matrix, not
-- empty); the message names WHAT and the first entry that differs.
function M.same(a, b, what)
  local ta, tb = a:totable(), b:totable()
  assert(#ta == #tb and #ta > 0, what .. ": row counts " .. #ta .. " and " .. #tb)
  for i = 1, #ta do
    if type(ta[i]) == "table" then
      for j = 1, #ta[i] do
        assert(ta[i][j] == tb[i][j], ("%s[%d][%d]: %.9g vs %.9g"):format(what, i, j, ta[i][j], tb[i][j]))
      end
    else
      assert(ta[i] == tb[i], ("%s[%d]: %.9g vs %.9g"):format(what, i, ta[i], tb[i]))
    end
  end
end

-- What tests/dist/train.sh compares between a one-process run and an mpirun one:
-- put(name, tensor) adds a line "name index value" per value (%.9g; index "i.j" for a
-- matrix), write() writes the lines to the run directory's values.txt and which rank
-- of how many wrote it to ranks.txt.
function M.values()
  local lines = {}
  local v = {}
  function v.put(name, t)
    local tab = t:totable()
    for i = 1, #tab do
      if type(tab[i]) == "table" then
        for j = 1, #tab[i] do lines[#lines + 1] = ("%s %d.%d %.9g"):format(name, i, j, tab[i][j]) end
      else
        lines[#lines + 1] = ("%s %d %.9g"):format(name, i, tab[i])
      end
    end
  end
  function v.write()
    kdf.write_file(kdf.run_dir() .. "/values.txt", table.concat(lines, "\n") .. "\n")
    kdf.write_file(kdf.run_dir() .. "/ranks.txt", ("rank %d of %d\n"):format(kdf.rank(), kdf.ranks()))
  end
  return v
end

return M
