#!/bin/sh
# Distributed detection at graph level: SCRIPT run by `kdflow run` alone, then under
# `mpirun -np N` for each N in NPS; every file the runs write besides the logs
# (the .npy of evaluate, OUT.txt: every detection output) must be byte for byte the
# one-process file. Usage: graph-check.sh KDFLOW SCRIPT "NPS" MPIRUN [MPIRUN ARGS...]
set -eu
kdflow=$1
script=$2
nps=$3
shift 3
. "$(dirname "$0")/../common.sh" # $tmp, TMPDIR in it
"$kdflow" run "$script" --threads 1 --quiet --out "$tmp/one" > "$tmp/one.log" 2>&1 ||
  { cat "$tmp/one.log"; echo "one process failed"; exit 1; }
files=$(cd "$tmp/one" && ls | grep -E '\.(npy|txt)$' | sort)
count=$(echo "$files" | grep -c .)
if [ "$count" -lt 8 ]; then
  echo "expected the detection outputs in $tmp/one, found $count files: $files"
  exit 1
fi
status=0
for np in $nps; do
  if ! "$@" -np "$np" "$kdflow" run "$script" --threads 1 --quiet --out "$tmp/np$np" \
       > "$tmp/np$np.log" 2>&1; then
    cat "$tmp/np$np.log"
    echo "not ok: mpirun -np $np failed"
    exit 1
  fi
  for f in $files; do
    if ! cmp -s "$tmp/one/$f" "$tmp/np$np/$f"; then
      echo "not ok: -np $np: $f differs from one process"
      cmp "$tmp/one/$f" "$tmp/np$np/$f" || true
      status=1
    fi
  done
  [ $status -eq 0 ] && echo "ok: -np $np: $count files identical to one process ($(echo $files | tr '\n' ' '))"
done
exit $status
