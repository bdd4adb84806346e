package variants_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/render"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/urlsign"
	"github.com/imaged/imaged/variants"
)

func TestParsePresets(t *testing.T) {
	t.Run("empty_gives_the_defaults", func(t *testing.T) {
		got, err := variants.ParsePresets("", 4096)
		if err != nil || len(got) != 4 {
			t.Fatalf("%v, %v", got, err)
		}
		want := map[string]string{
			"thumb":  "width=256,height=256,fit=cover,format=webp",
			"small":  "width=640,format=webp",
			"medium": "width=1280,format=webp",
			"large":  "width=2048,format=webp",
		}
		for _, p := range got {
			if want[p.Name] != p.Spec.String() {
				t.Errorf("%s = %s, want %s", p.Name, p.Spec, want[p.Name])
			}
		}
	})
	t.Run("entries_add_replace_and_remove", func(t *testing.T) {
		got, err := variants.ParsePresets("# presets\nthumb=128x128,fit=contain,format=png\nsmall=off;  card=1200x630,fit=cover,format=jpeg,quality=85\ntall=x900", 4096)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		specs := map[string]string{}
		for _, p := range got {
			names = append(names, p.Name)
			specs[p.Name] = p.Spec.String()
		}
		if strings.Join(names, " ") != "card large medium tall thumb" {
			t.Errorf("names %v", names)
		}
		if specs["thumb"] != "width=128,height=128,fit=contain,format=png" || specs["card"] != "width=1200,height=630,fit=cover,format=jpeg,quality=85" || specs["tall"] != "height=900,format=webp" {
			t.Errorf("specs %v", specs)
		}
	})
	t.Run("defaults_are_bounded_by_the_largest_side", func(t *testing.T) {
		got, err := variants.ParsePresets("", 1024)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			if err := p.Spec.Validate(1024); err != nil || p.Width > 1024 {
				t.Errorf("%s = %s with a largest side of 1024: %v", p.Name, p.Spec, err)
			}
		}
	})
	for name, text := range map[string]string{
		"no_size":           "a=,format=webp",
		"bad_size":          "a=12y",
		"zero_width":        "a=0x10",
		"over_max_side":     "a=5000",
		"unknown_field":     "a=100,dpr=2",
		"repeated_field":    "a=100,fit=cover,fit=fill",
		"bad_fit":           "a=100x100,fit=crop",
		"bad_format":        "a=100,format=gif",
		"bad_quality":       "a=100,quality=0",
		"bad_name":          "Thumb=100",
		"name_with_equals":  "=100",
		"no_equals":         "thumb",
		"width_after_size":  "a=100,width=20",
		"expires_in_preset": "a=100,expires=10",
	} {
		t.Run("refuses/"+name, func(t *testing.T) {
			if got, err := variants.ParsePresets(text, 4096); err == nil {
				t.Errorf("%q accepted: %v", text, got)
			}
		})
	}
}

