#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module (each func FuzzXxx in a
# _test.go file) with `go test -fuzz` for a bounded time each, one after the
# other, and fails at the first target that finds a failing input (go test
# then writes it under that package's testdata/fuzz/FuzzXxx/, where it
# becomes a regression test of `go test ./...` once committed).
#
#   scripts/fuzz.sh                 # every target, 20 s each
#   FUZZTIME=2m scripts/fuzz.sh     # longer
#   scripts/fuzz.sh ./http          # the targets of some packages only
#
# The committed corpora (testdata/fuzz) are the seeds; what the fuzzer
# finds on the way stays in the Go build cache ($(go env GOCACHE)/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-20s}
if [ $# -gt 0 ]; then
	dirs=("$@")
else
	mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . | xargs -n1 dirname | sort -u)
fi

n=0
start=$(date +%s)
for dir in "${dirs[@]}"; do
	for target in $(cat "$dir"/*_test.go | grep -E '^func Fuzz[A-Za-z0-9_]*\(' |
		sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort -u); do
		echo "== fuzz $dir $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$dir"
		n=$((n + 1))
	done
done
echo "== fuzz: $n targets, $(($(date +%s) - start)) s, no failing input"
