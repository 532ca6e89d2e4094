-- npy_source (and confident_learning when labels are given) with params from --set:
-- the bad-input cases of test-bad-input.c.
local kdf = require "kdflow"
local g = kdf.graph { name = "bad-npy" }
local src = g:node("npy_source", { name = "src", path = kdf.arg("path", ""),
                                   probs = kdf.arg("probs", false), dtype = kdf.arg("dtype", "auto") })
local labels = kdf.arg("labels", "")
local cl
if labels ~= "" then
  local y = g:node("npy_source", { name = "labels", path = labels, dtype = "i32" })
  cl = g:node("confident_learning", { name = "cl", probs = src.value, labels = y.value })
end
g:run {}
print("rows", src.rows:value():item())
if cl then print("flagged", cl.flagged:value():sum()) end
