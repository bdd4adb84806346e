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
#
# Go 1.26's fuzzing coordinator can end a run that found nothing with a bare
# "context deadline exceeded" at the -fuzztime boundary, on a loaded machine
# (golang/go#75804, fixed in Go 1.27). A failure counts when go test wrote a
# failing input or failed any other way; that one alone is reported as the
# known race and the target passes.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-20s}
if [ $# -gt 0 ]; then
	dirs=("$@")
else
	mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . | xargs -n1 dirname | sort -u)
fi

# inputs prints how many inputs the corpus directory $1 holds.
inputs() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }

n=0
start=$(date +%s)
for dir in "${dirs[@]}"; do
	for target in $(cat "$dir"/*_test.go | grep -E '^func Fuzz[A-Za-z0-9_]*\(' |
		sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort -u); do
		echo "== fuzz $dir $target ($FUZZTIME)"
		corpus="$dir/testdata/fuzz/$target"
		before=$(inputs "$corpus")
		log=$(mktemp)
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$dir" 2>&1 | tee "$log"; then
			after=$(inputs "$corpus")
			if [ "$after" -eq "$before" ] && grep -qx $'    context deadline exceeded' "$log" &&
				[ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ]; then
				echo "== fuzz $dir $target: no failing input; the run ended with Go's fuzztime race (golang/go#75804), not a failure"
			else
				rm -f "$log"
				exit 1
			fi
		fi
		rm -f "$log"
		n=$((n + 1))
	done
done
echo "== fuzz: $n targets, $(($(date +%s) - start)) s, no failing input"
