package sdwebui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/sdwebui"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

const (
	apiUser     = "painter"
	apiPassword = "s3cret-pa55word-9c1e"
)

// txt2imgCall is what the fake web UI saw of one request: the decoded body,
// and the raw fields to tell an absent field from a zero one.
type txt2imgCall struct {
	Body struct {
		Prompt           string            `json:"prompt"`
		NegativePrompt   string            `json:"negative_prompt"`
		Width            int               `json:"width"`
		Height           int               `json:"height"`
		Steps            int               `json:"steps"`
		CFGScale         float64           `json:"cfg_scale"`
		Seed             int64             `json:"seed"`
		BatchSize        int               `json:"batch_size"`
		NIter            int               `json:"n_iter"`
		SamplerName      string            `json:"sampler_name"`
		OverrideSettings map[string]string `json:"override_settings"`
	}
	Raw map[string]json.RawMessage
}

// fakeWebUI reproduces AUTOMATIC1111's /sdapi/v1/txt2img: basic auth when
// started with --api-auth, FastAPI's JSON handling, and answers of the shape
// {images, parameters, info} with info a JSON string. The test decides the
// images and seeds.
type fakeWebUI struct {
	t        *testing.T
	srv      *httptest.Server
	needAuth bool
	calls    atomic.Int32
	mu       sync.Mutex
	last     txt2imgCall
	answer   func(w http.ResponseWriter, r *http.Request, c txt2imgCall)
}

func newFakeWebUI(t *testing.T, needAuth bool, answer func(w http.ResponseWriter, r *http.Request, c txt2imgCall)) *fakeWebUI {
	t.Helper()
	f := &fakeWebUI{t: t, needAuth: needAuth, answer: answer}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sdapi/v1/txt2img", f.txt2img)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWebUI) txt2img(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.needAuth {
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", "Basic")
			writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Not authenticated"})
			return
		}
		if user != apiUser || pass != apiPassword {
			w.Header().Set("WWW-Authenticate", "Basic")
			writeJSON(w, http.StatusUnauthorized, webUIError("HTTPException", "Incorrect username or password", "401: Incorrect username or password"))
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	data, err := io.ReadAll(r.Body)
	var c txt2imgCall
	if err == nil {
		err = json.Unmarshal(data, &c.Raw)
	}
	if err == nil {
		err = json.Unmarshal(data, &c.Body)
	}
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{
			{"loc": []any{"body", 0}, "msg": "Expecting value: line 1 column 1 (char 0)", "type": "value_error.jsondecode"}}})
		return
	}
	f.mu.Lock()
	f.last = c
	f.mu.Unlock()
	f.answer(w, r, c)
}

func (f *fakeWebUI) lastCall() txt2imgCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// webUIError is the body the web UI's exception middleware answers with.
func webUIError(kind, detail, errs string) map[string]any {
	return map[string]any{"error": kind, "detail": detail, "body": "", "errors": errs}
}

// batch answers with images and the info the web UI reports: the seed of the
// first image, one seed per image (consecutive, as the web UI does for a
// batch) and where the batch starts.
func batch(c txt2imgCall, first int, imgs ...[]byte) map[string]any {
	seed := c.Body.Seed
	if seed == -1 {
		seed = 3141592653
	}
	var b64 []string
	for _, img := range imgs {
		b64 = append(b64, base64.StdEncoding.EncodeToString(img))
	}
	var seeds []int64
	for i := range c.Body.BatchSize {
		seeds = append(seeds, seed+int64(i))
	}
	info, _ := json.Marshal(map[string]any{
		"prompt": c.Body.Prompt, "all_prompts": []string{c.Body.Prompt},
		"negative_prompt": c.Body.NegativePrompt,
		"seed":            seed, "all_seeds": seeds, "subseed": 42, "all_subseeds": []int64{42},
		"width": c.Body.Width, "height": c.Body.Height, "sampler_name": "Euler a",
		"cfg_scale": c.Body.CFGScale, "steps": c.Body.Steps, "batch_size": c.Body.BatchSize,
		"sd_model_name": "sd_xl_base_1.0", "index_of_first_image": first,
		"infotexts": []string{}, "styles": []string{}, "job_timestamp": "20250504094200",
	})
	return map[string]any{"images": b64, "parameters": c.Raw, "info": string(info)}
}

