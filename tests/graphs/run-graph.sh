#!/bin/sh
# run-graph.sh KDFLOW GRAPH [--check GRAPH_NAME:METRIC>=FLOOR]... [--set k=v]...
#
# Runs a pipeline on a small subset (2000 training rows, 500 test rows, 5 epochs unless
# a --set overrides) and checks
#   * its numbers: each --check reads METRIC from the last metrics.jsonl line of the
#     graph GRAPH_NAME (the values of the run's final tick) and fails unless it is at
#     least FLOOR (test accuracy above chance by a margin, detection F1 above the F1 of
#     flagging everything); a metric that is missing fails too;
#   * that its run directory holds what a run leaves (ARCHITECTURE §7): the annotated
#     graph.dot, metrics.jsonl, summary.json saying ok, per-sample .npy files, a
#     checkpoint and the pipeline's result-*.json.
# Exit 77 (skip) without Debian's Fashion-MNIST.
kdflow=$1 graph=$2
shift 2
checks=
while [ $# -gt 0 ] && [ "$1" = --check ]; do
  checks="$checks $2"
  shift 2
done
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "skip: no dataset-fashion-mnist"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$kdflow" run "$graph" --quiet --threads 1 --out "$dir/run" \
  --set subset=2000 --set test_subset=500 --set epochs=5 "$@" || exit 1
for f in graph.dot metrics.jsonl summary.json; do
  [ -s "$dir/run/$f" ] || { echo "missing $f in the run directory"; ls -l "$dir/run"; exit 1; }
done
ls "$dir/run"/*.npy >/dev/null 2>&1 || { echo "no per-sample .npy in the run directory"; ls "$dir/run"; exit 1; }
ls "$dir/run"/*.safetensors >/dev/null 2>&1 || { echo "no checkpoint in the run directory"; ls "$dir/run"; exit 1; }
ls "$dir/run"/result-*.json >/dev/null 2>&1 || { echo "no result-*.json in the run directory"; ls "$dir/run"; exit 1; }
grep -q '"status" : "ok"' "$dir/run/summary.json" || { echo "summary.json does not say ok"; exit 1; }
grep -q 'label="f32\[' "$dir/run/graph.dot" || { echo "graph.dot is not annotated with shapes"; exit 1; }
echo "run directory complete"

[ -n "$checks" ] || { echo "no --check: a pipeline test must check its numbers"; exit 1; }
failed=0
for c in $checks; do
  g=${c%%:*} rest=${c#*:}
  key=${rest%%>=*} floor=${rest#*>=}
  # metrics.jsonl: one compact JSON object per tick, {"graph":"NAME","tick":T,...}
  line=$(grep -F "{\"graph\":\"$g\"," "$dir/run/metrics.jsonl" | tail -n 1)
  [ -n "$line" ] || { echo "FAIL $c: no metrics.jsonl line for graph '$g'"; failed=1; continue; }
  key_re=$(printf '%s' "$key" | sed 's/[.]/\\./g')
  val=$(printf '%s\n' "$line" | grep -o "\"$key_re\":[-+0-9.eE]*" | head -n 1 | cut -d: -f2)
  [ -n "$val" ] || { echo "FAIL $c: graph '$g' has no metric '$key' in its last line"; failed=1; continue; }
  if awk -v v="$val" -v f="$floor" 'BEGIN { exit !(v + 0 >= f + 0) }'; then
    echo "ok   $g: $key = $val (floor $floor)"
  else
    echo "FAIL $g: $key = $val, below the floor $floor"
    failed=1
  fi
done
exit $failed
