-- A data_loader with its params from --set: the bad-input cases of test-bad-input.c.
local kdf = require "kdflow"
local p = { name = "data", val_fraction = kdf.arg("val_fraction", 0.0) }
for _, k in ipairs { "dataset", "path", "test_path", "label_column", "noise", "noise2", "class_map",
                     "heldout", "labels_file", "transition_file", "clusters" } do
  local v = kdf.arg(k, "")
  if v ~= "" then p[k] = v end
end
for _, k in ipairs { "rate", "rate2" } do
  local v = kdf.arg(k, -99.0)
  if v ~= -99 then p[k] = v end
end
local c = kdf.arg("n_classes", 0)
if c > 0 then p.n_classes = c end
local g = kdf.graph { name = "bad-loader" }
local d = g:node("data_loader", p)
g:run {}
print("loaded", d.x:value(), d.labels:value():sum())
