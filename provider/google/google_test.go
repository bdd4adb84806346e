package google_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/color"
	"image/png"
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
	"github.com/imaged/imaged/provider/google"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

// validKey is the key the fake accepts; wrongKey is one it rejects. Both are
// distinctive so that a leak into an error string is easy to spot.
const (
	validKey = "AIzaSyFAKE-valid-key-7f3c9e1b2d"
	wrongKey = "AIzaSyFAKE-wrong-key-0a8d6b4c5e"
)

// predictCall is what the fake Imagen saw of one request.
type predictCall struct {
	Model string
	Body  struct {
		Instances []struct {
			Prompt string `json:"prompt"`
		} `json:"instances"`
		Parameters map[string]any `json:"parameters"`
	}
}

func (c predictCall) param(name string) any { return c.Body.Parameters[name] }

// fakeImagen reproduces the Gemini API's predict endpoint for Imagen: it
// checks the route, the key and the body as Google does, answers the same
// errors for what Google refuses, and leaves the answer to a valid request to
// the test.
type fakeImagen struct {
	t      *testing.T
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	last   predictCall
	answer func(w http.ResponseWriter, r *http.Request, c predictCall)
}

func newFakeImagen(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, c predictCall)) *fakeImagen {
	t.Helper()
	f := &fakeImagen{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

var imagenModels = []string{"imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001", "imagen-4.0-fast-generate-001"}

func (f *fakeImagen) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	t := f.t
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	if r.URL.RawQuery != "" {
		t.Errorf("query = %q, want none: the key belongs in a header", r.URL.RawQuery)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	model, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	if ok {
		model, ok = strings.CutSuffix(model, ":predict")
	}
	if !ok {
		t.Errorf("path = %q, want /v1beta/models/{model}:predict", r.URL.Path)
		writeJSON(w, http.StatusNotFound, googleError(404, "NOT_FOUND", "Not found"))
		return
	}
	switch key := r.Header.Get("x-goog-api-key"); key {
	case validKey:
	case "":
		writeJSON(w, http.StatusForbidden, googleError(403, "PERMISSION_DENIED",
			"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."))
		return
	default:
		// Google answers a bad key with 400 and echoes it in its debug info.
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT",
			"API key not valid. Please pass a valid API key.",
			map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
				"domain": "googleapis.com", "metadata": map[string]any{"service": "generativelanguage.googleapis.com"}},
			map[string]any{"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "Invalid API key: " + key}))
		return
	}
	if !slices.Contains(imagenModels, model) {
		writeJSON(w, http.StatusNotFound, googleError(404, "NOT_FOUND",
			"models/"+model+" is not found for API version v1beta, or is not supported for predict."))
		return
	}
	c := predictCall{Model: model}
	if err := json.NewDecoder(r.Body).Decode(&c.Body); err != nil {
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
		return
	}
	f.mu.Lock()
	f.last = c
	f.mu.Unlock()
	if len(c.Body.Instances) != 1 || c.Body.Instances[0].Prompt == "" {
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", "A prompt is required."))
		return
	}
	for _, unsupported := range []string{"seed", "negativePrompt", "addWatermark"} {
		if _, ok := c.Body.Parameters[unsupported]; ok {
			writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", unsupported+" is not supported in the Gemini API."))
			return
		}
	}
	if n, _ := c.param("sampleCount").(float64); n < 1 || n > 4 {
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", "Number of images must be between 1 and 4."))
		return
	}
	if ar, _ := c.param("aspectRatio").(string); !slices.Contains([]string{"1:1", "3:4", "4:3", "9:16", "16:9"}, ar) {
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", "Unsupported aspect ratio."))
		return
	}
	f.answer(w, r, c)
}

func (f *fakeImagen) lastCall() predictCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func googleError(code int, status, message string, details ...map[string]any) map[string]any {
	e := map[string]any{"code": code, "message": message, "status": status}
	if len(details) > 0 {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

// predictions answers with one prediction per image, as Imagen does.
func predictions(imgs ...[]byte) map[string]any {
	var ps []map[string]any
	for _, img := range imgs {
		ps = append(ps, map[string]any{
			"bytesBase64Encoded": base64.StdEncoding.EncodeToString(img),
			"mimeType":           "image/png",
		})
	}
	return map[string]any{"predictions": ps}
}

func filteredPrediction() map[string]any {
	return map[string]any{"raiFilteredReason": "Unable to show generated images. All images were filtered out because they violated Google's Responsible AI practices. Support codes: 56562880"}
}

func newGenerator(t *testing.T, f *fakeImagen, mutate func(*google.Config)) *google.Generator {
	t.Helper()
	cfg := google.Config{APIKey: validKey, BaseURL: f.srv.URL, HTTPClient: f.srv.Client()}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := google.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func asUpstream(t *testing.T, err error) *imaged.UpstreamError {
	t.Helper()
	return upstreamtest.UpstreamError(t, err, "google")
}

func wantContentPolicy(t *testing.T, err error) {
	t.Helper()
	upstreamtest.AppError(t, err, imaged.EContentPolicy)
}

func TestGenerate(t *testing.T) {
	red := upstreamtest.PNG(t, 4, 3, color.NRGBA{R: 255, A: 255})
	green := upstreamtest.PNG(t, 3, 4, color.NRGBA{G: 255, A: 255})
	blue := upstreamtest.PNG(t, 2, 2, color.NRGBA{B: 255, A: 255})

	tests := []struct {
		name   string
		config func(*google.Config)
		req    imaged.GenerateRequest
		answer func(w http.ResponseWriter, r *http.Request, c predictCall)
		check  func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall)
	}{
		{
			name: "one_image_on_the_default_model_round_trips_its_bytes",
			req:  imaged.GenerateRequest{Prompt: "a red fox in snow", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, predictions(red))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if c.Model != "imagen-4.0-generate-001" {
					t.Errorf("model = %q, want the default imagen-4.0-generate-001", c.Model)
				}
				if got := c.Body.Instances[0].Prompt; got != "a red fox in snow" {
					t.Errorf("prompt = %q", got)
				}
				if c.param("sampleCount") != 1.0 || c.param("aspectRatio") != "1:1" {
					t.Errorf("parameters = %v, want sampleCount 1 and aspectRatio 1:1", c.Body.Parameters)
				}
				if _, ok := c.Body.Parameters["personGeneration"]; ok {
					t.Errorf("personGeneration sent without being configured: %v", c.Body.Parameters)
				}
				if len(images) != 1 || !bytes.Equal(images[0].Data, red) {
					t.Fatalf("got %d images, want the one PNG sent", len(images))
				}
				if images[0].Seed != nil {
					t.Errorf("Seed = %d, want none: Imagen does not report one", *images[0].Seed)
				}
				if _, err := png.Decode(bytes.NewReader(images[0].Data)); err != nil {
					t.Errorf("image does not decode as PNG: %v", err)
				}
			},
		},
		{
			name:   "n_images_of_a_chosen_model_and_ratio_come_back_in_order",
			config: func(c *google.Config) { c.PersonGeneration = "allow_adult" },
			req:    imaged.GenerateRequest{Prompt: "three lighthouses", Model: "imagen-4.0-ultra-generate-001", AspectRatio: "16:9", N: 3},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, predictions(red, green, blue))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if c.Model != "imagen-4.0-ultra-generate-001" {
					t.Errorf("model = %q", c.Model)
				}
				if c.param("sampleCount") != 3.0 || c.param("aspectRatio") != "16:9" || c.param("personGeneration") != "allow_adult" {
					t.Errorf("parameters = %v", c.Body.Parameters)
				}
				want := [][]byte{red, green, blue}
				if len(images) != len(want) {
					t.Fatalf("got %d images, want 3", len(images))
				}
				for i := range want {
					if !bytes.Equal(images[i].Data, want[i]) {
						t.Errorf("image %d differs from what the provider sent", i)
					}
				}
			},
		},
		{
			name: "an_enhanced_prompt_is_reported_as_revised",
			req:  imaged.GenerateRequest{Prompt: "cat", AspectRatio: "4:3", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, map[string]any{"predictions": []map[string]any{{
					"bytesBase64Encoded": base64.StdEncoding.EncodeToString(red),
					"mimeType":           "image/png",
					"prompt":             "A photograph of a tabby cat on a windowsill",
				}}})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if images[0].RevisedPrompt != "A photograph of a tabby cat on a windowsill" {
					t.Errorf("RevisedPrompt = %q", images[0].RevisedPrompt)
				}
			},
		},
		{
			name: "some_images_filtered_returns_the_rest",
			req:  imaged.GenerateRequest{Prompt: "a crowd at a concert", AspectRatio: "9:16", N: 4},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				p := predictions(red, green)
				p["predictions"] = append(p["predictions"].([]map[string]any), filteredPrediction(), filteredPrediction())
				writeJSON(w, http.StatusOK, p)
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if c.param("includeRaiReason") != true {
					t.Errorf("includeRaiReason = %v, want true so that filtering is explained", c.param("includeRaiReason"))
				}
				if len(images) != 2 || !bytes.Equal(images[0].Data, red) || !bytes.Equal(images[1].Data, green) {
					t.Errorf("got %d images, want the 2 that were not filtered", len(images))
				}
			},
		},
		{
			name: "all_images_filtered_is_a_content_policy_refusal",
			req:  imaged.GenerateRequest{Prompt: "something forbidden", AspectRatio: "1:1", N: 2},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, map[string]any{"predictions": []map[string]any{filteredPrediction(), filteredPrediction()}})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				wantContentPolicy(t, err)
			},
		},
		{
			name: "an_empty_answer_is_a_content_policy_refusal",
			req:  imaged.GenerateRequest{Prompt: "something forbidden", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, map[string]any{})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				wantContentPolicy(t, err)
			},
		},
		{
			name: "a_prompt_refused_before_generation_is_a_content_policy_refusal",
			req:  imaged.GenerateRequest{Prompt: "something forbidden", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT",
					"Image generation failed with the following error: The prompt could not be submitted. This prompt contains sensitive words that violate Google's Responsible AI practices. Try rephrasing the prompt."))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				wantContentPolicy(t, err)
			},
		},
		{
			name:   "an_invalid_key_is_not_retryable",
			config: func(c *google.Config) { c.APIKey = wrongKey },
			req:    imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusBadRequest || ue.Retryable || ue.Timeout {
					t.Errorf("got status %d retryable %v timeout %v, want 400 and neither", ue.Status, ue.Retryable, ue.Timeout)
				}
				if imaged.ErrCode(err) == imaged.EContentPolicy {
					t.Error("a bad key was reported as a content-policy refusal")
				}
				if !strings.Contains(err.Error(), "API_KEY_INVALID") {
					t.Errorf("error %q does not say the key is invalid", err)
				}
			},
		},
		{
			name:   "a_missing_key_is_refused_and_not_retryable",
			config: func(c *google.Config) { c.HTTPClient = stripKeyClient(c.HTTPClient) },
			req:    imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusForbidden || ue.Retryable {
					t.Errorf("got status %d retryable %v, want 403 not retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name: "quota_exhausted_is_retryable_after_the_retry_after_header",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				w.Header().Set("Retry-After", "7")
				writeJSON(w, http.StatusTooManyRequests, googleError(429, "RESOURCE_EXHAUSTED",
					"You exceeded your current quota, please check your plan and billing details."))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusTooManyRequests || !ue.Retryable || ue.RetryAfter != 7*time.Second {
					t.Errorf("got status %d retryable %v after %v, want 429 retryable after 7s", ue.Status, ue.Retryable, ue.RetryAfter)
				}
			},
		},
		{
			name: "quota_exhausted_without_header_uses_the_retry_info_delay",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusTooManyRequests, googleError(429, "RESOURCE_EXHAUSTED",
					"You exceeded your current quota. Please retry in 53.016342224s.",
					map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "53s"}))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if !ue.Retryable || ue.RetryAfter != 53*time.Second {
					t.Errorf("got retryable %v after %v, want retryable after 53s", ue.Retryable, ue.RetryAfter)
				}
			},
		},
		{
			name: "an_internal_error_is_retryable",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusInternalServerError, googleError(500, "INTERNAL", "An internal error has occurred."))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusInternalServerError || !ue.Retryable {
					t.Errorf("got status %d retryable %v, want 500 retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name: "an_overloaded_model_is_retryable",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusServiceUnavailable, googleError(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusServiceUnavailable || !ue.Retryable {
					t.Errorf("got status %d retryable %v, want 503 retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name: "another_client_error_is_not_retryable",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusBadRequest, googleError(400, "FAILED_PRECONDITION",
					"Imagen API is only accessible to billed users at this time."))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusBadRequest || ue.Retryable {
					t.Errorf("got status %d retryable %v, want 400 not retryable", ue.Status, ue.Retryable)
				}
				if imaged.ErrCode(err) == imaged.EContentPolicy {
					t.Error("a billing error was reported as a content-policy refusal")
				}
			},
		},
		{
			name: "a_proxy_page_echoing_the_key_does_not_leak_it",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html>502 Bad Gateway for request with x-goog-api-key: "+r.Header.Get("x-goog-api-key")+"</html>")
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Status != http.StatusBadGateway || !ue.Retryable {
					t.Errorf("got status %d retryable %v, want 502 retryable", ue.Status, ue.Retryable)
				}
			},
		},
		{
			name:   "an_answer_over_the_size_limit_is_an_error",
			config: func(c *google.Config) { c.MaxResponseBytes = 1024 },
			req:    imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, predictions(upstreamtest.PNG(t, 64, 64, color.NRGBA{R: 1, G: 2, B: 3, A: 4}), bytes.Repeat([]byte{7}, 2048)))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
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
			name:   "an_answer_exactly_at_the_size_limit_is_accepted",
			config: func(c *google.Config) { c.MaxResponseBytes = int64(len(mustJSON(t, predictions(red)))) },
			req:    imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(mustJSON(t, predictions(red)))
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				if err != nil || len(images) != 1 || !bytes.Equal(images[0].Data, red) {
					t.Errorf("Generate = %d images, %v; want the image", len(images), err)
				}
			},
		},
		{
			name: "malformed_base64_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, map[string]any{"predictions": []map[string]any{{"bytesBase64Encoded": "iVBORw0KGgo%%%not*base64", "mimeType": "image/png"}}})
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				ue := asUpstream(t, err)
				if ue.Retryable || !strings.Contains(err.Error(), "base64") {
					t.Errorf("error = %v, want a non-retryable base64 error", err)
				}
			},
		},
		{
			name: "an_answer_that_is_not_json_is_an_error",
			req:  imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1},
			answer: func(w http.ResponseWriter, r *http.Request, c predictCall) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"predictions": [`)
			},
			check: func(t *testing.T, images []imaged.GeneratedImage, err error, c predictCall) {
				asUpstream(t, err)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeImagen(t, func(w http.ResponseWriter, r *http.Request, c predictCall) {
				if tt.answer == nil {
					t.Errorf("the fake was asked for an answer it was not given")
					writeJSON(w, http.StatusInternalServerError, googleError(500, "INTERNAL", "no answer"))
					return
				}
				tt.answer(w, r, c)
			})
			g := newGenerator(t, f, tt.config)
			images, err := g.Generate(context.Background(), tt.req)
			if f.calls.Load() != 1 {
				t.Errorf("the provider was called %d times, want exactly 1 (no retries inside the adapter)", f.calls.Load())
			}
			tt.check(t, images, err, f.lastCall())
			if err != nil {
				for _, key := range []string{validKey, wrongKey} {
					if strings.Contains(err.Error(), key) {
						t.Errorf("error %q contains an API key", err)
					}
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stripKeyClient sends requests without the API key header, as a
// misconfigured proxy would.
func stripKeyClient(c *http.Client) *http.Client {
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Del("x-goog-api-key")
		return next.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGenerate_refusesWithoutCallingTheProvider(t *testing.T) {
	seed := int64(42)
	tests := []struct {
		name   string
		config func(*google.Config)
		req    imaged.GenerateRequest
		want   string
	}{
		{"unknown_model", nil,
			imaged.GenerateRequest{Prompt: "a fox", Model: "dall-e-3", AspectRatio: "1:1", N: 1},
			`model "dall-e-3" is not offered by provider google`},
		{"model_disabled_by_config", func(c *google.Config) { c.Models = []string{"imagen-4.0-fast-generate-001"} },
			imaged.GenerateRequest{Prompt: "a fox", Model: "imagen-4.0-generate-001", AspectRatio: "1:1", N: 1},
			`model "imagen-4.0-generate-001" is not offered by provider google`},
		{"unsupported_aspect_ratio", nil,
			imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "3:2", N: 1},
			`aspect ratio "3:2" is not supported by model "imagen-4.0-generate-001"`},
		{"too_many_images", nil,
			imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 5},
			"1 to 4 images"},
		{"empty_prompt", nil,
			imaged.GenerateRequest{Prompt: "  ", AspectRatio: "1:1", N: 1},
			"prompt is empty"},
		{"prompt_too_long", nil,
			imaged.GenerateRequest{Prompt: strings.Repeat("a", 1921), AspectRatio: "1:1", N: 1},
			"longer than 1920"},
		{"negative_prompt", nil,
			imaged.GenerateRequest{Prompt: "a fox", NegativePrompt: "blur", AspectRatio: "1:1", N: 1},
			"negative prompt"},
		{"seed", nil,
			imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1, Seed: &seed},
			"seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeImagen(t, func(w http.ResponseWriter, r *http.Request, c predictCall) {
				writeJSON(w, http.StatusOK, predictions(upstreamtest.PNG(t, 1, 1, color.White)))
			})
			g := newGenerator(t, f, tt.config)
			_, err := g.Generate(context.Background(), tt.req)
			var e *imaged.Error
			if !errors.As(err, &e) || e.Code != imaged.EInvalidPrompt {
				t.Fatalf("error = %v, want %s", err, imaged.EInvalidPrompt)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Errorf("Message = %q, want it to contain %q", e.Message, tt.want)
			}
			if n := f.calls.Load(); n != 0 {
				t.Errorf("the provider was called %d times, want 0", n)
			}
		})
	}
}

func TestGenerate_deadlineIsATimeout(t *testing.T) {
	f := newFakeImagen(t, func(w http.ResponseWriter, r *http.Request, c predictCall) {
		<-r.Context().Done() // Imagen still drawing when the caller gives up
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

func TestGenerate_cancelledCallerIsNotRetried(t *testing.T) {
	started := make(chan struct{})
	f := newFakeImagen(t, func(w http.ResponseWriter, r *http.Request, c predictCall) {
		close(started)
		<-r.Context().Done()
	})
	g := newGenerator(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := g.Generate(ctx, imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1})
	ue := asUpstream(t, err)
	if ue.Retryable || ue.Timeout || !errors.Is(err, context.Canceled) {
		t.Errorf("got retryable %v timeout %v err %v, want a non-retryable cancellation", ue.Retryable, ue.Timeout, err)
	}
}

func TestGenerate_unreachableProviderIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more: connection refused
	g, err := google.New(google.Config{APIKey: validKey, BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1})
	ue := asUpstream(t, err)
	if !ue.Retryable || ue.Status != 0 {
		t.Errorf("got status %d retryable %v, want no status and retryable", ue.Status, ue.Retryable)
	}
	if strings.Contains(err.Error(), validKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestModels(t *testing.T) {
	t.Run("all_imagen_models_default_first", func(t *testing.T) {
		g, err := google.New(google.Config{APIKey: validKey})
		if err != nil {
			t.Fatal(err)
		}
		if g.Name() != "google" {
			t.Errorf("Name = %q", g.Name())
		}
		models := g.Models()
		var ids []string
		for _, m := range models {
			ids = append(ids, m.ID)
			for _, ar := range m.AspectRatios {
				if !slices.Contains(imaged.AspectRatios, ar) {
					t.Errorf("%s lists ratio %q that the API does not accept", m.ID, ar)
				}
			}
			if m.SupportsAspectRatio("3:2") || !m.SupportsAspectRatio("16:9") {
				t.Errorf("%s ratios = %v, want Imagen's five", m.ID, m.AspectRatios)
			}
			if m.MaxImages != 4 || m.SupportsSeed || m.SupportsNegativePrompt || m.MaxPromptLength <= 0 || m.Description == "" {
				t.Errorf("%s = %+v", m.ID, m)
			}
		}
		if !slices.Equal(ids, imagenModels) {
			t.Errorf("models = %v, want %v", ids, imagenModels)
		}
		models[0].AspectRatios[0] = "mutated"
		if g.Models()[0].AspectRatios[0] == "mutated" {
			t.Error("Models returns the generator's own slices")
		}
	})
	t.Run("config_restricts_and_orders_models", func(t *testing.T) {
		g, err := google.New(google.Config{APIKey: validKey, Models: []string{"imagen-4.0-fast-generate-001", "imagen-4.0-generate-001"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range g.Models() {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, []string{"imagen-4.0-fast-generate-001", "imagen-4.0-generate-001"}) {
			t.Errorf("models = %v", ids)
		}
	})
	t.Run("default_model_follows_the_config", func(t *testing.T) {
		f := newFakeImagen(t, func(w http.ResponseWriter, r *http.Request, c predictCall) {
			writeJSON(w, http.StatusOK, predictions(upstreamtest.PNG(t, 1, 1, color.Black)))
		})
		g := newGenerator(t, f, func(c *google.Config) { c.Models = []string{"imagen-4.0-fast-generate-001"} })
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if got := f.lastCall().Model; got != "imagen-4.0-fast-generate-001" {
			t.Errorf("model = %q, want the configured default", got)
		}
	})
}

func TestNew_rejectsConfigsThatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		cfg  google.Config
	}{
		{"missing_key", google.Config{}},
		{"unknown_model", google.Config{APIKey: validKey, Models: []string{"imagen-1"}}},
		{"base_url_without_scheme", google.Config{APIKey: validKey, BaseURL: "generativelanguage.googleapis.com"}},
		{"unknown_person_generation", google.Config{APIKey: validKey, PersonGeneration: "everyone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := google.New(tt.cfg); err == nil {
				t.Error("New succeeded, want an error")
			} else if strings.Contains(err.Error(), validKey) {
				t.Errorf("error %q contains the API key", err)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	g, err := google.New(google.Config{APIKey: validKey, HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}
