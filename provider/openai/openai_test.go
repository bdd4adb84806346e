package openai_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/openai"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

// testKey is long and distinctive so that a leak into an error is obvious.
const testKey = "sk-proj-TESTKEY0123456789abcdefSECRET"

// maskedKey is how the API quotes a wrong key back.
const maskedKey = "sk-proj-********************************CRET"

// testPNG encodes a small real image, different per shade.
func testPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	return upstreamtest.PNG(t, 3, 2, color.RGBA{R: shade, G: 40, B: 90, A: 255})
}

// fakeOpenAI reproduces POST /v1/images/generations as the API reference
// documents it, and serves downloads under /files/ for url answers. It checks
// what every request must carry and rejects what the real API rejects; the
// test's answer decides the rest.
type fakeOpenAI struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, body map[string]any)
	files  map[string][]byte

	mu     sync.Mutex
	sent   []map[string]any // generation bodies, in order
	edited []editForm       // edit requests, in order
}

// fixedSizes are the sizes the fixed-size models document; anything else is
// a 400 from the real API. gpt-image-2 takes free sizes (checkFreeSize).
var fixedSizes = []string{"1024x1024", "1536x1024", "1024x1536", "auto"}

var gptImageModels = []string{"gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini", "gpt-image-2"}

// checkFreeSize applies gpt-image-2's documented rules: WxH, both sides
// multiples of 16, the long side at most 3840, a ratio within 3:1, and
// between 655,360 and 8,294,400 pixels.
func checkFreeSize(size string) bool {
	var w, h int
	if _, err := fmt.Sscanf(size, "%dx%d", &w, &h); err != nil || fmt.Sprintf("%dx%d", w, h) != size {
		return size == "auto"
	}
	return w%16 == 0 && h%16 == 0 && max(w, h) <= 3840 && max(w, h) <= 3*min(w, h) &&
		w*h >= 655360 && w*h <= 8294400
}

// basePath is where the fake serves the API: the SDKs' base URL is
// {server}/v1, and the adapter must not add a version of its own.
const basePath = "/v1"

func newFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body map[string]any)) *fakeOpenAI {
	t.Helper()
	f := &fakeOpenAI{t: t, answer: answer, files: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+basePath+"/images/generations", f.generations)
	mux.HandleFunc("POST "+basePath+"/images/edits", f.edits)
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("download sent Authorization %q; the API key must not leave for a signed URL", got)
		}
		data, ok := f.files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(data)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "Invalid URL ("+r.Method+" "+r.URL.Path+")")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) authorized(w http.ResponseWriter, r *http.Request) bool {
	if got, want := r.Header.Get("Authorization"), "Bearer "+testKey; got != want {
		f.t.Errorf("Authorization = %q, want %q", got, want)
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided")
		return false
	}
	return true
}

func (f *fakeOpenAI) generations(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if !f.authorized(w, r) {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Errorf("body is not JSON: %v", err)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	f.mu.Lock()
	f.sent = append(f.sent, body)
	f.mu.Unlock()
	if rejectParams(w, body) {
		return
	}
	f.answer(w, r, body)
}

// rejectParams answers 400 as the real API does for what a GPT Image model
// does not take, and reports whether it did.
func rejectParams(w http.ResponseWriter, body map[string]any) bool {
	model := fmt.Sprint(body["model"])
	size := fmt.Sprint(body["size"])
	bad := func(code, msg string) bool {
		writeError(w, http.StatusBadRequest, "invalid_request_error", code, msg)
		return true
	}
	switch {
	case !slices.Contains(gptImageModels, model):
		return bad("model_not_found", "The model '"+model+"' does not exist.")
	case model == "gpt-image-2" && !checkFreeSize(size), model != "gpt-image-2" && !slices.Contains(fixedSizes, size):
		return bad("invalid_value", "Invalid value for 'size'.")
	case body["response_format"] != nil:
		return bad("unknown_parameter", "Unknown parameter: 'response_format'.")
	case body["background"] == "transparent" && model == "gpt-image-2":
		return bad("invalid_value", "Transparent background is not supported for this model.")
	case body["background"] == "transparent" && body["output_format"] == "jpeg":
		return bad("invalid_value", "Transparent background requires output_format png or webp.")
	}
	for field, values := range map[string][]string{
		"quality": {"auto", "low", "medium", "high"}, "background": {"auto", "opaque", "transparent"}, "output_format": {"png", "jpeg", "webp"},
	} {
		if v, ok := body[field]; ok && !slices.Contains(values, fmt.Sprint(v)) {
			return bad("invalid_value", "Invalid value for '"+field+"'.")
		}
	}
	return false
}

func (f *fakeOpenAI) bodies() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *fakeOpenAI) generator(t *testing.T, mutate ...func(*openai.Config)) *openai.Generator {
	t.Helper()
	cfg := openai.Config{APIKey: testKey, BaseURL: f.srv.URL + basePath, HTTPClient: f.srv.Client()}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var c any
	if code != "" {
		c = code
	}
	json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": message, "type": typ, "param": nil, "code": c},
	})
}

