#!/bin/sh
# Ctrl-C, sent by this harness as SIGINT, stops a run promptly in every thread mode:
# long kernels check between mini-batches, a Lua debug hook stops Lua loops, and a
# second Ctrl-C exits at once with status 130.
# Usage: cancel.sh KDFLOW SCRIPT CASE [ARG...]   (ARGs go to `kdflow run`)
#   CASE  once-T     one SIGINT to SCRIPT run with --threads T: exit status 1,
#                    "interrupted" on stderr, within BOUND seconds
#         twice      a first SIGINT that the script swallows, then a second: status 130
# The bound (KDF_CANCEL_BOUND, default 20 s) is generous for a loaded 2-core machine
# and a sanitized build; the promise is 0.2 s, measured by bench/cancel/run. Without
# the checks these scripts run for minutes or forever (the meson timeout fails them).
set -u
kdflow=$1 script=$2 case=$3
shift 3
bound=${KDF_CANCEL_BOUND:-20}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$tmp"' EXIT
threads=1
case $case in once-*) threads=${case#once-} ;; esac
"$kdflow" run "$script" --quiet --threads "$threads" --out "$tmp/run" "$@" 2>"$tmp/err" &
pid=$!
# wait for the script to reach its long part (up to 60 s: sanitized builds start slowly)
i=0
until grep -q '^ready' "$tmp/err"; do
  i=$((i + 1))
  [ $i -le 600 ] || { echo "script never got ready"; cat "$tmp/err"; exit 1; }
  kill -0 $pid 2>/dev/null || { echo "script ended before it got ready"; cat "$tmp/err"; exit 1; }
  sleep 0.1
done
sleep 1 # into the loop or the epoch
now () { date +%s.%N; }
if [ "$case" = twice ]; then
  kill -INT $pid
  sleep 1
  kill -0 $pid 2>/dev/null || { echo "the script did not swallow the first interrupt"; cat "$tmp/err"; exit 1; }
fi
t0=$(now)
kill -INT $pid
# poll for the exit, then reap it
while kill -0 $pid 2>/dev/null; do
  if awk -v a="$(now)" -v b="$t0" -v c="$bound" 'BEGIN { exit !(a - b > c) }'; then
    echo "still running $bound s after SIGINT"; cat "$tmp/err"; exit 1
  fi
  # a zombie counts as exited
  [ "$(ps -o stat= -p $pid 2>/dev/null | cut -c1)" = Z ] && break
  sleep 0.01
done
wait $pid
status=$?
pid=
latency=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
cat "$tmp/err"
if [ "$case" = twice ]; then
  [ $status -eq 130 ] || { echo "exit status $status after a second SIGINT, expected 130"; exit 1; }
else
  [ $status -eq 1 ] || { echo "exit status $status, expected 1"; exit 1; }
  grep -q "interrupted\|cancelled" "$tmp/err" || { echo "no 'interrupted' message"; exit 1; }
fi
echo "exited $latency s after SIGINT (bound $bound s)"
