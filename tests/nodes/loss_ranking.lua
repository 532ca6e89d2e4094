-- loss_ranking as a node: kept fraction globally, per class and per batch, a
-- schedule over ticks (Co-teaching's keep(t) = 1 − τ·min(t/T_k, 1) as kdf.linear),
-- the threshold taken from an otsu_threshold node, its own Otsu mode, and the cross
-- entropy of logits. Worked by hand on eight losses.
local kdf = require "kdflow"

local loss = { 0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4 }
local function rows(mask)
  local out = {}
  for i, v in ipairs(mask:totable()) do if v ~= 0 then out[#out + 1] = i - 1 end end
  return table.concat(out, ",")
end

local g = kdf.graph { name = "rank" }
local global = g:node("loss_ranking", { name = "global", loss = loss, keep = 0.5 })
-- labels 0 1 0 1 ...: class 0 holds rows 0 2 4 6 (.5 .9 .7 .8) → keeps 0, 4;
-- class 1 holds rows 1 3 5 7 (.1 .3 .2 .4) → keeps 1, 5
local per_class = g:node("loss_ranking", { name = "per_class", loss = loss, keep = 0.5,
  scope = "per_class", labels = kdf.tensor({ 0, 1, 0, 1, 0, 1, 0, 1 }, "i32") })
-- blocks of 4: rows 0-3 (.5 .1 .9 .3) keep 1, 3; rows 4-7 (.7 .2 .8 .4) keep 5, 7
local batch = g:node("loss_ranking", { name = "batch", loss = loss, keep = 0.5, scope = "batch", batch = 4 })
-- Co-teaching with τ = 0.5, T_k = 2: keep 1, 0.75, 0.5, 0.5 at ticks 0..3
local sched = g:node("loss_ranking", { name = "sched", loss = loss, keep = kdf.linear(1, 0.5, 2) })
-- the threshold from an otsu_threshold node on the same losses, and the node's own Otsu
local ot = g:node("otsu_threshold", { name = "ot", scores = loss, normalize = true, flag = "above" })
local by_thr = g:node("loss_ranking", { name = "by_thr", loss = loss, threshold = ot.threshold })
local own = g:node("loss_ranking", { name = "own", loss = loss, otsu = true })
-- logits: CE = logsumexp(z) − z_y; rows (2,0) y=0 → 0.126928, (0,2) y=0 → 2.126928,
-- (1,1) y=1 → 0.693147
local z = g:node("loss_ranking", { name = "logits", logits = { { 2, 0 }, { 0, 2 }, { 1, 1 } },
  labels = kdf.tensor({ 0, 0, 1 }, "i32"), keep = 2 / 3 })

local kept = {}
for t = 0, 3 do
  g:run { ticks = 1 }
  kept[t] = sched.clean_mask:value():sum()
end
assert(kept[0] == 8 and kept[1] == 6 and kept[2] == 4 and kept[3] == 4,
       ("schedule kept %d %d %d %d"):format(kept[0], kept[1], kept[2], kept[3]))
assert(g:stats().sched.calls == 3, "a schedule that stops moving stops rerunning the node")

assert(rows(global.clean_mask:value()) == "1,3,5,7", rows(global.clean_mask:value()))
assert(rows(global.flagged:value()) == "0,2,4,6")
local r = global.rank:value():totable()
local want = { 4, 0, 7, 2, 5, 1, 6, 3 }
for i = 1, 8 do assert(r[i] == want[i], "rank of row " .. (i - 1)) end
assert(global.kept_fraction:value():item() == 0.5)
assert(rows(per_class.clean_mask:value()) == "0,1,4,5", rows(per_class.clean_mask:value()))
assert(rows(batch.clean_mask:value()) == "1,3,5,7", rows(batch.clean_mask:value()))
-- both Otsu routes split the losses between .5 and .7 ... and agree with each other
assert(rows(by_thr.clean_mask:value()) == rows(own.clean_mask:value()), "otsu routes differ")
assert(by_thr.flagged:value():sum() > 0 and by_thr.clean_mask:value():sum() > 0)
local thr = by_thr.loss_threshold:value():item()
assert(math.abs(thr - ot.threshold:value():item()) < 1e-7)
local ce = z.sample_loss:value():totable()
assert(math.abs(ce[1] - 0.126928) < 1e-5 and math.abs(ce[2] - 2.126928) < 1e-5
       and math.abs(ce[3] - 0.693147) < 1e-5, "cross entropy")
assert(rows(z.clean_mask:value()) == "0,2")

-- misuse: both a threshold and otsu; no losses at all
local g3 = kdf.graph { name = "rank-bad2" }
g3:node("loss_ranking", { name = "none" })
local ok, err = pcall(g3.run, g3, {})
assert(not ok and err.status == 2 and tostring(err):find("no losses"), tostring(err))
local g4 = kdf.graph { name = "rank-bad3" }
local o4 = g4:node("otsu_threshold", { scores = loss, normalize = true })
g4:node("loss_ranking", { name = "both", loss = loss, otsu = true, threshold = o4.threshold })
ok, err = pcall(g4.run, g4, {})
assert(not ok and err.status == 2 and tostring(err):find("use one"), tostring(err))
print("loss_ranking ok")
