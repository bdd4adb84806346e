package provenance

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/webp"

	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/testtool"
)

func testImage() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.NRGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return img
}

type sample struct {
	name   string
	format container.Format
	data   []byte
}

// samples are the formats providers return: PNG and JPEG from the
// standard library, lossy (VP8) and lossless (VP8L) WebP from cwebp.
func samples(t *testing.T) []sample {
	t.Helper()
	var pb, jb bytes.Buffer
	if err := png.Encode(&pb, testImage()); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jb, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	out := []sample{{"png", container.PNG, pb.Bytes()}, {"jpeg", container.JPEG, jb.Bytes()}}
	cwebp := testtool.Need(t, "cwebp")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.png")
	os.WriteFile(src, pb.Bytes(), 0o644)
	for _, w := range []struct{ name, flag string }{{"webp-lossy", "-q"}, {"webp-lossless", "-lossless"}} {
		args := []string{"-quiet", src, "-o", filepath.Join(dir, w.name)}
		if w.flag == "-q" {
			args = append([]string{"-q", "80"}, args...)
		} else {
			args = append([]string{"-lossless"}, args...)
		}
		if b, err := exec.Command(cwebp, args...).CombinedOutput(); err != nil {
			t.Fatalf("cwebp: %v: %s", err, b)
		}
		b, _ := os.ReadFile(filepath.Join(dir, w.name))
		out = append(out, sample{w.name, container.WebP, b})
	}
	return out
}

var (
	devOnce  sync.Once
	devDir   string
	devCreds *Credentials
)

// testCredentials are development credentials made once per test run.
func testCredentials(t *testing.T) (*Credentials, string) {
	t.Helper()
	devOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imaged-c2pa-*")
		if err != nil {
			panic(err)
		}
		devDir = dir
		if devCreds, err = DevelopmentCredentials(dir); err != nil {
			panic(err)
		}
	})
	return devCreds, filepath.Join(devDir, devCAFile)
}

var testTime = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func testMarker(t *testing.T) *Marker {
	creds, _ := testCredentials(t)
	return New(Config{Version: "1.2.3", Credentials: creds, Now: func() time.Time { return testTime }})
}

func decodes(t *testing.T, s sample, data []byte) {
	t.Helper()
	var err error
	switch s.format {
	case container.WebP:
		_, err = webp.Decode(bytes.NewReader(data))
	default:
		_, _, err = image.Decode(bytes.NewReader(data))
	}
	if err != nil {
		t.Fatalf("marked %s does not decode: %v", s.name, err)
	}
}

func TestMarkGenerated(t *testing.T) {
	m := testMarker(t)
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			out, p, err := m.MarkGenerated(s.data, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			decodes(t, s, out)
			if p.DigitalSourceType != TrainedAlgorithmicMedia || !p.C2PA || !strings.HasPrefix(p.Manifest, "urn:c2pa:") || p.ClaimGenerator != "imaged" {
				t.Fatalf("provenance = %+v", p)
			}
			got := Inspect(out)
			if got == nil || *got != *p {
				t.Fatalf("Inspect = %+v, want %+v", got, p)
			}
			// Marking again replaces the marks instead of piling them up.
			again, _, err := m.MarkGenerated(out, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(again, []byte("Iptc4xmpExt:DigitalSourceType=")); n != 1 {
				t.Fatalf("%d XMP marks after marking twice", n)
			}
		})
	}
}

func TestMarkWithoutSigning(t *testing.T) {
	m := New(Config{Version: "1.2.3"})
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			out, p, err := m.MarkGenerated(s.data, "builtin", "procedural")
			if err != nil {
				t.Fatal(err)
			}
			decodes(t, s, out)
			if p.C2PA || p.DigitalSourceType != TrainedAlgorithmicMedia {
				t.Fatalf("provenance = %+v", p)
			}
			marks, err := container.ReadMarks(out)
			if err != nil || marks.C2PA != nil || marks.XMP == nil {
				t.Fatalf("marks = %+v, %v", marks, err)
			}
		})
	}
}

