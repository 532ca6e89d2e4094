-- Wiring shared by the training pipelines: the --set flags, the data loader, test and
-- noisy-validation monitoring, tick-by-tick training with model selection on the noisy
-- validation split, and the result block (stdout and result-<graph>.json in the run
-- directory).
local kdf = require "kdflow"
local M = {}

-- The flags every pipeline takes. DEFAULTS overrides the values below.
--   dataset, path        the source (fashion-mnist from Debian by default)
--   test_path            csv: the test file (labels in the last column)
--   noise, rate          the label noise (data_loader), e.g. symmetric 0.4
--   noise2, rate2        a second noise model on the rows not yet noisy (e.g. openset
--                        then symmetric); heldout: openset's held-out classes;
--                        open_input: openset's inputs (heldout | permuted)
--   seed                 graph seed: noise, splits, initial weights, shuffling
--   epochs               ticks of training (one epoch per tick)
--   subset, test_subset  stratified subsets (0 = all), for quick runs and tests
--   student              the student architecture (METHODS §3: an MLP 784-256-10)
--   lr, batch, val       learning rate, mini-batch, noisy-validation fraction
--   keep_u8              npy with a u8 x.npy: inputs stay on disk until the batch
function M.options(defaults)
  defaults = defaults or {}
  local function arg(name, value, range)
    if defaults[name] ~= nil then value = defaults[name] end
    return kdf.arg(name, value, range)
  end
  return {
    dataset = arg("dataset", "fashion-mnist"),
    path = arg("path", ""),
    test_path = arg("test_path", ""),
    noise = arg("noise", "symmetric"),
    rate = arg("rate", 0.4),
    noise2 = arg("noise2", "none"),
    rate2 = arg("rate2", 0.0),
    heldout = arg("heldout", ""),
    open_input = arg("open_input", "heldout"),
    noise_seed = arg("noise_seed", -1),
    seed = arg("seed", 1),
    epochs = arg("epochs", 20, { min = 1, max = 1000000 }),
    subset = arg("subset", 0, { min = 0 }),
    test_subset = arg("test_subset", 0, { min = 0 }),
    student = arg("student", "mlp:784-256-10"),
    lr = arg("lr", 0.05),
    batch = arg("batch", 128, { min = 1, max = 1048576 }),
    val = arg("val", 0.1),
    results = arg("results", ""),
    keep_u8 = arg("keep_u8", false),
  }
end

function M.data(g, o)
  return g:node("data_loader", {
    name = "data", dataset = o.dataset, path = o.path, test_path = o.test_path,
    noise = o.noise, rate = o.rate,
    noise2 = o.noise2, rate2 = o.rate2, heldout = o.heldout, open_input = o.open_input,
    subset = o.subset, test_subset = o.test_subset, val_fraction = o.val, seed = o.noise_seed,
    keep_u8 = o.keep_u8 })
end

-- Weight 1 on the in-set rows and 0 on the rows the oracle says are open-set: a
-- deliberate, visible oracle edge (clean-data teachers, the open-set upper reference).
function M.in_set_weights(g, data)
  local n = g:lua { name = "in_set_rows", inputs = { "open:u8[N]" }, outputs = { "w:f32[N]" },
    open = kdf.oracle(data.open_mask), fn = function(i)
      local w = {}
      for r, v in ipairs(i.open:totable()) do w[r] = 1 - v end
      return { w = kdf.tensor(w, "f32") }
    end }
  return kdf.oracle(n.w)
end

