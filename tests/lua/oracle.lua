-- The guard around ground truth and the test split, along every path a value could take
-- out of it: Lua tables, a Lua node, a foreign kernel, take_rows/put_rows, constants. A
-- method must not see the answer (clean labels, the noise mask) nor learn from or select
-- on the test split, by accident or through a detour.
local kdf = require "kdflow"

local csv = os.tmpname()
local fh = assert(io.open(csv, "w"))
fh:write("a,b,label\n")
for i = 0, 39 do fh:write(("%d,%d,%d\n"):format(i % 5, i % 3, i % 4)) end
fh:close()

local function loader(g)
  return g:node("data_loader", { name = "data", dataset = "csv", path = csv, test_path = csv,
                                 val_fraction = 0, normalize = "none", noise = "symmetric",
                                 rate = 0.25, seed = 3 })
end

-- expects g:run to fail with a message containing every NEEDLE (plain text)
local function refused(g, what, ...)
  local ok, err = pcall(g.run, g)
  assert(not ok, what .. ": the run did not fail")
  local msg = tostring(err)
  for _, needle in ipairs { ... } do
    assert(msg:find(needle, 1, true), what .. ": '" .. needle .. "' not in: " .. msg)
  end
  assert(err.status == 2, what .. ": exit status " .. tostring(err.status))
end

