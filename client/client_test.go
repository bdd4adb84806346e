package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/client"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/generation"
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/sqlite"
)

var secret = []byte("0123456789abcdef0123456789abcdef-client-test")

// newService runs the whole service (SQLite file, blob directory, builtin
// provider, job workers) behind an httptest server and returns its URL.
func newService(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(ctx, jwtauth.Config{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	imgs := images.New(db, blobs, images.Config{MaxFileSize: 1 << 20, Logger: log,
		ImportAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	gen, err := generation.New(imgs, db, db, generation.Config{Providers: []imaged.Generator{builtin.New()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	workers := gen.StartWorkers(ctx)
	t.Cleanup(func() { workers.Stop(5 * time.Second) })
	ts := httptest.NewServer(imhttp.New(imhttp.Config{Images: imgs, Auth: auth, Logger: log, Generation: gen, Idempotency: db}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func newClient(t *testing.T, base, subject string) *client.Client {
	t.Helper()
	tok := ""
	if subject != "" {
		var err error
		if tok, err = jwtauth.Mint(secret, subject, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(base, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.NRGBA{1, 2, 3, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImages(t *testing.T) {
	ctx := context.Background()
	base := newService(t)
	alice := newClient(t, base, "alice")
	data := pngBytes(t, 40, 30)

	var seen int64
	img, err := alice.Upload(ctx, client.File{Name: `sun "set".png`, Body: bytes.NewReader(data), Progress: func(n int64) { seen = n }})
	if err != nil {
		t.Fatal(err)
	}
	if img.OriginalFilename != `sun "set".png` || img.Width != 40 || img.Height != 30 || img.FileSize != int64(len(data)) || img.Source != "upload" {
		t.Errorf("uploaded image = %+v", img)
	}
	if seen != int64(len(data)) {
		t.Errorf("progress reported %d bytes, want %d", seen, len(data))
	}
	if img.CreatedAt.IsZero() {
		t.Errorf("createdAt did not decode")
	}

	got, err := alice.GetImage(ctx, img.ID)
	if err != nil || got.ID != img.ID || got.SHA256 != img.SHA256 {
		t.Fatalf("GetImage = %+v, %v", got, err)
	}
	var buf bytes.Buffer
	if n, err := alice.Download(ctx, got.URL, &buf); err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("Download = %d, %v", n, err)
	}

	more, err := alice.UploadMultiple(ctx, []client.File{
		{Name: "a.png", Body: bytes.NewReader(pngBytes(t, 8, 8))},
		{Name: "b.png", Body: bytes.NewReader(pngBytes(t, 9, 9))},
	})
	if err != nil || len(more) != 2 || more[0].OriginalFilename != "a.png" || more[1].OriginalFilename != "b.png" {
		t.Fatalf("UploadMultiple = %+v, %v", more, err)
	}

	page, err := alice.ListImages(ctx, client.ListOptions{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Images) != 2 || page.Pagination.TotalItems != 3 || page.Pagination.NextCursor == nil {
		t.Fatalf("first page = %d images, pagination %+v", len(page.Images), page.Pagination)
	}
	if page.Images[0].ID != more[1].ID {
		t.Errorf("first listed = %s, want the newest %s", page.Images[0].ID, more[1].ID)
	}
	next, err := alice.ListImages(ctx, client.ListOptions{PageSize: 2, Cursor: *page.Pagination.NextCursor})
	if err != nil || len(next.Images) != 1 || next.Images[0].ID != img.ID || next.Pagination.NextCursor != nil {
		t.Fatalf("second page = %+v, %v", next, err)
	}
	found, err := alice.ListImages(ctx, client.ListOptions{Search: "SUN"})
	if err != nil || len(found.Images) != 1 || found.Images[0].ID != img.ID {
		t.Fatalf("search = %+v, %v", found, err)
	}

	// Another owner sees nothing of alice's.
	bob := newClient(t, base, "bob")
	if _, err := bob.GetImage(ctx, img.ID); !client.IsCode(err, "MEDIA_NOT_FOUND") {
		t.Errorf("bob's GetImage error = %v, want MEDIA_NOT_FOUND", err)
	}
	if err := alice.DeleteImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	_, err = alice.GetImage(ctx, img.ID)
	var apiErr *client.Error
	if !errorsAs(err, &apiErr) || apiErr.Status != 404 || apiErr.ErrorCode != "MEDIA_NOT_FOUND" || apiErr.Message == "" || apiErr.RequestID == "" {
		t.Errorf("GetImage after delete = %#v, want a 404 MEDIA_NOT_FOUND *Error", err)
	}
	if _, err := alice.Download(ctx, got.URL, io.Discard); err == nil {
		t.Errorf("the deleted image's URL still serves")
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	base := newService(t)
	anonymous := newClient(t, base, "")
	if _, err := anonymous.ListImages(ctx, client.ListOptions{}); !client.IsCode(err, "UNAUTHORIZED") {
		t.Errorf("without a token: %v, want UNAUTHORIZED", err)
	}
	alice := newClient(t, base, "alice")
	_, err := alice.Upload(ctx, client.File{Name: "notes.txt", Body: strings.NewReader("not an image at all")})
	var e *client.Error
	if !errorsAs(err, &e) || e.Status != 415 || e.ErrorCode != "UNSUPPORTED_MEDIA_TYPE" {
		t.Errorf("text upload: %v, want 415 UNSUPPORTED_MEDIA_TYPE", err)
	}
	big := noisyPNG(t, 700, 700) // about 2 MiB; the service takes 1 MiB
	if _, err := alice.Upload(ctx, client.File{Name: "big.png", Body: bytes.NewReader(big)}); !client.IsCode(err, "FILE_TOO_LARGE") {
		t.Errorf("oversized upload: %v, want FILE_TOO_LARGE", err)
	}
	if _, err := alice.Generate(ctx, client.GenerateRequest{Prompt: ""}); !client.IsCode(err, "INVALID_IMAGE_PROMPT") {
		t.Errorf("empty prompt: %v, want INVALID_IMAGE_PROMPT", err)
	}
	if _, err := client.New("ftp://example", "", nil); err == nil {
		t.Errorf("an ftp base URL was accepted")
	}

	// An answer that is not an envelope (a proxy's page) is an *Error without errorCode.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c, _ := client.New(proxy.URL, "x", nil)
	_, err = c.GetImage(ctx, "x")
	if !errorsAs(err, &e) || e.Status != 502 || e.ErrorCode != "" {
		t.Errorf("proxy page: %#v, want a 502 *Error without errorCode", err)
	}
}

func TestGenerate(t *testing.T) {
	ctx := context.Background()
	base := newService(t)
	alice := newClient(t, base, "alice")

	ps, err := alice.Models(ctx)
	if err != nil || len(ps) == 0 || ps[0].Name != "builtin" || !ps[0].Default || len(ps[0].Models) == 0 {
		t.Fatalf("Models = %+v, %v", ps, err)
	}
	seed := int64(7)
	imgs, err := alice.Generate(ctx, client.GenerateRequest{Prompt: "a lighthouse", AspectRatio: "16:9", N: 2, Seed: &seed})
	if err != nil || len(imgs) != 2 || imgs[0].Prompt != "a lighthouse" || imgs[0].Width <= imgs[0].Height || imgs[0].MimeType == "" {
		t.Fatalf("Generate = %+v, %v", imgs, err)
	}

	job, err := alice.Submit(ctx, client.GenerateRequest{Prompt: "a harbour"}, "key-1")
	if err != nil || job.ID == "" || job.Done() {
		t.Fatalf("Submit = %+v, %v", job, err)
	}
	again, err := alice.Submit(ctx, client.GenerateRequest{Prompt: "a harbour"}, "key-1")
	if err != nil || again.ID != job.ID {
		t.Errorf("the same idempotency key gave job %v (%v), want %s", again, err, job.ID)
	}
	var states []string
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done, err := alice.Wait(wctx, job.ID, func(j *client.Job) { states = append(states, j.Status) })
	if err != nil || done.Status != client.JobSucceeded || len(done.Images) != 1 || done.Images[0].Prompt != "a harbour" {
		t.Fatalf("Wait = %+v, %v (states %v)", done, err, states)
	}
	if len(states) == 0 || states[len(states)-1] != client.JobSucceeded {
		t.Errorf("progress saw %v, want it to end with succeeded", states)
	}
	if _, err := alice.Job(ctx, "no-such-job"); !client.IsCode(err, "GENERATION_JOB_NOT_FOUND") {
		t.Errorf("unknown job: %v, want GENERATION_JOB_NOT_FOUND", err)
	}
}

func TestVariantDecodesBothForms(t *testing.T) {
	var img client.Image
	raw := `{"id":"x","variants":{"thumb":"http://h/t.webp","small":{"url":"http://h/s.webp","width":320}}}`
	if err := jsonUnmarshal([]byte(raw), &img); err != nil {
		t.Fatal(err)
	}
	if img.Variants["thumb"].URL != "http://h/t.webp" || img.Variants["small"].URL != "http://h/s.webp" || img.Variants["small"].Width != 320 {
		t.Errorf("variants = %+v", img.Variants)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func noisyPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	data := pngBytes(t, 40, 30)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer origin.Close()
	alice := newClient(t, newService(t), "alice")
	img, err := alice.Import(ctx, origin.URL+"/pictures/dawn.png", "")
	if err != nil {
		t.Fatal(err)
	}
	if img.OriginalFilename != "dawn.png" || img.Width != 40 || img.FileSize != int64(len(data)) || img.Source != "upload" {
		t.Fatalf("imported %+v", img)
	}
	_, err = alice.Import(ctx, "http://169.254.169.254/latest/meta-data/", "")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != "IMPORT_URL_REFUSED" || apiErr.Status != 422 {
		t.Fatalf("import of the metadata address: %v", err)
	}
}
