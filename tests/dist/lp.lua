-- label_propagation under mpirun (tests/dist/train.sh with tolerance 0): each rank
-- computes a share of the k-NN tiles and the ranks' lists are merged — the same
-- neighbours, hence the same refined labels, as one process. Synthetic features with
-- ties (rows repeated), small tiles (many tile pairs to share), a quarter of the
-- seeds wrong. Written to values.txt: neighbours, labels, soft labels, confidence.
local kdf = require "kdflow"
local N, D, C = 403, 6, 4
local state = 77
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local xs, ys = {}, {}
for i = 1, N do
  local c = (i * 5) % C
  local row = {}
  if i % 9 == 0 then
    row = xs[i - 1] -- a repeated row: equal similarities, the index decides
  else
    for j = 1, D do row[j] = (j % C == c and 1 or 0) + 0.6 * rnd() end
  end
  xs[i] = row
  ys[i] = (i % 4 == 0) and (c + 1) % C or c
end
local g = kdf.graph { name = "dist_lp", seed = 1 }
local lp = g:node("label_propagation", { features = kdf.tensor(xs, "f32"),
                                         seeds = kdf.tensor(ys, "i32"), k = 7, tile = 32 })
g:run { ticks = 1 }
local lines = {}
local function put(name, t)
  local v = t:totable()
  for i = 1, #v do
    if type(v[i]) == "table" then
      for j = 1, #v[i] do lines[#lines + 1] = ("%s %d.%d %.9g"):format(name, i, j, v[i][j]) end
    else
      lines[#lines + 1] = ("%s %d %.9g"):format(name, i, v[i])
    end
  end
end
put("neighbors", lp.neighbors:value())
put("labels", lp.labels:value())
put("soft", lp.soft:value())
put("confidence", lp.confidence:value())
kdf.write_file(kdf.run_dir() .. "/values.txt", table.concat(lines, "\n") .. "\n")
kdf.write_file(kdf.run_dir() .. "/ranks.txt", ("rank %d of %d\n"):format(kdf.rank(), kdf.ranks()))
