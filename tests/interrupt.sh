#!/bin/sh
# Ctrl-C (SIGINT) stops a run at the next node boundary: exit status 1, "interrupted"
# on stderr, and the run directory keeps the finished ticks and says what happened.
# Usage: interrupt.sh KDFLOW SCRIPT
set -u
kdflow=$1 script=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kdflow" run "$script" --quiet --out "$tmp/run" 2>"$tmp/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
status=$?
cat "$tmp/err"
[ $status -eq 1 ] || { echo "exit status $status, expected 1"; exit 1; }
grep -q "interrupted" "$tmp/err" || { echo "no 'interrupted' message"; exit 1; }
lines=$(wc -l < "$tmp/run/metrics.jsonl")
[ "$lines" -ge 1 ] && [ "$lines" -lt 100 ] || { echo "metrics.jsonl has $lines lines"; exit 1; }
grep -q '"status" : "failed"' "$tmp/run/summary.json" || { echo "summary.json does not say failed"; exit 1; }
echo "interrupted after $lines ticks"
