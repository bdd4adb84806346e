package main

import (
	"fmt"
	"os"
	"strings"
)

// maxSecretFile bounds what a *_FILE variable may point at.
const maxSecretFile = 64 << 10

// withFileVars returns a getenv in which every IMAGED_X (and AWS_X) that is
// unset but has IMAGED_X_FILE (AWS_X_FILE) set reads its value from that
// file, trailing newline trimmed: the way container platforms hand over
// secrets (Docker and Kubernetes secrets mounted as files), so keys need not
// sit in the environment. environ is os.Environ's form.
func withFileVars(getenv func(string) string, environ []string) (func(string) string, error) {
	fromFiles := map[string]string{}
	for _, kv := range environ {
		name, path, _ := strings.Cut(kv, "=")
		base, ok := strings.CutSuffix(name, "_FILE")
		if !ok || path == "" || !(strings.HasPrefix(name, "IMAGED_") || strings.HasPrefix(name, "AWS_")) {
			continue
		}
		if getenv(base) != "" {
			return nil, fmt.Errorf("both %s and %s are set; keep one", base, name)
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if info.Size() > maxSecretFile {
			return nil, fmt.Errorf("%s: %s is larger than %d bytes", name, path, maxSecretFile)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fromFiles[base] = strings.TrimRight(string(b), "\r\n")
	}
	return func(name string) string {
		if v, ok := fromFiles[name]; ok {
			return v
		}
		return getenv(name)
	}, nil
}
