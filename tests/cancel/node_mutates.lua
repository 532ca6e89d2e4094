-- A Lua node that changes or runs its own graph while it runs is refused with a
-- message naming the node (g:node used to make the scheduler wait forever, a
-- re-entrant g:run recursed until the C stack overflowed); the run fails cleanly and
-- the graph is left as it was. Running another graph from a node is allowed.
local kdf = require "kdflow"

local function build(what)
  local g = kdf.graph { name = "self-" .. what }
  local src = g:node("test_source", { name = "src", n = 3, value = 1 })
  local other = kdf.graph { name = "other" }
  local o = other:node("test_source", { name = "o", n = 2, value = 5 })
  local sink
  sink = g:lua { name = "meddler", inputs = { "x:f32[N]" }, outputs = { "y:f32[]" }, x = src.x,
    every_tick = true,
    fn = function()
      if what == "node" then g:node("test_source", { n = 1 })
      elseif what == "lua" then g:lua { outputs = { "z:f32[]" }, fn = function() return { z = 1 } end }
      elseif what == "connect" then g:connect(src.x, sink.x)
      elseif what == "disconnect" then g:disconnect(sink.x)
      elseif what == "run" then g:run { ticks = 1 }
      elseif what == "run_in_coroutine" then coroutine.wrap(function() g:run() end)()
      elseif what == "other_graph" then
        other:run { ticks = 1 }
        return { y = o.x:value():sum() }
      end
      return { y = 1 }
    end }
  return g, sink
end

local function count(g)
  local k = 0
  for _ in pairs(g:stats()) do k = k + 1 end
  return k
end

local refused = {
  node = "cannot add a node to graph 'self-node' while it runs",
  lua = "cannot add a node to graph 'self-lua' while it runs",
  connect = "cannot connect ports in graph 'self-connect' while it runs",
  disconnect = "cannot disconnect ports in graph 'self-disconnect' while it runs",
  run = "cannot run graph 'self-run' while it runs",
  run_in_coroutine = "cannot run graph 'self-run_in_coroutine' while it runs",
}
for what, message in pairs(refused) do
  local g = build(what)
  local n_before = count(g)
  local ok, err = pcall(g.run, g, { ticks = 2 })
  assert(not ok, what .. ": the run did not fail")
  err = tostring(err)
  assert(err:find("node 'meddler' (lua)", 1, true) and err:find(message, 1, true),
         what .. ": unexpected message: " .. err)
  assert(count(g) == n_before, what .. ": the graph changed")
  assert(g:tick() == 0, what .. ": a tick completed")
  print(what .. ": refused")
end

local g, sink = build("other_graph")
g:run { ticks = 2 }
assert(sink.y:value():sum() == 10, "another graph run from a node")
print("other_graph: allowed")
