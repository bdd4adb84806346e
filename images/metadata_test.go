package images_test

import (
	"github.com/imaged/imaged/testtool"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/provenance"
)

// photoWithGPS is a JPEG into which exiftool wrote a GPS position, a body
// serial number and an orientation, as a phone would.
func photoWithGPS(t *testing.T) []byte {
	exiftool := testtool.Need(t, "exiftool")
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exiftool, "-q", "-overwrite_original", "-GPSLatitude=51.5007", "-GPSLatitudeRef=N",
		"-GPSLongitude=0.1246", "-GPSLongitudeRef=W", "-Orientation#=8", "-EXIF:SerialNumber=SN-42", p).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool: %v\n%s", err, out)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// exifTags reads the stored bytes' tags back with exiftool.
func exifTags(t *testing.T, data []byte) map[string]any {
	p := filepath.Join(t.TempDir(), "stored.jpg")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("exiftool", "-j", "-n", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	var tags []map[string]any
	if err := json.Unmarshal(out, &tags); err != nil {
		t.Fatal(err)
	}
	return tags[0]
}

func TestStore_removes_private_metadata_of_uploads(t *testing.T) {
	ctx := context.Background()
	photo := photoWithGPS(t)
	for _, tt := range []struct {
		name   string
		keep   bool
		source imaged.Source
		gps    bool
	}{
		{"upload_is_stored_without_gps", false, imaged.SourceUpload, false},
		{"keep_metadata_opts_out", true, imaged.SourceUpload, true},
		{"provider_output_is_stored_as_made", false, imaged.SourceGeneration, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, images.Config{KeepMetadata: tt.keep})
			img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: tt.source}, bytes.NewReader(photo))
			if err != nil {
				t.Fatal(err)
			}
			_, blob, err := f.svc.OpenBlob(ctx, img.BlobKey)
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := io.ReadAll(blob)
			blob.Close()
			sum := sha256.Sum256(stored)
			if img.Size != int64(len(stored)) || img.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("record says %d bytes %s; stored %d bytes", img.Size, img.SHA256, len(stored))
			}
			if n := blobCount(t, f.blobs); n != 1 {
				t.Fatalf("%d blobs stored, want 1", n)
			}
			tags := exifTags(t, stored)
			if _, has := tags["GPSLatitude"]; has != tt.gps {
				t.Fatalf("GPSLatitude present: %v, want %v", has, tt.gps)
			}
			if _, has := tags["SerialNumber"]; has != tt.gps {
				t.Fatalf("SerialNumber present: %v, want %v", has, tt.gps)
			}
			if tags["Orientation"] != float64(8) {
				t.Fatalf("Orientation = %v, want 8 kept", tags["Orientation"])
			}
			if tt.gps && !bytes.Equal(stored, photo) {
				t.Fatal("with KeepMetadata the bytes must be stored as sent")
			}
		})
	}
}

// TestStore_scrubbing_keeps_the_AI_mark: an AI photo marked with XMP only
// loses its GPS position and keeps its digital source type.
func TestStore_scrubbing_keeps_the_AI_mark(t *testing.T) {
	ctx := context.Background()
	marked, _, err := provenance.New(provenance.Config{Version: "elsewhere"}).MarkGenerated(photoWithGPS(t), "other", "model")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, images.Config{})
	img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(marked))
	if err != nil {
		t.Fatal(err)
	}
	if img.Provenance == nil || img.Provenance.DigitalSourceType != provenance.TrainedAlgorithmicMedia {
		t.Fatalf("provenance %+v", img.Provenance)
	}
	tags := exifTags(t, storedBytes(t, f, img))
	if _, has := tags["GPSLatitude"]; has {
		t.Fatal("GPSLatitude kept")
	}
	if tags["DigitalSourceType"] != provenance.TrainedAlgorithmicMedia {
		t.Fatalf("DigitalSourceType = %v after scrubbing", tags["DigitalSourceType"])
	}
}
