-- The drop-in example plugin (plugins/score_histogram), loaded through
-- KDFLOW_PLUGIN_PATH, in a graph.
local kdf = require "kdflow"
local d = kdf.describe("score_histogram")
assert(d and d.file:find("kdf%-score_histogram%.so"), "score_histogram not found on the plugin path")
local g = kdf.graph { name = "histogram" }
local scores = {}
for i = 1, 101 do scores[i] = (i - 1) / 100 end        -- 0, 0.01, ..., 1
local h = g:node("score_histogram", { scores = scores, bins = 4 })
g:run()
local c = h.counts:value():totable()
assert(#c == 4 and c[1] == 25 and c[2] == 25 and c[3] == 25 and c[4] == 26, table.concat(c, ","))
local q = h.quantiles:value():totable()
assert(math.abs(q[3] - 0.5) < 1e-6 and q[1] == 0 and q[5] == 1)
assert(math.abs(h.mean:value():item() - 0.5) < 1e-6)
-- a bad range is the user's error, named
local g2 = kdf.graph { name = "bad-range" }
g2:node("score_histogram", { scores = scores, lo = 1, hi = 0 })
local ok, err = pcall(g2.run, g2)
assert(not ok and tostring(err):find("param 'hi' %(0%) must be greater than 'lo' %(1%)"), tostring(err))
print("score_histogram ok")
