-- A malformed port declaration in g:lua is a Lua error that names it (it used to be
-- freed twice), caught by pcall as any other; the last one is not caught.
local kdf = require "kdflow"
local g = kdf.graph { name = "decl" }
local cases = {
  { "v:float", "port \"v:float\": port type \"float\": unknown dtype" },
  { "v:f32[N", "port \"v:f32%[N\": port type \"f32%[N\": '%[' without '%]'" },
  { "v:f32[A,B,C,D,E]", "rank 5, at most 4" },
  { "v", "expected \"name:type\"" },
  { 42, "port declarations are strings" },
}
for _, c in ipairs(cases) do
  for _, field in ipairs { "inputs", "outputs" } do
    -- a good declaration first, so that the bad one is not the only thing to free
    local spec = { inputs = { "a:f32[N]" }, outputs = { "b:f32[N]" }, fn = function() return {} end }
    spec[field] = { "ok:f32[N]", "also_ok:i32[N] < C", c[1] }
    local ok, err = pcall(function() return g:lua(spec) end)
    err = tostring(err)
    assert(not ok, "accepted " .. tostring(c[1]))
    assert(err:find("port_decl.lua:%d+: g:lua: ") and err:find(c[2]), err)
  end
end
collectgarbage()
local n = 0
for _ in pairs(g:stats()) do n = n + 1 end
assert(n == 0, "a refused g:lua left a node")
g:lua { name = "bad", inputs = { "v:f32[N" }, fn = function() return {} end }
print("not reached")
