package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged/testtool"
)

// TestVariantsCarryTheMarks runs the real binary: the thumbnail of a
// generated image carries the XMP mark (exiftool reads it) and a C2PA
// manifest of its own whose parent is the original's (c2pa-rs validates
// both).
func TestVariantsCarryTheMarks(t *testing.T) {
	t.Parallel()
	exiftool := testtool.Need(t, "exiftool")
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)
	r := s.postJSON(t, "/api/images/generate", token, map[string]any{"prompt": "a lighthouse at dusk"})
	var imgs []struct {
		URL        string            `json:"url"`
		Variants   map[string]string `json:"variants"`
		Provenance struct {
			Manifest string `json:"manifest"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(wantOK(t, r, http.StatusOK).Data, &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("generation answer: %v", err)
	}
	img := imgs[0]
	if img.Variants["thumb"] == "" || img.Provenance.Manifest == "" {
		t.Fatalf("no thumb variant or no manifest: %+v", img)
	}
	thumb := s.get(t, img.Variants["thumb"], "")
	if thumb.Status != http.StatusOK {
		t.Fatalf("thumb: %d %s", thumb.Status, thumb.Body)
	}
	mediaType := thumb.Header.Get("Content-Type")

	p := filepath.Join(t.TempDir(), "thumb")
	os.WriteFile(p, thumb.Body, 0o600)
	out, err := exec.Command(exiftool, "-s3", "-XMP-iptcExt:DigitalSourceType", p).Output()
	if err != nil || strings.TrimSpace(string(out)) != "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" {
		t.Fatalf("exiftool reads %q from the %s thumbnail (%v)", out, mediaType, err)
	}

	success, failure, raw := testtool.C2PAValidation(t, mediaType, thumb.Body)
	if !slices.Contains(success, "claimSignature.validated") || !slices.Contains(success, "assertion.dataHash.match") ||
		!slices.Equal(failure, []string{"signingCredential.untrusted"}) {
		t.Fatalf("c2pa-rs on the thumbnail: success %v, failure %v", success, failure)
	}
	var rep struct {
		Store struct {
			ActiveManifest string `json:"active_manifest"`
			Manifests      map[string]struct {
				Ingredients []struct {
					Relationship   string `json:"relationship"`
					ActiveManifest string `json:"active_manifest"`
				} `json:"ingredients"`
			} `json:"manifests"`
		} `json:"store"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	ings := rep.Store.Manifests[rep.Store.ActiveManifest].Ingredients
	if rep.Store.ActiveManifest == img.Provenance.Manifest || len(ings) != 1 || ings[0].Relationship != "parentOf" || ings[0].ActiveManifest != img.Provenance.Manifest {
		t.Fatalf("thumbnail manifest %s with ingredients %+v; the original's is %s", rep.Store.ActiveManifest, ings, img.Provenance.Manifest)
	}
}