func newGenerator(t *testing.T, f *fakeWebUI, mutate func(*sdwebui.Config)) *sdwebui.Generator {
	t.Helper()
	cfg := sdwebui.Config{BaseURL: f.srv.URL, HTTPClient: f.srv.Client()}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := sdwebui.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func withAuth(c *sdwebui.Config) { c.Username, c.Password = apiUser, apiPassword }

func asUpstream(t *testing.T, err error) *imaged.UpstreamError {
	t.Helper()
	return upstreamtest.UpstreamError(t, err, "sdwebui")
}

func seedOf(img imaged.GeneratedImage) string {
	if img.Seed == nil {
		return "none"
	}
	return fmt.Sprint(*img.Seed)
}

func TestGenerate(t *testing.T) {
	red := upstreamtest.PNG(t, 4, 3, color.NRGBA{R: 255, A: 255})
	green := upstreamtest.PNG(t, 3, 4, color.NRGBA{G: 255, A: 255})
	blue := upstreamtest.PNG(t, 2, 2, color.NRGBA{B: 255, A: 255})
	grid := upstreamtest.PNG(t, 8, 8, color.Gray{Y: 128})

	tests := []struct {
		name     string
		needAuth bool
		config   func(*sdwebui.Config)
		req      imaged.GenerateRequest
		answer   func(w http.ResponseWriter, r *http.Request, c txt2imgCall)
		check    func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall)
	}{
		{
			name: "one_image_with_server_defaults_reports_the_random_seed",
			req:  imaged.GenerateRequest{Prompt: "a red fox in snow", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, red))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				b := c.Body
				if b.Prompt != "a red fox in snow" || b.NegativePrompt != "" {
					t.Errorf("prompt = %q negative = %q", b.Prompt, b.NegativePrompt)
				}
				if b.Width != 1024 || b.Height != 1024 || b.Steps != 25 || b.CFGScale != 7 || b.Seed != -1 || b.BatchSize != 1 || b.NIter != 1 {
					t.Errorf("body = %+v, want 1024x1024, 25 steps, cfg 7, seed -1, one batch of 1", b)
				}
				for _, absent := range []string{"override_settings", "sampler_name"} {
					if _, ok := c.Raw[absent]; ok {
						t.Errorf("%s sent for the default model and no sampler: %s", absent, c.Raw[absent])
					}
				}
				if len(images) != 1 || !bytes.Equal(images[0].Data, red) {
					t.Fatalf("got %d images, want the one PNG sent", len(images))
				}
				if seedOf(images[0]) != "3141592653" {
					t.Errorf("Seed = %s, want the seed the server chose", seedOf(images[0]))
				}
			},
		},
		{
			name: "n_images_on_a_named_checkpoint_with_a_seed",
			config: func(c *sdwebui.Config) {
				c.Models = []string{"sd_xl_base_1.0.safetensors [31e35c80fc]", "dreamshaper_8"}
				c.Sampler, c.Steps, c.CFGScale = "DPM++ 2M", 30, 5.5
			},
			req: imaged.GenerateRequest{Prompt: "three lighthouses", NegativePrompt: "blurry", Model: "dreamshaper_8",
				AspectRatio: "16:9", N: 3, Seed: ptr(int64(42))},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, red, green, blue))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				b := c.Body
				if got := b.OverrideSettings["sd_model_checkpoint"]; got != "dreamshaper_8" {
					t.Errorf("override_settings = %v, want sd_model_checkpoint dreamshaper_8", b.OverrideSettings)
				}
				if b.Width != 1024 || b.Height != 576 || b.BatchSize != 3 || b.Seed != 42 || b.NegativePrompt != "blurry" {
					t.Errorf("body = %+v, want 1024x576, batch of 3, seed 42, negative prompt", b)
				}
				if b.SamplerName != "DPM++ 2M" || b.Steps != 30 || b.CFGScale != 5.5 {
					t.Errorf("sampler %q steps %d cfg %v, want the configured ones", b.SamplerName, b.Steps, b.CFGScale)
				}
				want := [][]byte{red, green, blue}
				if len(images) != 3 {
					t.Fatalf("got %d images, want 3", len(images))
				}
				for i := range want {
					if !bytes.Equal(images[i].Data, want[i]) {
						t.Errorf("image %d differs from what the server sent", i)
					}
					if got, want := seedOf(images[i]), fmt.Sprint(42+i); got != want {
						t.Errorf("image %d seed = %s, want %s", i, got, want)
					}
				}
			},
		},
		{
			name: "a_grid_before_the_batch_is_skipped",
			req:  imaged.GenerateRequest{Prompt: "two cats", AspectRatio: "1:1", N: 2, Seed: ptr(int64(7))},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 1, grid, red, green))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if len(images) != 2 || !bytes.Equal(images[0].Data, red) || !bytes.Equal(images[1].Data, green) {
					t.Fatalf("got %d images, want the batch without its grid", len(images))
				}
				if seedOf(images[0]) != "7" || seedOf(images[1]) != "8" {
					t.Errorf("seeds = %s, %s; want 7, 8", seedOf(images[0]), seedOf(images[1]))
				}
			},
		},
		{
			name: "images_scripts_append_after_the_batch_are_dropped",
			req:  imaged.GenerateRequest{Prompt: "a pose", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, red, grid))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if len(images) != 1 || !bytes.Equal(images[0].Data, red) {
					t.Errorf("got %d images, want only the generated one", len(images))
				}
			},
		},
		{
			name: "an_info_that_does_not_parse_still_yields_the_images",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, map[string]any{"images": []string{base64.StdEncoding.EncodeToString(red)}, "parameters": map[string]any{}, "info": "not json"})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil || len(images) != 1 || images[0].Seed != nil {
					t.Errorf("Generate = %d images, %v; want one image without a seed", len(images), err)
				}
			},
		},
		{
			name:     "basic_auth_is_sent_when_configured",
			needAuth: true,
			config:   withAuth,
			req:      imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, red))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if err != nil || len(images) != 1 {
					t.Errorf("Generate = %d images, %v; want one", len(images), err)
				}
			},
		},
		{
			name:     "missing_credentials_are_not_retryable",
			needAuth: true,
			req:      imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusUnauthorized || ue.Retryable {
					t.Errorf("got status %d retryable %v, want 401 not retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name:     "wrong_credentials_are_not_retryable",
			needAuth: true,
			config:   func(c *sdwebui.Config) { c.Username, c.Password = apiUser, "not-the-password-4242" },
			req:      imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusUnauthorized || ue.Retryable {
					t.Errorf("got status %d retryable %v, want 401 not retryable", ue.Status, ue.Retryable)
				}
				if !strings.Contains(err.Error(), "Incorrect username or password") {
					t.Errorf("error %q lost the server's reason", err)
				}
				if strings.Contains(err.Error(), "not-the-password-4242") {
					t.Errorf("error %q contains the password", err)
				}
			},
		},
		{
			name: "a_validation_error_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{
					{"loc": []any{"body", "width"}, "msg": "value is not a valid integer", "type": "type_error.integer"}}})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusUnprocessableEntity || ue.Retryable {
					t.Errorf("got status %d retryable %v, want 422 not retryable", ue.Status, ue.Retryable)
				}
				if !strings.Contains(err.Error(), "body.width: value is not a valid integer") {
					t.Errorf("error %q does not name the invalid field", err)
				}
			},
		},
		{
			name: "a_server_error_is_retryable",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusInternalServerError, webUIError("OutOfMemoryError", "", "CUDA out of memory. Tried to allocate 2.00 GiB"))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusInternalServerError || !ue.Retryable {
					t.Errorf("got status %d retryable %v, want 500 retryable", ue.Status, ue.Retryable)
				}
				if !strings.Contains(err.Error(), "CUDA out of memory") {
					t.Errorf("error %q lost the server's reason", err)
				}
			},
		},
		{
			name: "an_unavailable_proxy_is_retryable_after_retry_after",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusServiceUnavailable || !ue.Retryable || ue.RetryAfter != 3*time.Second {
					t.Errorf("got status %d retryable %v after %v, want 503 retryable after 3s", ue.Status, ue.Retryable, ue.RetryAfter)
				}
			},
		},
		{
			name: "a_rate_limiting_proxy_is_retryable_after_retry_after",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				w.Header().Set("Retry-After", "5")
				writeJSON(w, http.StatusTooManyRequests, map[string]any{"detail": "Too Many Requests"})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusTooManyRequests || !ue.Retryable || ue.RetryAfter != 5*time.Second {
					t.Errorf("got status %d retryable %v after %v, want 429 retryable after 5s", ue.Status, ue.Retryable, ue.RetryAfter)
				}
			},
		},
		{
			name:     "a_proxy_page_echoing_the_password_does_not_leak_it",
			needAuth: true,
			config:   withAuth,
			req:      imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html>502 Bad Gateway; upstream rejected "+apiUser+":"+apiPassword+"</html>")
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusBadGateway || !ue.Retryable {
					t.Errorf("got status %d retryable %v, want 502 retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name:   "an_answer_over_the_size_limit_is_an_error",
			config: func(c *sdwebui.Config) { c.MaxResponseBytes = 1024 },
			req:    imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, bytes.Repeat([]byte{7}, 2048)))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				if images != nil {
					t.Errorf("got %d images from an oversize answer", len(images))
				}
				ue := asUpstream(t, err)
				if ue.Retryable || !strings.Contains(err.Error(), "larger than 1024 bytes") {
					t.Errorf("error = %v retryable %v, want a non-retryable size error", err, ue.Retryable)
				}
			},
		},
		{
			name: "malformed_base64_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				a := batch(c, 0)
				a["images"] = []string{"iVBORw0KGgo%%%not*base64"}
				writeJSON(w, http.StatusOK, a)
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				ue := asUpstream(t, err)
				if ue.Retryable || !strings.Contains(err.Error(), "base64") {
					t.Errorf("error = %v, want a non-retryable base64 error", err)
				}
			},
		},
		{
			name: "an_answer_without_images_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c txt2imgCall) {
				asUpstream(t, err)
				if imaged.ErrCode(err) == imaged.EContentPolicy {
					t.Error("a self-hosted server has no content policy to report")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWebUI(t, tt.needAuth, func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				if tt.answer == nil {
					t.Errorf("the fake was asked for an answer it was not given")
					writeJSON(w, http.StatusInternalServerError, webUIError("RuntimeError", "", "no answer"))
					return
				}
				tt.answer(w, r, c)
			})
			g := newGenerator(t, f, tt.config)
			images, err := g.Generate(context.Background(), tt.req)
			if n := f.calls.Load(); n != 1 {
				t.Errorf("the server was called %d times, want exactly 1 (no retries inside the adapter)", n)
			}
			tt.check(t, images, err, f.lastCall())
			if err != nil && strings.Contains(err.Error(), apiPassword) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestGenerate_aspectRatiosBecomeSizesInMultiplesOf8(t *testing.T) {
	tests := []struct {
		base   int
		ratio  string
		width  int
		height int
	}{
		{1024, "1:1", 1024, 1024},
		{1024, "16:9", 1024, 576},
		{1024, "9:16", 576, 1024},
		{1024, "4:3", 1024, 768},
		{1024, "3:4", 768, 1024},
		{1024, "3:2", 1024, 680},
		{1024, "2:3", 680, 1024},
		{512, "1:1", 512, 512},
		{512, "16:9", 512, 288},
		{512, "3:4", 384, 512},
		{512, "3:2", 512, 344},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_at_%d", strings.Replace(tt.ratio, ":", "x", 1), tt.base), func(t *testing.T) {
			f := newFakeWebUI(t, false, func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, upstreamtest.PNG(t, 1, 1, color.White)))
			})
			g := newGenerator(t, f, func(c *sdwebui.Config) {
				if tt.base != 1024 {
					c.BaseSize = tt.base
				}
			})
			if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: tt.ratio, N: 1}); err != nil {
				t.Fatal(err)
			}
			b := f.lastCall().Body
			if b.Width != tt.width || b.Height != tt.height {
				t.Errorf("size = %dx%d, want %dx%d", b.Width, b.Height, tt.width, tt.height)
			}
			if b.Width%8 != 0 || b.Height%8 != 0 {
				t.Errorf("size %dx%d is not in multiples of 8", b.Width, b.Height)
			}
		})
	}
}

