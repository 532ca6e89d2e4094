-- data_loader keep_u8 (inputs kept on disk as u8 until the mini-batch): training and
-- prediction from the on-disk rows equal the dense f32 path bit for bit — the
-- normalisation is the dense path's arithmetic applied to per-column byte → float
-- tables, the statistics are summed in the same order, and the same rows reach the same
-- batches — for every normalisation, with and without a subset and a validation split.
-- Then bad input: a non-u8 x.npy, a source that cannot be read by rows, a node that
-- needs the inputs in memory, a noise model that reads them, and the file truncated
-- while a graph holds it (an error naming the file, not a SIGBUS).
local kdf = require "kdflow"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lib/?.lua;" .. package.path
local T = require "testlib"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

-- N rows of D bytes, 4 classes: a class pattern plus LCG noise; 15 % of labels shifted
local N, M, D, C = 300, 60, 16, 4
local rnd = T.lcg(777) -- one stream for every set written
local function set(path_x, path_y, n)
  local xs, ys = T.set { n = n, d = D, classes = C, step = 5, shift = 7, value = function(on)
    return string.char(math.min(255, (on and 150 or 20) + rnd.int(100)))
  end }
  local xb, yb = {}, {}
  for i = 1, n do xb[i], yb[i] = table.concat(xs[i]), string.pack("<i4", ys[i]) end
  T.npy(path_x, "|u1", { n, D }, table.concat(xb))
  T.npy(path_y, "<i4", { n }, table.concat(yb))
end
set(dir .. "/x.npy", dir .. "/labels.npy", N)
set(dir .. "/x_test.npy", dir .. "/y_test.npy", M)
-- file noise: a noisy label per source row (every third row moved to the next class)
do
  local lb = {}
  for i = 1, N do lb[i] = string.pack("<i4", (i % 3 == 0) and i % C or (i * 5) % C) end
  T.npy(dir .. "/noisy.npy", "<i4", { N }, table.concat(lb))
end

-- one graph: load, train two ticks with CE, score the validation rows
local function run(keep, p)
  local g = kdf.graph { name = "u8", seed = 3 }
  local lp = { name = "data", dataset = "npy", path = dir, noise = "symmetric", rate = 0.2,
               keep_u8 = keep }
  for k, v in pairs(p) do lp[k] = v end
  local d = g:node("data_loader", lp)
  local ce = g:node("ce_loss", { targets = d.labels })
  local st = g:node("student_update", { name = "st", arch = "mlp:16-12-4", losses = { ce.loss },
                                        x = d.x, lr = 0.05, batch = 32, save = "" })
  local out = { st = st, d = d }
  if (lp.val_fraction or 0.1) > 0 then
    out.val = g:node("teacher_forward", { name = "val", model = st.model, x = d.x_val,
                                          labels = d.labels_val })
  end
  g:run { ticks = 2 }
  return out
end

local cases = {
  { normalize = "unit" },
  { normalize = "standardize" },
  { normalize = "standardize_global" },
  { normalize = "none" },
  { normalize = "standardize", subset = 200, test_subset = 30 },
  { normalize = "unit", val_fraction = 0 },
  -- file noise is applied before the subset: the subset is taken after loading, on the index
  { normalize = "standardize", subset = 150, noise = "file", labels_file = dir .. "/noisy.npy" },
}
for _, p in ipairs(cases) do
  local what = ("normalize=%s subset=%s val=%s"):format(p.normalize, p.subset or 0, p.val_fraction or 0.1)
  local a, b = run(false, p), run(true, p)
  local ok_disk = b.d.x:value()
  assert(tostring(ok_disk):find("f32%[") and tostring(ok_disk):find("(on disk: " .. dir .. "/x.npy)", 1, true),
         tostring(ok_disk))
  assert(not tostring(a.d.x:value()):find("on disk"), tostring(a.d.x:value()))
  T.same(a.d.labels:value(), b.d.labels:value(), what .. ": labels")
  T.same(a.d.index:value(), b.d.index:value(), what .. ": index")
  for _, k in ipairs { "logits", "sample_loss", "features", "selected" } do
    T.same(a.st[k]:value(), b.st[k]:value(), what .. ": dense vs on disk: " .. k)
  end
  if a.val then
    T.same(a.val.logits:value(), b.val.logits:value(), what .. ": validation logits")
    T.same(a.val.sample_loss:value(), b.val.sample_loss:value(), what .. ": validation loss")
  end
  -- a value read from the on-disk tensor is the dense one (kdf_tensor_get reads the file)
  local xa, xb = a.d.x:value(), b.d.x:value()
  local n = xa:shape()[1]
  for _, r in ipairs { 1, 2, n } do
    for _, c in ipairs { 1, 7, D } do
      assert(xa:get(r, c) == xb:get(r, c), ("%s: x[%d][%d] %.9g vs %.9g"):format(what, r, c,
             xa:get(r, c), xb:get(r, c)))
    end
  end
