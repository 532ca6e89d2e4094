-- find_label_errors: flag likely label errors from given out-of-sample probabilities
-- and labels, with no training. Detectors (graphs/lib/label_errors.lua):
-- confident_learning (cleanlab's find_label_issues, prune_by_noise_rate), otsu (Otsu
-- on the self-confidence p[i, ỹ_i]) and loss_ranking (small-loss selection on
-- −log p[i, ỹ_i], threshold from Otsu unless keep is given).
--
--   kdflow run graphs/find_label_errors.lua --set probs=P.npy --set labels=Y.npy
--       [--set detector=confident_learning|otsu|loss_ranking]
--       [--set review=SET_mturk.json] [--set criterion=otsu|blind]
--       [--set keep=0.99 --set scope=global|per_class] [--set show=10]
--   kdflow run graphs/find_label_errors.lua --set set=mnist      (a label-errors set)
--   kdflow run graphs/find_label_errors.lua --set set=all        (every set × detector,
--       a markdown table on stdout; --set detector=... narrows it)
--
-- Sets come from data/label-errors/ beside graphs/ (or --set data=DIR). Printed:
-- rows flagged and, with a review file, how many human-confirmed errors (mturk.given
-- < 3) are among them and the precision against that list. The flagged row indices
-- go to the run directory as <set>_eval.flagged_index.npy (also the mask, the
-- scores and the confirmed rows caught), with metrics.jsonl and summary.json.
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "lib/?.lua;" .. package.path
local le = require "label_errors"

local set = kdf.arg("set", "")
if set == "" and kdf.arg("probs", "") == "" then set = "cifar10" end -- a demo with no flags
local data = kdf.arg("data", here .. "../data/label-errors")
local detector = kdf.arg("detector", set == "all" and "all" or "confident_learning")
local opts = {
  criterion = kdf.arg("criterion", "otsu"),
  keep = kdf.arg("keep", 0.0),
  scope = kdf.arg("scope", "global"),
}
if opts.keep == 0.0 then opts.keep = nil end
local show = kdf.arg("show", 10)

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- One graph: read, detect, evaluate. Returns a row of results.
local function run_one(name, files, det)
  local g = kdf.graph { name = name .. "-" .. det, seed = kdf.arg("seed", 1) }
  local probs = g:node("npy_source", { name = name .. "_probs", path = files.probs, probs = true })
  local labels = g:node("npy_source", { name = name .. "_labels", path = files.labels, dtype = "i32" })
  local d = le.detect(g, probs.value, labels.value, det, {
    prefix = name .. "_", criterion = opts.criterion, keep = opts.keep, scope = opts.scope })
  local ev = g:node("evaluate", { name = name .. "_eval", flagged = d.flagged, score = d.score,
                                  review = files.review or "" })
  g:run {}
  local p = probs.value:value()
  local r = {
    set = name, detector = det, n = p:shape()[1], c = p:shape()[2],
    flagged = math.tointeger(ev.n_flagged:value():item()),
  }
  if files.review then
    r.caught = math.tointeger(ev.caught:value():item())
    r.confirmed = math.tointeger(ev.confirmed:value():item())
    r.precision = ev.review_precision:value():item()
  end
  r.probs, r.labels, r.index = p, labels.value:value(), ev.flagged_index:value()
  r.order = d.order and d.order:value() or nil
  return r
end

-- The K worst flagged rows: CL's own order, else ascending p[i, ỹ_i] (one pass
-- keeping the K smallest, so a million flagged rows cost no sort).
local function worst_first(r, k)
  local rows = {}
  if r.order then
    for _, i in ipairs(r.order:totable()) do
      if #rows == k then break end
      rows[#rows + 1] = i
    end
    return rows
  end
  local y, keys = r.labels, {}
  for _, i in ipairs(r.index:totable()) do
    local s = r.probs:get(i + 1, y:get(i + 1) + 1)
    if #rows < k or s < keys[#rows] then
      local at = #rows < k and #rows + 1 or #rows
      while at > 1 and keys[at - 1] > s do
        rows[at], keys[at] = rows[at - 1], keys[at - 1]
        at = at - 1
      end
      rows[at], keys[at] = i, s
    end
  end
  return rows
end

local function report(r)
  print(("find_label_errors: %s (%d rows, %d classes), detector %s"):format(r.set, r.n, r.c, r.detector))
  print(("  rows flagged:                  %d (%.2f %%)"):format(r.flagged, 100 * r.flagged / r.n))
  if r.confirmed then
    if r.confirmed == 0 then
      print("  confirmed errors caught:       n/a (the review's ids are not row indices)")
    else
      print(("  confirmed errors caught:       %d of %d"):format(r.caught, r.confirmed))
      print(("  precision vs confirmed list:   %.3f"):format(r.precision))
    end
  end
  if show > 0 and r.flagged > 0 then
    local rows = worst_first(r, show)
    print(("  worst %d of the flagged rows (row: given label -> argmax, p[given]):"):format(#rows))
    for k = 1, #rows do
      local i = rows[k]
      local y = r.labels:get(i + 1)
      local best, arg = -1, 0
      for j = 1, r.c do
        local v = r.probs:get(i + 1, j)
        if v > best then best, arg = v, j - 1 end
      end
      print(("    %6d: %d -> %d, p = %.4f"):format(i, y, arg, r.probs:get(i + 1, y + 1)))
    end
  end
  print(("  flagged row indices: %s_eval.flagged_index.npy in the run directory"):format(r.set))
end

local function sets_named(name)
  if name == "all" then return le.sets end
  for _, s in ipairs(le.sets) do
    if s.name == name then return { s } end
  end
  error(("unknown set '%s' (mnist, cifar10, 20news, imdb or all)"):format(name), 0)
end

if set == "" then
  -- explicit files
  local files = { probs = kdf.arg("probs", ""), labels = kdf.arg("labels", ""), review = kdf.arg("review", "") }
  if files.probs == "" or files.labels == "" then
    error("give --set probs=FILE.npy --set labels=FILE.npy (or --set set=mnist|cifar10|20news|imdb|all)", 0)
  end
  if files.review == "" then files.review = nil end
  local base = files.probs:match("([^/\\]+)%.npy$") or "data"
  report(run_one((base:gsub("[^%w_-]", "_")), files, detector))
  return
end

local chosen = sets_named(set)
local detectors = detector == "all" and le.detectors or { detector }
for _, s in ipairs(chosen) do
  local files = le.files(data, s.name)
  if not file_exists(files.probs) then
    error(("%s: file not found (the label-errors sets live in data/label-errors/; --set data=DIR)"):format(files.probs), 0)
  end
end
if #chosen == 1 and #detectors == 1 then
  report(run_one(chosen[1].name, le.files(data, chosen[1].name), detectors[1]))
  return
end
print("| set | N | detector | rows flagged | confirmed errors caught | precision vs confirmed |")
print("|---|---:|---|---:|---:|---:|")
for _, s in ipairs(chosen) do
  for _, det in ipairs(detectors) do
    local r = run_one(s.name .. "_" .. det, le.files(data, s.name), det)
    local caught, prec
    if r.confirmed == 0 then
      caught = ("n/a (0 of %d mapped)"):format(s.confirmed)
      prec = "n/a"
    else
      caught = ("%d of %d"):format(r.caught, r.confirmed)
      prec = ("%.3f"):format(r.precision)
    end
    print(("| %s | %d | %s | %d | %s | %s |"):format(s.name, r.n, det, r.flagged, caught, prec))
  end
end
