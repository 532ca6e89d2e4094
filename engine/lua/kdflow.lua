-- The part of the `kdflow` module that is clearer in Lua than in C: typed args,
-- schedules, architectures and port wrappers.
--
-- Compiled into the library as a GResource (engine/lua/kdflow.gresource.xml) and run
-- by luaopen_kdflow (engine/lua/binding.c) under the chunk name "@kdflow.lua", with
-- the module table, its C functions already set, as `...`; it returns that table.
local kdf = ...
-- kdf.arg(name, default [, {min = a, max = b}]): the --set value NAME converted to the
-- type of DEFAULT, or DEFAULT. Numbers must be finite and, for an integer default, whole
-- and within [min, max] (by default a 32-bit integer); the error names the flag.
function kdf.arg(name, default, range)
  local v = kdf.args[name]
  if v == nil then return default end
  local t = type(default)
  local function bad(what)
    error(('--set %s=%s: %s'):format(name, v, what), 3)
  end
  if t == 'number' then
    local n = tonumber(v)
    if n == nil then bad('a number is expected') end
    if n ~= n or n == math.huge or n == -math.huge then bad('a finite number is expected') end
    local lo = range and range.min
    local hi = range and range.max
    if math.type(default) == 'integer' then
      lo = lo or -2147483648
      hi = hi or 2147483647
      if math.type(n) ~= 'integer' then
        if n ~= math.floor(n) then bad('an integer is expected') end
        if n < lo or n > hi then
          bad(('an integer from %d to %d is expected'):format(lo, hi)) end
        n = math.tointeger(n)
      end
      if n < lo or n > hi then bad(('an integer from %d to %d is expected'):format(lo, hi)) end
    elseif (lo and n < lo) or (hi and n > hi) then
      bad(('a number from %s to %s is expected'):format(tostring(lo or '-inf'), tostring(hi or 'inf')))
    end
    return n
  elseif t == 'boolean' then
    if v == 'true' or v == '1' or v == 'yes' then return true end
    if v == 'false' or v == '0' or v == 'no' then return false end
    bad('true or false is expected')
  end
  return v
end
local function schedule(desc, f)
  return setmetatable({ desc = desc }, { __call = function(_, t) return f(t) end })
end
-- from a at tick 0 to b at tick n, then b
function kdf.linear(a, b, n)
  return schedule(('linear(%g, %g, %d)'):format(a, b, n), function(t)
    if t >= n then return b end
    return a + (b - a) * t / n end)
end
-- cosine from a at tick 0 to b at tick n
function kdf.cosine(a, b, n)
  return schedule(('cosine(%g, %g, %d)'):format(a, b, n), function(t)
    if t >= n then return b end
    return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t / n)) end)
end
-- a, multiplied by gamma at every tick in milestones
function kdf.step(a, gamma, milestones)
  return schedule(('step(%g, %g, {%s})'):format(a, gamma, table.concat(milestones, ',')),
    function(t)
      local v = a
      for _, m in ipairs(milestones) do if t >= m then v = v * gamma end end
      return v end)
end
-- a · gamma^t: exponential decay per tick (Jeong & Chung train with lr × 0.98 per epoch)
function kdf.exponential(a, gamma)
  if type(a) ~= 'number' or type(gamma) ~= 'number' or not (gamma > 0) then
    error('kdf.exponential(a, gamma): numbers with gamma > 0', 2) end
  return schedule(('exponential(%g, %g)'):format(a, gamma), function(t)
    return a * gamma ^ t end)
end
-- linear warm-up from 0 over n ticks, then the schedule (or value) s
function kdf.warmup(n, s)
  local desc = type(s) == 'table' and s.desc or tostring(s)
  return schedule(('warmup(%d, %s)'):format(n, desc), function(t)
    local v = type(s) == 'number' and s or s(t)
    if t < n then return v * (t + 1) / (n + 1) end
    return v end)
end
-- an architecture from a Lua table, as the seq: string student_update takes:
-- kdf.arch { input = {1, 28, 28}, {'conv', 32, k = 3, p = 1}, 'relu', {'max', 2},
--            'flatten', {'linear', 256}, 'relu', 'tap', {'linear', 10} }
function kdf.arch(t)
  if type(t) ~= 'table' or type(t.input) ~= 'table' or #t.input == 0 then
    error('kdf.arch: give input = {D} or {C, H, W} and a list of layers', 2) end
  local parts = { table.concat(t.input, 'x') }
  for i, l in ipairs(t) do
    local kind = type(l) == 'table' and l[1] or l
    local s
    if kind == 'linear' then s = 'linear' .. assert(tonumber(l[2]), 'linear needs a width')
      if l.bias == false then s = s .. 'nb' end
    elseif kind == 'conv' then
      s = 'conv' .. assert(tonumber(l[2]), 'conv needs channels') .. 'k' .. (l.k or 3) ..
          's' .. (l.s or 1) .. 'p' .. (l.p or 1)
      if l.bias == false then s = s .. 'nb' end
    elseif kind == 'max' then local k = type(l) == 'table' and l[2] or 2
      s = 'max' .. k .. 's' .. (type(l) == 'table' and l.s or k)
    elseif kind == 'dropout' then s = 'drop' .. assert(tonumber(l[2]), 'dropout needs p')
    elseif kind == 'relu' or kind == 'prelu' or kind == 'flatten' or kind == 'l2norm' or kind == 'tap' then s = kind
    else error(('kdf.arch: layer %d: unknown kind %s'):format(i, tostring(kind)), 2) end
    parts[#parts + 1] = s
  end
  return 'seq:' .. table.concat(parts, '-')
end
-- port wrappers for params tables: a delayed or an oracle edge
function kdf.delay(port, d, initial)
  local p = setmetatable({}, getmetatable(port))
  for k, v in pairs(port) do p[k] = v end
  p.delay = d or 1; p.initial = initial
  return p
end
function kdf.oracle(port)
  local p = setmetatable({}, getmetatable(port))
  for k, v in pairs(port) do p[k] = v end
  p.oracle = true
  return p
end
return kdf
