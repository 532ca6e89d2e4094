#!/bin/sh
# A rank killed mid-run (SIGKILL) fails the whole job: mpirun exits non-zero and says
# which rank died; rank 0's run directory is left as a killed run looks (summary.json
# "running", never "ok") and holds no torn file (every file is written whole through a
# temporary name and a rename, so each JSON file parses). The killed rank's private
# directory, which it could not remove, is removed by the next job's rank on this host.
#   killed.sh KDFLOW SCRIPT MPIRUN [mpirun args...]
set -u
kdflow=$1
script=$2
shift 2
. "$(dirname "$0")/common.sh" # $tmp, TMPDIR in it
trap 'cat "$tmp/err" >&2 2>/dev/null; rm -rf "$tmp"' EXIT # the job's messages too
echo "1..5"
"$@" -np 2 "$kdflow" run "$script" --threads 1 --quiet --out "$tmp/run" >"$tmp/out" 2>"$tmp/err" &
job=$!
# wait for both ranks to be training (the checkpoint of a first tick), then kill rank 1
victim=""
for _ in $(seq 1 600); do
  if [ -f "$tmp/run/st.safetensors" ]; then
    for p in $(pgrep -f -- "--out $tmp/run" || true); do
      if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
        victim=$p
      fi
    done
    [ -n "$victim" ] && break
  fi
  sleep 0.1
done
if [ -z "$victim" ]; then
  echo "not ok 1 - rank 1 never started training"; kill "$job" 2>/dev/null; exit 1
fi
kill -KILL "$victim"
# the job must end by itself, promptly
for _ in $(seq 1 300); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  echo "not ok 1 - the job still runs 30 s after rank 1 was killed"; kill -KILL "$job"; exit 1
fi
wait "$job"
status=$?
[ "$status" -ne 0 ] && echo "ok 1 - the job failed (exit $status)" ||
  { echo "not ok 1 - the job exited 0 with a rank killed"; exit 1; }
if grep -q "rank 1" "$tmp/err" && grep -q -i "signal 9\|killed" "$tmp/err"; then
  echo "ok 2 - the message names the rank and the signal"
else
  echo "not ok 2 - no message naming rank 1's death:"; cat "$tmp/err"; exit 1
fi
grep -q '"status" : "running"' "$tmp/run/summary.json" &&
  echo "ok 3 - summary.json still says running (a killed run is recognisable)" ||
  { echo "not ok 3 - summary.json:"; cat "$tmp/run/summary.json"; exit 1; }
bad=0
for f in "$tmp/run"/*.json "$tmp/run"/*.jsonl; do
  [ -f "$f" ] || continue
  case "$f" in
    *.jsonl) while IFS= read -r line; do
               printf '%s' "$line" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null || bad=1
             done <"$f"
             # a metrics line is written whole: the file ends with a newline
             [ -z "$(tail -c 1 "$f")" ] || bad=1 ;;
    *) python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" 2>/dev/null || bad=1 ;;
  esac
done
[ "$bad" = 0 ] && echo "ok 4 - every JSON file of the run directory parses" ||
  { echo "not ok 4 - a torn file in the run directory"; ls -la "$tmp/run"; exit 1; }
# the killed rank's private directory is left; the next job's ranks remove it
if ! ls -d "$tmp"/kdflow-rank-*-"$victim"-* >/dev/null 2>&1; then
  echo "not ok 5 - no private directory of the killed rank (pid $victim) in $tmp:"; ls -la "$tmp"; exit 1
fi
# one of a process still running (this shell) must stay
host=$(hostname | tr -c 'A-Za-z0-9.\n' '_')
mkdir "$tmp/kdflow-rank-$host-$$-live"
cat >"$tmp/quick.lua" <<'LUA'
local kdf = require "kdflow"
local g = kdf.graph { name = "quick", seed = 1 }
local ce = g:node("ce_loss", { targets = kdf.tensor({ 0, 1, 0, 1 }, "i32") })
g:node("student_update", { x = kdf.tensor({ { 0 }, { 1 }, { 0 }, { 1 } }, "f32"),
                            arch = "mlp:1-4-2", losses = { ce.loss }, batch = 2 })
g:run { ticks = 1 }
LUA
if ! "$@" -np 2 "$kdflow" run "$tmp/quick.lua" --threads 1 --quiet --out "$tmp/run2" \
     >"$tmp/out2" 2>"$tmp/err2"; then
  echo "not ok 5 - the next job failed:"; cat "$tmp/err2"; exit 1
fi
left=$(cd "$tmp" && ls -d kdflow-rank-* 2>/dev/null)
if [ "$left" != "kdflow-rank-$host-$$-live" ]; then
  echo "not ok 5 - after the next job, private directories: ${left:-none} (want only the live one)"
  exit 1
fi
echo "ok 5 - the killed rank's private directory is removed by the next job's rank, a live one kept"
