package generation_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/testtool"
)

// TestGeneratedImagesAreMarked: what is stored is the marked image, and its
// digest, size and provenance describe those bytes.
func TestGeneratedImagesAreMarked(t *testing.T) {
	creds, err := provenance.DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		marker *provenance.Marker
		c2pa   bool
	}{
		{"xmp_and_c2pa", provenance.New(provenance.Config{Version: "test", Credentials: creds}), true},
		{"xmp_only_when_signing_is_off", provenance.New(provenance.Config{Version: "test"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin", Marker: tc.marker})
			imgs, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a lighthouse", N: generation.Count(2)})
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range imgs {
				got, err := f.images.Get(context.Background(), alice, img.ID)
				if err != nil {
					t.Fatal(err)
				}
				p := got.Provenance
				if p == nil || p.DigitalSourceType != provenance.TrainedAlgorithmicMedia || p.C2PA != tc.c2pa {
					t.Fatalf("stored provenance %+v", p)
				}
				data := f.storedBytes(t, got)
				sum := sha256.Sum256(data)
				if got.SHA256 != hex.EncodeToString(sum[:]) || got.Size != int64(len(data)) {
					t.Fatalf("sha256/size %s/%d do not describe the stored %d bytes", got.SHA256, got.Size, len(data))
				}
				marks, err := container.ReadMarks(data)
				if err != nil || marks.XMP == nil || (marks.C2PA != nil) != tc.c2pa {
					t.Fatalf("stored bytes carry XMP %v, C2PA %v (%v)", marks.XMP != nil, marks.C2PA != nil, err)
				}
				if in := provenance.Inspect(data); in == nil || *in != *p {
					t.Fatalf("the bytes say %+v, the record %+v", in, p)
				}
				if tc.c2pa && !bytes.Contains(marks.XMP, []byte(p.Manifest)) {
					t.Fatal("the XMP packet does not point at the manifest")
				}
			}
		})
	}
}

// provenance.Marker marks edits as edits.
var _ generation.EditMarker = (*provenance.Marker)(nil)

// storedBytes reads an image's blob.
func (f *fixture) storedBytes(t *testing.T, img *imaged.Image) []byte {
	t.Helper()
	b, err := f.blobs.Open(context.Background(), img.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEditsNameTheirSource: the manifest of a stored edit names the image
// edited as its parentOf ingredient, by the stored bytes that were sent to
// the provider (their digest is the ingredient's instance id) and, for a
// signed generation, by its manifest, which c2pa-rs validates in the edit.
func TestEditsNameTheirSource(t *testing.T) {
	ctx := context.Background()
	creds, err := provenance.DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin",
		Marker: provenance.New(provenance.Config{Version: "test", Credentials: creds})})
	generated, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a lighthouse"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		source *imaged.Image
	}{
		{"of_a_generation", generated[0]},
		{"of_an_upload", f.upload(t, alice, pngBytes(60, 40, 9))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edits, err := svc.Edit(ctx, alice, generation.EditRequest{Request: generation.Request{Prompt: "in winter"}, Image: tc.source.ID})
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.images.Get(ctx, alice, edits[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			var sourceManifest string
			if tc.source.Provenance != nil {
				sourceManifest = tc.source.Provenance.Manifest
			}
			p := got.Provenance
			if p == nil || p.DigitalSourceType != provenance.CompositeWithTrainedAlgorithmicMedia || !p.C2PA || p.Ingredient != sourceManifest {
				t.Fatalf("stored provenance %+v, want the ingredient %q", p, sourceManifest)
			}
			data := f.storedBytes(t, got)
			if in := provenance.Inspect(data); in == nil || *in != *p {
				t.Fatalf("the bytes say %+v, the record %+v", in, p)
			}
			success, failure, raw := testtool.C2PAValidation(t, got.MediaType, data)
			if !slices.Contains(success, "claimSignature.validated") || !slices.Contains(success, "assertion.dataHash.match") ||
				!slices.Equal(failure, []string{"signingCredential.untrusted"}) {
				t.Fatalf("c2pa-rs on the edit: success %v, failure %v", success, failure)
			}
			var r struct {
				Store struct {
					Manifests map[string]struct {
						Ingredients []struct {
							Title          string `json:"title"`
							InstanceID     string `json:"instance_id"`
							Relationship   string `json:"relationship"`
							ActiveManifest string `json:"active_manifest"`
						} `json:"ingredients"`
					} `json:"manifests"`
				} `json:"store"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			ings := r.Store.Manifests[p.Manifest].Ingredients
			if len(ings) != 1 || ings[0].Relationship != "parentOf" || ings[0].ActiveManifest != sourceManifest ||
				ings[0].Title != tc.source.OriginalFilename || ings[0].InstanceID != "sha256:"+tc.source.SHA256 {
				t.Fatalf("ingredients %+v; the source is %s (%s, sha256 %s)", ings, tc.source.OriginalFilename, sourceManifest, tc.source.SHA256)
			}
		})
	}
}

// TestUnmarkableImageFailsTheGeneration: a provider answer that cannot be
// marked is not stored unmarked.
func TestUnmarkableImageFailsTheGeneration(t *testing.T) {
	f := newFixture(t)
	fake := newFake("fake", func(_ context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		return []imaged.GeneratedImage{{Data: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")}}, nil
	})
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Marker: provenance.New(provenance.Config{})})
	_, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat"})
	if imaged.ErrCode(err) != imaged.EGeneration {
		t.Fatalf("error %v, want %s", err, imaged.EGeneration)
	}
	f.assertNothingStored(t, alice)
}
