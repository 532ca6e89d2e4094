-- otsu_threshold as a node: the METHODS §1 test vector (blind criterion), a skewed
-- sample on which the blind and the classic criterion split differently, the
-- hand-worked classic case of tests/detect/test-otsu.c, exact mode, normalize and the
-- flagged side. Every check is an assert (a failure exits non-zero).
local kdf = require "kdflow"

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.9g, expected %.9g"):format(what, a, b))
end

local function count(t, f)
  local n = 0
  for _, v in ipairs(t:totable()) do if f(v) then n = n + 1 end end
  return n
end

-- METHODS: a_i = 0.85 + 0.1·sin(i) for i < 1400 else 0.15 + 0.1·cos(i), 2000 f32 values;
-- blind criterion, 1000 bins → s* = 515, θ = 0.515, μ_lo = 0.149847, μ_hi = 0.849572,
-- groups 703 / 697 / 302 / 298.
local a = {}
for i = 0, 1999 do
  a[i + 1] = i < 1400 and 0.85 + 0.1 * math.sin(i) or 0.15 + 0.1 * math.cos(i)
end
local g = kdf.graph { name = "otsu" }
local blind = g:node("otsu_threshold", { name = "blind", scores = a, criterion = "blind" })
local exact = g:node("otsu_threshold", { name = "exact", scores = a, criterion = "blind", exact = true })
local above = g:node("otsu_threshold", { name = "above", scores = a, criterion = "blind", flag = "above" })
g:run {}
near(blind.threshold:value():item(), 0.515, 1e-6, "θ")
near(blind.mean_lo:value():item(), 0.149847, 5e-7, "μ_lo")
near(blind.mean_hi:value():item(), 0.849572, 5e-7, "μ_hi")
local groups = blind.groups:value()
for k, want in ipairs { 703, 697, 302, 298 } do
  local got = count(groups, function(v) return v == k end)
  assert(got == want, ("group %d: %d, expected %d"):format(k, got, want))
end
assert(blind.mask:value():sum() == 1400, "mask")
assert(blind.flagged:value():sum() == 600, "flagged below θ")
assert(above.flagged:value():sum() == 1400, "flagged above θ")
-- exact mode: the tied plateau's middle, θ = 0.5; the same groups
near(exact.threshold:value():item(), 0.5, 1e-6, "exact θ")
local eg, bg = exact.groups:value():totable(), groups:totable()
for i = 1, #bg do assert(eg[i] == bg[i], "exact groups differ at " .. i) end

-- The blind criterion where it differs from the classic one (the vector above cannot
-- tell them apart: q is flat over its empty middle). A skewed two-cluster sample, f32:
-- a_i = 0.7 + 0.2·sin(i) for i < 1400 (in [0.5, 0.9]) else 0.3 + 0.25·cos(i) (600 in
-- [0.05, 0.55]), overlapping clusters, 100 bins. Expected values from an independent
-- numpy port of METHODS §1's formulas (float64, np.bincount histogram, s over [2, 97]
-- blind and [1, 99] classic, first maximum; /usr/bin/python3, numpy 1.24); each maximum
-- is unique (runner-up lower by 3e-4 and 2e-4 relative):
--   blind   s* = 60, μ_lo = 0.398103, μ_hi = 0.777305, groups 525/410/689/376
--   classic s* = 44, μ_lo = 0.2,      μ_hi = 0.672771, groups 763/825/192/220
local sk = {}
for i = 0, 1999 do
  sk[i + 1] = i < 1400 and 0.7 + 0.2 * math.sin(i) or 0.3 + 0.25 * math.cos(i)
end
local gs = kdf.graph { name = "otsu-skewed" }
local sb = gs:node("otsu_threshold", { name = "blind", scores = sk, bins = 100, criterion = "blind" })
local so = gs:node("otsu_threshold", { name = "classic", scores = sk, bins = 100, criterion = "otsu" })
gs:run {}
for _, c in ipairs { { sb, 0.60, 0.398103, 0.777305, { 525, 410, 689, 376 } },
                     { so, 0.44, 0.2, 0.672771, { 763, 825, 192, 220 } } } do
  local node, th, lo, hi, want = table.unpack(c)
  local w = node:name()
  near(node.threshold:value():item(), th, 1e-6, w .. " θ")
  near(node.mean_lo:value():item(), lo, 5e-7, w .. " μ_lo")
  near(node.mean_hi:value():item(), hi, 5e-7, w .. " μ_hi")
  for k, n in ipairs(want) do
    local got = count(node.groups:value(), function(v) return v == k end)
    assert(got == n, ("%s group %d: %d, expected %d"):format(w, k, got, n))
  end
  assert(node.mask:value():sum() == want[1] + want[2], w .. " mask")
end

-- Worked by hand (classic criterion, 8 bins): s* = 4, θ = 0.5, μ_lo = 0.125,
-- μ_hi = 0.75, groups 5 / 2 / 4 / 3.
local hand = { 0.00, 0.05, 0.10, 0.13, 0.24, 0.30, 0.40, 0.55, 0.70, 0.76, 0.80, 0.90, 0.95, 1.0 }
local g2 = kdf.graph { name = "otsu-hand" }
local o = g2:node("otsu_threshold", { scores = hand, bins = 8 })
-- normalize: the same scores on another scale give the same split, reported on that scale
local scaled = {}
for i, v in ipairs(hand) do scaled[i] = 10 + 4 * v end
local on = g2:node("otsu_threshold", { name = "scaled", scores = scaled, bins = 8, normalize = true })
g2:run {}
near(o.threshold:value():item(), 0.5, 1e-7, "hand θ")
near(o.mean_lo:value():item(), 0.125, 1e-7, "hand μ_lo")
near(o.mean_hi:value():item(), 0.75, 1e-7, "hand μ_hi")
local hg = o.groups:value()
for k, want in ipairs { 5, 2, 4, 3 } do
  assert(count(hg, function(v) return v == k end) == want, "hand group " .. k)
end
near(on.threshold:value():item(), 12, 1e-5, "scaled θ")
near(on.mean_lo:value():item(), 10.5, 1e-5, "scaled μ_lo")
assert(on.flagged:value():sum() == 7, "scaled flagged")

-- scores outside [0,1] without normalize fail with a value error (exit status 2)
local g3 = kdf.graph { name = "otsu-bad" }
g3:node("otsu_threshold", { name = "bad", scores = { 0.1, 1.5, 0.9 } })
local ok, err = pcall(g3.run, g3, {})
assert(not ok and err.status == 2 and tostring(err):find("expected scores in %[0,1%]"), tostring(err))
print("otsu_threshold ok")