func TestGenerate_refusesWithoutCallingTheServer(t *testing.T) {
	tests := []struct {
		name string
		req  imaged.GenerateRequest
		want string
	}{
		{"unknown_model", imaged.GenerateRequest{Prompt: "a fox", Model: "imagen-4.0-generate-001", AspectRatio: "1:1", N: 1},
			`model "imagen-4.0-generate-001" is not offered by provider sdwebui`},
		{"unsupported_aspect_ratio", imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "5:4", N: 1},
			`aspect ratio "5:4" is not supported by model "default"`},
		{"too_many_images", imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 5}, "1 to 4 images"},
		{"empty_prompt", imaged.GenerateRequest{Prompt: "", AspectRatio: "1:1", N: 1}, "prompt is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWebUI(t, false, func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
				writeJSON(w, http.StatusOK, batch(c, 0, upstreamtest.PNG(t, 1, 1, color.White)))
			})
			g := newGenerator(t, f, nil)
			_, err := g.Generate(context.Background(), tt.req)
			var e *imaged.Error
			if !errors.As(err, &e) || e.Code != imaged.EInvalidPrompt {
				t.Fatalf("error = %v, want %s", err, imaged.EInvalidPrompt)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Errorf("Message = %q, want it to contain %q", e.Message, tt.want)
			}
			if n := f.calls.Load(); n != 0 {
				t.Errorf("the server was called %d times, want 0", n)
			}
		})
	}
}

