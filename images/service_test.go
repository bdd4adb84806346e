package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/sqlite"
)

type fixture struct {
	svc   *images.Service
	db    *sqlite.DB
	blobs *fsblob.Store
	now   time.Time
}

func newFixture(t *testing.T, cfg images.Config) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, blobs: blobs, now: time.Date(2026, 5, 4, 9, 42, 0, 0, time.UTC)}
	cfg.Now = func() time.Time { return f.now }
	f.svc = images.New(db, blobs, cfg)
	return f
}

func pngBytes(t *testing.T, w, h int) []byte {
	var b bytes.Buffer
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 7)
	}
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storedBytes reads back the bytes stored for img and checks that the
// record describes them (size and SHA-256).
func storedBytes(t *testing.T, f *fixture, img *imaged.Image) []byte {
	t.Helper()
	_, blob, err := f.svc.OpenBlob(context.Background(), img.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	b, err := io.ReadAll(blob)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if img.Size != int64(len(b)) || img.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("record says %d bytes %s; stored %d bytes", img.Size, img.SHA256, len(b))
	}
	return b
}

// blobCount counts the blobs in the store.
func blobCount(t *testing.T, s imaged.BlobStore) int {
	n := 0
	if err := s.Walk(context.Background(), "", func(imaged.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	data := pngBytes(t, 30, 20)
	tests := []struct {
		name   string
		cfg    images.Config
		source imaged.Source
		data   []byte
		code   imaged.ErrorCode
	}{
		{"png_is_stored", images.Config{}, imaged.SourceUpload, data, ""},
		{"truncated_png_is_refused", images.Config{}, imaged.SourceUpload, data[:len(data)-5], imaged.EUnsupportedMedia},
		{"header_only_png_is_refused", images.Config{}, imaged.SourceUpload, data[:40], imaged.EUnsupportedMedia},
		{"upload_over_limit_is_too_large", images.Config{MaxFileSize: int64(len(data) - 1)}, imaged.SourceUpload, data, imaged.ETooLarge},
		{"upload_at_limit_is_stored", images.Config{MaxFileSize: int64(len(data))}, imaged.SourceUpload, data, ""},
		{"generation_has_its_own_limit", images.Config{MaxFileSize: 10}, imaged.SourceGeneration, data, ""},
		{"too_many_pixels", images.Config{MaxPixels: 599}, imaged.SourceUpload, data, imaged.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Filename: "a/../b.png", Source: tt.source}, bytes.NewReader(tt.data))
			if tt.code != "" {
				if imaged.ErrCode(err) != tt.code {
					t.Fatalf("err = %v, want %s", err, tt.code)
				}
				if n := blobCount(t, f.blobs); n != 0 {
					t.Fatalf("%d blobs left behind after a refused image", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tt.data)
			if img.Size != int64(len(tt.data)) || img.SHA256 != hex.EncodeToString(sum[:]) || img.Width != 30 || img.Height != 20 {
				t.Fatalf("stored %+v", img)
			}
			if img.OriginalFilename != "a/../b.png" || !imaged.ValidBlobKey(img.BlobKey) || len(img.BlobKey) != 36 {
				t.Fatalf("filename %q, key %q: the key must not derive from the name", img.OriginalFilename, img.BlobKey)
			}
			got, err := f.svc.Get(ctx, "alice", img.ID)
			if err != nil || got.BlobKey != img.BlobKey || !got.CreatedAt.Equal(f.now) {
				t.Fatalf("Get = %+v, %v", got, err)
			}
			_, blob, err := f.svc.OpenBlob(ctx, img.BlobKey)
			if err != nil {
				t.Fatal(err)
			}
			defer blob.Close()
			b, _ := io.ReadAll(blob)
			if !bytes.Equal(b, tt.data) {
				t.Fatal("stored bytes differ")
			}
		})
	}
}

func TestStore_reader_failure_leaves_nothing(t *testing.T) {
	f := newFixture(t, images.Config{})
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(pngBytes(t, 300, 300)[:1000]), failing{boom})
	_, err := f.svc.Store(context.Background(), images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	page, _ := f.svc.List(context.Background(), imaged.ImageFilter{Owner: "alice"})
	if len(page.Images) != 0 || blobCount(t, f.blobs) != 0 {
		t.Fatal("a failed upload left metadata or bytes behind")
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestDelete_removes_metadata_and_bytes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, images.Config{})
	img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, "bob", img.ID); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("bob's delete: %v, want not found", err)
	}
	if err := f.svc.Delete(ctx, "alice", img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, "alice", img.ID); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, _, err := f.svc.OpenBlob(ctx, img.BlobKey); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("OpenBlob after delete: %v", err)
	}
	if n := blobCount(t, f.blobs); n != 0 {
		t.Fatalf("%d blobs left after delete", n)
	}
}

