-- graphs/lib/common.lua's in_set_weights (ce.lua drop_open, universal_kd's clean-data
-- teacher): weight 0 exactly on the rows data_loader's open_mask marks as open-set,
-- 1 on every other row — on Fashion-MNIST with 20 % open-set noise (classes 8 and 9
-- held out) plus 20 % symmetric, the weights wired into ce_loss as ce.lua does.
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../../graphs/lib/?.lua;" .. package.path
local common = require "common"

local o = common.options { noise = "openset", rate = 0.2, noise2 = "symmetric", rate2 = 0.2,
                           heldout = "8,9", subset = 2000, test_subset = 200, seed = 3 }
local g = kdf.graph { name = "in_set", seed = o.seed }
local data = common.data(g, o)
local w = common.in_set_weights(g, data)
local ce = g:node("ce_loss", { targets = data.labels, weights = w })
local st = g:node("student_update", { name = "st", x = data.x, arch = "mlp:784-16-8",
                                       losses = { ce.loss }, batch = 64 })
-- oracle values are read inside a node wired with kdf.oracle, never by the script
local check = g:lua { name = "check", inputs = { "open:u8[N]", "w:f32[N]" },
  outputs = { "n_open:f32[]", "n:f32[]" },
  open = kdf.oracle(data.open_mask), w = w, fn = function(i)
    local mask, wt = i.open:totable(), i.w:totable()
    assert(#wt == #mask, "one weight per row: " .. #wt .. " vs " .. #mask)
    local n_open = 0
    for r = 1, #mask do
      local want = mask[r] == 1 and 0 or 1
      assert(wt[r] == want, ("row %d: open_mask %d, weight %g (want %g)"):format(r, mask[r], wt[r], want))
      if mask[r] == 1 then n_open = n_open + 1 end
    end
    return { n_open = kdf.tensor(n_open), n = kdf.tensor(#mask) }
  end }
g:run { ticks = 1 }
local n_open, n = check.n_open:value():item(), check.n:value():item()
-- 20 % of the rows are open-set, give or take the subset's sampling
assert(n > 1000 and n_open > 0.1 * n and n_open < 0.3 * n, "open-set rows: " .. n_open .. " of " .. n)
print(("in_set_weights: %d of %d rows open-set, weight 0 on each, 1 on the others"):format(n_open, n))
