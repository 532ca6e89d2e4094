-- Label-error detectors wired from given probabilities, shared by
-- find_label_errors.lua and the tests. Each detector turns P (N×C, out-of-sample
-- probabilities) and the given labels ỹ (N) into a flagged mask (1 = likely a
-- label error) and a score (higher = more likely an error):
--
--   confident_learning  cleanlab's find_label_issues(filter_by="prune_by_noise_rate")
--                       (Northcutt et al., JAIR 2021); score = 1 − p[i, ỹ_i].
--   otsu                Otsu's threshold on the self-confidence p[i, ỹ_i]
--                       (scores already in [0, 1]); rows below θ are flagged.
--                       criterion = "blind" uses Blind KD's variant instead.
--   loss_ranking        small-loss selection on the cross entropy −log p[i, ỹ_i]:
--                       by default the loss threshold comes from an otsu_threshold
--                       node run on the (min-max normalised) losses, so no noise
--                       rate is needed; with keep = F the F smallest losses (per
--                       scope: global or per_class) count as clean instead.
--
-- Why these scores. Self-confidence is already a [0,1] quantity, so Otsu can split
-- its histogram directly; on these sets it is piled up at 1 and the split lands
-- mid-way, which flags every uncertain row. The cross entropy spreads the same
-- ranking over a log scale, where the confident majority is one narrow bin near 0
-- and Otsu separates the rows whose given label got very little mass — a tighter
-- cut. Any monotone transform ranks the same, so with keep = F the two agree.
local M = {}

M.detectors = { "confident_learning", "otsu", "loss_ranking" }

-- The label-errors sets of cleanlab/label-errors (Northcutt, Athalye & Mueller,
-- NeurIPS 2021 D&B); confirmed = reviewed rows with mturk.given < 3.
M.sets = {
  { name = "mnist", n = 10000, c = 10, confirmed = 15 },
  { name = "cifar10", n = 10000, c = 10, confirmed = 54 },
  { name = "20news", n = 7532, c = 20, confirmed = 82 },
  { name = "imdb", n = 25000, c = 2, confirmed = 725 },
}

function M.files(dir, set)
  return {
    probs = dir .. "/" .. set .. "_test_set_pyx.npy",
    labels = dir .. "/" .. set .. "_test_set_original_labels.npy",
    review = dir .. "/" .. set .. "_mturk.json",
  }
end

local function known(detector)
  for _, d in ipairs(M.detectors) do
    if d == detector then return true end
  end
  return false
end

-- Wires DETECTOR into graph G on ports PROBS (f32[N,C]) and LABELS (i32[N]).
-- OPTS: prefix (node names), criterion, keep, scope. Returns { flagged, score,
-- order (confident_learning only), nodes = { ... } }.
function M.detect(g, probs, labels, detector, opts)
  opts = opts or {}
  local p = opts.prefix or ""
  if not known(detector) then
    error(("unknown detector '%s' (%s)"):format(tostring(detector), table.concat(M.detectors, ", ")), 2)
  end
  if detector == "confident_learning" then
    local cl = g:node("confident_learning", { name = p .. "cl", probs = probs, labels = labels })
    return { flagged = cl.flagged, score = cl.score, order = cl.order, node = cl }
  end
  local sc = g:node("self_confidence", { name = p .. "self_confidence", probs = probs, labels = labels })
  if detector == "otsu" then
    local ot = g:node("otsu_threshold", { name = p .. "otsu", scores = sc.score,
                                          criterion = opts.criterion or "otsu", flag = "below" })
    return { flagged = ot.flagged, score = sc.loss, self_confidence = sc.score, node = ot }
  end
  -- loss_ranking
  local lr
  if opts.keep then
    lr = g:node("loss_ranking", { name = p .. "loss_ranking", loss = sc.loss, labels = labels,
                                  keep = opts.keep, scope = opts.scope or "global" })
  else
    local ot = g:node("otsu_threshold", { name = p .. "loss_otsu", scores = sc.loss, normalize = true,
                                          criterion = opts.criterion or "otsu", flag = "above" })
    lr = g:node("loss_ranking", { name = p .. "loss_ranking", loss = sc.loss, threshold = ot.threshold })
  end
  return { flagged = lr.flagged, score = sc.loss, self_confidence = sc.score, node = lr }
end

return M
