package provenance

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/image/draw"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/testtool"
)

// variants renders the test image at w×h as a renderer would: PNG, JPEG
// and WebP (cwebp), no metadata.
func variants(t *testing.T, w, h int) []sample {
	t.Helper()
	small := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(small, small.Bounds(), testImage(), testImage().Bounds(), draw.Src, nil)
	var pb, jb bytes.Buffer
	if err := png.Encode(&pb, small); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jb, small, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "v.png")
	os.WriteFile(src, pb.Bytes(), 0o644)
	if b, err := exec.Command(testtool.Need(t, "cwebp"), "-quiet", "-q", "75", src, "-o", filepath.Join(dir, "v.webp")).CombinedOutput(); err != nil {
		t.Fatalf("cwebp: %v: %s", err, b)
	}
	wb, _ := os.ReadFile(filepath.Join(dir, "v.webp"))
	return []sample{{"png", container.PNG, pb.Bytes()}, {"jpeg", container.JPEG, jb.Bytes()}, {"webp", container.WebP, wb}}
}

// generatedOriginal is a PNG original as the generation service stores it,
// marked by m, and its record.
func generatedOriginal(t *testing.T, m *Marker) ([]byte, *imaged.Image) {
	t.Helper()
	var pb bytes.Buffer
	png.Encode(&pb, testImage())
	data, p, err := m.MarkGenerated(pb.Bytes(), "openai", "gpt-image-1")
	if err != nil {
		t.Fatal(err)
	}
	return data, &imaged.Image{ID: "01a221fc-369e-7afb-a289-ab4bbc7bb71e", OriginalFilename: "lighthouse.png", MediaType: "image/png",
		Width: 64, Height: 48, Source: imaged.SourceGeneration, Provenance: p,
		Generation: &imaged.Generation{Provider: "openai", Model: "gpt-image-1"}}
}

func variantActions(t *testing.T, r *c2paReport) []string {
	t.Helper()
	var acts actionsJSON
	for _, a := range r.Store.Manifests[r.Store.ActiveManifest].Assertions {
		if a.Label == labelActions {
			json.Unmarshal(a.Data, &acts)
		}
	}
	var names []string
	for _, a := range acts.Actions {
		names = append(names, a.Action)
	}
	return names
}

// TestMarkVariant: a variant of a generated image says what the original
// says, to exiftool and to c2pa-rs, with the resize recorded and the
// original's manifest as its parent.
func TestMarkVariant(t *testing.T) {
	m := testMarker(t)
	source, original := generatedOriginal(t, m)
	for _, v := range variants(t, 32, 24) {
		t.Run(v.name, func(t *testing.T) {
			out, err := m.MarkVariant(context.Background(), original, source, v.data, v.format.MediaType())
			if err != nil {
				t.Fatal(err)
			}
			decodes(t, v, out)
			if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != TrainedAlgorithmicMedia {
				t.Fatalf("exiftool DigitalSourceType = %q", got)
			}
			if got := exiftoolTag(t, out, "XMP-iptcExt:AISystemVersionUsed"); got != "gpt-image-1" {
				t.Fatalf("exiftool AISystemVersionUsed = %q", got)
			}
			r := c2paRead(t, v.format.MediaType(), out, "")
			checkValid(t, r)
			man := r.Store.Manifests[r.Store.ActiveManifest]
			if r.Store.ActiveManifest == original.Provenance.Manifest || len(man.Ingredients) != 1 ||
				man.Ingredients[0].Relationship != "parentOf" || man.Ingredients[0].ActiveManifest != original.Provenance.Manifest {
				t.Fatalf("active %s, ingredients %+v; the original's manifest is %s", r.Store.ActiveManifest, man.Ingredients, original.Provenance.Manifest)
			}
			if _, ok := r.Store.Manifests[original.Provenance.Manifest]; !ok {
				t.Fatal("the original's manifest is not in the variant's store")
			}
			if got := variantActions(t, r); !slices.Equal(got, []string{"c2pa.opened", "c2pa.resized", "c2pa.transcoded"}) {
				t.Fatalf("actions %v", got)
			}
			if d := r.Store.ValidationResults.IngredientDeltas; len(d) != 1 || !slices.ContainsFunc(d[0].ValidationDeltas.Success, func(s c2paStatus) bool { return s.Code == "ingredient.manifest.validated" }) {
				t.Errorf("c2pa-rs did not validate the original's manifest: %+v", d)
			}
			if p := Inspect(out); p == nil || !p.C2PA || p.DigitalSourceType != TrainedAlgorithmicMedia || p.Manifest != r.Store.ActiveManifest || p.Ingredient != original.Provenance.Manifest {
				t.Fatalf("Inspect = %+v", p)
			}
		})
	}
	t.Run("same_size_is_not_resized", func(t *testing.T) {
		v := variants(t, 64, 48)[2]
		out, err := m.MarkVariant(context.Background(), original, source, v.data, v.format.MediaType())
		if err != nil {
			t.Fatal(err)
		}
		r := c2paRead(t, v.format.MediaType(), out, "")
		checkValid(t, r)
		if got := variantActions(t, r); !slices.Equal(got, []string{"c2pa.opened", "c2pa.transcoded"}) {
			t.Fatalf("actions %v", got)
		}
	})
}

