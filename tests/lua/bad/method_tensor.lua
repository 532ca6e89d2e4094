local kdf = require "kdflow"
local t = kdf.tensor({ 1, 2, 3 }, "f32")
assert(t[1] == nil, "a number key is not a member: nil, as before")
assert(t.dtype == "f32" and t.rank == 1)
print(t:shpe())
