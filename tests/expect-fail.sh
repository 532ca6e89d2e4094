#!/bin/sh
# expect-fail.sh KDFLOW SCRIPT CASE MESSAGE: `kdflow run SCRIPT --set case=CASE` must exit
# 2 with MESSAGE on stderr, and without a crash or a sanitizer report.
kdflow=$1 script=$2 case=$3 message=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$kdflow" run "$script" --quiet --set case="$case" --out "$dir/run" 2>"$dir/err" >"$dir/out"
status=$?
if [ "$status" -ne 2 ]; then
  echo "case $case: exit status $status, expected 2"; cat "$dir/err"; exit 1
fi
if ! grep -qF -- "$message" "$dir/err"; then
  echo "case $case: expected \"$message\" in:"; cat "$dir/err"; exit 1
fi
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|CRITICAL" "$dir/err"; then
  echo "case $case: sanitizer or GLib report:"; cat "$dir/err"; exit 1
fi
echo "case $case: exit 2, message found"