// TestMarkVariantOfOtherOriginals: an original marked without signing
// (IMAGED_C2PA=off when it was made) becomes a parent without a manifest;
// an unmarked upload's variants stay unmarked; formats that cannot carry
// the marks are refused for marked originals only.
func TestMarkVariantOfOtherOriginals(t *testing.T) {
	ctx := context.Background()
	m := testMarker(t)
	v := variants(t, 32, 24)[1]

	xmpOnly := New(Config{Version: "1.2.3"})
	var pb bytes.Buffer
	png.Encode(&pb, testImage())
	source, p, err := xmpOnly.MarkGenerated(pb.Bytes(), "builtin", "procedural")
	if err != nil {
		t.Fatal(err)
	}
	original := &imaged.Image{OriginalFilename: "x.png", MediaType: "image/png", Width: 64, Height: 48, Provenance: p,
		Generation: &imaged.Generation{Provider: "builtin", Model: "procedural"}}
	out, err := m.MarkVariant(ctx, original, source, v.data, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	r := c2paRead(t, "image/jpeg", out, "")
	checkValid(t, r)
	if ings := r.Store.Manifests[r.Store.ActiveManifest].Ingredients; len(ings) != 1 || ings[0].Relationship != "parentOf" || ings[0].ActiveManifest != "" {
		t.Fatalf("ingredients %+v", ings)
	}
	if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != TrainedAlgorithmicMedia {
		t.Fatalf("DigitalSourceType %q", got)
	}

	// Without signing, the XMP mark only.
	out, err = xmpOnly.MarkVariant(ctx, original, source, v.data, "image/jpeg")
	if marks, rerr := container.ReadMarks(out); err != nil || rerr != nil || marks.C2PA != nil || marks.XMP == nil {
		t.Fatalf("unsigned variant: %v %v, %+v", err, rerr, marks)
	}

	upload := &imaged.Image{OriginalFilename: "cat.png", MediaType: "image/png", Width: 64, Height: 48, Source: imaged.SourceUpload}
	if out, err := m.MarkVariant(ctx, upload, pb.Bytes(), v.data, "image/jpeg"); err != nil || !bytes.Equal(out, v.data) {
		t.Fatalf("an unmarked upload's variant changed: %v", err)
	}
	avif := []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf")
	if out, err := m.MarkVariant(ctx, upload, pb.Bytes(), avif, "image/avif"); err != nil || !bytes.Equal(out, avif) {
		t.Fatalf("an unmarked upload's AVIF variant: %v", err)
	}
	if _, err := m.MarkVariant(ctx, original, source, avif, "image/avif"); imaged.ErrCode(err) != imaged.EUnsupportedMedia {
		t.Fatalf("AVIF variant of a marked image: %v, want UNSUPPORTED_MEDIA_TYPE", err)
	}
	if _, err := m.MarkVariant(ctx, original, source, v.data, "image/png"); imaged.ErrCode(err) != imaged.EUnsupportedMedia {
		t.Fatalf("bytes that are not of the media type: %v", err)
	}
}