-- student_update params from the options, plus EXTRA.
function M.trainer(o, extra)
  local p = { arch = o.student, lr = o.lr, batch = o.batch, save = "student.safetensors" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- Test accuracy (clean test labels) and noisy-validation accuracy of MODEL each tick.
function M.monitor(g, data, model, prefix, o)
  prefix = prefix or "student"
  local m = {}
  -- scoring reads logits only: no per-row features (N × F floats)
  m.test = g:node("teacher_forward", { name = prefix .. "_test", model = model,
                                       x = data.x_test, labels = data.y_test, with_features = false })
  m.eval = g:node("evaluate", { name = prefix .. "_eval", logits = m.test.logits,
                                labels = data.y_test })
  if o.val > 0 then
    m.val = g:node("teacher_forward", { name = prefix .. "_val", model = model,
                                        x = data.x_val, labels = data.labels_val,
                                        with_features = false })
    m.eval_val = g:node("evaluate", { name = prefix .. "_noisy_val", logits = m.val.logits,
                                      labels = data.labels_val, save = false })
  end
  return m
end

-- Runs TICKS ticks one at a time; after each, ON_TICK(t) (may be nil). Returns the test
-- accuracy at the last tick and at the tick with the best noisy-validation accuracy
-- (the model a practitioner would pick: the test set is never used to choose).
function M.train(g, mon, ticks, on_tick)
  local best = { val = -1, test = 0, tick = 0 }
  for t = 1, ticks do
    g:run { ticks = 1, total = ticks }
    local test = mon.eval.accuracy:value():item()
    local val = mon.eval_val and mon.eval_val.accuracy:value():item()
    -- without a validation split nothing is chosen: the "best" tick is the last one (the
    -- test accuracy reports, it never selects)
    if val == nil or val > best.val then best = { val = val or -1, test = test, tick = t } end
    if on_tick then on_tick(t, test, val) end
  end
  return { last = mon.eval.accuracy:value():item(), best = best }
end

local function json(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local val = v[k] ~= nil and v[k] or v[tonumber(k)]
      parts[#parts + 1] = indent .. "  " .. json(k) .. ": " .. json(val, indent .. "  ")
    end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and tostring(v) or string.format("%.6g", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end
M.json = json

-- Prints the result block and writes result-<name>.json into the run directory.
-- R: { last =, best = { test, val, tick }, detection = { precision, recall, f1 },
--      refined = accuracy, seconds =, extra fields... }
function M.report(name, o, r)
  local lines = {
    ("%s%s: %s %s %.0f%%, seed %d, %d epochs%s"):format(name,
      r.variant and (" (" .. r.variant .. ")") or "", o.dataset, o.noise, 100 * o.rate,
      o.seed, o.epochs, o.subset > 0 and (", subset %d"):format(o.subset) or ""),
    ("  test accuracy, last tick:            %.4f"):format(r.last),
    ("  test accuracy, best noisy-val tick:  %.4f (tick %d, noisy-val %.4f)"):format(
      r.best.test, r.best.tick, r.best.val),
  }
  if r.detection then
    lines[#lines + 1] = ("  noise detection P / R / F1:          %.4f / %.4f / %.4f"):format(
      r.detection.precision, r.detection.recall, r.detection.f1)
  end
  if r.refined then
    lines[#lines + 1] = ("  refined-label accuracy:              %.4f"):format(r.refined)
  end
  if r.seconds then
    lines[#lines + 1] = ("  wall time:                           %.1f s"):format(r.seconds)
  end
  for _, l in ipairs(lines) do print(l) end
  if o.results ~= "" then
    -- one tab-separated line per run, for bench/pipelines
    -- an append that fails (full disk, permissions) fails the script, naming the file
    local f = assert(io.open(o.results, "a"))
    local d = r.detection or {}
    local function num(v) return v and string.format("%.4f", v) or "" end
    local noise, rate = o.noise, string.format("%g", o.rate)
    if o.noise2 ~= "none" then
      noise, rate = noise .. "+" .. o.noise2, rate .. "+" .. string.format("%g", o.rate2)
    end
    local variant = r.variant or ""
    if r.tipping_fallback then variant = variant .. ", tipping fallback" end
    f:write(table.concat({ name, noise, rate, tostring(o.seed),
      tostring(o.epochs), tostring(o.subset), num(r.last), num(r.best.test), tostring(r.best.tick),
      num(d.precision), num(d.recall), num(d.f1), num(r.refined),
      string.format("%.1f", r.seconds or 0), variant }, "\t"), "\n")
    local ok, err = f:close()
    if not ok then error(("cannot append to %s: %s"):format(o.results, err), 0) end
  end
  local dir = kdf.run_dir()
  if dir then
    local out = { pipeline = name, options = o }
    for k, v in pairs(r) do out[k] = v end
    local file = name .. (r.variant and ("-" .. r.variant:gsub("[^%w]+", "_")) or "")
    -- whole or not at all (a temporary file renamed), an error naming the file on failure
    kdf.write_file(dir .. "/result-" .. file .. ".json", json(out) .. "\n")
  end
end

-- Trains a teacher on the noisy labels (stage 1 of a distillation pipeline) and returns
-- the path of the checkpoint of its best noisy-validation tick, in the run directory.
-- O.teacher_arch, O.teacher_epochs, O.teacher_lr choose it. LOSS (optional):
-- function(g, data) returning the teacher's ce_loss node instead (e.g. on clean labels
-- through oracle edges); WHAT names the labels in the printed line.
function M.train_teacher(o, loss, what)
  local dir = kdf.run_dir() or "."
  local path = dir .. "/teacher.safetensors"
  local g = kdf.graph { name = "teacher", seed = o.seed }
  local data = M.data(g, o)
  local ce = loss and loss(g, data) or g:node("ce_loss", { targets = data.labels })
  local st = g:node("student_update", { name = "teacher", arch = o.teacher_arch, x = data.x,
                                        losses = { ce.loss }, lr = o.teacher_lr, batch = o.batch,
                                        save = o.val > 0 and "" or path })
  local mon = M.monitor(g, data, st.model, "teacher", o)
  -- the checkpoint of the best noisy-validation tick (keep_best refuses a test-split score)
  if o.val > 0 then
    g:node("keep_best", { name = "teacher_best", score = mon.eval_val.accuracy, model = st.model,
                          save = path })
  end
  local r = M.train(g, mon, o.teacher_epochs)
  g, data, ce, st, mon = nil, nil, nil, nil, nil
  collectgarbage() -- the teacher's graph (its data and outputs) before the next stage
  print(("teacher %s%s: test accuracy %.4f at its best noisy-val tick %d (last tick %.4f)"):format(
    o.teacher_arch, what and (" (" .. what .. ")") or "", r.best.test, r.best.tick, r.last))
  return path, r
end

-- The teacher flags of the distillation pipelines.
function M.teacher_options(o)
  o.teacher = kdf.arg("teacher", "")
  o.teacher_arch = kdf.arg("teacher_arch", "mlp:784-1024-1024-10")
  o.teacher_epochs = kdf.arg("teacher_epochs", 10)
  o.teacher_lr = kdf.arg("teacher_lr", 0.02)
  return o
end

return M