-- 1. per-sample values do not leave as Lua tables or numbers; aggregates do
do
  local g = kdf.graph { name = "tables" }
  local d = loader(g)
  g:run()
  for _, port in ipairs { d.clean_labels, d.noisy_mask, d.y_test, d.x_test } do
    local t = port:value()
    assert(not pcall(t.totable, t), tostring(port) .. ": t:totable() gave per-sample values")
    assert(not pcall(t.get, t, 1, 1) and not pcall(t.get, t, 1), tostring(port) .. ": t:get()")
    assert(t:sum() >= 0 and t:numel() > 1 and #t > 0, tostring(port) .. ": aggregates stay readable")
  end
  assert(d.noisy_mask:value():sum() == 10, "⌊0.25·40⌋ flips")
  local ok, err = pcall(function () return d.clean_labels:value():totable() end)
  assert(not ok and tostring(err):find("ground truth"), tostring(err))
  ok, err = pcall(function () return d.y_test:value():get(1) end)
  assert(not ok and tostring(err):find("test split"), tostring(err))
  -- what is not ground truth reads as ever
  assert(#d.labels:value():totable() == 40 and d.x:value():get(1, 1) == 0)
end

-- 2. a Lua node wired to ground truth on purpose may read it, and what it returns is
--    ground truth too: copied labels cannot train or score a method
do
  local g = kdf.graph { name = "lua-node" }
  local d = loader(g)
  local copy = g:lua { name = "copy", inputs = { "y:i32[N]" }, outputs = { "y:i32[N]" },
    y = kdf.oracle(d.clean_labels), fn = function(i)
      return { y = kdf.tensor(i.y:totable(), "i32") }  -- a fresh tensor from a plain table
    end }
  g:node("ce_loss", { name = "ce", targets = copy.y })
  refused(g, "laundered labels into a loss", "node 'ce' (ce_loss)",
          "input 'targets' received ground truth (an oracle tensor) from 'copy.y'")
end
do -- the copy reads as ground truth from the script too
  local g = kdf.graph { name = "lua-node-2" }
  local d = loader(g)
  local copy = g:lua { name = "copy", inputs = { "m:u8[N]" }, outputs = { "y:i32[N]" },
    m = kdf.oracle(d.noisy_mask), fn = function(i) return { y = kdf.tensor(i.m:totable(), "i32") } end }
  g:run()
  assert(copy.y:value().oracle and not pcall(copy.y:value().totable, copy.y:value()))
end

-- 3. a foreign kernel (cblas_scopy) copying ground truth passes the flag on
do
  local g = kdf.graph { name = "foreign" }
  local d = loader(g)
  local as_f32 = g:lua { name = "as_f32", inputs = { "m:u8[N]" }, outputs = { "w:f32[N]" },
    m = kdf.oracle(d.noisy_mask), fn = function(i) return { w = i.m:totable() } end }
  local cp = g:foreign { name = "scopy", library = "libblas.so.3", symbol = "cblas_scopy",
    sig = "v(ipi pi)", inputs = { "x:f32[N]" }, outputs = { "y:f32[N]" }, dims = { "N", "1", "1" },
    x = kdf.oracle(as_f32.w) }
  g:node("ce_loss", { name = "ce", targets = d.labels, weights = cp.y })
  refused(g, "ground truth through a foreign kernel", "input 'weights' received ground truth",
          "from 'scopy.y'")
end

-- 4. take_rows and put_rows (a fold and back)
do
  local g = kdf.graph { name = "rows" }
  local d = loader(g)
  local idx_a, idx_b = {}, {}
  for i = 0, 39 do table.insert(i < 20 and idx_a or idx_b, i) end
  local a = g:node("take_rows", { name = "a", x = kdf.oracle(d.clean_labels), index = kdf.tensor(idx_a, "i32") })
  local b = g:node("take_rows", { name = "b", x = kdf.oracle(d.clean_labels), index = kdf.tensor(idx_b, "i32") })
  -- (the folds are ground truth themselves: into put_rows only through oracle edges)
  local back = g:node("put_rows", { name = "back", n = 40, values = { kdf.oracle(a.rows), kdf.oracle(b.rows) },
                                    index = { kdf.tensor(idx_a, "i32"), kdf.tensor(idx_b, "i32") } })
  g:node("self_confidence", { name = "sc", probs = kdf.zeros({ 40, 4 }), labels = back.out })
  refused(g, "ground truth through take_rows and put_rows", "node 'sc' (self_confidence)",
          "input 'labels' received ground truth (an oracle tensor) from 'back.out'")
end

do -- without the deliberate edge the folds stop at put_rows already
  local g = kdf.graph { name = "rows-2" }
  local d = loader(g)
  local a = g:node("take_rows", { name = "a", x = kdf.oracle(d.clean_labels), index = kdf.tensor({ 0, 1 }, "i32") })
  g:node("put_rows", { name = "back", n = 2, values = { a.rows }, index = { kdf.tensor({ 1, 0 }, "i32") } })
  refused(g, "an oracle fold into put_rows", "node 'back' (put_rows)",
          "input 'values' received ground truth (an oracle tensor) from 'a.rows'")
end

-- 5. constants: a tensor held by the script keeps its flag
do
  local g = kdf.graph { name = "constants" }
  local d = loader(g)
  g:run()
  local held = d.clean_labels:value()
  local g2 = kdf.graph { name = "constants-2" }
  g2:node("ce_loss", { name = "ce", targets = held })
  refused(g2, "a held oracle tensor as a constant", "input 'targets' received ground truth")
  assert(not pcall(kdf.tensor, held:sum()) or true)  -- an aggregate is a plain number: fine
end

-- 6. the test split: never into a node that learns, directly or through any node
do
  local g = kdf.graph { name = "test-x" }
  local d = loader(g)
  local ce = g:node("ce_loss", { targets = d.labels })
  local ok, err = pcall(g.node, g, "student_update", { arch = "mlp:2-3-4", x = d.x_test, losses = { ce.loss } })
  assert(not ok and tostring(err):find("'data.x_test' is the test split and 'student_update' "
                                      .. "(student_update) learns from its inputs", 1, true), tostring(err))
  ok, err = pcall(g.node, g, "ce_loss", { name = "ce_test", targets = d.y_test })
  assert(not ok and tostring(err):find("'data.y_test' is the test split", 1, true), tostring(err))
end
do -- computed from the test split: a teacher's logits on it
  local g = kdf.graph { name = "test-logits" }
  local d = loader(g)
  local ce = g:node("ce_loss", { targets = d.labels })
  local st = g:node("student_update", { arch = "mlp:2-3-4", x = d.x, losses = { ce.loss }, batch = 8 })
  local tf = g:node("teacher_forward", { name = "tf", model = st.model, x = d.x_test })
  g:node("kd_loss", { name = "kd", teacher_logits = tf.logits })
  refused(g, "the test split's logits into a loss", "node 'kd' (kd_loss)",
          "input 'teacher_logits' received the test split", "from 'tf.logits'")
end
do -- through a Lua node, and evaluation still works on it
  local g = kdf.graph { name = "test-lua" }
  local d = loader(g)
  local copy = g:lua { name = "copy", inputs = { "y:i32[N]" }, outputs = { "y:i32[N]" },
    y = d.y_test, fn = function(i) return { y = kdf.tensor(i.y:totable(), "i32") } end }
  local ev = g:node("evaluate", { predictions = copy.y, labels = d.y_test })
  g:run()
  assert(copy.y:value().test, "a copy of the test labels lost the mark")
  assert(ev.accuracy:value():item() == 1, "evaluate reads the test split")
  local g2 = kdf.graph { name = "test-lua-2" }
  local d2 = loader(g2)
  local copy2 = g2:lua { name = "copy", inputs = { "y:i32[N]" }, outputs = { "y:i32[N]" },
    y = d2.y_test, fn = function(i) return { y = kdf.tensor(i.y:totable(), "i32") } end }
  g2:node("ce_loss", { name = "ce", targets = copy2.y })
  refused(g2, "copied test labels into a loss", "input 'targets' received the test split",
          "from 'copy.y'")
end

os.remove(csv)
print("oracle guard ok")
