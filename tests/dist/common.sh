# tests/dist/common.sh, sourced by the tests/dist scripts: a scratch directory $tmp,
# removed on exit, with TMPDIR in it, so the ranks' private directories (a killed rank
# leaves its own) go there too. A script that needs more done on exit sets its own
# trap after sourcing this (it must remove "$tmp" too).
tmp=$(mktemp -d)
export TMPDIR="$tmp"
trap 'rm -rf "$tmp"' EXIT