// datum is one element of the answer's data array.
type datum struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

// testUsage is the usage block the fake answers with, as the API documents it.
var testUsage = map[string]any{
	"total_tokens": 4210.0, "input_tokens": 50.0, "output_tokens": 4160.0,
	"input_tokens_details": map[string]any{"text_tokens": 40.0, "image_tokens": 10.0},
}

func writeImages(w http.ResponseWriter, data ...datum) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"created": 1713833628, "data": data, "background": "opaque",
		"output_format": "png", "quality": "high", "size": "1024x1024", "usage": testUsage})
}

// answerPNGs answers each request with n base64 images from pngs, in turn.
func answerPNGs(pngs [][]byte, revised string) func(http.ResponseWriter, *http.Request, map[string]any) {
	var mu sync.Mutex
	next := 0
	return func(w http.ResponseWriter, _ *http.Request, body map[string]any) {
		n := int(body["n"].(float64))
		mu.Lock()
		defer mu.Unlock()
		var data []datum
		for range n {
			data = append(data, datum{B64JSON: base64.StdEncoding.EncodeToString(pngs[next%len(pngs)]), RevisedPrompt: revised})
			next++
		}
		writeImages(w, data...)
	}
}

func TestGenerate(t *testing.T) {
	pngs := [][]byte{testPNG(t, 10), testPNG(t, 120), testPNG(t, 250)}

	tests := []struct {
		name        string
		req         imaged.GenerateRequest
		answer      func(f *fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any)
		wantSent    []map[string]any
		wantImages  [][]byte
		wantRevised string
	}{
		{
			name: "default_model_is_gpt_image_1_5_and_square_is_1024x1024",
			req:  imaged.GenerateRequest{Prompt: "a red fox", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-1.5", "prompt": "a red fox", "n": 1.0, "size": "1024x1024"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "several_images_are_one_request",
			req:  imaged.GenerateRequest{Prompt: "a lighthouse", Model: "gpt-image-1", AspectRatio: "16:9", N: 3},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-1", "prompt": "a lighthouse", "n": 3.0, "size": "1536x1024"},
			},
			wantImages: pngs,
		},
		{
			name: "portrait_ratio_is_1024x1536",
			req:  imaged.GenerateRequest{Prompt: "a tower", Model: "gpt-image-1-mini", AspectRatio: "3:4", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-1-mini", "prompt": "a tower", "n": 1.0, "size": "1024x1536"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "options_pass_through_under_the_api_names",
			req:  imaged.GenerateRequest{Prompt: "a sticker", AspectRatio: "1:1", N: 1, Options: map[string]string{"quality": "high", "background": "transparent", "output_format": "webp"}},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-1.5", "prompt": "a sticker", "n": 1.0, "size": "1024x1024", "quality": "high", "background": "transparent", "output_format": "webp"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "gpt_image_2_16_9_is_an_exact_free_size",
			req:  imaged.GenerateRequest{Prompt: "a valley", Model: "gpt-image-2", AspectRatio: "16:9", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-2", "prompt": "a valley", "n": 1.0, "size": "1280x720"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "gpt_image_2_4k_16_9_is_3840x2160_and_resolution_is_not_sent",
			req:  imaged.GenerateRequest{Prompt: "a valley", Model: "gpt-image-2", AspectRatio: "16:9", N: 1, Options: map[string]string{"resolution": "4k", "quality": "low"}},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-2", "prompt": "a valley", "n": 1.0, "size": "3840x2160", "quality": "low"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "gpt_image_2_2k_portrait",
			req:  imaged.GenerateRequest{Prompt: "a spire", Model: "gpt-image-2", AspectRatio: "2:3", N: 1, Options: map[string]string{"resolution": "2k"}},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs(pngs, "")
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-2", "prompt": "a spire", "n": 1.0, "size": "1664x2496"},
			},
			wantImages: pngs[:1],
		},
		{
			name: "url_answer_of_a_compatible_server_is_downloaded_without_the_api_key",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(f *fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				f.files["img-1.png"] = pngs[1]
				return func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
					writeImages(w, datum{URL: f.srv.URL + "/files/img-1.png?se=2024-01-01&sig=abc", RevisedPrompt: "A cat"})
				}
			},
			wantSent: []map[string]any{
				{"model": "gpt-image-1.5", "prompt": "a cat", "n": 1.0, "size": "1024x1024"},
			},
			wantImages:  pngs[1:2],
			wantRevised: "A cat",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			f.answer = tt.answer(f)

			images, err := f.generator(t).Generate(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got := f.bodies(); !reflect.DeepEqual(got, tt.wantSent) {
				t.Errorf("sent bodies\n got %v\nwant %v", got, tt.wantSent)
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
				if img.RevisedPrompt != tt.wantRevised {
					t.Errorf("image %d: RevisedPrompt = %q, want %q", i, img.RevisedPrompt, tt.wantRevised)
				}
				if img.Seed != nil {
					t.Errorf("image %d: Seed = %d, want nil (the API reports none)", i, *img.Seed)
				}
				want := imaged.Usage{InputTokens: 50, InputTextTokens: 40, InputImageTokens: 10, OutputTokens: 4160, TotalTokens: 4210, Images: len(images)}
				if img.Usage == nil || *img.Usage != want {
					t.Errorf("image %d: Usage = %+v, want %+v", i, img.Usage, want)
				}
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	bigPNG := bytes.Repeat([]byte{0x89}, 4096)

	tests := []struct {
		name     string
		req      imaged.GenerateRequest
		maxBytes int64
		answer   func(f *fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any)
		// Either wantCode (an *imaged.Error) or wantUpstream (fields checked).
		wantCode     imaged.ErrorCode
		wantUpstream *imaged.UpstreamError
	}{
		{
			name: "content_policy_violation_is_a_content_policy_error",
			req:  imaged.GenerateRequest{Prompt: "something", Model: "gpt-image-1", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusBadRequest, "invalid_request_error", "content_policy_violation",
						"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.")
				}
			},
			wantCode: imaged.EContentPolicy,
		},
		{
			name: "moderation_blocked_is_a_content_policy_error",
			req:  imaged.GenerateRequest{Prompt: "something", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusBadRequest, "image_generation_user_error", "moderation_blocked",
						"Your request was rejected by the safety system. safety_violations=[violence].")
				}
			},
			wantCode: imaged.EContentPolicy,
		},
		{
			name: "bad_key_401_is_not_retryable_and_does_not_echo_the_key",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					// The real API quotes the key masked but for its last characters.
					writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
						"Incorrect API key provided: "+maskedKey+". You can find your API key at https://platform.openai.com/account/api-keys.")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 401},
		},
		{
			name: "key_quoted_in_other_errors_is_redacted",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid header value 'Bearer "+testKey+"'.")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 400},
		},
		{
			name: "forbidden_403_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusForbidden, "invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 403},
		},
		{
			name: "rate_limit_429_is_retryable_after_the_given_seconds",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					w.Header().Set("Retry-After", "7")
					writeError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached for images per minute.")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 429, Retryable: true, RetryAfter: 7 * time.Second},
		},
		{
			name: "insufficient_quota_429_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details.")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 429},
		},
		{
			name: "server_error_500_is_retryable",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusInternalServerError, "server_error", "", "The server had an error while processing your request.")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 500, Retryable: true},
		},
		{
			name: "other_400_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeError(w, http.StatusBadRequest, "invalid_request_error", "billing_hard_limit_reached", "Billing hard limit has been reached")
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 400},
		},
		{
			name:     "oversize_json_answer_is_an_error",
			req:      imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			maxBytes: 1024,
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return answerPNGs([][]byte{bigPNG}, "")
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name:     "oversize_download_is_an_error",
			req:      imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			maxBytes: 1024,
			answer: func(f *fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				f.files["big.png"] = bigPNG
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeImages(w, datum{URL: f.srv.URL + "/files/big.png"})
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name: "missing_download_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(f *fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeImages(w, datum{URL: f.srv.URL + "/files/gone.png"})
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 404},
		},
		{
			name: "answer_without_images_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { writeImages(w) }
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
		{
			name: "invalid_base64_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1},
			answer: func(*fakeOpenAI) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					writeImages(w, datum{B64JSON: "not base64!"})
				}
			},
			wantUpstream: &imaged.UpstreamError{Status: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			f.answer = tt.answer(f)
			g := f.generator(t, func(c *openai.Config) { c.MaxResponseBytes = tt.maxBytes })

			images, err := g.Generate(context.Background(), tt.req)
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
	upstreamtest.CheckUpstream(t, err, "openai", want)
}

