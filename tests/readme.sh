#!/bin/sh
# The README's Lua example runs as printed (from the source root) and flags the rows
# confident learning flags on CIFAR-10. Usage: readme.sh KDFLOW SOURCE_DIR
set -eu
kdflow=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -n '/^```lua/,/^```$/p' "$src/README.md" | sed '1d;$d' > "$tmp/readme.lua"
[ -s "$tmp/readme.lua" ] || { echo "no lua block in README.md"; exit 1; }
cd "$src"
"$kdflow" run "$tmp/readme.lua" --quiet --out "$tmp/run" > "$tmp/out"
cat "$tmp/out"
grep -q "rows flagged:	284" "$tmp/out"