// TestExiftoolReadsTheXMPMark: an independent reader finds the digital
// source type in each format.
func TestExiftoolReadsTheXMPMark(t *testing.T) {
	m := testMarker(t)
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			out, _, err := m.MarkGenerated(s.data, "builtin", "procedural")
			if err != nil {
				t.Fatal(err)
			}
			if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != TrainedAlgorithmicMedia {
				t.Fatalf("exiftool DigitalSourceType = %q", got)
			}
			if got := exiftoolTag(t, out, "XMP-iptcExt:AISystemUsed"); got != "builtin" {
				t.Fatalf("exiftool AISystemUsed = %q", got)
			}
			if got := exiftoolTag(t, s.data, "XMP-iptcExt:DigitalSourceType"); got != "" {
				t.Fatalf("the unmarked sample already has %q", got)
			}
		})
	}
}

// checkValid asserts what the issue asks of c2pa-rs: a manifest found, its
// claim signature and hash binding valid, and no failure but the trust of
// the development certificate.
func checkValid(t *testing.T, r *c2paReport) {
	t.Helper()
	if !r.Found {
		t.Fatalf("c2pa-rs found no manifest: %s", r.Error)
	}
	success, failure := r.codes()
	for _, want := range []string{"claimSignature.validated", "assertion.dataHash.match"} {
		if !slices.Contains(success, want) {
			t.Errorf("c2pa-rs did not report %s; success: %v, failure: %v", want, success, failure)
		}
	}
	if !slices.Equal(failure, []string{"signingCredential.untrusted"}) {
		t.Errorf("c2pa-rs failures = %v, want only signingCredential.untrusted", failure)
	}
}

func TestC2PARsValidatesTheManifest(t *testing.T) {
	m := testMarker(t)
	_, anchors := testCredentials(t)
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			out, p, err := m.MarkGenerated(s.data, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			r := c2paRead(t, s.format.MediaType(), out, "")
			checkValid(t, r)
			if r.Store.ActiveManifest != p.Manifest {
				t.Fatalf("active manifest %q, want %q", r.Store.ActiveManifest, p.Manifest)
			}
			man := r.Store.Manifests[p.Manifest]
			if man.ClaimVersion != 2 || man.SignatureInfo.Alg != "Es256" || man.SignatureInfo.Issuer != devOrganization {
				t.Fatalf("claim version %d, signature %+v", man.ClaimVersion, man.SignatureInfo)
			}
			var acts actionsJSON
			for _, a := range man.Assertions {
				if a.Label == labelActions {
					json.Unmarshal(a.Data, &acts)
				}
			}
			if len(acts.Actions) != 1 {
				t.Fatalf("actions = %+v", acts)
			}
			a := acts.Actions[0]
			if a.Action != "c2pa.created" || a.DigitalSourceType != TrainedAlgorithmicMedia ||
				a.SoftwareAgent["name"] != "imaged" || a.SoftwareAgent["org.imaged.provider"] != "openai" || a.SoftwareAgent["org.imaged.model"] != "gpt-image-1" {
				t.Fatalf("action = %+v", a)
			}
			// With the development root as a trust anchor, nothing fails.
			if tr := c2paRead(t, s.format.MediaType(), out, anchors); tr.Store.ValidationState != "Trusted" {
				_, failure := tr.codes()
				t.Fatalf("with the development root trusted: state %q, failures %v", tr.Store.ValidationState, failure)
			}
		})
	}
}

type actionsJSON struct {
	Actions []struct {
		Action            string            `json:"action"`
		DigitalSourceType string            `json:"digitalSourceType"`
		SoftwareAgent     map[string]string `json:"softwareAgent"`
		Parameters        map[string]any    `json:"parameters"`
	} `json:"actions"`
}

