-- Distributed detection, graph level: the four detection nodes on the label-errors
-- probabilities (mnist; cifar10 as a second network for agreement). graph-check.sh runs
-- this script alone and under mpirun -np 2 and 3 and compares the run directories byte
-- for byte: the .npy files evaluate writes (flags, scores) and OUT.txt, every output of
-- every detection node written exactly (%a for floats).
local kdf = require "kdflow"
local src = assert(os.getenv("KDF_TEST_SRCDIR"), "KDF_TEST_SRCDIR is not set")
local data = kdf.arg("data", src .. "/../data/label-errors")

local g = kdf.graph { name = "dist-detect", seed = 1 }
local probs = g:node("npy_source", { name = "probs", path = data .. "/mnist_test_set_pyx.npy", probs = true })
local labels = g:node("npy_source", { name = "labels", path = data .. "/mnist_test_set_original_labels.npy", dtype = "i32" })
local other = g:node("npy_source", { name = "other", path = data .. "/cifar10_test_set_pyx.npy", probs = true })
local P, Y = probs.value, labels.value

local nodes = {
  g:node("confident_learning", { name = "cl", probs = P, labels = Y }),
  g:node("confident_learning", { name = "cl_both", probs = P, labels = Y, filter = "both",
                                 rank_by = "normalized_margin", frac_noise = 0.5 }),
  g:node("confident_learning", { name = "cl_joint", probs = P, labels = Y, filter = "confident_learning" }),
}
local sc = g:node("self_confidence", { name = "sc", probs = P, labels = Y })
local ot = g:node("otsu_threshold", { name = "otsu", scores = sc.score, criterion = "blind" })
local ol = g:node("otsu_threshold", { name = "otsu_loss", scores = sc.loss, normalize = true,
                                      exact = true, flag = "above" })
nodes[#nodes + 1] = ot
nodes[#nodes + 1] = ol
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_threshold", loss = sc.loss, threshold = ol.threshold })
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_global", loss = sc.loss, keep = 0.9 })
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_class", loss = sc.loss, labels = Y,
                                             keep = 0.8, scope = "per_class" })
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_batch", loss = sc.loss, keep = 0.5,
                                             scope = "batch", batch = 97 })
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_otsu", loss = sc.loss, otsu = true })
-- the probabilities taken as logits: the cross entropy is computed in the node
nodes[#nodes + 1] = g:node("loss_ranking", { name = "lr_logits", logits = P, labels = Y, keep = 0.7 })
nodes[#nodes + 1] = g:node("agreement", { name = "agree", teacher_probs = P, student_logits = other.value,
                                          labels = Y })
g:node("evaluate", { name = "eval_cl", flagged = nodes[1].flagged, score = nodes[1].score })
g:node("evaluate", { name = "eval_cl_both", flagged = nodes[2].flagged, score = nodes[2].score })
g:node("evaluate", { name = "eval_otsu", flagged = ot.flagged, score = sc.loss })
g:run {}

-- every output of every detection node, exactly
local out = {}
local function flat(t, acc)
  if type(t) == "table" then
    for _, v in ipairs(t) do flat(v, acc) end
  elseif math.type(t) == "integer" then
    acc[#acc + 1] = tostring(t)
  else
    acc[#acc + 1] = string.format("%a", t)
  end
  return acc
end
local total = 0
for _, n in ipairs(nodes) do
  for _, port in ipairs(kdf.describe(n:kind()).outputs) do
    local name = type(port) == "table" and port.name or port
    local t = n:output(name)
    if t ~= nil then -- agreement without labels has no scores
      local v = t:totable()
      out[#out + 1] = n:name() .. "." .. name .. " " .. tostring(t) .. ": " ..
        table.concat(flat(type(v) == "table" and v or { v }, {}), " ")
      total = total + 1
    end
  end
end
kdf.write_file(kdf.run_dir() .. "/OUT.txt", table.concat(out, "\n") .. "\n")
print(("dist-detect graph: %d outputs of %d nodes written"):format(total, #nodes))
