package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/outbound"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/render"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/telemetry"
	"github.com/imaged/imaged/urlsign"
	"github.com/imaged/imaged/variants"
	"github.com/imaged/imaged/webhooks"
)

// testSecret signs the HS256 tokens of the tests.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// clock is a settable time source for the services.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration // added after every reading
}

func newClock(start time.Time, step time.Duration) *clock { return &clock{now: start, step: step} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects the server's log lines, safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// options vary the service a harness runs.
type options struct {
	maxFileSize int64
	quota       imaged.QuotaLimits
	providers   []imaged.Generator // besides builtin
	genTimeout  time.Duration
	maxAttempts int
	cors        *CORS
	presets     []variants.Preset // nil: the defaults
	cdnBaseURL  string
	renderQueue int
	importAllow []netip.Prefix
	// webhooks enables the webhook field, its routes and a sender
	// (h.hooks) whose outbound client may reach loopback receivers.
	webhooks bool
	schedule []time.Duration // the sender's retry schedule
}

// harness is the whole service over real stores: SQLite in a temporary
// file, blobs in a temporary directory, HS256 tokens, the builtin provider.
type harness struct {
	srv      *Server
	ts       *httptest.Server
	client   *http.Client
	doc      *apiDoc
	db       *sqlite.DB
	blobs    *fsblob.Store
	images   *images.Service
	gen      *generation.Service
	imgClock *clock
	genClock *clock
	logs     *logBuffer
	hooks    *webhooks.Service
	variants *variants.Service
	signer   *urlsign.Signer
	renderer *render.Pool
}

var start = time.Date(2025, 5, 4, 9, 42, 0, 0, time.UTC)

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	ctx := context.Background()
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
	auth, err := jwtauth.New(ctx, jwtauth.Config{HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &harness{doc: loadDoc(t), db: db, blobs: blobs, logs: logs,
		imgClock: newClock(start, time.Second), genClock: newClock(start, 0)}
	h.images = images.New(db, blobs, images.Config{MaxFileSize: o.maxFileSize, Now: h.imgClock.Now, Logger: log, ImportAllow: o.importAllow})
	creds, err := provenance.DevelopmentCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	marker := provenance.New(provenance.Config{Version: "test", Credentials: creds})
	var checkURL func(context.Context, string) error
	if o.webhooks {
		allow, _ := outbound.ParseAllow("127.0.0.0/8")
		h.hooks, err = webhooks.New(webhooks.Config{
			Store:  db,
			Client: outbound.New(outbound.Config{Allow: allow, Timeout: 5 * time.Second}),
			Payload: func(ctx context.Context, d *imaged.WebhookDelivery) ([]byte, error) {
				return h.srv.WebhookPayload(ctx, d, h.ts.URL)
			},
			Schedule: o.schedule,
			Logger:   log, // the wall clock: receivers check webhook-timestamp against theirs
		})
		if err != nil {
			t.Fatal(err)
		}
		checkURL = h.hooks.CheckURL
	}
	h.gen, err = generation.New(h.images, db, db, generation.Config{
		CheckWebhookURL: checkURL,
		EventPoll:       20 * time.Millisecond,
		Providers:       append([]imaged.Generator{builtin.New()}, o.providers...),
		Quota:           o.quota,
		Timeout:         o.genTimeout,
		MaxAttempts:     o.maxAttempts,
		Backoff:         time.Millisecond,
		Now:             h.genClock.Now,
		Logger:          log,
		Marker:          marker,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.signer, err = urlsign.New([]byte("test-signing-key-of-32-bytes-at-least"))
	if err != nil {
		t.Fatal(err)
	}
	// Long time limits: under the race detector an AVIF render takes many
	// seconds.
	h.renderer = render.NewInProcess(render.Config{Workers: 2, Queue: o.renderQueue, Timeout: 10 * time.Minute})
	t.Cleanup(func() { h.renderer.Close() })
	h.variants = variants.New(h.images, blobs, variants.Config{
		Presets:       o.presets,
		Renderer:      h.renderer,
		Signer:        h.signer,
		Mark:          marker.MarkVariant,
		RenderTimeout: 10 * time.Minute,
		CanMark:       provenance.CanMark,
		Logger:        log,
	})
	h.srv = New(Config{
		Telemetry:   telemetry.New(),
		Images:      h.images,
		Auth:        auth,
		Logger:      log,
		Ready:       []Check{{Name: "database", Pinger: db}},
		Generation:  h.gen,
		Idempotency: db,
		CORS:        o.cors,
		Webhooks:    h.hooks,
		Variants:    h.variants,
		CDNBaseURL:  o.cdnBaseURL,
		LocalBlobs:  true,
	})
	// Served as cmd/imaged serves: NewHTTPServer's settings, on Listen (the fast lane, then Listener).
	h.ts = httptest.NewUnstartedServer(h.srv)
	h.ts.Config = NewHTTPServer(h.srv)
	h.ts.Listener = h.srv.Listen(h.ts.Listener)
	h.ts.Start()
	t.Cleanup(h.ts.Close)
	h.client = h.ts.Client()
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h
}

// token returns a valid bearer token for subject.
func mintToken(t testing.TB, subject string) string {
	t.Helper()
	tok, err := jwtauth.Mint(testSecret, subject, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// send performs a request against the test server and reads the answer.
func (h *harness) send(t testing.TB, method, path, tok string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	return h.sendOn(t, h.client, method, path, tok, body, hdr)
}

// sendOn is send with another client.
func (h *harness) sendOn(t testing.TB, client *http.Client, method, path, tok string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// call sends a request and checks the answer against the operation of the
// OpenAPI document for method and pattern.
func (h *harness) call(t testing.TB, method, pattern, path, tok string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	resp, b := h.send(t, method, path, tok, body, hdr)
	checkResponse(t, h.doc, method, pattern, resp, b)
	return resp, b
}

// envelope is a decoded answer, success or failure.
type envelope struct {
	Success    bool            `json:"success"`
	Code       int             `json:"code"`
	Message    string          `json:"message"`
	ErrorCode  string          `json:"errorCode"`
	Timestamp  string          `json:"timestamp"`
	RequestID  string          `json:"requestId"`
	Data       json.RawMessage `json:"data"`
	Pagination *struct {
		CurrentPage int     `json:"currentPage"`
		PageSize    int     `json:"pageSize"`
		TotalItems  int64   `json:"totalItems"`
		TotalPages  int64   `json:"totalPages"`
		NextCursor  *string `json:"nextCursor"`
	} `json:"pagination"`
}

func decode(t testing.TB, body []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("answer is not an envelope: %v: %s", err, body)
	}
	return e
}

// wantError checks status, errorCode and that the answer is an error
// envelope.
func wantError(t testing.TB, resp *http.Response, body []byte, status int, code imaged.ErrorCode) envelope {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, body)
	}
	e := decode(t, body)
	if e.Success || e.ErrorCode != string(code) {
		t.Fatalf("errorCode = %q (success %v), want %q: %s", e.ErrorCode, e.Success, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return e
}

// apiImage is the image object as the API answers it.
type apiImage struct {
	ID               string `json:"id"`
	OriginalFilename string `json:"originalFilename"`
	URL              string `json:"url"`
	MediaType        string `json:"mediaType"`
	FileSize         int64  `json:"fileSize"`
	CreatedAt        string `json:"createdAt"`
	UpdatedAt        string `json:"updatedAt"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	SHA256           string `json:"sha256"`
	Source           string `json:"source"`
	Prompt           string `json:"prompt"`
	Model            string `json:"model"`
	Provider         string `json:"provider"`
	AspectRatio      string `json:"aspectRatio"`
	Seed             *int64 `json:"seed"`
	MimeType         string `json:"mimeType"`
	Created          string `json:"created"`
}

func dataAs[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(decode(t, body).Data, &v); err != nil {
		t.Fatalf("data: %v: %s", err, body)
	}
	return v
}

// pngBytes encodes a w×h PNG whose pixels depend on seed, so that two calls
// with different seeds give different bytes.
func pngBytes(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x) + seed, uint8(y), seed, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// paddedPNG is a valid PNG of about n bytes more than src: a text chunk
// of n bytes after its header.
func paddedPNG(t testing.TB, src []byte, n int) []byte {
	t.Helper()
	chunk, err := container.Frame(container.PNG, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte{'a'}, n)...))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := container.Rewrite(&b, bytes.NewReader(src), container.PNG, []container.Edit{container.Insert(33, chunk)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// filePart is one part of a multipart body.
type filePart struct {
	field, filename, contentType string
	data                         []byte
}

// multipartBody builds a multipart/form-data body; the filename is written
// as given (no escaping of path tricks) and the part's Content-Type is the
// client's claim.
func multipartBody(t testing.TB, parts ...filePart) (*bytes.Buffer, http.Header) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		hdr := textproto.MIMEHeader{}
		if p.filename != "" {
			hdr.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename))
		} else {
			hdr.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.field))
		}
		if p.contentType != "" {
			hdr.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(hdr)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, http.Header{"Content-Type": {mw.FormDataContentType()}}
}

// upload stores one PNG for tok's subject through the API and returns it.
func (h *harness) upload(t testing.TB, tok, filename string, data []byte) apiImage {
	t.Helper()
	body, hdr := multipartBody(t, filePart{"file", filename, "image/png", data})
	resp, b := h.call(t, "POST", "/api/media/upload", "/api/media/upload", tok, body, hdr)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	return dataAs[apiImage](t, b)
}

// fakeGenerator is a provider whose behaviour each test sets; it counts
// its calls.
type fakeGenerator struct {
	name     string
	models   []imaged.Model
	calls    atomic.Int32
	generate func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error)
}

func (f *fakeGenerator) Name() string { return f.name }

func (f *fakeGenerator) Models() []imaged.Model {
	if f.models != nil {
		return f.models
	}
	return []imaged.Model{{ID: "fake-1", AspectRatios: []string{"1:1"}, MaxImages: 4, MaxPromptLength: 1000}}
}

func (f *fakeGenerator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	f.calls.Add(1)
	return f.generate(ctx, req)
}

// pngGenerator returns a fake provider that makes req.N small PNGs.
func pngGenerator(t testing.TB, name string) *fakeGenerator {
	data := pngBytes(t, 8, 8, 7)
	return &fakeGenerator{name: name, generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		out := make([]imaged.GeneratedImage, req.N)
		for i := range out {
			out[i] = imaged.GeneratedImage{Data: data, RevisedPrompt: "revised: " + req.Prompt}
		}
		return out, nil
	}}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// answer is the outcome of a request sent in the background.
type answer struct {
	resp *http.Response
	body []byte
	err  error
}

// sendBackground sends a request from another goroutine (which must not
// call t.Fatal) and delivers the answer on the returned channel.
func (h *harness) sendBackground(method, path, tok, body string, hdr http.Header) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		var a answer
		defer func() { out <- a }()
		req, err := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
		if err != nil {
			a.err = err
			return
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := h.client.Do(req)
		if err != nil {
			a.err = err
			return
		}
		defer resp.Body.Close()
		a.resp = resp
		a.body, a.err = io.ReadAll(resp.Body)
	}()
	return out
}