func TestGenerate_deadlineIsATimeout(t *testing.T) {
	f := newFakeWebUI(t, false, func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
		<-r.Context().Done() // still sampling when the caller gives up
	})
	g := newGenerator(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := g.Generate(ctx, imaged.GenerateRequest{Prompt: "a slow fox", AspectRatio: "1:1", N: 1})
	ue := asUpstream(t, err)
	if !ue.Timeout {
		t.Errorf("Timeout = false, want true (error %v)", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestGenerate_refusedConnectionIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	g, err := sdwebui.New(sdwebui.Config{BaseURL: url, Username: apiUser, Password: apiPassword})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1})
	ue := asUpstream(t, err)
	if !ue.Retryable || ue.Status != 0 || ue.Timeout {
		t.Errorf("got status %d retryable %v timeout %v, want no status, retryable, no timeout", ue.Status, ue.Retryable, ue.Timeout)
	}
	if strings.Contains(err.Error(), apiPassword) {
		t.Errorf("error %q contains the password", err)
	}
}

func TestModels(t *testing.T) {
	t.Run("the_servers_current_checkpoint_by_default", func(t *testing.T) {
		g, err := sdwebui.New(sdwebui.Config{BaseURL: "http://127.0.0.1:7860"})
		if err != nil {
			t.Fatal(err)
		}
		if g.Name() != "sdwebui" {
			t.Errorf("Name = %q", g.Name())
		}
		models := g.Models()
		if len(models) != 1 || models[0].ID != "default" {
			t.Fatalf("models = %+v, want the one default", models)
		}
		m := models[0]
		if !slices.Equal(m.AspectRatios, imaged.AspectRatios) || m.MaxImages != 4 || !m.SupportsSeed || !m.SupportsNegativePrompt || m.MaxPromptLength <= 0 || m.Description == "" {
			t.Errorf("model = %+v", m)
		}
		models[0].AspectRatios[0] = "mutated"
		if g.Models()[0].AspectRatios[0] == "mutated" {
			t.Error("Models returns the generator's own slices")
		}
	})
	t.Run("configured_checkpoints_in_order", func(t *testing.T) {
		g, err := sdwebui.New(sdwebui.Config{BaseURL: "http://127.0.0.1:7860", MaxImages: 8,
			Models: []string{"sd_xl_base_1.0", "dreamshaper_8", "sd_xl_base_1.0"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range g.Models() {
			ids = append(ids, m.ID)
			if m.MaxImages != 8 {
				t.Errorf("%s MaxImages = %d, want the configured 8", m.ID, m.MaxImages)
			}
		}
		if !slices.Equal(ids, []string{"sd_xl_base_1.0", "dreamshaper_8"}) {
			t.Errorf("models = %v", ids)
		}
	})
	t.Run("an_empty_model_is_the_first_checkpoint", func(t *testing.T) {
		f := newFakeWebUI(t, false, func(w http.ResponseWriter, r *http.Request, c txt2imgCall) {
			writeJSON(w, http.StatusOK, batch(c, 0, upstreamtest.PNG(t, 1, 1, color.Black)))
		})
		g := newGenerator(t, f, func(c *sdwebui.Config) { c.Models = []string{"sd_xl_base_1.0", "dreamshaper_8"} })
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if got := f.lastCall().Body.OverrideSettings["sd_model_checkpoint"]; got != "sd_xl_base_1.0" {
			t.Errorf("sd_model_checkpoint = %q, want the first configured", got)
		}
	})
}

func TestNew_rejectsConfigsThatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		cfg  sdwebui.Config
	}{
		{"missing_base_url", sdwebui.Config{}},
		{"base_url_without_scheme", sdwebui.Config{BaseURL: "127.0.0.1:7860"}},
		{"credentials_in_the_url", sdwebui.Config{BaseURL: "http://" + apiUser + ":" + apiPassword + "@127.0.0.1:7860"}},
		{"an_api_key_it_would_ignore", sdwebui.Config{BaseURL: "http://127.0.0.1:7860", APIKey: "sk-anything"}},
		{"base_size_not_a_multiple_of_8", sdwebui.Config{BaseURL: "http://127.0.0.1:7860", BaseSize: 1020}},
		{"negative_steps", sdwebui.Config{BaseURL: "http://127.0.0.1:7860", Steps: -1}},
		{"an_empty_model_name", sdwebui.Config{BaseURL: "http://127.0.0.1:7860", Models: []string{""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sdwebui.New(tt.cfg); err == nil {
				t.Error("New succeeded, want an error")
			} else if strings.Contains(err.Error(), apiPassword) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	g, err := sdwebui.New(sdwebui.Config{BaseURL: "http://127.0.0.1:7860", Username: apiUser, Password: apiPassword, HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}