// TestC2PARsSeesATamperedImage: the hard binding covers the pixels, so the
// check above can fail.
func TestC2PARsSeesATamperedImage(t *testing.T) {
	m := testMarker(t)
	s := samples(t)[1] // JPEG: a changed scan byte still decodes
	out, _, err := m.MarkGenerated(s.data, "builtin", "procedural")
	if err != nil {
		t.Fatal(err)
	}
	out[len(out)-10] ^= 0x55
	_, failure := c2paRead(t, s.format.MediaType(), out, "").codes()
	if !slices.Contains(failure, "assertion.dataHash.mismatch") {
		t.Fatalf("c2pa-rs failures on a tampered image = %v", failure)
	}
}

// providerMarker signs as a provider that signs its images would, with
// credentials of its own.
func providerMarker(t *testing.T) *Marker {
	t.Helper()
	creds, err := DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Version: "provider-1", Credentials: creds})
}

// TestProviderManifestBecomesTheParent: an image its provider signed (as
// OpenAI does) keeps the provider's manifest, as the parent ingredient of
// ours, and c2pa-rs validates both.
func TestProviderManifestBecomesTheParent(t *testing.T) {
	provider := providerMarker(t)
	m := testMarker(t)
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			signed, pp, err := provider.MarkGenerated(s.data, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			out, p, err := m.MarkGenerated(signed, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			if p.Ingredient != pp.Manifest || p.Manifest == pp.Manifest || !p.C2PA {
				t.Fatalf("provenance %+v, provider's manifest %s", p, pp.Manifest)
			}
			decodes(t, s, out)
			r := c2paRead(t, s.format.MediaType(), out, "")
			checkValid(t, r)
			man := r.Store.Manifests[p.Manifest]
			if r.Store.ActiveManifest != p.Manifest || len(man.Ingredients) != 1 ||
				man.Ingredients[0].Relationship != "parentOf" || man.Ingredients[0].ActiveManifest != pp.Manifest {
				t.Fatalf("active %s, ingredients %+v", r.Store.ActiveManifest, man.Ingredients)
			}
			if _, ok := r.Store.Manifests[pp.Manifest]; !ok {
				t.Fatal("the provider's manifest is not in the store")
			}
			if d := r.Store.ValidationResults.IngredientDeltas; len(d) != 1 || !slices.ContainsFunc(d[0].ValidationDeltas.Success, func(s c2paStatus) bool { return s.Code == "ingredient.manifest.validated" }) {
				t.Errorf("c2pa-rs did not validate the ingredient: %+v", r.Store.ValidationResults.IngredientDeltas)
			}
			for _, d := range r.Store.ValidationResults.IngredientDeltas {
				for _, f := range d.ValidationDeltas.Failure {
					if f.Code != "signingCredential.untrusted" {
						t.Errorf("ingredient failure %+v", f)
					}
				}
			}
		})
	}
}

// TestC2PARsValidatesManifestsOfEverySize: odd and even stores (a WebP
// chunk's pad byte), and one over many JPEG APP11 segments.
func TestC2PARsValidatesManifestsOfEverySize(t *testing.T) {
	creds, _ := testCredentials(t)
	generator := generatorInfo{"name": "imaged", "version": "test"}
	for _, s := range samples(t) {
		for _, filler := range []int{100, 101, 200_000} {
			t.Run(s.name+"/"+strconv.Itoa(filler), func(t *testing.T) {
				acts, err := newAssertion(labelActions, actionsV2{Actions: []action{{Action: "c2pa.created", DigitalSourceType: TrainedAlgorithmicMedia}}})
				if err != nil {
					t.Fatal(err)
				}
				pad, err := newAssertion("org.imaged.test.filler", map[string][]byte{"b": bytes.Repeat([]byte{7}, filler)})
				if err != nil {
					t.Fatal(err)
				}
				spec := manifestSpec{label: newManifestLabel(), assertions: []assertion{acts, pad}}
				out, err := embedManifest(s.data, spec, generator, creds)
				if err != nil {
					t.Fatal(err)
				}
				decodes(t, s, out)
				checkValid(t, c2paRead(t, s.format.MediaType(), out, ""))
			})
		}
	}
}
