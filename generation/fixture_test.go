package generation_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/sqlite"
)

// The tests run the service against the real stores: SQLite on a temporary
// file and a local blob directory, behind the real images service. Only the
// providers are fakes.

const (
	alice = "alice"
	bob   = "bob"
)

// clock is a settable time source shared by the services of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	db     *sqlite.DB
	blobs  *fsblob.Store // the directory itself, even when the service sees a wrapper
	images *images.Service
	clock  *clock
}

func newFixture(t *testing.T) *fixture { return newFixtureWithBlobs(t, nil) }

// newFixtureWithBlobs lets a test put a wrapper between the images service
// and the blob directory.
func newFixtureWithBlobs(t *testing.T, wrap func(imaged.BlobStore) imaged.BlobStore) *fixture {
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
	f := &fixture{db: db, blobs: blobs, clock: &clock{now: time.Date(2026, 5, 4, 9, 42, 0, 0, time.UTC)}}
	var bs imaged.BlobStore = blobs
	if wrap != nil {
		bs = wrap(blobs)
	}
	f.images = images.New(db, bs, images.Config{Now: f.clock.Now, Logger: discardLogger()})
	return f
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// service returns a generation service on the fixture's stores. Unless cfg
// says otherwise the default provider is "fake", time is the fixture's
// clock, logs are discarded and the first retry waits about a millisecond.
func (f *fixture) service(t *testing.T, cfg generation.Config) *generation.Service {
	t.Helper()
	if cfg.DefaultProvider == "" {
		cfg.DefaultProvider = "fake"
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	s, err := generation.New(f.images, f.db, f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// imageCount is how many images owner has.
func (f *fixture) imageCount(t *testing.T, owner string) int64 {
	t.Helper()
	page, err := f.images.List(context.Background(), imaged.ImageFilter{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return page.TotalItems
}

// blobCount is how many blobs the directory holds.
func (f *fixture) blobCount(t *testing.T) int {
	t.Helper()
	n := 0
	if err := f.blobs.Walk(context.Background(), "", func(imaged.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// assertNothingStored checks that no image record and no blob exist.
func (f *fixture) assertNothingStored(t *testing.T, owner string) {
	t.Helper()
	if n := f.imageCount(t, owner); n != 0 {
		t.Errorf("%s has %d images, want none", owner, n)
	}
	if n := f.blobCount(t); n != 0 {
		t.Errorf("blob store holds %d blobs, want none", n)
	}
}

// generateFunc is what a fake provider does on its call-th call (from 1).
type generateFunc func(ctx context.Context, call int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error)

// fakeGenerator is a provider whose behaviour each test sets. By default it
// returns req.N small valid PNGs, echoing req.Seed.
type fakeGenerator struct {
	name   string
	models []imaged.Model

	mu    sync.Mutex
	calls []imaged.GenerateRequest
	gen   generateFunc
}

// newFake returns a provider with two models: name+"-1" (the default: 1:1
// and 16:9, up to 4 images, 200 characters, seed, negative prompt and a
// quality option of low or high) and
// name+"-small" (1:1 only, up to 2 images, 20 characters, neither).
func newFake(name string, gen generateFunc) *fakeGenerator {
	return &fakeGenerator{
		name: name,
		gen:  gen,
		models: []imaged.Model{{
			ID:                     name + "-1",
			AspectRatios:           []string{"1:1", "16:9"},
			MaxImages:              4,
			MaxPromptLength:        200,
			SupportsSeed:           true,
			SupportsNegativePrompt: true,
			Options:                []imaged.ModelOption{{Name: "quality", Values: []string{"low", "high"}}},
		}, {
			ID:              name + "-small",
			AspectRatios:    []string{"1:1"},
			MaxImages:       2,
			MaxPromptLength: 20,
		}},
	}
}

func (g *fakeGenerator) Name() string           { return g.name }
func (g *fakeGenerator) Models() []imaged.Model { return g.models }

func (g *fakeGenerator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	g.mu.Lock()
	g.calls = append(g.calls, req)
	call, gen := len(g.calls), g.gen
	g.mu.Unlock()
	if gen == nil {
		return pngImages(req), nil
	}
	return gen(ctx, call, req)
}

// setGen changes the behaviour of the calls to come.
func (g *fakeGenerator) setGen(gen generateFunc) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen = gen
}

func (g *fakeGenerator) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

func (g *fakeGenerator) lastRequest(t *testing.T) imaged.GenerateRequest {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.calls) == 0 {
		t.Fatalf("provider %s was not called", g.name)
	}
	return g.calls[len(g.calls)-1]
}

// pngImages returns req.N distinct valid PNGs, with req.Seed (or 42) as
// the seed used.
func pngImages(req imaged.GenerateRequest) []imaged.GeneratedImage {
	seed := int64(42)
	if req.Seed != nil {
		seed = *req.Seed
	}
	out := make([]imaged.GeneratedImage, req.N)
	for i := range out {
		s := seed + int64(i)
		out[i] = imaged.GeneratedImage{Data: pngBytes(8, 6, byte(i)), Seed: &s}
	}
	return out
}

// pngBytes encodes a w×h PNG whose pixels depend on shade.
func pngBytes(w, h int, shade byte) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{R: byte(x * 30), G: byte(y * 40), B: shade, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// blocking returns a generateFunc that announces each call on started and
// then waits for release (returning valid images) or for ctx to end
// (returning ctx.Err()).
func blocking(started chan<- struct{}, release <-chan struct{}) generateFunc {
	return func(ctx context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		started <- struct{}{}
		select {
		case <-release:
			return pngImages(req), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// failing returns a generateFunc that always fails with err.
func failing(err error) generateFunc {
	return func(context.Context, int, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		return nil, err
	}
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code imaged.ErrorCode) {
	t.Helper()
	if got := imaged.ErrCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// signalHandler is a slog handler that sends on ch for every record at
// level warn or above, and drops the rest. The retry loop logs a warning
// just before it waits, which makes the wait observable.
type signalHandler struct{ ch chan<- struct{} }

func (h signalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h signalHandler) Handle(context.Context, slog.Record) error {
	h.ch <- struct{}{}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// describe shows what matters of a job in a failure message.
func describe(j *imaged.Job) string {
	return fmt.Sprintf("{status %s, attempts %d, images %v, error %s %q, lease %q until %v, created %v, updated %v}",
		j.Status, j.Attempts, j.ImageIDs, j.ErrorCode, j.ErrorMessage, j.LeaseOwner, j.LeaseUntil, j.CreatedAt, j.UpdatedAt)
}
