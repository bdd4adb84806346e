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

	active, ings := c2paIngredients(t, "thumbnail", mediaType, thumb.Body)
	if active == img.Provenance.Manifest || len(ings) != 1 || ings[0].Relationship != "parentOf" || ings[0].ActiveManifest != img.Provenance.Manifest {
		t.Fatalf("thumbnail manifest %s with ingredients %+v; the original's is %s", active, ings, img.Provenance.Manifest)
	}
}

type c2paIngredient struct {
	Relationship   string `json:"relationship"`
	ActiveManifest string `json:"active_manifest"`
}

// c2paIngredients has c2pa-rs validate the manifest of data (what, for
// the messages) and returns the label of its active manifest and the
// ingredients that manifest names.
func c2paIngredients(t *testing.T, what, mediaType string, data []byte) (active string, ings []c2paIngredient) {
	t.Helper()
	success, failure, raw := testtool.C2PAValidation(t, mediaType, data)
	if !slices.Contains(success, "claimSignature.validated") || !slices.Contains(success, "assertion.dataHash.match") ||
		!slices.Equal(failure, []string{"signingCredential.untrusted"}) {
		t.Fatalf("c2pa-rs on the %s: success %v, failure %v", what, success, failure)
	}
	var rep struct {
		Store struct {
			ActiveManifest string `json:"active_manifest"`
			Manifests      map[string]struct {
				Ingredients []c2paIngredient `json:"ingredients"`
			} `json:"manifests"`
		} `json:"store"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Store.ActiveManifest, rep.Store.Manifests[rep.Store.ActiveManifest].Ingredients
}

// TestEditsNameTheirSource runs the real binary: the edit of a generated
// image carries a manifest, validated by c2pa-rs, whose parentOf
// ingredient is the generated image's manifest, as its provenance says.
func TestEditsNameTheirSource(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)
	type marked struct {
		ID         string `json:"id"`
		URL        string `json:"url"`
		Provenance struct {
			DigitalSourceType string `json:"digitalSourceType"`
			Manifest          string `json:"manifest"`
			Ingredient        string `json:"ingredient"`
		} `json:"provenance"`
	}
	var gen, edits []marked
	r := s.postJSON(t, "/api/images/generate", token, map[string]any{"prompt": "a lighthouse at dusk"})
	if err := json.Unmarshal(wantOK(t, r, http.StatusOK).Data, &gen); err != nil || len(gen) != 1 || gen[0].Provenance.Manifest == "" {
		t.Fatalf("generation answer: %v, %+v", err, gen)
	}
	r = s.postJSON(t, "/api/images/"+gen[0].ID+"/edit", token, map[string]any{"prompt": "in winter"})
	if err := json.Unmarshal(wantOK(t, r, http.StatusOK).Data, &edits); err != nil || len(edits) != 1 {
		t.Fatalf("edit answer: %v, %+v", err, edits)
	}
	edit := edits[0]
	if p := edit.Provenance; p.DigitalSourceType != "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia" ||
		p.Manifest == "" || p.Ingredient != gen[0].Provenance.Manifest {
		t.Fatalf("edit provenance %+v; the source's manifest is %s", p, gen[0].Provenance.Manifest)
	}
	got := s.get(t, edit.URL, "")
	if got.Status != http.StatusOK {
		t.Fatalf("edit: %d %s", got.Status, got.Body)
	}
	active, ings := c2paIngredients(t, "edit", got.Header.Get("Content-Type"), got.Body)
	if active != edit.Provenance.Manifest || len(ings) != 1 || ings[0].Relationship != "parentOf" || ings[0].ActiveManifest != gen[0].Provenance.Manifest {
		t.Fatalf("edit manifest %s with ingredients %+v; the source's is %s", active, ings, gen[0].Provenance.Manifest)
	}
}
