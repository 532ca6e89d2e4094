-- A megabyte-long kind or param name: refused at once, without a "did you mean" search
-- (its quadratic edit distance, once per distance and candidate, ran for hours; found by
-- tests/fuzz/fuzz-graph).
local kdf = require "kdflow"
local g = kdf.graph { name = "bad" }
local long = string.rep("q", 1 << 20)
local ok, err = pcall(g.node, g, long, {})
assert(not ok and tostring(err):find("unknown node kind 'qqqq"), tostring(err):sub(1, 200))
g:node("test_source", { [long:sub(1, 200) .. "x"] = 1, n = 3 })
