package provenance

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged/testtool"
)

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

// c2paIngredient is an ingredient as c2pa-rs reads it.
type c2paIngredient struct {
	Label          string `json:"label"` // its assertion's
	Title          string `json:"title"`
	Format         string `json:"format"`
	InstanceID     string `json:"instance_id"`
	Description    string `json:"description"`
	Relationship   string `json:"relationship"`
	ActiveManifest string `json:"active_manifest"`
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
			Ingredients   []c2paIngredient `json:"ingredients"`
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

// ingredientDeltas returns what c2pa-rs found validating the ingredient
// whose assertion is labelled label in the active manifest: the codes of
// success, informational and failure.
func (r *c2paReport) ingredientDeltas(label string) (success, info, failure []string) {
	suffix := "/" + r.Store.ActiveManifest + "/" + labelAssertions + "/" + label
	for _, d := range r.Store.ValidationResults.IngredientDeltas {
		if !strings.HasSuffix(d.IngredientAssertionURI, suffix) {
			continue
		}
		for _, s := range d.ValidationDeltas.Success {
			success = append(success, s.Code)
		}
		for _, s := range d.ValidationDeltas.Informational {
			info = append(info, s.Code)
		}
		for _, s := range d.ValidationDeltas.Failure {
			failure = append(failure, s.Code)
		}
	}
	return success, info, failure
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
	out := testtool.C2PARead(t, mediaType, data, anchors)
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
	exiftool := testtool.Need(t, "exiftool")
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
