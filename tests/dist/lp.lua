-- label_propagation under mpirun (tests/dist/train.sh with tolerance 0): each rank
-- computes a share of the k-NN tiles and the ranks' lists are merged — the same
-- neighbours, hence the same refined labels, as one process. Synthetic features with
-- ties (rows repeated), small tiles (many tile pairs to share), a quarter of the
-- seeds wrong. Written to values.txt: neighbours, labels, soft labels, confidence.
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lib/?.lua;" .. package.path
local T = require "testlib"
local N, D, C = 403, 6, 4
local rnd = T.lcg(77)
-- every 9th row repeats the row before it: equal similarities, the index decides
local xs, ys = T.set { n = N, d = D, classes = C, step = 5, shift = 4, repeat_every = 9,
                       value = function(on) return (on and 1 or 0) + 0.6 * rnd.uniform() end }
local g = kdf.graph { name = "dist_lp", seed = 1 }
local lp = g:node("label_propagation", { features = kdf.tensor(xs, "f32"),
                                         seeds = kdf.tensor(ys, "i32"), k = 7, tile = 32 })
g:run { ticks = 1 }
local out = T.values()
out.put("neighbors", lp.neighbors:value())
out.put("labels", lp.labels:value())
out.put("soft", lp.soft:value())
out.put("confidence", lp.confidence:value())
out.write() -- values.txt, and ranks.txt: which rank wrote the run directory, of how many
