#!/bin/sh
# Data-parallel training equals one process: tests/dist/train.lua run alone and under
# `mpirun -np NP`; every output (the trained student's probabilities on every row, the
# training pass's logits, per-sample losses, features and selections, a jointly trained
# pair's logits) within TOL of the one-process run. The gradient of a batch is summed
# over the ranks in another order than one process sums it, so the runs agree to float
# rounding, not bit for bit.
#   train.sh KDFLOW SCRIPT NP TOL MPIRUN [mpirun args...]
# (TOL 0: equal to the last printed digit, for what is exact under mpirun)
set -eu
kdflow=$1
script=$2
np=$3
tol=$4
shift 4
. "$(dirname "$0")/common.sh" # $tmp, TMPDIR in it

"$kdflow" run "$script" --threads 1 --quiet --out "$tmp/one" >/dev/null 2>"$tmp/one.err" ||
  { cat "$tmp/one.err"; echo "not ok - one process failed"; exit 1; }
"$@" -np "$np" "$kdflow" run "$script" --threads 1 --quiet --out "$tmp/many" >"$tmp/many.out" \
  2>"$tmp/many.err" || { cat "$tmp/many.err"; echo "not ok - mpirun -np $np failed"; exit 1; }

echo "1..4"
if grep -q "\"ranks\" : $np" "$tmp/many/summary.json" &&
   [ "$(cat "$tmp/many/ranks.txt")" = "rank 0 of $np" ] && [ "$(cat "$tmp/one/ranks.txt")" = "rank 0 of 1" ]; then
  echo "ok 1 - summary.json says $np ranks, rank 0 of $np wrote the run directory"
else
  echo "not ok 1 - ranks: $(cat "$tmp/many/ranks.txt" "$tmp/one/ranks.txt")"; cat "$tmp/many/summary.json"; exit 1
fi
n1=$(wc -l <"$tmp/one/values.txt")
n2=$(wc -l <"$tmp/many/values.txt")
if [ "$n1" -gt 1000 ] && [ "$n1" -eq "$n2" ]; then
  echo "ok 2 - $n1 values from each run"
else
  echo "not ok 2 - $n1 values from one process, $n2 from $np ranks"
  exit 1
fi
# the largest difference per output
awk -v tol="$tol" '
  NR == FNR { a[$1 " " $2] = $3; next }
  { k = $1 " " $2; if (!(k in a)) { print "missing " k; bad = 1; next }
    d = $3 - a[k]; if (d < 0) d = -d; if (d > m[$1]) m[$1] = d; seen[$1] = 1 }
  END { for (n in seen) { printf "# %-14s max |difference| %.3g\n", n, m[n]; if (m[n] > tol) bad = 1 }
        exit bad }' "$tmp/one/values.txt" "$tmp/many/values.txt" >"$tmp/diff" && ok=1 || ok=0
cat "$tmp/diff"
if [ "$ok" = 1 ]; then
  echo "ok 3 - every output within $tol of one process"
else
  echo "not ok 3 - an output differs from one process by more than $tol"
  exit 1
fi
# rank 0 alone wrote the run directory and the results; the other ranks' went nowhere
if [ ! -s "$tmp/many.out" ] && ! grep -q "run directory" "$tmp/many.err"; then
  echo "ok 4 - ranks silent with --quiet, results only in the run directory"
else
  echo "not ok 4 - output from the ranks:"; cat "$tmp/many.out" "$tmp/many.err"
  exit 1
fi
