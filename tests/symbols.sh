#!/bin/sh
# The library exports exactly what the public headers declare with KDF_API: nothing
# private leaks into the ABI, and nothing declared is missing. Usage: symbols.sh LIB INCLUDEDIR
set -eu
lib=$1
inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# declared: the name before the first '(' after KDF_API (the name may sit on the line
# of its return type, which is always the KDF_API line)
grep -h 'KDF_API' "$inc"/*.h | grep -v '#define KDF_API' |
  sed -n 's/.*[ *]\(kdf_[a-z0-9_]*\) *(.*/\1/p' | sort -u > "$tmp/declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
status=0
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$extra" ]; then
  echo "exported but not declared with KDF_API in $inc:"
  echo "$extra" | sed 's/^/  /'
  status=1
fi
if [ -n "$missing" ]; then
  echo "declared with KDF_API but not exported by $lib:"
  echo "$missing" | sed 's/^/  /'
  status=1
fi
echo "$(wc -l < "$tmp/exported") symbols exported, $(wc -l < "$tmp/declared") declared"
exit $status