func TestGenerateDeadline(t *testing.T) {
	t.Run("slow_provider_past_the_deadline_is_a_timeout", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			<-r.Context().Done() // never answers; returns once the client gives up
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()

		_, err := f.generator(t).Generate(ctx, imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		checkUpstream(t, err, &imaged.UpstreamError{Timeout: true})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
	})
	t.Run("slow_download_past_the_deadline_is_a_timeout", func(t *testing.T) {
		downloadStarted := make(chan struct{})
		f := newFake(t, nil)
		f.answer = func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			writeImages(w, datum{URL: f.srv.URL + "/slow/img.png"})
		}
		f.srv.Config.Handler.(*http.ServeMux).HandleFunc("GET /slow/img.png", func(w http.ResponseWriter, r *http.Request) {
			close(downloadStarted)
			<-r.Context().Done()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()

		_, err := f.generator(t).Generate(ctx, imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		checkUpstream(t, err, &imaged.UpstreamError{Timeout: true})
		<-downloadStarted
	})
	t.Run("caller_going_away_cancels_the_upstream_request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		upstreamDone := make(chan struct{})
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			cancel()
			<-r.Context().Done()
			close(upstreamDone)
		})
		_, err := f.generator(t).Generate(ctx, imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		checkUpstream(t, err, &imaged.UpstreamError{})
		<-upstreamDone // the provider saw the request end
	})
}