func TestCollectGarbage_removes_only_old_unreferenced_blobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, images.Config{})
	kept, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	orphan := imaged.NewBlobKey("png")
	if _, err := f.blobs.Put(ctx, orphan, bytes.NewReader([]byte("left behind"))); err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	f.now = time.Now()
	st, err := f.svc.CollectGarbage(ctx, time.Hour)
	if err != nil || st.Removed != 0 || st.Checked != 2 {
		t.Fatalf("within grace: %+v, %v", st, err)
	}
	f.now = time.Now().Add(2 * time.Hour)
	st, err = f.svc.CollectGarbage(ctx, time.Hour)
	if err != nil || st.Removed != 1 {
		t.Fatalf("after grace: %+v, %v", st, err)
	}
	if _, err := f.blobs.Stat(ctx, orphan); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatal("orphan still there")
	}
	if _, err := f.blobs.Stat(ctx, kept.BlobKey); err != nil {
		t.Fatalf("referenced blob removed: %v", err)
	}
}

func TestList_bounds(t *testing.T) {
	f := newFixture(t, images.Config{})
	for _, tt := range []struct {
		name string
		f    imaged.ImageFilter
	}{
		{"page_size_over_max", imaged.ImageFilter{Owner: "a", PageSize: images.MaxPageSize + 1}},
		{"negative_page", imaged.ImageFilter{Owner: "a", Page: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.svc.List(context.Background(), tt.f); imaged.ErrCode(err) != imaged.EValidation {
				t.Fatalf("err = %v, want VALIDATION_ERROR", err)
			}
		})
	}
}

func TestDeletedImageStopsServingAtOnce(t *testing.T) {
	f := newFixture(t, images.Config{})
	ctx := t.Context()
	img, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Filename: "a.png", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second lookup is answered from the cache
		_, b, err := f.svc.OpenBlob(ctx, img.BlobKey)
		if err != nil {
			t.Fatalf("OpenBlob: %v", err)
		}
		b.Close()
	}
	if err := f.svc.Delete(ctx, "alice", img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ByBlobKey(ctx, img.BlobKey); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("ByBlobKey after delete: %v, want MEDIA_NOT_FOUND", err)
	}
}

func TestStore_refuses_what_is_not_one_well_formed_image(t *testing.T) {
	ctx := context.Background()
	data := pngBytes(t, 30, 20)
	var j bytes.Buffer
	if err := jpeg.Encode(&j, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		t.Fatal(err)
	}
	zip := []byte("PK\x03\x04\x14\x00\x00\x00\x00\x00evil.htmlPK\x05\x06\x00\x00\x00\x00")
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"gif_header_then_html", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00<html><script>alert(1)</script></html>;")},
		{"png_then_zip", append(bytes.Clone(data), zip...)},
		{"jpeg_then_script", append(j.Bytes(), "\n<script>alert(1)</script>"...)},
		{"png_with_a_bad_crc", func() []byte { b := bytes.Clone(data); b[29] ^= 1; return b }()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, images.Config{})
			_, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(tt.data))
			if imaged.ErrCode(err) != imaged.EUnsupportedMedia || !strings.Contains(imaged.ErrMessage(err), "not a well-formed") {
				t.Fatalf("err = %v, want UNSUPPORTED_MEDIA_TYPE saying the file is not well-formed", err)
			}
			if n := blobCount(t, f.blobs); n != 0 {
				t.Fatalf("%d blobs left behind", n)
			}
		})
	}
}

func TestStore_provider_output_is_checked_like_an_upload(t *testing.T) {
	f := newFixture(t, images.Config{})
	bad := append(pngBytes(t, 8, 8), "<html>"...)
	_, err := f.svc.Store(context.Background(), images.NewImage{Owner: "alice", Source: imaged.SourceGeneration}, bytes.NewReader(bad))
	if imaged.ErrCode(err) != imaged.EUnsupportedMedia {
		t.Fatalf("err = %v", err)
	}
}
