-- The label-errors sets (cleanlab/label-errors, real out-of-sample probabilities
-- and human-confirmed errors) through the detectors of graphs/lib/label_errors.lua.
-- confident_learning must flag what cleanlab 2.9's find_label_issues
-- (prune_by_noise_rate) flags: mnist 15 rows catching 7 of the 15 confirmed errors,
-- cifar10 284 catching 49 of 54 (the counts in the data's README); 20news 95 / 55 of
-- 82; imdb 1309 (its review ids are file names, not rows). The other rows are
-- regression values of docs/results.md.
local kdf = require "kdflow"
local src = assert(os.getenv("KDF_TEST_SRCDIR"), "KDF_TEST_SRCDIR is not set")
package.path = src .. "/../graphs/lib/?.lua;" .. package.path
local le = require "label_errors"
local data = kdf.arg("data", src .. "/../data/label-errors")

local expected = {
  -- set, detector, flagged, caught, confirmed (mapped)
  { "mnist", "confident_learning", 15, 7, 15 },
  { "mnist", "otsu", 113, 15, 15 },
  { "mnist", "loss_ranking", 55, 11, 15 },
  { "cifar10", "confident_learning", 284, 49, 54 },
  { "cifar10", "otsu", 812, 54, 54 },
  { "cifar10", "loss_ranking", 371, 54, 54 },
  { "20news", "confident_learning", 95, 55, 82 },
  { "20news", "otsu", 2399, 82, 82 },
  { "20news", "loss_ranking", 61, 33, 82 },
  { "imdb", "confident_learning", 1309, 0, 0 },
}

-- the 15 rows of mnist that confident_learning flags (7 of them confirmed errors)
local mnist_rows = "449,582,947,1014,1226,1681,1901,2130,2462,2597,3520,6597,9009,9664,9729"

for _, e in ipairs(expected) do
  local set, det = e[1], e[2]
  local f = le.files(data, set)
  local g = kdf.graph { name = set .. "-" .. det }
  local probs = g:node("npy_source", { name = "probs", path = f.probs, probs = true })
  local labels = g:node("npy_source", { name = "labels", path = f.labels, dtype = "i32" })
  local d = le.detect(g, probs.value, labels.value, det)
  local ev = g:node("evaluate", { name = set .. "_" .. det, flagged = d.flagged, review = f.review })
  g:run {}
  local flagged, caught = ev.n_flagged:value():item(), ev.caught:value():item()
  local confirmed = ev.confirmed:value():item()
  local what = ("%s %s: %d flagged, %d of %d caught"):format(set, det, flagged, caught, confirmed)
  assert(flagged == e[3] and caught == e[4] and confirmed == e[5], what .. (", expected %d, %d of %d"):format(e[3], e[4], e[5]))
  if set == "mnist" and det == "confident_learning" then
    local got = table.concat(ev.flagged_index:value():totable(), ",")
    assert(got == mnist_rows, got)
  end
  print(what)
end
print("label_errors ok")
