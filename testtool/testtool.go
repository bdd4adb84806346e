// Package testtool finds the outside programs that tests use to check imaged
// independently (exiftool, dwebp, vipsheader, node and the npm packages of
// tools/node, chromium, promtool, Ory Hydra...).
//
// A test that needs one calls Need (or NodeModules); when the program is
// missing the test is skipped with a message, except under
// IMAGED_TEST_REQUIRE_BACKENDS=1 (as in CI, where scripts/install-test-tools.sh
// installs them all), where it fails: a missing install step must not turn
// into a green run that checked nothing.
package testtool

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Required reports whether missing tools and backends fail tests instead of
// skipping them.
func Required() bool { return os.Getenv("IMAGED_TEST_REQUIRE_BACKENDS") == "1" }

// Missing skips t with msg, or fails it when tools are required.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + " (IMAGED_TEST_REQUIRE_BACKENDS=1; scripts/install-test-tools.sh installs it)")
	}
	t.Skip(msg + " (scripts/install-test-tools.sh installs it)")
}

// Need returns the path of the executable name, or skips (fails) t.
func Need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed")
	}
	return p
}

// ModuleRoot is the directory of imaged's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testtool: cannot locate the module root")
	}
	return filepath.Dir(filepath.Dir(file))
}

// NodeModules returns tools/node/node_modules after checking that node and
// each named npm package are installed, or skips (fails) t. Run scripts with
// NODE_PATH set to it (see Node).
func NodeModules(t testing.TB, packages ...string) string {
	t.Helper()
	Need(t, "node")
	dir := filepath.Join(ModuleRoot(t), "tools", "node", "node_modules")
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p), "package.json")); err != nil {
			Missing(t, "npm package "+p+" is not installed in tools/node")
		}
	}
	return dir
}

// Node returns a command running `node script args...` with the npm packages
// of tools/node resolvable from the script, or skips (fails) t when node or a
// package is missing.
func Node(t testing.TB, packages []string, script string, args ...string) *exec.Cmd {
	t.Helper()
	modules := NodeModules(t, packages...)
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	return cmd
}

// C2PARead has c2pa-rs (npm @contentauth/c2pa-wasm, run by node) read the
// C2PA manifest store of data and returns its report as JSON: {"found":
// true, "store": <the reader's JSON>} or {"found": false, "error": ...}.
// anchors, when not "", is a PEM file of trusted roots. It skips (fails) t
// when node or the package is missing.
func C2PARead(t testing.TB, mediaType string, data []byte, anchors string) []byte {
	t.Helper()
	modules := NodeModules(t, "@contentauth/c2pa-wasm")
	f := filepath.Join(t.TempDir(), "asset")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(ModuleRoot(t), "provenance", "testdata", "c2pa-read.mjs"), mediaType, f}
	if anchors != "" {
		args = append(args, anchors)
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "C2PA_WASM="+filepath.Join(modules, "@contentauth", "c2pa-wasm"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node c2pa-read.mjs: %v: %s", err, stderr.String())
	}
	return out
}

// C2PAValidation is C2PARead's verdict on the active manifest: the success
// and failure status codes c2pa-rs gave it. It fails t when no manifest was
// found. raw is the whole report, for more checks.
func C2PAValidation(t testing.TB, mediaType string, data []byte) (success, failure []string, raw []byte) {
	t.Helper()
	raw = C2PARead(t, mediaType, data, "")
	var r struct {
		Found bool   `json:"found"`
		Error string `json:"error"`
		Store struct {
			ValidationResults struct {
				ActiveManifest struct {
					Success, Failure []struct {
						Code string `json:"code"`
					}
				} `json:"activeManifest"`
			} `json:"validation_results"`
		} `json:"store"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("c2pa-read.mjs output: %v: %.500s", err, raw)
	}
	if !r.Found {
		t.Fatalf("c2pa-rs found no manifest: %s", r.Error)
	}
	for _, c := range r.Store.ValidationResults.ActiveManifest.Success {
		success = append(success, c.Code)
	}
	for _, c := range r.Store.ValidationResults.ActiveManifest.Failure {
		failure = append(failure, c.Code)
	}
	return success, failure, raw
}
