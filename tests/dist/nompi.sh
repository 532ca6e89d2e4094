#!/bin/sh
# A kdflow built without MPI, started as two ranks by mpirun: each says so and exits 2
# (not two runs into one directory).
#   nompi.sh KDFLOW MPIRUN
set -u
kdflow=$1
mpirun=$2
echo "1..1"
out=$("$mpirun" --allow-run-as-root --oversubscribe -np 2 "$kdflow" --version 2>&1)
status=$?
if [ "$status" -ne 0 ] && printf '%s' "$out" | grep -q "built without MPI"; then
  echo "ok 1 - refused: exit $status"
else
  echo "not ok 1 - exit $status:"; printf '%s\n' "$out"; exit 1
fi
