package generation_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/provider/builtin"
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
				b, err := f.blobs.Open(context.Background(), got.BlobKey)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(b)
				b.Close()
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
