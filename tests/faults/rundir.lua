-- The run directory never lies (issue 10): summary.json says "running" while a graph
-- runs (a Lua node reads it), kdf.write_file writes whole files and names the file it
-- cannot write, a reused g:run { out = } directory is refused. args: case = running |
-- write_file | reuse_out | big_npy | many_ticks (the last two write a 400 KB .npy and
-- 150 KB of metrics.jsonl: the full-disk cases of tests/faults/faults.py).
local kdf = require "kdflow"
local case = args.case or "running"
local dir = assert(kdf.run_dir(), "run this with kdflow run --out DIR")

local function read(path)
  local f = assert(io.open(path))
  local t = f:read("a")
  f:close()
  return t
end

if case == "running" then
  local g = kdf.graph { name = "watched" }
  local seen
  g:lua { name = "reader", outputs = { "t:f32[]" }, fn = function()
    seen = read(dir .. "/summary.json")
    return { t = 1 }
  end }
  assert(read(dir .. "/summary.json"):find('"status" : "running"', 1, true),
         "summary.json does not say running before the first run")
  g:run { ticks = 1 }
  local root = seen:match('^{%s*"status" : "(%a+)"') or seen:match('\n  "status" : "(%a+)"')
  assert(root == "running", "the run's summary.json says " .. tostring(root) .. ":\n" .. seen)
  assert(seen:find('"watched" : {[^}]-"status" : "running"'),
         "graph entry not running:\n" .. seen)
  local after = read(dir .. "/summary.json")
  assert(after:find('"watched" : {[^}]-"status" : "ok"'), "graph entry not ok after:\n" .. after)
  -- the top level stays "running" until the program ends (then kdflow records the outcome)
  assert(after:find('\n  "status" : "running"', 1, true), "top level not running:\n" .. after)
  print("running: ok")
elseif case == "write_file" then
  local p = dir .. "/note.json"
  kdf.write_file(p, '{"a": 1}\n')
  assert(read(p) == '{"a": 1}\n')
  kdf.write_file(p, '{"a": 2}\n') -- replaced whole
  assert(read(p) == '{"a": 2}\n')
  for name in io.popen('ls -A "' .. dir .. '"'):lines() do
    assert(not name:match("^%.note"), "a temporary file was left: " .. name)
  end
  local ok, err = pcall(kdf.write_file, dir .. "/no/such/dir/x.json", "x")
  assert(not ok and tostring(err):find(dir .. "/no/such/dir/x.json", 1, true),
         "error does not name the file: " .. tostring(err))
  print("write_file: ok")
elseif case == "reuse_out" then
  -- a second directory the script has not used yet, already holding files
  local other = dir .. "/stage2"
  os.execute('mkdir -p "' .. other .. '" && touch "' .. other .. '/old.npy"')
  local g = kdf.graph { name = "stage2" }
  g:lua { outputs = { "t:f32[]" }, fn = function() return { t = 1 } end }
  local ok, err = pcall(g.run, g, { out = other })
  -- refused: not empty (or, under --replace, not a run directory: it has no summary.json)
  err = tostring(err)
  assert(not ok and err:find(other, 1, true) and
         (err:find("exists and is not empty", 1, true) or err:find("no summary.json", 1, true)),
         "a used directory was not refused: " .. err)
  local f = io.open(other .. "/old.npy")
  assert(f, "the refused directory lost its file"):close()
  -- its own --out directory can take several graphs
  g:run { out = dir }
  g:run { out = dir }
  print("reuse_out: ok")
elseif case == "many_ticks" then
  -- 3000 lines of metrics.jsonl (about 150 KB): more than the 64k tmpfs of faults.py
  local g = kdf.graph { name = "ticks" }
  g:lua { outputs = { "t:f32[]" }, every_tick = true, fn = function(_, ctx) return { t = ctx.tick } end }
  g:run { ticks = 3000 }
elseif case == "big_npy" then
  local n = 100000
  local labels = {}
  for i = 1, n do labels[i] = i % 7 end
  local y = kdf.tensor(labels, "i32")
  local g = kdf.graph { name = "big" }
  g:node("evaluate", { name = "ev", predictions = y, labels = y, save = true })
  g:run { ticks = 1 }
end