func TestParseTransform(t *testing.T) {
	tr, err := variants.ParseTransform("format=avif,width=10,expires=1767225600,quality=50,height=20,fit=fill", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Width != 10 || tr.Height != 20 || tr.Fit != render.Fill || tr.Format != "avif" || tr.Quality != 50 || tr.Expires.Unix() != 1767225600 {
		t.Errorf("parsed %+v", tr)
	}
	if got := tr.String(); got != "width=10,height=20,fit=fill,format=avif,quality=50,expires=1767225600" {
		t.Errorf("String = %q", got)
	}
	for _, bad := range []string{"", "width", "width=", "width=1,width=2", "width=+5", "width=1e3", "height=0", "fit=cover", "width=10,expires=-1", "width=10,expires=soon", "width=10,format=AVIF", "width=10,sig=x"} {
		if _, err := variants.ParseTransform(bad, 4096); imaged.ErrCode(err) != imaged.EValidation {
			t.Errorf("ParseTransform(%q): %v, want VALIDATION_ERROR", bad, err)
		}
	}
}

// fixture is the service over SQLite, a directory and an in-process pool.
type fixture struct {
	imgs   *images.Service
	blobs  *fsblob.Store
	svc    *variants.Service
	signer *urlsign.Signer
	now    time.Time
	img    *imaged.Image
}

func newFixture(t *testing.T, mark variants.MarkFunc) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{blobs: blobs, now: time.Unix(1_800_000_000, 0)}
	f.imgs = images.New(db, blobs, images.Config{})
	f.signer, _ = urlsign.New(bytes.Repeat([]byte("k"), 32))
	pool := render.NewInProcess(render.Config{Workers: 1})
	t.Cleanup(func() { pool.Close() })
	f.svc = variants.New(f.imgs, blobs, variants.Config{Renderer: pool, Signer: f.signer, Mark: mark, Now: func() time.Time { return f.now }})
	m := image.NewNRGBA(image.Rect(0, 0, 400, 300))
	for i := range m.Pix {
		m.Pix[i] = uint8(i)
	}
	m.SetNRGBA(0, 0, color.NRGBA{1, 2, 3, 255})
	var b bytes.Buffer
	png.Encode(&b, m)
	f.img, err = f.imgs.Store(context.Background(), images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, &b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSignedURLs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s, err := f.svc.Sign(ctx, "alice", f.img.ID, variants.Spec{Width: 100, Format: render.JPEG}, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Width != 100 || s.Height != 75 || s.MediaType != "image/jpeg" || !s.Expires.Equal(f.now.Add(time.Minute)) {
		t.Fatalf("signed %+v", s)
	}
	parts := strings.Split(s.Path, "/")
	if len(parts) != 3 || parts[0] != f.img.BlobKey {
		t.Fatalf("path %q: want key/transform/signature", s.Path)
	}
	if !f.signer.Verify(parts[0]+"/"+parts[1], parts[2]) {
		t.Fatal("the signature is not the HMAC of key/transform")
	}
	v, err := f.svc.Transform(ctx, parts[0], parts[1], parts[2], "")
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if v.MediaType != "image/jpeg" || v.Expires.IsZero() {
		t.Errorf("variant %+v", v)
	}
	f.now = f.now.Add(time.Minute)
	if _, err := f.svc.Transform(ctx, parts[0], parts[1], parts[2], ""); imaged.ErrCode(err) != imaged.EInvalidSignature {
		t.Errorf("at the expiry: %v, want INVALID_SIGNATURE", err)
	}
	if _, err := f.svc.Sign(ctx, "bob", f.img.ID, variants.Spec{Width: 100}, 0, ""); imaged.ErrCode(err) != imaged.ENotFound {
		t.Errorf("bob signs alice's image: %v, want MEDIA_NOT_FOUND", err)
	}
}

// The Mark hook sees the original's bytes and the rendered ones, and what
// it returns is what is stored and served.
func TestMarkHook(t *testing.T) {
	ctx := context.Background()
	var gotSource, gotVariant []byte
	var gotType string
	f := newFixture(t, func(ctx context.Context, original *imaged.Image, source, variant []byte, mediaType string) ([]byte, error) {
		gotSource, gotVariant, gotType = source, variant, mediaType
		return append(append([]byte{}, variant...), "MARK"...), nil
	})
	v, err := f.svc.Preset(ctx, f.img.BlobKey, "thumb", "")
	if err != nil {
		t.Fatal(err)
	}
	served := new(bytes.Buffer)
	served.ReadFrom(v)
	v.Close()
	orig, _ := f.blobs.Open(ctx, f.img.BlobKey)
	origBytes := new(bytes.Buffer)
	origBytes.ReadFrom(orig)
	orig.Close()
	if !bytes.Equal(gotSource, origBytes.Bytes()) || gotType != "image/webp" || !bytes.HasPrefix(gotVariant, []byte("RIFF")) {
		t.Errorf("hook saw %d source bytes (original %d), type %s", len(gotSource), origBytes.Len(), gotType)
	}
	if !bytes.HasSuffix(served.Bytes(), []byte("MARK")) {
		t.Error("the served variant is not the marked one")
	}
	// And the stored one too.
	v, err = f.svc.Preset(ctx, f.img.BlobKey, "thumb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	again := new(bytes.Buffer)
	again.ReadFrom(v)
	if !bytes.Equal(again.Bytes(), served.Bytes()) || f.svc.Stats().Rendered != 1 || f.svc.Stats().Stored != 1 {
		t.Errorf("second request: %d bytes, stats %+v", again.Len(), f.svc.Stats())
	}
}

func TestDeletedImageHasNoVariants(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	v, err := f.svc.Preset(ctx, f.img.BlobKey, "small", "")
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := f.imgs.Delete(ctx, "alice", f.img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Preset(ctx, f.img.BlobKey, "small", ""); imaged.ErrCode(err) != imaged.ENotFound {
		t.Errorf("preset of a deleted image: %v, want MEDIA_NOT_FOUND", err)
	}
}

// rendererFunc adapts a function to render.Renderer.
type rendererFunc func(ctx context.Context, src io.Reader, opt render.Options) (*render.Result, error)

func (f rendererFunc) Render(ctx context.Context, src io.Reader, opt render.Options) (*render.Result, error) {
	return f(ctx, src, opt)
}

// Two replicas render one variant at the same time: the one that finishes
// second serves and keeps the bytes the first stored, so one URL never
// has two contents under one ETag.
func TestSecondReplicaKeepsTheStoredVariant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(ctx context.Context, _ *imaged.Image, _, variant []byte, _ string) ([]byte, error) {
		return append(append([]byte{}, variant...), "A"...), nil // replica a's bytes differ
	})
	pool := render.NewInProcess(render.Config{Workers: 1})
	t.Cleanup(func() { pool.Close() })
	b := variants.New(f.imgs, f.blobs, variants.Config{Signer: f.signer, Renderer: rendererFunc(func(ctx context.Context, src io.Reader, opt render.Options) (*render.Result, error) {
		res, err := pool.Render(ctx, src, opt)
		// Replica a stores the same variant meanwhile.
		if v, aerr := f.svc.Preset(ctx, f.img.BlobKey, "thumb", ""); aerr != nil {
			t.Error(aerr)
		} else {
			v.Close()
		}
		return res, err
	})})
	v, err := b.Preset(ctx, f.img.BlobKey, "thumb", "")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(v)
	v.Close()
	if !bytes.HasSuffix(served, []byte("A")) {
		t.Error("replica b served its own render, not the variant replica a stored")
	}
	again, err := b.Preset(ctx, f.img.BlobKey, "thumb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	stored, _ := io.ReadAll(again)
	if !bytes.Equal(stored, served) {
		t.Error("replica b replaced the stored variant")
	}
}

// Expiry is in whole seconds, rounded up: a URL never expires sooner than
// asked.
func TestExpiryIsNeverSooner(t *testing.T) {
	f := newFixture(t, nil)
	f.now = time.Unix(1_800_000_000, 900_000_000)
	s, err := f.svc.Sign(context.Background(), "alice", f.img.ID, variants.Spec{Width: 10}, time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Expires.Before(f.now.Add(time.Second)) || s.Expires.Nanosecond() != 0 {
		t.Errorf("expiresIn 1s at %s expires at %s", f.now.Format(time.RFC3339Nano), s.Expires.Format(time.RFC3339Nano))
	}
}
