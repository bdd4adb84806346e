package images_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/provenance"
)

// TestUploadKeepsItsProvenance: an AI image made elsewhere stays
// recognisable: its marks are read at upload and its manifest kept.
func TestUploadKeepsItsProvenance(t *testing.T) {
	creds, err := provenance.DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 32, 24)), nil)
	signer := provenance.New(provenance.Config{Version: "elsewhere", Credentials: creds})
	xmpOnly := provenance.New(provenance.Config{Version: "elsewhere"})
	for _, tc := range []struct {
		name string
		data func(t *testing.T) []byte
		want func(p *imaged.Provenance) bool
	}{
		{"png_with_c2pa", func(t *testing.T) []byte {
			b, _, err := signer.MarkGenerated(pngBytes(t, 20, 10), "other", "model")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, func(p *imaged.Provenance) bool {
			return p != nil && p.C2PA && p.Manifest != "" && p.DigitalSourceType == provenance.TrainedAlgorithmicMedia && p.ClaimGenerator == "imaged"
		}},
		{"jpeg_with_c2pa", func(t *testing.T) []byte {
			b, _, err := signer.MarkGenerated(jb.Bytes(), "other", "model")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, func(p *imaged.Provenance) bool {
			return p != nil && p.C2PA && p.Manifest != "" && p.DigitalSourceType == provenance.TrainedAlgorithmicMedia
		}},
		{"jpeg_with_xmp_only", func(t *testing.T) []byte {
			b, _, err := xmpOnly.MarkGenerated(jb.Bytes(), "other", "model")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, func(p *imaged.Provenance) bool {
			return p != nil && !p.C2PA && p.DigitalSourceType == provenance.TrainedAlgorithmicMedia
		}},
		{"plain_png", func(t *testing.T) []byte { return pngBytes(t, 20, 10) }, func(p *imaged.Provenance) bool { return p == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, images.Config{})
			data := tc.data(t)
			img, err := f.svc.Store(context.Background(), images.NewImage{Owner: "alice", Filename: "x", Source: imaged.SourceUpload}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.Get(context.Background(), "alice", img.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(got.Provenance) {
				t.Fatalf("stored provenance %+v", got.Provenance)
			}
			if in := provenance.Inspect(data); (in == nil) != (got.Provenance == nil) || (in != nil && *in != *got.Provenance) {
				t.Fatalf("read while streaming %+v, from the bytes %+v", got.Provenance, in)
			}
		})
	}
}
