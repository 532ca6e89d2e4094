-- data_loader on a CSV written here (every noise model, reproducibility, splits,
-- normalisation, the oracle rule) — fast and always available.
local kdf = require "kdflow"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- 200 rows, 3 features, 4 classes of 50 (label = i mod 4); a 40-row test file
local train, test = os.tmpname(), os.tmpname()
local function rows(n)
  local t = { "f0,f1,f2,label" }
  for i = 0, n - 1 do
    t[#t + 1] = ("%g,%d,%.6f,%d"):format(i * 0.01, i % 7, math.sin(i), i % 4)
  end
  return table.concat(t, "\n") .. "\n"
end
write(train, rows(200))
write(test, rows(40))
-- for confusable clusters: classes {0, 1} near (1, 0, ·), {2, 3} near (0, 1, ·), the
-- two of a pair apart on the third feature (±0.3)
local cctrain = os.tmpname()
do
  local t = { "f0,f1,f2,label" }
  for i = 0, 199 do
    local c = i % 4
    local a = c < 2 and 1 or 0
    t[#t + 1] = ("%.6f,%.6f,%.6f,%d"):format(a + 0.1 * math.sin(i), 1 - a + 0.1 * math.cos(i),
                                             (c % 2 == 0 and 0.3 or -0.3) + 0.05 * math.sin(3 * i), c)
  end
  write(cctrain, table.concat(t, "\n") .. "\n")
end

-- for open-set inputs by permutation: 120 rows of 6 features, x[i][j] = 10·j + 0.01·i
-- (every value names its row and column), 3 classes
local ptrain = os.tmpname()
do
  local t = { "a,b,c,d,e,f,label" }
  for i = 0, 119 do
    local r = {}
    for j = 0, 5 do r[#r + 1] = ("%.2f"):format(10 * j + 0.01 * i) end
    r[#r + 1] = tostring(i % 3)
    t[#t + 1] = table.concat(r, ",")
  end
  write(ptrain, table.concat(t, "\n") .. "\n")
end

local g = kdf.graph { name = "loader", seed = 5 }
local function loader(name, p)
  p.name, p.dataset, p.path, p.test_path = name, "csv", train, test
  if p.val_fraction == nil then p.val_fraction = 0 end
  return g:node("data_loader", p)
end
local sym = loader("sym", { noise = "symmetric", rate = 0.4, val_fraction = 0.1, seed = 11 })
local same = loader("same", { noise = "symmetric", rate = 0.4, val_fraction = 0.1, seed = 11 })
local other = loader("other", { noise = "symmetric", rate = 0.4, val_fraction = 0.1, seed = 12 })
local incl = loader("incl", { noise = "symmetric_inclusive", rate = 0.5 })
local pair = loader("pair", { noise = "pairflip", rate = 0.3 })
local asym = loader("asym", { noise = "asymmetric", rate = 0.5, class_map = "0:1, 2->3" })
local trans = loader("trans", { noise = "transition", transition = {
  { 0.8, 0.2, 0, 0 }, { 0, 0.8, 0.2, 0 }, { 0, 0, 0.8, 0.2 }, { 0.2, 0, 0, 0.8 } } })
local inst = loader("inst", { noise = "instance", rate = 0.3, normalize = "standardize" })
local open = loader("open", { noise = "openset", rate = 0.2, heldout = "3", noise2 = "symmetric", rate2 = 0.2 })
local sub = loader("sub", { subset = 100, test_subset = 20, normalize = "none" })
local perm = g:node("data_loader", { name = "perm", dataset = "csv", path = ptrain, noise = "openset",
                                     open_input = "permuted", rate = 0.25, normalize = "none",
                                     val_fraction = 0, seed = 4 })
local perm2 = g:node("data_loader", { name = "perm2", dataset = "csv", path = ptrain, noise = "openset",
                                      open_input = "permuted", rate = 0.25, normalize = "none",
                                      noise2 = "symmetric", rate2 = 0.2, val_fraction = 0.1, seed = 4 })
-- confusable clusters: given ({0,1} and {2,3} by index and name) and computed from x
local ccg = loader("ccg", { noise = "cc", rate = 0.5, clusters = "0,1; 2,3" })
local ccx = g:node("data_loader", { name = "ccx", dataset = "csv", path = cctrain, noise = "cc",
                                    rate = 0.6, val_fraction = 0.1, seed = 3 })

-- Ground truth and the test split are read the one way a graph may: inside a Lua node
-- wired with a deliberate oracle edge (their values do not leave a node's outputs as
-- Lua tables otherwise). tab(port) reads a port, through such a node where needed.
local seen, n_peek = {}, 0
local function peek(port)
  local key = tostring(port)
  n_peek = n_peek + 1
  g:lua { name = "peek" .. n_peek, inputs = { "v:any" }, outputs = {},
          v = kdf.oracle(port), fn = function(i) seen[key] = i.v:totable() end }
end
for _, d in ipairs { sym, same, other, incl, pair, asym, trans, inst, open, sub, ccg, ccx, perm, perm2 } do
  for _, name in ipairs { "clean_labels", "noisy_mask", "clean_labels_val", "noisy_mask_val", "y_test",
                          "open_mask", "open_mask_val" } do
    peek(d[name])
  end
end

g:run {}

local function tab(port) return seen[tostring(port)] or port:value():totable() end
local function count_diff(a, b)
  local n = 0
  for i = 1, #a do if a[i] ~= b[i] then n = n + 1 end end
  return n
end
-- the mask marks exactly the rows whose label differs from the clean one
local function check_mask(d, suffix)
  local y, c, m = tab(d["labels" .. suffix]), tab(d["clean_labels" .. suffix]), tab(d["noisy_mask" .. suffix])
  for i = 1, #y do assert((y[i] ~= c[i]) == (m[i] == 1), "mask row " .. i) end
end

-- symmetric: ⌊0.4·200⌋ = 80 flips, each to another class, before a 10 % split
-- (20 rows); the same seed gives the same labels, another seed other labels
assert(#tab(sym.labels) == 180 and #tab(sym.labels_val) == 20, "split sizes")
assert(sym.noisy_mask:value():sum() + sym.noisy_mask_val:value():sum() == 80, "exact count")
check_mask(sym, "")
check_mask(sym, "_val")
assert(count_diff(tab(sym.labels), tab(same.labels)) == 0, "same seed, same labels")
assert(count_diff(tab(sym.labels), tab(other.labels)) > 0, "another seed, other labels")
assert(sym.x_test:value():shape()[1] == 40 and sym.y_test:value():shape()[1] == 40)
assert(sym.num_classes:value():item() == 4)
-- x in [0, 1] after the default unit normalisation (test split mapped the same way)
for _, port in ipairs { sym.x, sym.x_val } do
  for _, row in ipairs(tab(port)) do
    for _, v in ipairs(row) do assert(v >= 0 and v <= 1, "x outside [0,1]: " .. v) end
  end
end

-- symmetric_inclusive: 100 picks, a uniform class over all 4 (a quarter stay)
local n_incl = incl.noisy_mask:value():sum()
assert(n_incl > 50 and n_incl <= 100, "inclusive " .. n_incl)
-- pairflip: 60 rows, y → (y+1) mod 4
local py, pm = tab(pair.labels), tab(pair.noisy_mask)
assert(pair.noisy_mask:value():sum() == 60)
for i = 1, 200 do
  local clean = (i - 1) % 4
  assert(py[i] == (pm[i] == 1 and (clean + 1) % 4 or clean), "pairflip row " .. i)
end
-- asymmetric 0→1 and 2→3 at 0.5: 25 of each mapped class
local ay = tab(asym.labels)
local flipped = { 0, 0, 0, 0 }
for i = 1, 200 do
  local clean = (i - 1) % 4
  if ay[i] ~= clean then
    assert((clean == 0 and ay[i] == 1) or (clean == 2 and ay[i] == 3), "asymmetric row " .. i)
    flipped[clean + 1] = flipped[clean + 1] + 1
  end
end
assert(flipped[1] == 25 and flipped[3] == 25 and flipped[2] == 0 and flipped[4] == 0)
-- transition: only y → y+1 moves, about 20 %
local ty = tab(trans.labels)
local moved = 0
for i = 1, 200 do
  local clean = (i - 1) % 4
  if ty[i] ~= clean then
    assert(ty[i] == (clean + 1) % 4, "transition row " .. i)
    moved = moved + 1
  end
end
assert(moved > 15 and moved < 70, "transition moved " .. moved)
-- instance: per-sample rates around 0.3
local n_inst = inst.noisy_mask:value():sum()
assert(n_inst > 20 and n_inst < 110, "instance " .. n_inst)
-- openset (class 3 held out): 150 in-set rows, 30 inputs replaced, then 30 symmetric
-- flips among the rest; 3 classes remain, the test split loses class 3 too
assert(open.num_classes:value():item() == 3)
assert(#tab(open.labels) == 150 and open.noisy_mask:value():sum() == 60)
for _, v in ipairs(tab(open.labels)) do assert(v >= 0 and v < 3) end
assert(#tab(open.y_test) == 30)
-- the open-set rows are named by open_mask: the 30 replaced inputs, none of the 30 flips
local om, nm = tab(open.open_mask), tab(open.noisy_mask)
local n_open = 0
for i = 1, #om do
  n_open = n_open + om[i]
  assert(om[i] == 0 or nm[i] == 1, "open_mask row " .. i .. " outside noisy_mask")
end
assert(n_open == 30, "open rows " .. n_open)
for _, v in ipairs(tab(sym.open_mask)) do assert(v == 0, "open_mask without open-set noise") end
-- open-set inputs by permutation (no class held out): ⌊0.25·120⌋ = 30 rows get another
-- in-set row's features shuffled by one permutation π and keep their label; the other
-- rows are untouched; every label stays in the label space (3 classes)
assert(perm.num_classes:value():item() == 3 and #tab(perm.labels) == 120)
local px, pom, pidx = tab(perm.x), tab(perm.open_mask), tab(perm.index)
assert(count_diff(tab(perm.labels), tab(perm.clean_labels)) == 0, "permuted rows keep their label")
local pi, n_perm, moved_rows = nil, 0, 0
for r = 1, 120 do
  local row = px[r]
  if pom[r] == 0 then
    for j = 1, 6 do
      assert(math.abs(row[j] - (10 * (j - 1) + 0.01 * pidx[r])) < 1e-4, "untouched row " .. r)
    end
  else
    n_perm = n_perm + 1
    local src, this = nil, {}
    for j = 1, 6 do
      local col = math.floor(row[j] / 10 + 1e-6)
      local s = math.floor((row[j] - 10 * col) / 0.01 + 0.5)
      src = src or s
      assert(s == src, ("permuted row %d mixes source rows %d and %d"):format(r, src, s))
      this[j] = col
    end
    if src ~= pidx[r] then moved_rows = moved_rows + 1 end
    local key = table.concat(this, ",")
    pi = pi or key
    assert(key == pi, ("row %d permuted by %s, another row by %s"):format(r, key, pi))
  end
end
assert(n_perm == 30 and perm.noisy_mask:value():sum() == 30, "permuted count " .. n_perm)
assert(pi ~= "0,1,2,3,4,5", "π is the identity")
assert(moved_rows > 20, "permuted inputs come from other rows: " .. moved_rows)
-- with a second noise and a validation split: 30 open + ⌊0.2·120⌋ = 24 flips, masks split alike
local o2 = tab(perm2.open_mask)
local ov = tab(perm2.open_mask_val)
assert(#o2 == 108 and #ov == 12, "open_mask split sizes")
local open2, noisy2 = 0, perm2.noisy_mask:value():sum() + perm2.noisy_mask_val:value():sum()
for _, s in ipairs { "", "_val" } do
  local o, m = tab(perm2["open_mask" .. s]), tab(perm2["noisy_mask" .. s])
  for i = 1, #o do
    open2 = open2 + o[i]
    assert(o[i] == 0 or m[i] == 1, "perm2 open row outside the noise mask")
  end
end
assert(open2 == 30 and noisy2 == 54, ("perm2: %d open, %d noisy"):format(open2, noisy2))
-- cc with the clusters given: 25 of each class of 50 to its partner, nothing else
local cy = tab(ccg.labels)
local cflip = { 0, 0, 0, 0 }
for i = 1, 200 do
  local clean = (i - 1) % 4
  if cy[i] ~= clean then
    assert(cy[i] == clean ~ 1, ("cc row %d: %d -> %d"):format(i, clean, cy[i]))
    cflip[clean + 1] = cflip[clean + 1] + 1
  end
end
assert(cflip[1] == 25 and cflip[2] == 25 and cflip[3] == 25 and cflip[4] == 25, "cc counts")
local gc = tab(ccg.class_clusters)
assert(#gc == 4 and gc[1] == 0 and gc[2] == 0 and gc[3] == 1 and gc[4] == 1, "cc clusters out")
check_mask(ccg, "")
-- cc with the clusters computed from the inputs: {0, 1} and {2, 3} as built; every
-- noisy label (training and validation rows) inside its class's cluster, ⌊0.6·50⌋ = 30
-- per class of a cluster of ≥ 2 classes
local xc = tab(ccx.class_clusters)
assert(table.concat(xc, ",") == "0,0,1,1", "cc clusters computed: " .. table.concat(xc, ","))
local size = {}
for _, k in ipairs(xc) do size[k] = (size[k] or 0) + 1 end
local per = { 0, 0, 0, 0 }
for _, s in ipairs { "", "_val" } do
  local y, c = tab(ccx["labels" .. s]), tab(ccx["clean_labels" .. s])
  for i = 1, #y do
    if y[i] ~= c[i] then
      assert(xc[y[i] + 1] == xc[c[i] + 1], ("cc%s row %d leaves the cluster"):format(s, i))
      per[c[i] + 1] = per[c[i] + 1] + 1
    end
  end
  check_mask(ccx, s)
end
for k = 1, 4 do
  assert(per[k] == (size[xc[k]] >= 2 and 30 or 0), ("cc class %d: %d flips"):format(k - 1, per[k]))
end
-- any other model reports every class alone
local sc = tab(sym.class_clusters)
for k = 1, 4 do assert(sc[k] == k - 1, "clusters without cc") end

-- stratified subsets: 25 of each class, 5 of each in the test split; no split,
-- no normalisation (raw feature values)
local counts = { 0, 0, 0, 0 }
for _, v in ipairs(tab(sub.labels)) do counts[v + 1] = counts[v + 1] + 1 end
assert(counts[1] == 25 and counts[2] == 25 and counts[3] == 25 and counts[4] == 25)
assert(#tab(sub.y_test) == 20 and #tab(sub.labels_val) == 0)
assert(sub.x_val:value():shape()[2] == 3, "an empty validation split keeps D")
local raw = tab(sub.x)
assert(math.type(raw[1][2]) ~= nil and raw[#raw][2] >= 0 and raw[#raw][2] <= 6)
local idx = tab(sub.index)
for k = 2, #idx do assert(idx[k] > idx[k - 1], "index ascending") end

-- an evaluator may read the oracle outputs, but what it computes from them stays
-- ground truth: a method node fed its precision fails at run time
local g2 = kdf.graph { name = "loader-oracle" }
local d2 = g2:node("data_loader", { dataset = "csv", path = train, noise = "symmetric", rate = 0.2,
                                    val_fraction = 0 })
local ev = g2:node("evaluate", { name = "ev", flagged = d2.noisy_mask, truth = d2.noisy_mask })
g2:lua { name = "leak", inputs = { "p:f32[]" }, outputs = { "q:f32[]" }, p = ev.precision,
         fn = function(i) return { q = i.p:item() } end }
local ok, err = pcall(g2.run, g2, {})
assert(not ok and err.status == 2 and tostring(err):find("received ground truth"), tostring(err))
-- and at connection time a method node cannot take clean_labels
ok, err = pcall(g2.node, g2, "loss_ranking", { name = "cheat", loss = { 1, 2 }, labels = d2.clean_labels })
assert(not ok and tostring(err):find("is ground truth"), tostring(err))
-- open-set noise with neither held-out classes nor permuted inputs says what it needs
local g3 = kdf.graph { name = "loader-open" }
g3:node("data_loader", { dataset = "csv", path = train, noise = "openset", rate = 0.2 })
ok, err = pcall(g3.run, g3, {})
assert(not ok and err.status == 2 and tostring(err):find("param 'heldout'")
       and tostring(err):find("'open_input' = 'permuted'"), tostring(err))
os.remove(train)
os.remove(test)
os.remove(cctrain)
os.remove(ptrain)
print("data_loader ok")
