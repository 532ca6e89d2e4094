-- Helpers shared by the tests of the methods' nodes: tolerance checks and a tiny
-- safetensors writer, so a test can hand a training node a network whose logits it
-- knows exactly (a Linear with chosen weights) and read a loss term's per-sample
-- values off student_update's sample_loss (recorded before the step).
local M = {}

function M.near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g (tolerance %g)"):format(what, a, b, tol))
end

-- Writes a kdflow checkpoint of ARCH holding TENSORS = { {name, shape, values}, ... }.
function M.write_checkpoint(path, arch, tensors)
  local parts, data, off = {}, {}, 0
  parts[1] = ('"__metadata__":{"arch":"%s","format":"pt"}'):format(arch)
  for _, t in ipairs(tensors) do
    local name, shape, values = t[1], t[2], t[3]
    local n = 1
    for _, d in ipairs(shape) do n = n * d end
    assert(#values == n, name .. ": " .. #values .. " values for " .. n .. " elements")
    parts[#parts + 1] = ('"%s":{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}'):format(
      name, table.concat(shape, ","), off, off + 4 * n)
    for _, v in ipairs(values) do data[#data + 1] = string.pack("<f", v) end
    off = off + 4 * n
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  local f = assert(io.open(path, "wb"))
  f:write(string.pack("<I8", #header), header, table.concat(data))
  f:close()
end

-- A Linear C→C (arch "linear:C-C") with weight W (row-major, C×C) and bias B.
function M.linear(path, c, w, b)
  M.write_checkpoint(path, ("linear:%d-%d"):format(c, c),
                     { { "0.weight", { c, c }, w }, { "0.bias", { c }, b } })
end

function M.identity(c)
  local w = {}
  for i = 1, c do for j = 1, c do w[#w + 1] = i == j and 1 or 0 end end
  return w
end

function M.zeros(n)
  local z = {}
  for i = 1, n do z[i] = 0 end
  return z
end

return M
