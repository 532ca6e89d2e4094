#!/bin/sh
# Failures under mpirun: a bad --set fails every rank at once (exit 2, the message);
# a rank failing alone (tests/dist/alone.lua) ends the job while the other waits in a
# collective — promptly, with the failed rank's exit status, not a hang.
#   fail.sh KDFLOW ALONE_LUA MPIRUN [mpirun args...]
set -u
kdflow=$1
alone=$2
shift 2
. "$(dirname "$0")/common.sh" # $tmp, TMPDIR in it
echo "1..2"
"$@" -np 2 "$kdflow" run "$alone" --threads 1 --quiet --set ticks=abc \
  --out "$tmp/a" >/dev/null 2>"$tmp/a.err"
status=$?
if [ "$status" -eq 2 ] && grep -q -- "--set ticks=abc" "$tmp/a.err"; then
  echo "ok 1 - a bad --set: exit 2 and the message"
else
  echo "not ok 1 - exit $status:"; cat "$tmp/a.err"; exit 1
fi
start=$(date +%s)
timeout 60 "$@" -np 2 "$kdflow" run "$alone" --threads 1 --quiet \
  --out "$tmp/b" >/dev/null 2>"$tmp/b.err"
status=$?
took=$(( $(date +%s) - start ))
if [ "$status" -eq 2 ] && grep -q "rank 1 gives up here" "$tmp/b.err" &&
   grep -q '"status" : "running"' "$tmp/b/summary.json"; then
  echo "ok 2 - rank 1 failing alone ends the job in ${took} s (exit 2); rank 0's directory says running"
else
  echo "not ok 2 - exit $status after ${took} s (124: hung):"; cat "$tmp/b.err"; exit 1
fi
