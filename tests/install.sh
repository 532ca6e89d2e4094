#!/bin/sh
# meson install --destdir, then a plugin built outside the tree two ways (plain cc
# with pkg-config, and the example's own Meson project) runs in a graph with the
# installed kdflow program. Usage: install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
pc=$(find "$root" -name kdflow.pc | head -n 1)
lib=$(find "$root" -name 'libkdflow.so' | head -n 1)
exe=$(find "$root" -path '*/bin/kdflow' | head -n 1)
for f in "$pc" "$lib" "$exe"; do
  [ -n "$f" ] || { echo "not installed: kdflow.pc, libkdflow.so or bin/kdflow"; exit 1; }
done
for h in kdflow.h kdflow-plugin.h tensor.h; do
  [ -n "$(find "$root" -path "*/include/kdflow/$h")" ] || { echo "header $h not installed"; exit 1; }
done
# the installed program carries the install libdir as its run path (a custom prefix
# works without LD_LIBRARY_PATH)
libdir=$(sed -n 's/^libdir=//p' "$pc" | sed "s|\${prefix}|$(sed -n 's/^prefix=//p' "$pc")|")
readelf -d "$exe" | grep -E 'RUNPATH|RPATH' | grep -q "$libdir" ||
  { echo "bin/kdflow has no run path to $libdir:"; readelf -d "$exe" | grep -E 'RUNPATH|RPATH'; exit 1; }
# point the staged kdflow.pc at the staging root (a sysroot would also prefix the
# system's GLib paths)
mkdir -p "$tmp/pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed "s|^prefix=.*|prefix=$root$prefix|" "$pc" > "$tmp/pc/kdflow.pc"
export PKG_CONFIG_PATH=$tmp/pc
export LD_LIBRARY_PATH=$(dirname "$lib")

# 1. plain cc, as docs/plugins.md shows
mkdir -p "$tmp/cc"
cc -shared -fPIC -O2 -std=c11 -o "$tmp/cc/kdf-score_histogram.so" \
  "$src/plugins/score_histogram/score_histogram.c" $(pkg-config --cflags --libs kdflow) -lm
exported=$(nm -D --defined-only "$tmp/cc/kdf-score_histogram.so" | awk '$2 == "T" { print $3 }' | grep -v '^_' || true)
[ "$exported" = "kdf_plugin_score_histogram_describe" ] || { echo "exports: $exported"; exit 1; }
KDFLOW_PLUGIN_PATH=$tmp/cc "$exe" run "$src/tests/lua/score_histogram.lua" --quiet --out "$tmp/run1"

# 2. the example's standalone Meson project
if command -v meson >/dev/null; then
  meson setup "$tmp/mb" "$src/plugins/score_histogram" >/dev/null
  meson compile -C "$tmp/mb" >/dev/null
  KDFLOW_PLUGIN_PATH=$tmp/mb "$exe" run "$src/tests/lua/score_histogram.lua" --quiet --out "$tmp/run2"
fi
echo "installed kdflow runs out-of-tree plugins"
