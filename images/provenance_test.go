package images_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"slices"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/testtool"
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
			if got.Provenance == nil || !got.Provenance.C2PA {
				return
			}
			// The manifest survives: the bytes are stored as sent, and
			// c2pa-rs validates what is stored.
			stored := storedBytes(t, f, img)
			if !bytes.Equal(stored, data) {
				t.Fatal("an upload with a C2PA manifest was changed")
			}
			checkC2PAValid(t, img.MediaType, stored)
		})
	}
}

// checkC2PAValid has c2pa-rs validate data: the manifest found, the claim
// signature and the hard binding valid, no failure but the trust of the
// development certificate.
func checkC2PAValid(t *testing.T, mediaType string, data []byte) {
	t.Helper()
	success, failure, _ := testtool.C2PAValidation(t, mediaType, data)
	if !slices.Contains(success, "claimSignature.validated") || !slices.Contains(success, "assertion.dataHash.match") ||
		!slices.Equal(failure, []string{"signingCredential.untrusted"}) {
		t.Fatalf("c2pa-rs: success %v, failure %v", success, failure)
	}
}

// TestSignedUploadLosesItsPrivateMetadata: a signed photo with a GPS
// position (a phone that signs what it shoots) is cleaned and signed again,
// the uploaded manifest the parent of ours; c2pa-rs validates the result.
// Without signing it is stored as sent.
func TestSignedUploadLosesItsPrivateMetadata(t *testing.T) {
	ctx := context.Background()
	camera, err := provenance.DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	photo, uploaded, err := provenance.New(provenance.Config{Version: "camera", Credentials: camera}).MarkGenerated(photoWithGPS(t), "other", "model")
	if err != nil {
		t.Fatal(err)
	}
	if _, has := exifTags(t, photo)["GPSLatitude"]; !has {
		t.Fatal("the signed photo has no GPS position to remove")
	}
	ours, err := provenance.DevelopmentCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		marker *provenance.Marker
	}{
		{"signing_cleans_and_signs_again", provenance.New(provenance.Config{Version: "test", Credentials: ours})},
		{"without_signing_stored_as_sent", provenance.New(provenance.Config{Version: "test"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, images.Config{Marker: tc.marker})
			img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(photo))
			if err != nil {
				t.Fatal(err)
			}
			stored := storedBytes(t, f, img)
			if n := blobCount(t, f.blobs); n != 1 {
				t.Fatalf("%d blobs, want 1", n)
			}
			got, err := f.svc.Get(ctx, "alice", img.ID)
			if err != nil {
				t.Fatal(err)
			}
			if in := provenance.Inspect(stored); in == nil || *in != *got.Provenance {
				t.Fatalf("the bytes say %+v, the record %+v", in, got.Provenance)
			}
			checkC2PAValid(t, "image/jpeg", stored)
			tags := exifTags(t, stored)
			if !tc.marker.Signs() {
				if !bytes.Equal(stored, photo) {
					t.Fatal("without signing, the file must be stored as sent")
				}
				return
			}
			if _, has := tags["GPSLatitude"]; has {
				t.Fatal("GPS position kept")
			}
			if tags["Orientation"] != float64(8) || tags["DigitalSourceType"] != provenance.TrainedAlgorithmicMedia {
				t.Fatalf("Orientation %v, DigitalSourceType %v", tags["Orientation"], tags["DigitalSourceType"])
			}
			p := got.Provenance
			if !p.C2PA || p.Manifest == uploaded.Manifest || p.Ingredient != uploaded.Manifest || p.DigitalSourceType != provenance.TrainedAlgorithmicMedia {
				t.Fatalf("provenance %+v; uploaded manifest %s", p, uploaded.Manifest)
			}
		})
	}
}