end

-- bad input -------------------------------------------------------------------------
local function fails(p, nodes, pattern, what)
  local g = kdf.graph { name = "u8-bad", seed = 1 }
  local lp = { name = "data", dataset = "npy", path = dir, keep_u8 = true }
  for k, v in pairs(p) do lp[k] = v end
  local d = g:node("data_loader", lp)
  if nodes then nodes(g, d) end
  local ok, err = pcall(g.run, g, {})
  assert(not ok, what .. ": should fail")
  assert(type(err) ~= "string" and err.status == 2, what .. ": not bad input (status 2): " .. tostring(err))
  for _, pat in ipairs(pattern) do
    assert(tostring(err):find(pat, 1, true), what .. ": '" .. pat .. "' not in: " .. tostring(err))
  end
  return err
end
-- a node that reads the inputs in memory: refused before it runs, naming port and param
fails({}, function(g, d)
  g:node("label_propagation", { name = "lp", features = d.x, seeds = d.labels })
end, { "input 'features'", "kept on disk", "x.npy", "from 'data.x'", "param 'keep_u8' = false" },
  "label_propagation on x")
fails({}, function(g, d)
  g:node("take_rows", { name = "tk", x = d.x_val, index = { 0, 1 } })
end, { "input 'x'", "from 'data.x_val'", "keep_u8" }, "take_rows on x_val")
-- noise models that read the inputs
fails({ noise = "instance", rate = 0.2 }, nil, { "param 'noise' = 'instance'", "reads the inputs", "keep_u8" },
      "instance noise")
fails({ noise = "cc", rate = 0.2 }, nil, { "confusable clusters", "keep_u8" }, "cc noise from x")
fails({ noise = "openset", rate = 0.2, heldout = "3" }, nil, { "openset noise", "keep_u8" }, "openset")
-- a source that cannot be read by rows
fails({ dataset = "fashion-mnist" }, nil, { "param 'keep_u8' needs dataset 'npy'" }, "idx source")
-- x.npy not u8
local fdir = dir .. "/f32"
assert(os.execute("mkdir -p '" .. fdir .. "'"))
local fb = {}
for i = 1, 4 * 2 do fb[i] = string.pack("<f", i) end
T.npy(fdir .. "/x.npy", "<f4", { 4, 2 }, table.concat(fb))
T.npy(fdir .. "/labels.npy", "<i4", { 4 }, string.pack("<i4<i4<i4<i4", 0, 1, 0, 1))
fails({ path = fdir }, nil, { fdir .. "/x.npy", "'<f4'", "u8 ('|u1')" }, "f32 x.npy")
-- an x.npy shorter than its header says
local tdir = dir .. "/trunc"
assert(os.execute("mkdir -p '" .. tdir .. "'"))
T.npy(tdir .. "/x.npy", "|u1", { 4, 3 }, "abcdefgh")
T.npy(tdir .. "/labels.npy", "<i4", { 4 }, string.pack("<i4<i4<i4<i4", 0, 1, 0, 1))
fails({ path = tdir }, nil, { tdir .. "/x.npy", "truncated" }, "short x.npy")

-- the file truncated while a graph holds it: the next batch read fails naming it
do
  local cdir = dir .. "/cut"
  assert(os.execute("mkdir -p '" .. cdir .. "'"))
  set(cdir .. "/x.npy", cdir .. "/labels.npy", N)
  local g = kdf.graph { name = "u8-cut", seed = 1 }
  local d = g:node("data_loader", { name = "data", dataset = "npy", path = cdir, keep_u8 = true })
  local ce = g:node("ce_loss", { targets = d.labels })
  g:node("student_update", { name = "st", arch = "mlp:16-8-4", losses = { ce.loss }, x = d.x, save = "" })
  g:run { ticks = 1 }
  local f = assert(io.open(cdir .. "/x.npy", "r+b")) -- same file, cut to its header
  f:close()
  f = assert(io.open(cdir .. "/x.npy", "wb"))
  f:write("\x93NUMPY")
  f:close()
  local ok, err = pcall(g.run, g, { ticks = 1 })
  assert(not ok and tostring(err):find(cdir .. "/x.npy", 1, true) and
         tostring(err):find("truncated while in use", 1, true), tostring(err))
end

os.execute("rm -rf '" .. dir .. "'")
