package provenance

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// missing skips the test when an external tool is absent, or fails it under
// IMAGED_TEST_REQUIRE_BACKENDS=1 (as in CI).
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("IMAGED_TEST_REQUIRE_BACKENDS") == "1" {
		t.Fatalf("%s is missing (IMAGED_TEST_REQUIRE_BACKENDS=1)", what)
	}
	t.Skipf("%s is missing", what)
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name)
	}
	return p
}

// c2paWasmDir finds @contentauth/c2pa-wasm: in the repository's
// tools/node/node_modules (npm ci --prefix tools/node), or under NODE_PATH.
func c2paWasmDir(t *testing.T) string {
	t.Helper()
	dirs := []string{filepath.Join("..", "tools", "node", "node_modules")}
	dirs = append(dirs, filepath.SplitList(os.Getenv("NODE_PATH"))...)
	for _, d := range dirs {
		p := filepath.Join(d, "@contentauth", "c2pa-wasm")
		if _, err := os.Stat(filepath.Join(p, "pkg", "c2pa_bg.wasm")); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	missing(t, "@contentauth/c2pa-wasm (npm ci --prefix tools/node)")
	return ""
}

type c2paStatus struct {
	Code        string `json:"code"`
	URL         string `json:"url"`
	Explanation string `json:"explanation"`
}

type c2paCodes struct {
	Success       []c2paStatus `json:"success"`
	Informational []c2paStatus `json:"informational"`
	Failure       []c2paStatus `json:"failure"`
}

// c2paReport is the part of c2pa-rs's reading the tests check.
type c2paReport struct {
	Found bool   `json:"found"`
	Error string `json:"error"`
	Store struct {
		ActiveManifest string `json:"active_manifest"`
		Manifests      map[string]struct {
			ClaimGenerator []map[string]any `json:"claim_generator_info"`
			Assertions     []struct {
				Label string          `json:"label"`
				Data  json.RawMessage `json:"data"`
			} `json:"assertions"`
			Ingredients []struct {
				Relationship   string `json:"relationship"`
				ActiveManifest string `json:"active_manifest"`
			} `json:"ingredients"`
			SignatureInfo struct {
				Alg        string `json:"alg"`
				Issuer     string `json:"issuer"`
				CommonName string `json:"common_name"`
			} `json:"signature_info"`
			ClaimVersion int `json:"claim_version"`
		} `json:"manifests"`
		ValidationResults struct {
			ActiveManifest   c2paCodes `json:"activeManifest"`
			IngredientDeltas []struct {
				IngredientAssertionURI string    `json:"ingredientAssertionURI"`
				ValidationDeltas       c2paCodes `json:"validationDeltas"`
			} `json:"ingredientDeltas"`
		} `json:"validation_results"`
		ValidationState string `json:"validation_state"`
	} `json:"store"`
}

func (r *c2paReport) codes() (success, failure []string) {
	for _, s := range r.Store.ValidationResults.ActiveManifest.Success {
		success = append(success, s.Code)
	}
	for _, s := range r.Store.ValidationResults.ActiveManifest.Failure {
		failure = append(failure, s.Code)
	}
	return success, failure
}

// c2paRead has c2pa-rs read data, trusting the roots in anchors ("" for
// none).
func c2paRead(t *testing.T, mediaType string, data []byte, anchors string) *c2paReport {
	t.Helper()
	node := needTool(t, "node")
	pkg := c2paWasmDir(t)
	f := filepath.Join(t.TempDir(), "asset")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join("testdata", "c2pa-read.mjs"), mediaType, f}
	if anchors != "" {
		args = append(args, anchors)
	}
	cmd := exec.Command(node, args...)
	cmd.Env = append(os.Environ(), "C2PA_WASM="+pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node c2pa-read.mjs: %v: %s", err, stderr.String())
	}
	var r c2paReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("c2pa-read.mjs output: %v: %.500s", err, out)
	}
	return &r
}

// exiftoolTag returns the value exiftool reads for tag (e.g.
// XMP-iptcExt:DigitalSourceType) in data.
func exiftoolTag(t *testing.T, data []byte, tag string) string {
	t.Helper()
	exiftool := needTool(t, "exiftool")
	f := filepath.Join(t.TempDir(), "asset")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exiftool, "-s3", "-"+tag, f).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}
