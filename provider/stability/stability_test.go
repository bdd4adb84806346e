package stability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/color"
	"image/png"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/stability"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

// testKey is long and distinctive so that a leak into an error is obvious.
const testKey = "sk-TESTKEY0123456789abcdefSECRETstability"

// maskedKey is the key as an authentication error might quote it back.
const maskedKey = "sk-****************************stability"

// testPNG encodes a small real image, different per shade.
func testPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	return upstreamtest.PNG(t, 2, 3, color.RGBA{R: 60, G: shade, B: 70, A: 255})
}

// sent is one request the fake received: the endpoint and its form fields.
type sent struct {
	Path   string
	Fields map[string]string
}

// fakeStability reproduces the v2beta stable-image generate endpoints as the
// API reference documents them. It checks what every request must carry and
// rejects what the real API rejects; the test's answer decides the rest.
type fakeStability struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, s sent)

	mu    sync.Mutex
	sent  []sent
	files []map[string][]byte // the files of each edit, in order
}

// Documented enums of the generate endpoints.
var (
	apiRatios    = []string{"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}
	apiFormats   = []string{"jpeg", "png", "webp"}
	apiSD3Models = []string{"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium"}
)

func newFake(t *testing.T) *fakeStability {
	t.Helper()
	f := &fakeStability{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2beta/stable-image/generate/{service}", f.generate)
	mux.HandleFunc("POST /v2beta/stable-image/edit/{service}", f.edit)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		writeError(w, http.StatusNotFound, "not_found", "resource not found")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeStability) generate(w http.ResponseWriter, r *http.Request) {
	t := f.t
	service := r.PathValue("service")
	if !slices.Contains([]string{"core", "ultra", "sd3"}, service) {
		writeError(w, http.StatusNotFound, "not_found", "resource not found")
		return
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+testKey; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
		writeError(w, http.StatusUnauthorized, "unauthorized", "authorization: invalid or missing header value")
		return
	}
	if got := r.Header.Get("Accept"); got != "image/*" {
		t.Errorf("Accept = %q, want image/*", got)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		t.Errorf("Content-Type = %q, want multipart/form-data", r.Header.Get("Content-Type"))
		writeError(w, http.StatusBadRequest, "bad_request", "content-type: must be multipart/form-data")
		return
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		t.Errorf("body is not a multipart form: %v", err)
		writeError(w, http.StatusBadRequest, "bad_request", "could not parse the form")
		return
	}
	s := sent{Path: r.URL.Path, Fields: map[string]string{}}
	for k, v := range r.MultipartForm.Value {
		if len(v) != 1 {
			t.Errorf("field %s sent %d times", k, len(v))
		}
		s.Fields[k] = v[0]
	}
	f.mu.Lock()
	f.sent = append(f.sent, s)
	f.mu.Unlock()

	fields := s.Fields
	switch {
	case strings.TrimSpace(fields["prompt"]) == "":
		writeError(w, http.StatusBadRequest, "bad_request", "prompt: is required")
	case fields["aspect_ratio"] != "" && !slices.Contains(apiRatios, fields["aspect_ratio"]):
		writeError(w, http.StatusBadRequest, "bad_request", "aspect_ratio: must be one of "+strings.Join(apiRatios, ", "))
	case fields["output_format"] != "" && !slices.Contains(apiFormats, fields["output_format"]):
		writeError(w, http.StatusBadRequest, "bad_request", "output_format: must be one of jpeg, png, webp")
	case service == "sd3" && fields["model"] != "" && !slices.Contains(apiSD3Models, fields["model"]):
		writeError(w, http.StatusBadRequest, "bad_request", "model: must be one of "+strings.Join(apiSD3Models, ", "))
	case fields["seed"] != "" && !validSeed(fields["seed"]):
		writeError(w, http.StatusBadRequest, "bad_request", "seed: must be between 0 and 4294967294")
	default:
		f.answer(w, r, s)
	}
}

func validSeed(v string) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n >= 0 && n <= 4294967294
}

func (f *fakeStability) requests() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *fakeStability) generator(t *testing.T, mutate ...func(*stability.Config)) *stability.Generator {
	t.Helper()
	cfg := stability.Config{APIKey: testKey, BaseURL: f.srv.URL, HTTPClient: f.srv.Client()}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := stability.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func writeError(w http.ResponseWriter, status int, name string, errs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"id": "a1b2c3d4e5f6", "name": name, "errors": errs})
}

