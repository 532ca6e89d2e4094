local kdf = require "kdflow"
local g = kdf.graph { name = "labels" }
local probs = kdf.zeros({ 3, 4 })                       -- N = 3, C = 4
local y = kdf.tensor({ 0, 4, 1 }, "i32")                -- 4 is no class of 4
g:node("test_labels", { name = "lab", probs = probs, labels = y })
-- the engine checks "i32[N] < C" before the node runs
g:run()
print("not reached")
