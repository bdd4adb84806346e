package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// otherEnv lists the IMAGED_* variables read outside the settings table
// (which declares its own): add a name here when code reads a new one with
// getenv. TestKnownEnv checks that every IMAGED_ name in the Go sources and
// in the README is known.
var otherEnv = []string{
	// client commands
	"IMAGED_URL", "IMAGED_TOKEN",
	// provider credentials and options beyond providerEnv
	"IMAGED_SDWEBUI_USERNAME", "IMAGED_SDWEBUI_PASSWORD",
	"IMAGED_COMFYUI_TOKEN", "IMAGED_COMFYUI_WORKFLOWS",
	// object storage (s3.ConfigFromEnv)
	"IMAGED_S3_ENDPOINT", "IMAGED_S3_BUCKET", "IMAGED_S3_REGION", "IMAGED_S3_ACCESS_KEY_ID",
	"IMAGED_S3_SECRET_ACCESS_KEY", "IMAGED_S3_PREFIX", "IMAGED_S3_PATH_STYLE",
	"IMAGED_S3_CREATE_BUCKET", "IMAGED_S3_TIMEOUT",
	"IMAGED_BLOB_FALLBACK",
}

// toolPrefixes are variables of the test and benchmark tools, not of the
// service.
var toolPrefixes = []string{"IMAGED_TEST_", "IMAGED_E2E_", "IMAGED_BENCH_"}

// knownEnv is every IMAGED_* variable imaged reads.
func knownEnv() map[string]bool {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	for _, p := range providerEnv {
		for _, n := range []string{p.key, p.baseURL, p.models} {
			if n != "" {
				known[n] = true
			}
		}
	}
	for _, n := range otherEnv {
		known[n] = true
	}
	return known
}

// environ is os.Environ; tests replace it.
var environ = os.Environ

// unknownEnvWarnings returns one warning per IMAGED_* variable of environ
// that imaged does not read (a typo like IMAGED_QUOTA_IMAGE_PER_DAY), with
// the closest known name when one is near.
func unknownEnvWarnings(environ []string) []string {
	known := knownEnv()
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "IMAGED_") || isToolVar(name) {
			continue
		}
		base := strings.TrimSuffix(name, "_FILE") // secrets from files, see withFileVars
		if known[name] || known[base] {
			continue
		}
		w := fmt.Sprintf("%s is not a variable imaged knows; it is ignored", name)
		if near := closest(base, known); near != "" {
			w += fmt.Sprintf(" (did you mean %s?)", near)
		}
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

func isToolVar(name string) bool {
	for _, p := range toolPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// closest returns the known name nearest to name, if within a few edits.
func closest(name string, known map[string]bool) string {
	best, bestD := "", 4
	for k := range known {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two ASCII names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