// writeImage answers like the API with Accept: image/*: the bytes, with the
// seed and the finish reason in headers.
func writeImage(w http.ResponseWriter, data []byte, seed, finishReason string) {
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("x-request-id", "f00d")
	w.Header().Set("seed", seed)
	w.Header().Set("finish-reason", finishReason)
	w.Write(data)
}

// answerPNGs answers request i with pngs[i], echoing the seed sent or, when
// none was, reporting randomSeeds[i].
func answerPNGs(pngs [][]byte, randomSeeds ...string) func(http.ResponseWriter, *http.Request, sent) {
	var mu sync.Mutex
	next := 0
	return func(w http.ResponseWriter, _ *http.Request, s sent) {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		seed := s.Fields["seed"]
		if seed == "" || seed == "0" {
			seed = randomSeeds[i%len(randomSeeds)]
		}
		writeImage(w, pngs[i%len(pngs)], seed, "SUCCESS")
	}
}

func TestGenerate(t *testing.T) {
	pngs := [][]byte{testPNG(t, 10), testPNG(t, 130), testPNG(t, 250)}
	seed := func(v int64) *int64 { return &v }

	tests := []struct {
		name       string
		req        imaged.GenerateRequest
		randoms    []string // seeds the fake picks when asked for a random one
		wantSent   []sent
		wantImages [][]byte
		wantSeeds  []int64
	}{
		{
			name:    "default_model_is_core_and_the_seed_comes_from_the_header",
			req:     imaged.GenerateRequest{Prompt: "a red fox", AspectRatio: "1:1", N: 1},
			randoms: []string{"3061811285"},
			wantSent: []sent{
				{"/v2beta/stable-image/generate/core", map[string]string{"prompt": "a red fox", "aspect_ratio": "1:1", "output_format": "png"}},
			},
			wantImages: pngs[:1],
			wantSeeds:  []int64{3061811285},
		},
		{
			name:    "ultra_sends_the_negative_prompt_and_the_seed",
			req:     imaged.GenerateRequest{Prompt: "a lighthouse", NegativePrompt: "fog", Model: "ultra", AspectRatio: "16:9", N: 1, Seed: seed(42)},
			randoms: []string{"1"},
			wantSent: []sent{
				{"/v2beta/stable-image/generate/ultra", map[string]string{"prompt": "a lighthouse", "negative_prompt": "fog", "aspect_ratio": "16:9", "seed": "42", "output_format": "png"}},
			},
			wantImages: pngs[:1],
			wantSeeds:  []int64{42},
		},
		{
			name:    "sd3_models_post_to_sd3_with_the_model_field",
			req:     imaged.GenerateRequest{Prompt: "a tower", Model: "sd3.5-medium", AspectRatio: "2:3", N: 1},
			randoms: []string{"77"},
			wantSent: []sent{
				{"/v2beta/stable-image/generate/sd3", map[string]string{"prompt": "a tower", "model": "sd3.5-medium", "aspect_ratio": "2:3", "output_format": "png"}},
			},
			wantImages: pngs[:1],
			wantSeeds:  []int64{77},
		},
		{
			name:    "several_images_are_sequential_requests_with_consecutive_seeds",
			req:     imaged.GenerateRequest{Prompt: "a boat", Model: "sd3.5-large-turbo", AspectRatio: "9:16", N: 3, Seed: seed(100)},
			randoms: []string{"1"},
			wantSent: []sent{
				{"/v2beta/stable-image/generate/sd3", map[string]string{"prompt": "a boat", "model": "sd3.5-large-turbo", "aspect_ratio": "9:16", "seed": "100", "output_format": "png"}},
				{"/v2beta/stable-image/generate/sd3", map[string]string{"prompt": "a boat", "model": "sd3.5-large-turbo", "aspect_ratio": "9:16", "seed": "101", "output_format": "png"}},
				{"/v2beta/stable-image/generate/sd3", map[string]string{"prompt": "a boat", "model": "sd3.5-large-turbo", "aspect_ratio": "9:16", "seed": "102", "output_format": "png"}},
			},
			wantImages: pngs,
			wantSeeds:  []int64{100, 101, 102},
		},
		{
			name:    "seed_zero_asks_for_a_random_seed_per_image",
			req:     imaged.GenerateRequest{Prompt: "a cat", Model: "core", AspectRatio: "3:2", N: 2, Seed: seed(0)},
			randoms: []string{"555", "666"},
			wantSent: []sent{
				{"/v2beta/stable-image/generate/core", map[string]string{"prompt": "a cat", "aspect_ratio": "3:2", "output_format": "png"}},
				{"/v2beta/stable-image/generate/core", map[string]string{"prompt": "a cat", "aspect_ratio": "3:2", "output_format": "png"}},
			},
			wantImages: pngs[:2],
			wantSeeds:  []int64{555, 666},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.answer = answerPNGs(pngs, tt.randoms...)

			images, err := f.generator(t).Generate(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got := f.requests(); !reflect.DeepEqual(got, tt.wantSent) {
				t.Errorf("sent\n got %v\nwant %v", got, tt.wantSent)
			}
			if len(images) != len(tt.wantImages) {
				t.Fatalf("got %d images, want %d", len(images), len(tt.wantImages))
			}
			for i, img := range images {
				if !bytes.Equal(img.Data, tt.wantImages[i]) {
					t.Errorf("image %d: bytes differ from the PNG the provider sent", i)
				}
				if _, err := png.Decode(bytes.NewReader(img.Data)); err != nil {
					t.Errorf("image %d does not decode as PNG: %v", i, err)
				}
				if img.Seed == nil || *img.Seed != tt.wantSeeds[i] {
					t.Errorf("image %d: Seed = %v, want %d", i, img.Seed, tt.wantSeeds[i])
				}
				if img.RevisedPrompt != "" {
					t.Errorf("image %d: RevisedPrompt = %q, want none", i, img.RevisedPrompt)
				}
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	pngBytes := testPNG(t, 1)
	bigPNG := bytes.Repeat([]byte{0x89}, 4096)
	status := func(code int, name string, errs ...string) func(http.ResponseWriter, *http.Request, sent) {
		return func(w http.ResponseWriter, _ *http.Request, _ sent) { writeError(w, code, name, errs...) }
	}

	tests := []struct {
		name     string
		req      imaged.GenerateRequest
		maxBytes int64
		answer   func(http.ResponseWriter, *http.Request, sent)
		// Either wantCode (an *imaged.Error) or wantUpstream (fields checked).
		wantCode     imaged.ErrorCode
		wantUpstream *imaged.UpstreamError
	}{
		{
			name: "content_filtered_finish_reason_is_a_content_policy_error",
			answer: func(w http.ResponseWriter, _ *http.Request, _ sent) {
				writeImage(w, pngBytes, "12", "CONTENT_FILTERED") // a blurred image, per the docs
			},
			wantCode: imaged.EContentPolicy,
		},
		{
			name:     "content_moderation_403_is_a_content_policy_error",
			answer:   status(http.StatusForbidden, "content_moderation", "Your request was flagged by our content moderation system, as a result your request was denied and you were not charged."),
			wantCode: imaged.EContentPolicy,
		},
		{
			name:         "bad_key_401_is_not_retryable_and_does_not_echo_the_key",
			answer:       status(http.StatusUnauthorized, "unauthorized", "authorization: invalid or missing header value", "key "+maskedKey+" is not valid"),
			wantUpstream: &imaged.UpstreamError{Status: 401},
		},
		{
			name:         "key_quoted_in_other_errors_is_redacted",
			answer:       status(http.StatusBadRequest, "bad_request", "authorization: malformed value 'Bearer "+testKey+"'"),
			wantUpstream: &imaged.UpstreamError{Status: 400},
		},
		{
			name:         "other_403_is_not_retryable",
			answer:       status(http.StatusForbidden, "forbidden", "this key may not use this model"),
			wantUpstream: &imaged.UpstreamError{Status: 403},
		},
		{
			name: "rate_limit_429_is_retryable_after_the_given_seconds",
			answer: func(w http.ResponseWriter, r *http.Request, s sent) {
				w.Header().Set("Retry-After", "3")
				writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a 10 second period.")
			},
			wantUpstream: &imaged.UpstreamError{Status: 429, Retryable: true, RetryAfter: 3 * time.Second},
		},
		{
			name:         "server_error_500_is_retryable",
			answer:       status(http.StatusInternalServerError, "internal_error", "An unexpected server error has occurred, please try again later."),
			wantUpstream: &imaged.UpstreamError{Status: 500, Retryable: true},
		},
		{
			name:         "payload_too_large_413_is_not_retryable",
			answer:       status(http.StatusRequestEntityTooLarge, "payload_too_large", "body: payloads cannot be larger than 10MiB in size"),
			wantUpstream: &imaged.UpstreamError{Status: 413},
		},
		{
			name:         "rejected_422_is_not_retryable",
			answer:       status(http.StatusUnprocessableEntity, "invalid_language", "English is the only supported language for this service."),
			wantUpstream: &imaged.UpstreamError{Status: 422},
		},
		{
			name:         "payment_required_402_is_not_retryable",
			answer:       status(http.StatusPaymentRequired, "payment_required", "lacking sufficient credits"),
			wantUpstream: &imaged.UpstreamError{Status: 402},
		},
		{
			name:     "oversize_image_is_an_error",
			maxBytes: 1024,
			answer: func(w http.ResponseWriter, _ *http.Request, _ sent) {
				writeImage(w, bigPNG, "1", "SUCCESS")
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name: "json_answer_instead_of_image_bytes_is_an_error",
			answer: func(w http.ResponseWriter, _ *http.Request, _ sent) {
				w.Header().Set("Content-Type", "application/json; type=image/png")
				json.NewEncoder(w).Encode(map[string]any{"image": "iVBORw0KGgo=", "finish_reason": "SUCCESS", "seed": 1})
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name: "empty_image_is_an_error",
			answer: func(w http.ResponseWriter, _ *http.Request, _ sent) {
				writeImage(w, nil, "1", "SUCCESS")
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name: "failure_of_a_later_image_fails_the_whole_call",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 2},
			answer: func() func(http.ResponseWriter, *http.Request, sent) {
				var mu sync.Mutex
				calls := 0
				return func(w http.ResponseWriter, r *http.Request, s sent) {
					mu.Lock()
					calls++
					first := calls == 1
					mu.Unlock()
					if first {
						writeImage(w, pngBytes, "9", "SUCCESS")
						return
					}
					writeError(w, http.StatusBadGateway, "bad_gateway", "upstream unavailable")
				}
			}(),
			wantUpstream: &imaged.UpstreamError{Status: 502, Retryable: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.answer = tt.answer
			g := f.generator(t, func(c *stability.Config) { c.MaxResponseBytes = tt.maxBytes })
			req := tt.req
			if req.Prompt == "" {
				req = imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}
			}

			images, err := g.Generate(context.Background(), req)
			if err == nil {
				t.Fatalf("Generate returned %d images and no error", len(images))
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), maskedKey) {
				t.Errorf("error %q contains the API key", err)
			}
			if tt.wantCode != "" {
				checkAppError(t, err, tt.wantCode)
				return
			}
			checkUpstream(t, err, tt.wantUpstream)
		})
	}
}

func checkAppError(t *testing.T, err error, want imaged.ErrorCode) {
	t.Helper()
	upstreamtest.AppError(t, err, want)
}

func checkUpstream(t *testing.T, err error, want *imaged.UpstreamError) {
	t.Helper()
	upstreamtest.CheckUpstream(t, err, "stability", want)
}

func TestGenerateReportsTheSeedSentWhenTheHeaderIsMissing(t *testing.T) {
	f := newFake(t)
	f.answer = func(w http.ResponseWriter, _ *http.Request, _ sent) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(testPNG(t, 3))
	}
	seed := int64(31)
	images, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1, Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	if images[0].Seed == nil || *images[0].Seed != 31 {
		t.Errorf("Seed = %v, want 31", images[0].Seed)
	}
}

func TestGenerateResponseLimit(t *testing.T) {
	img := testPNG(t, 9)
	tests := []struct {
		name     string
		maxBytes int64
		wantErr  bool
	}{
		{"image_of_exactly_the_limit_is_accepted", int64(len(img)), false},
		{"image_one_byte_over_the_limit_is_refused", int64(len(img)) - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.answer = answerPNGs([][]byte{img}, "4")
			g := f.generator(t, func(c *stability.Config) { c.MaxResponseBytes = tt.maxBytes })
			images, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
			if tt.wantErr {
				checkUpstream(t, err, &imaged.UpstreamError{Status: 200})
				return
			}
			if err != nil || len(images) != 1 || !bytes.Equal(images[0].Data, img) {
				t.Errorf("Generate = %d images, %v; want the image", len(images), err)
			}
		})
	}
}

func TestGenerateDeadline(t *testing.T) {
	t.Run("slow_provider_past_the_deadline_is_a_timeout", func(t *testing.T) {
		f := newFake(t)
		f.answer = func(w http.ResponseWriter, r *http.Request, _ sent) {
			<-r.Context().Done() // never answers; returns once the client gives up
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()

		_, err := f.generator(t).Generate(ctx, imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		checkUpstream(t, err, &imaged.UpstreamError{Timeout: true})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
	})
	t.Run("caller_going_away_cancels_the_upstream_request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		upstreamDone := make(chan struct{})
		f := newFake(t)
		f.answer = func(w http.ResponseWriter, r *http.Request, _ sent) {
			cancel()
			<-r.Context().Done()
			close(upstreamDone)
		}
		_, err := f.generator(t).Generate(ctx, imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 2})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		checkUpstream(t, err, &imaged.UpstreamError{})
		<-upstreamDone // the provider saw the request end
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests after the caller left, want 1", n)
		}
	})
}

func TestGenerateNetworkErrorIsRetryable(t *testing.T) {
	f := newFake(t)
	g := f.generator(t)
	f.srv.Close() // nothing listens any more

	_, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
	checkUpstream(t, err, &imaged.UpstreamError{Retryable: true})
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestGenerateRejectsBeforeCallingTheProvider(t *testing.T) {
	seed := func(v int64) *int64 { return &v }
	tests := []struct {
		name string
		req  imaged.GenerateRequest
		want string // in the message
	}{
		{"unknown_model", imaged.GenerateRequest{Prompt: "a cat", Model: "sdxl-1.0", AspectRatio: "1:1", N: 1}, `model "sdxl-1.0" is not offered by provider stability`},
		{"unsupported_aspect_ratio", imaged.GenerateRequest{Prompt: "a cat", Model: "core", AspectRatio: "4:3", N: 1}, `aspect ratio "4:3" is not supported by model "core"`},
		{"too_many_images", imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 5}, "at most 4 images"},
		{"prompt_too_long", imaged.GenerateRequest{Prompt: strings.Repeat("a", 10001), AspectRatio: "1:1", N: 1}, "at most 10000 characters"},
		{"empty_prompt", imaged.GenerateRequest{Prompt: "", AspectRatio: "1:1", N: 1}, "prompt is empty"},
		{"negative_prompt_on_turbo", imaged.GenerateRequest{Prompt: "a cat", NegativePrompt: "dogs", Model: "sd3.5-large-turbo", AspectRatio: "1:1", N: 1}, "negative prompt"},
		{"negative_seed", imaged.GenerateRequest{Prompt: "a cat", Seed: seed(-1), AspectRatio: "1:1", N: 1}, "seed"},
		{"seeds_past_the_maximum", imaged.GenerateRequest{Prompt: "a cat", Seed: seed(4294967294), AspectRatio: "1:1", N: 2}, "seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.answer = func(http.ResponseWriter, *http.Request, sent) {}
			_, err := f.generator(t).Generate(context.Background(), tt.req)
			checkAppError(t, err, imaged.EInvalidPrompt)
			if msg := imaged.ErrMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("the provider was called %d times", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("api_key_is_required", func(t *testing.T) {
		if _, err := stability.New(stability.Config{}); err == nil {
			t.Error("New without an API key succeeded")
		}
	})
	t.Run("base_url_must_be_http", func(t *testing.T) {
		if _, err := stability.New(stability.Config{APIKey: testKey, BaseURL: "ftp://api.stability.ai"}); err == nil {
			t.Error("New with an ftp base URL succeeded")
		}
	})
	t.Run("unknown_enabled_model_is_refused", func(t *testing.T) {
		if _, err := stability.New(stability.Config{APIKey: testKey, Models: []string{"sd3-large"}}); err == nil {
			t.Error("New enabling an unknown model succeeded")
		}
	})
	t.Run("enabled_models_restrict_and_order_the_list", func(t *testing.T) {
		f := newFake(t)
		f.answer = answerPNGs([][]byte{testPNG(t, 5)}, "8")
		g := f.generator(t, func(c *stability.Config) { c.Models = []string{"sd3.5-large", "ultra"} })
		if ids := modelIDs(g.Models()); !slices.Equal(ids, []string{"sd3.5-large", "ultra"}) {
			t.Errorf("Models() = %v, want [sd3.5-large ultra]", ids)
		}
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if got := f.requests()[0]; got.Path != "/v2beta/stable-image/generate/sd3" || got.Fields["model"] != "sd3.5-large" {
			t.Errorf("default request = %v, want sd3 with model sd3.5-large", got)
		}
		_, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", Model: "core", AspectRatio: "1:1", N: 1})
		checkAppError(t, err, imaged.EInvalidPrompt)
	})
}

func TestModels(t *testing.T) {
	g, err := stability.New(stability.Config{APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() != "stability" {
		t.Errorf("Name() = %q", g.Name())
	}
	models := g.Models()
	want := []string{"core", "ultra", "sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium"}
	if ids := modelIDs(models); !slices.Equal(ids, want) {
		t.Fatalf("Models() = %v, want %v", ids, want)
	}
	for _, m := range models {
		if len(m.AspectRatios) == 0 {
			t.Errorf("%s lists no aspect ratio", m.ID)
		}
		for _, ar := range m.AspectRatios {
			if !slices.Contains(imaged.AspectRatios, ar) || !slices.Contains(apiRatios, ar) {
				t.Errorf("%s lists %q, which imaged or the provider does not accept", m.ID, ar)
			}
		}
		if m.MaxImages != 4 || m.MaxPromptLength != 10000 || !m.SupportsSeed {
			t.Errorf("%s: unexpected limits %+v", m.ID, m)
		}
		if m.SupportsNegativePrompt == (m.ID == "sd3.5-large-turbo") {
			t.Errorf("%s: SupportsNegativePrompt = %v", m.ID, m.SupportsNegativePrompt)
		}
	}
	models[0].AspectRatios[0] = "changed"
	if g.Models()[0].AspectRatios[0] == "changed" {
		t.Error("Models() shares its slices with the caller")
	}
}

func modelIDs(models []imaged.Model) []string {
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestConformance(t *testing.T) {
	g, err := stability.New(stability.Config{APIKey: testKey, HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}
