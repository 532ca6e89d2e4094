#!/bin/sh
# run-graph.sh KDFLOW GRAPH [--set k=v]...: runs a pipeline on a tiny subset and checks
# that its run directory holds what a run leaves (ARCHITECTURE §7): the annotated
# graph.dot, metrics.jsonl, summary.json, per-sample .npy files, a checkpoint and the
# pipeline's result-*.json. Exit 77 (skip) without Debian's Fashion-MNIST.
kdflow=$1 graph=$2
shift 2
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "skip: no dataset-fashion-mnist"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$kdflow" run "$graph" --quiet --threads 1 --out "$dir/run" \
  --set subset=400 --set test_subset=200 --set epochs=2 "$@" || exit 1
for f in graph.dot metrics.jsonl summary.json; do
  [ -s "$dir/run/$f" ] || { echo "missing $f in the run directory"; ls -l "$dir/run"; exit 1; }
done
ls "$dir/run"/*.npy >/dev/null 2>&1 || { echo "no per-sample .npy in the run directory"; ls "$dir/run"; exit 1; }
ls "$dir/run"/*.safetensors >/dev/null 2>&1 || { echo "no checkpoint in the run directory"; ls "$dir/run"; exit 1; }
ls "$dir/run"/result-*.json >/dev/null 2>&1 || { echo "no result-*.json in the run directory"; ls "$dir/run"; exit 1; }
grep -q '"status" : "ok"' "$dir/run/summary.json" || { echo "summary.json does not say ok"; exit 1; }
grep -q 'label="f32\[' "$dir/run/graph.dot" || { echo "graph.dot is not annotated with shapes"; exit 1; }
echo "run directory complete"