func TestGenerateNetworkErrorIsRetryable(t *testing.T) {
	f := newFake(t, nil)
	g := f.generator(t)
	f.srv.Close() // nothing listens any more

	_, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
	checkUpstream(t, err, &imaged.UpstreamError{Retryable: true})
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestGenerateRejectsBeforeCallingTheProvider(t *testing.T) {
	seed := int64(42)
	tests := []struct {
		name string
		req  imaged.GenerateRequest
		want string // in the message
	}{
		{"retired_dall_e_3", imaged.GenerateRequest{Prompt: "a cat", Model: "dall-e-3", AspectRatio: "1:1", N: 1}, `model "dall-e-3" is not offered by provider openai`},
		{"unsupported_aspect_ratio", imaged.GenerateRequest{Prompt: "a cat", Model: "gpt-image-2", AspectRatio: "21:9", N: 1}, `aspect ratio "21:9" is not supported by model "gpt-image-2"`},
		{"transparent_on_gpt_image_2", imaged.GenerateRequest{Prompt: "a cat", Model: "gpt-image-2", AspectRatio: "1:1", N: 1, Options: map[string]string{"background": "transparent"}}, "must be one of auto, opaque"},
		{"transparent_jpeg", imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1, Options: map[string]string{"background": "transparent", "output_format": "jpeg"}}, "needs output_format png or webp"},
		{"resolution_on_a_fixed_size_model", imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1, Options: map[string]string{"resolution": "4k"}}, `no option "resolution"`},
		{"unknown_quality", imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1, Options: map[string]string{"quality": "hd"}}, "must be one of auto, low, medium, high"},
		{"too_many_images", imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 5}, "at most 4 images"},
		{"prompt_too_long", imaged.GenerateRequest{Prompt: strings.Repeat("a", 32001), AspectRatio: "1:1", N: 1}, "at most 32000 characters"},
		{"empty_prompt", imaged.GenerateRequest{Prompt: "  ", AspectRatio: "1:1", N: 1}, "prompt is empty"},
		{"negative_prompt", imaged.GenerateRequest{Prompt: "a cat", NegativePrompt: "dogs", AspectRatio: "1:1", N: 1}, "negative prompt"},
		{"seed", imaged.GenerateRequest{Prompt: "a cat", Seed: &seed, AspectRatio: "1:1", N: 1}, "seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(http.ResponseWriter, *http.Request, map[string]any) {})
			_, err := f.generator(t).Generate(context.Background(), tt.req)
			checkAppError(t, err, imaged.EInvalidPrompt)
			if msg := imaged.ErrMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
			if n := len(f.bodies()); n != 0 {
				t.Errorf("the provider was called %d times", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("api_key_is_required", func(t *testing.T) {
		if _, err := openai.New(openai.Config{}); err == nil {
			t.Error("New without an API key succeeded")
		}
	})
	t.Run("base_url_must_be_http", func(t *testing.T) {
		if _, err := openai.New(openai.Config{APIKey: testKey, BaseURL: "api.openai.com"}); err == nil {
			t.Error("New with a scheme-less base URL succeeded")
		}
	})
	t.Run("unknown_enabled_model_is_refused", func(t *testing.T) {
		if _, err := openai.New(openai.Config{APIKey: testKey, Models: []string{"dall-e-3"}}); err == nil {
			t.Error("New enabling an unknown model succeeded")
		}
	})
	t.Run("enabled_models_restrict_and_order_the_list", func(t *testing.T) {
		f := newFake(t, answerPNGs([][]byte{testPNG(t, 5)}, ""))
		g := f.generator(t, func(c *openai.Config) { c.Models = []string{"gpt-image-2"} })
		if ids := modelIDs(g.Models()); !slices.Equal(ids, []string{"gpt-image-2"}) {
			t.Errorf("Models() = %v, want [gpt-image-2]", ids)
		}
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if got := f.bodies()[0]["model"]; got != "gpt-image-2" {
			t.Errorf("default model sent = %v, want gpt-image-2", got)
		}
		_, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", Model: "gpt-image-1", AspectRatio: "1:1", N: 1})
		checkAppError(t, err, imaged.EInvalidPrompt)
	})
}

func TestModels(t *testing.T) {
	g, err := openai.New(openai.Config{APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() != "openai" {
		t.Errorf("Name() = %q", g.Name())
	}
	models := g.Models()
	if ids := modelIDs(models); !slices.Equal(ids, []string{"gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini", "gpt-image-2"}) {
		t.Fatalf("Models() = %v", ids)
	}
	for _, m := range models {
		if len(m.AspectRatios) == 0 {
			t.Errorf("%s lists no aspect ratio", m.ID)
		}
		for _, ar := range m.AspectRatios {
			if !slices.Contains(imaged.AspectRatios, ar) {
				t.Errorf("%s lists %q, which the API does not accept", m.ID, ar)
			}
		}
		if m.MaxImages < 1 || m.MaxImages > 4 || m.MaxPromptLength == 0 || m.SupportsSeed || m.SupportsNegativePrompt {
			t.Errorf("%s: unexpected limits %+v", m.ID, m)
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
	g, err := openai.New(openai.Config{APIKey: testKey, HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}

func TestFreeSizesFollowTheDocumentedRules(t *testing.T) {
	f := newFake(t, answerPNGs([][]byte{testPNG(t, 7)}, ""))
	g := f.generator(t)
	for _, tier := range []string{"1k", "2k", "4k"} {
		for _, ar := range imaged.AspectRatios {
			opts := map[string]string{"resolution": tier}
			if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "x", Model: "gpt-image-2", AspectRatio: ar, N: 1, Options: opts}); err != nil {
				t.Errorf("%s at %s: %v", ar, tier, err)
				continue
			}
			sent := f.bodies()
			size := fmt.Sprint(sent[len(sent)-1]["size"])
			var w, h, a, b int
			fmt.Sscanf(size, "%dx%d", &w, &h)
			fmt.Sscanf(ar, "%d:%d", &a, &b)
			if !checkFreeSize(size) || w*b != h*a {
				t.Errorf("%s at %s: size %s is not an exact, documented size", ar, tier, size)
			}
		}
	}
	if got := fmt.Sprint(f.bodies()[len(f.bodies())-1]["size"]); got != "2336x3504" {
		t.Errorf("2:3 at 4k = %s, want 2336x3504", got)
	}
}

func TestBaseURLIncludesTheVersion(t *testing.T) {
	// An OpenAI-compatible proxy documents its base with its own prefix.
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		writeImages(w, datum{B64JSON: base64.StdEncoding.EncodeToString(testPNG(t, 3))})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, base := range []string{srv.URL + "/v1", srv.URL + "/litellm/v1/"} {
		g, err := openai.New(openai.Config{APIKey: testKey, BaseURL: base, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"/v1/images/generations", "/litellm/v1/images/generations"}; !slices.Equal(got, want) {
		t.Errorf("paths %v, want %v", got, want)
	}
}
