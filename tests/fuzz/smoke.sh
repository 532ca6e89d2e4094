#!/bin/sh
# smoke.sh HARNESS SEEDS RUNS: a short libFuzzer run of HARNESS from the seed corpus
# SEEDS (read only: new inputs go to a scratch directory); fails on any crash, leak or
# sanitizer report.
harness=$1 seeds=$2 runs=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
exec "$harness" -runs="$runs" -seed=1 -max_len=4096 -rss_limit_mb=2048 \
  -artifact_prefix="$dir/" "$dir" "$seeds"
