package http

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/builtin"
)

const (
	generatePath   = "/api/images/generate"
	idempotentPath = "/api/images/generate-with-idempotency"
	jobPattern     = "/api/images/generations/{jobId}"
)

type apiJob struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Provider  string     `json:"provider"`
	Model     string     `json:"model"`
	Prompt    string     `json:"prompt"`
	Attempts  int        `json:"attempts"`
	CreatedAt string     `json:"createdAt"`
	Images    []apiImage `json:"images"`
	Error     *struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	} `json:"error"`
}

func TestModels(t *testing.T) {
	h := newHarness(t, options{providers: []imaged.Generator{pngGenerator(t, "fake")}})
	resp, body := h.call(t, "GET", "/api/images/models", "/api/images/models", mintToken(t, "alice"), nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var got []struct {
		Provider string         `json:"provider"`
		Default  bool           `json:"default"`
		Models   []imaged.Model `json:"models"`
	}
	got = dataAs[[]struct {
		Provider string         `json:"provider"`
		Default  bool           `json:"default"`
		Models   []imaged.Model `json:"models"`
	}](t, body)
	if len(got) != 2 || got[0].Provider != "builtin" || !got[0].Default || got[0].Models[0].ID != builtin.ModelID ||
		got[1].Provider != "fake" || got[1].Default {
		t.Errorf("%s", body)
	}
}

func TestGenerate(t *testing.T) {
	alice := mintToken(t, "alice")

	t.Run("builtin_sync_answers_200_with_stored_images", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice,
			jsonBody(map[string]any{"prompt": "  A lighthouse at dawn ", "aspectRatio": "16:9", "artStyle": "watercolour", "n": 2, "seed": 42}), jsonHeader)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		imgs := dataAs[[]apiImage](t, body)
		if len(imgs) != 2 {
			t.Fatalf("%d images", len(imgs))
		}
		for _, img := range imgs {
			if img.ID == "" || img.MimeType != "image/png" || img.Prompt != "A lighthouse at dawn" || img.Created != img.CreatedAt ||
				!rfc3339Z.MatchString(img.Created) || img.Width != 1024 || img.Height != 576 || img.AspectRatio != "16:9" {
				t.Errorf("%+v", img)
			}
			resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
			got := dataAs[apiImage](t, body)
			if resp.StatusCode != 200 || got.Source != "generation" || got.Prompt != "A lighthouse at dawn" ||
				got.Model != builtin.ModelID || got.Provider != "builtin" || got.Seed == nil {
				t.Errorf("GET: %d %s", resp.StatusCode, body)
			}
			resp, bytes := h.call(t, "GET", "/cdn/{key}", cdnPath(t, img.URL), "", nil, nil)
			if resp.StatusCode != 200 || int64(len(bytes)) != img.FileSize {
				t.Errorf("cdn: %d, %d bytes", resp.StatusCode, len(bytes))
			}
		}
		if *dataAs[apiImage](t, mustGet(t, h, alice, imgs[0].ID)).Seed == *dataAs[apiImage](t, mustGet(t, h, alice, imgs[1].ID)).Seed {
			t.Error("both images used the same seed")
		}
	})

	invalid := []struct{ name, body string }{
		{"missing_prompt", `{"aspectRatio":"1:1"}`},
		{"blank_prompt", `{"prompt":"   "}`},
		{"empty_body", ``},
		{"unsupported_aspect_ratio", `{"prompt":"x","aspectRatio":"5:1"}`},
		{"unknown_provider", `{"prompt":"x","provider":"dall-e-9000"}`},
		{"unknown_model", `{"prompt":"x","model":"gpt-image-1"}`},
		{"too_many_images", `{"prompt":"x","n":5}`},
		{"zero_images", `{"prompt":"x","n":0}`},
		{"option_the_model_lacks", `{"prompt":"x","options":{"quality":"high"}}`},
		{"prompt_too_long", `{"prompt":"` + strings.Repeat("x", 4001) + `"}`},
		{"negative_prompt_unsupported", `{"prompt":"x","negativePrompt":"blur"}`},
		{"negative_seed", `{"prompt":"x","seed":-1}`},
		{"art_style_too_long", `{"prompt":"x","artStyle":"` + strings.Repeat("s", 501) + `"}`},
	}
	for _, c := range invalid {
		t.Run("400_INVALID_IMAGE_PROMPT/"+c.name, func(t *testing.T) {
			h := newHarness(t, options{})
			resp, body := h.call(t, "POST", generatePath, generatePath, alice, strings.NewReader(c.body), jsonHeader)
			wantError(t, resp, body, 400, imaged.EInvalidPrompt)
			if n := countImages(t, h, alice); n != 0 {
				t.Errorf("%d images", n)
			}
		})
	}
	malformed := []struct{ name, body, contentType, want string }{
		{"unknown_field", `{"prompt":"x","colour":"red"}`, "application/json", `unknown field "colour"`},
		{"wrong_type", `{"prompt":42}`, "application/json", "field prompt has the wrong type"},
		{"array_instead_of_object", `[{"prompt":"x"}]`, "application/json", "JSON object"},
		{"not_json", `prompt=x`, "application/json", "malformed JSON"},
		{"two_objects", `{"prompt":"x"}{"prompt":"y"}`, "application/json", "one JSON object"},
		{"option_value_not_a_string", `{"prompt":"x","options":{"quality":3}}`, "application/json", "field options has the wrong type"},
		{"form_content_type", `{"prompt":"x"}`, "application/x-www-form-urlencoded", "Content-Type: application/json"},
	}
	for _, c := range malformed {
		t.Run("400_VALIDATION_ERROR/"+c.name, func(t *testing.T) {
			h := newHarness(t, options{})
			resp, body := h.call(t, "POST", generatePath, generatePath, alice, strings.NewReader(c.body), http.Header{"Content-Type": {c.contentType}})
			e := wantError(t, resp, body, 400, imaged.EValidation)
			if !strings.Contains(e.Message, c.want) || strings.Contains(e.Message, "  ") {
				t.Errorf("message %q does not say %q", e.Message, c.want)
			}
		})
	}
	t.Run("413_body_over_64KiB", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, strings.NewReader(`{"prompt":"`+strings.Repeat("x", 70<<10)+`"}`), jsonHeader)
		wantError(t, resp, body, 413, imaged.ETooLarge)
	})

	providerFailures := []struct {
		name      string
		err       error
		status    int
		code      imaged.ErrorCode
		wantCalls int32
	}{
		{"content_policy_is_400", imaged.Errorf(imaged.EContentPolicy, "The prompt was refused by the provider's content policy"), 400, imaged.EContentPolicy, 1},
		{"upstream_5xx_is_retried_then_500", &imaged.UpstreamError{Provider: "fake", Status: 502, Retryable: true, Err: errors.New("secret upstream body: api key sk-live-123")}, 500, imaged.EGeneration, 3},
		{"upstream_4xx_is_not_retried", &imaged.UpstreamError{Provider: "fake", Status: 400, Err: errors.New("secret upstream body")}, 500, imaged.EGeneration, 1},
		{"upstream_timeout_is_504", &imaged.UpstreamError{Provider: "fake", Timeout: true, Err: errors.New("secret dial tcp 10.0.0.1")}, 504, imaged.EGenerationTimeout, 1},
		{"plain_error_is_500_internal", errors.New("secret panic-free failure"), 500, imaged.EInternal, 1},
	}
	for _, c := range providerFailures {
		t.Run("provider_failure/"+c.name, func(t *testing.T) {
			fake := &fakeGenerator{name: "fake", generate: func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				return nil, c.err
			}}
			h := newHarness(t, options{providers: []imaged.Generator{fake}, quota: imaged.QuotaLimits{ImagesPerDay: 1}})
			resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x", "provider": "fake"}), jsonHeader)
			e := wantError(t, resp, body, c.status, c.code)
			if strings.Contains(string(body), "secret") || strings.Contains(e.Message, "502") {
				t.Errorf("the answer leaks provider detail: %s", body)
			}
			if got := fake.calls.Load(); got != c.wantCalls {
				t.Errorf("provider called %d times, want %d", got, c.wantCalls)
			}
			// A failed generation costs no quota: the one image of the day is still there.
			resp, body = h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x"}), jsonHeader)
			if resp.StatusCode != 200 {
				t.Errorf("after a failure, quota is spent: %d %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("provider_that_never_answers_is_504", func(t *testing.T) {
		fake := &fakeGenerator{name: "fake", generate: func(ctx context.Context, _ imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			<-ctx.Done()
			return nil, &imaged.UpstreamError{Provider: "fake", Err: ctx.Err()}
		}}
		h := newHarness(t, options{providers: []imaged.Generator{fake}, genTimeout: 50 * time.Millisecond})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x", "provider": "fake"}), jsonHeader)
		wantError(t, resp, body, 504, imaged.EGenerationTimeout)
	})
	t.Run("provider_image_that_is_not_an_image_is_500", func(t *testing.T) {
		fake := &fakeGenerator{name: "fake", generate: func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			return []imaged.GeneratedImage{{Data: []byte("<html>oops</html>")}}, nil
		}}
		h := newHarness(t, options{providers: []imaged.Generator{fake}})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x", "provider": "fake"}), jsonHeader)
		wantError(t, resp, body, 500, imaged.EGeneration)
		if n := countBlobs(t, h); n != 0 {
			t.Errorf("%d blobs left", n)
		}
	})
}

func mustGet(t testing.TB, h *harness, tok, id string) []byte {
	t.Helper()
	resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+id, tok, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", id, resp.StatusCode, body)
	}
	return body
}

func TestGenerateAsync(t *testing.T) {
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	async := http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}}

	t.Run("202_then_job_succeeds_when_run", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "a cat", "aspectRatio": "3:4"}), async)
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		job := dataAs[apiJob](t, body)
		if job.Status != "queued" || job.Provider != "builtin" || job.Prompt != "a cat" || len(job.Images) != 0 || job.CreatedAt != "2025-05-04T09:42:00Z" {
			t.Errorf("%s", body)
		}
		loc := resp.Header.Get("Location")
		if loc != "/api/images/generations/"+job.ID || resp.Header.Get("Preference-Applied") != "respond-async" {
			t.Fatalf("Location %q, Preference-Applied %q", loc, resp.Header.Get("Preference-Applied"))
		}

		resp, body = h.call(t, "GET", jobPattern, loc, alice, nil, nil)
		if resp.StatusCode != 200 || dataAs[apiJob](t, body).Status != "queued" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("poll before run: %d %s", resp.StatusCode, body)
		}
		resp, body = h.call(t, "GET", jobPattern, loc, bob, nil, nil)
		wantError(t, resp, body, 404, imaged.EJobNotFound)

		ran, err := h.gen.RunOne(t.Context())
		if !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		resp, body = h.call(t, "GET", jobPattern, loc, alice, nil, nil)
		done := dataAs[apiJob](t, body)
		if resp.StatusCode != 200 || done.Status != "succeeded" || len(done.Images) != 1 || done.Attempts != 1 || resp.Header.Get("Retry-After") != "" {
			t.Fatalf("poll after run: %d %s", resp.StatusCode, body)
		}
		got := dataAs[apiImage](t, mustGet(t, h, alice, done.Images[0].ID))
		if got.Source != "generation" || got.Prompt != "a cat" || got.Width != 768 || got.Height != 1024 {
			t.Errorf("%+v", got)
		}
		if ran, _ := h.gen.RunOne(t.Context()); ran {
			t.Error("a second job ran")
		}
		// An image deleted since is left out of the job.
		if resp, body := h.call(t, "DELETE", "/api/images/{id}", "/api/images/"+got.ID, alice, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("delete: %d %s", resp.StatusCode, body)
		}
		resp, body = h.call(t, "GET", jobPattern, loc, alice, nil, nil)
		if after := dataAs[apiJob](t, body); after.Status != "succeeded" || len(after.Images) != 0 {
			t.Errorf("after delete: %s", body)
		}
	})
	t.Run("failed_job_reports_the_error_code", func(t *testing.T) {
		fake := &fakeGenerator{name: "fake", generate: func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			return nil, imaged.Errorf(imaged.EContentPolicy, "Refused by the content policy")
		}}
		h := newHarness(t, options{providers: []imaged.Generator{fake}})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x", "provider": "fake"}), async)
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		job := dataAs[apiJob](t, body)
		if ran, err := h.gen.RunOne(t.Context()); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		resp, body = h.call(t, "GET", jobPattern, "/api/images/generations/"+job.ID, alice, nil, nil)
		got := dataAs[apiJob](t, body)
		if got.Status != "failed" || got.Error == nil || got.Error.ErrorCode != string(imaged.EContentPolicy) || len(got.Images) != 0 {
			t.Errorf("%s", body)
		}
	})
	t.Run("invalid_request_is_refused_before_queueing", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x", "aspectRatio": "1:9"}), async)
		wantError(t, resp, body, 400, imaged.EInvalidPrompt)
		if ran, _ := h.gen.RunOne(t.Context()); ran {
			t.Error("a job was queued")
		}
	})
	t.Run("unknown_and_malformed_job_ids_are_404", func(t *testing.T) {
		h := newHarness(t, options{})
		for _, id := range []string{imaged.NewID(), "nope"} {
			resp, body := h.call(t, "GET", jobPattern, "/api/images/generations/"+id, alice, nil, nil)
			wantError(t, resp, body, 404, imaged.EJobNotFound)
		}
	})
}

func TestGenerateQuota(t *testing.T) {
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	h := newHarness(t, options{quota: imaged.QuotaLimits{ImagesPerDay: 2}})
	gen := func(tok string) (*http.Response, []byte) {
		return h.call(t, "POST", generatePath, generatePath, tok, jsonBody(map[string]any{"prompt": "x"}), jsonHeader)
	}
	for i := range 2 {
		if resp, body := gen(alice); resp.StatusCode != 200 {
			t.Fatalf("image %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	t.Run("third_image_of_the_day_is_429_with_Retry-After", func(t *testing.T) {
		resp, body := gen(alice)
		wantError(t, resp, body, 429, imaged.EQuotaExceeded)
		// Both images were made at the same instant of the injected clock:
		// the first one leaves the window exactly 24 hours later.
		if got := resp.Header.Get("Retry-After"); got != "86400" {
			t.Errorf("Retry-After = %q, want 86400", got)
		}
	})
	t.Run("async_request_over_quota_is_429_too", func(t *testing.T) {
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "x"}),
			http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}})
		wantError(t, resp, body, 429, imaged.EQuotaExceeded)
	})
	t.Run("other_owners_have_their_own_quota", func(t *testing.T) {
		if resp, body := gen(bob); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("concurrent_limit_refuses_a_second_running_generation", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		png := pngBytes(t, 8, 8, 1)
		slow := &fakeGenerator{name: "slow", generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			started <- struct{}{}
			<-release
			return []imaged.GeneratedImage{{Data: png}}, nil
		}}
		h := newHarness(t, options{providers: []imaged.Generator{slow}, quota: imaged.QuotaLimits{Concurrent: 1}, genTimeout: time.Minute})
		unblock := sync.OnceFunc(func() { close(release) })
		t.Cleanup(unblock)
		first := h.sendBackground("POST", generatePath, alice, `{"prompt":"x","provider":"slow"}`, jsonHeader)
		waitStarted(t, started, first)
		resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "y"}), jsonHeader)
		wantError(t, resp, body, 429, imaged.EQuotaExceeded)
		// The running reservation's lease is the timeout plus a minute on
		// the injected clock.
		if got := resp.Header.Get("Retry-After"); got != "120" {
			t.Errorf("Retry-After = %q, want 120", got)
		}
		unblock()
		if a := <-first; a.err != nil || a.resp.StatusCode != 200 {
			t.Fatalf("first generation: %v %s", a.err, a.body)
		}
		if resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "y"}), jsonHeader); resp.StatusCode != 200 {
			t.Errorf("after the first finished: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("quota_recovers_after_24_hours", func(t *testing.T) {
		h.genClock.Advance(24*time.Hour + time.Second)
		if resp, body := gen(alice); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestIdempotency(t *testing.T) {
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	withKey := func(key string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {key}}
	}

	for _, path := range []string{idempotentPath, generatePath} {
		t.Run(strings.TrimPrefix(path, "/api/images/"), func(t *testing.T) {
			fake := pngGenerator(t, "fake")
			h := newHarness(t, options{providers: []imaged.Generator{fake}})
			first, firstBody := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"x","provider":"fake","n":2}`), withKey("key-1"))
			if first.StatusCode != 200 {
				t.Fatalf("%d %s", first.StatusCode, firstBody)
			}
			ids := dataAs[[]apiImage](t, firstBody)

			t.Run("same_key_and_body_replays_without_generating", func(t *testing.T) {
				// Key order and spacing do not make a different request.
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{ "n": 2, "provider": "fake", "prompt": "x" }`), withKey(`"key-1"`))
				if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("%d replayed=%q %s", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), body)
				}
				again := dataAs[[]apiImage](t, body)
				if len(again) != 2 || again[0].ID != ids[0].ID || again[1].ID != ids[1].ID {
					t.Errorf("replay = %s", body)
				}
				if got := fake.calls.Load(); got != 1 {
					t.Errorf("provider called %d times", got)
				}
				if n := countImages(t, h, alice); n != 2 {
					t.Errorf("%d images stored", n)
				}
			})
			t.Run("same_key_different_body_is_422", func(t *testing.T) {
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"y","provider":"fake","n":2}`), withKey("key-1"))
				wantError(t, resp, body, 422, imaged.EIdempotencyMismatch)
			})
			t.Run("same_key_async_is_a_different_request", func(t *testing.T) {
				hdr := withKey("key-1")
				hdr.Set("Prefer", "respond-async")
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"x","provider":"fake","n":2}`), hdr)
				wantError(t, resp, body, 422, imaged.EIdempotencyMismatch)
			})
			t.Run("keys_are_per_owner", func(t *testing.T) {
				resp, body := h.call(t, "POST", path, path, bob, strings.NewReader(`{"prompt":"x","provider":"fake","n":2}`), withKey("key-1"))
				if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "" {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if got := fake.calls.Load(); got != 2 {
					t.Errorf("provider called %d times", got)
				}
			})
			t.Run("refusal_is_replayed_too", func(t *testing.T) {
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":""}`), withKey("key-bad"))
				wantError(t, resp, body, 400, imaged.EInvalidPrompt)
				resp, body = h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":""}`), withKey("key-bad"))
				wantError(t, resp, body, 400, imaged.EInvalidPrompt)
				if resp.Header.Get("Idempotent-Replayed") != "true" {
					t.Error("not replayed")
				}
			})
			t.Run("async_answer_is_replayed_with_its_location", func(t *testing.T) {
				hdr := withKey("key-async")
				hdr.Set("Prefer", "respond-async")
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"x"}`), hdr)
				if resp.StatusCode != 202 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				job := dataAs[apiJob](t, body)
				resp, body = h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"x"}`), hdr)
				if resp.StatusCode != 202 || dataAs[apiJob](t, body).ID != job.ID ||
					resp.Header.Get("Location") != "/api/images/generations/"+job.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
				}
			})
		})
	}

	badKeys := []struct{ name, key string }{
		{"space_inside", "has space"},
		{"too_long", strings.Repeat("k", 256)},
		{"non_ascii", "clé"},
		{"empty_quoted", `""`},
		{"empty", ""},
		{"blank", "   "},
		{"backslash", `a\b`},
	}
	for _, path := range []string{idempotentPath, generatePath} {
		for _, c := range badKeys {
			t.Run("400_IDEMPOTENCY_KEY_INVALID/"+strings.TrimPrefix(path, "/api/images/")+"/"+c.name, func(t *testing.T) {
				h := newHarness(t, options{})
				resp, body := h.call(t, "POST", path, path, alice, strings.NewReader(`{"prompt":"x"}`), withKey(c.key))
				wantError(t, resp, body, 400, imaged.EIdempotencyInvalid)
			})
		}
	}
	t.Run("400_IDEMPOTENCY_KEY_MISSING_without_the_header", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(`{"prompt":"x"}`), jsonHeader)
		wantError(t, resp, body, 400, imaged.EIdempotencyMissing)
		if n := countImages(t, h, alice); n != 0 {
			t.Errorf("%d images", n)
		}
	})
	t.Run("generate_without_a_key_is_not_idempotent", func(t *testing.T) {
		fake := pngGenerator(t, "fake")
		h := newHarness(t, options{providers: []imaged.Generator{fake}})
		for range 2 {
			resp, body := h.call(t, "POST", generatePath, generatePath, alice, strings.NewReader(`{"prompt":"x","provider":"fake"}`), jsonHeader)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
		if fake.calls.Load() != 2 {
			t.Errorf("provider called %d times", fake.calls.Load())
		}
	})

	t.Run("duplicate_while_in_progress_is_409_then_replays", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		png := pngBytes(t, 8, 8, 1)
		fake := &fakeGenerator{name: "slow", generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return []imaged.GeneratedImage{{Data: png}}, nil
		}}
		h := newHarness(t, options{providers: []imaged.Generator{fake}})
		body := `{"prompt":"x","provider":"slow"}`
		unblock := sync.OnceFunc(func() { close(release) })
		t.Cleanup(unblock)
		first := h.sendBackground("POST", idempotentPath, alice, body, withKey("k"))
		waitStarted(t, started, first)
		resp, b := h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(body), withKey("k"))
		wantError(t, resp, b, 409, imaged.EIdempotencyBusy)
		if resp.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		unblock()
		a := <-first
		if a.err != nil {
			t.Fatal(a.err)
		}
		checkResponse(t, h.doc, "POST", idempotentPath, a.resp, a.body)
		if a.resp.StatusCode != 200 {
			t.Fatalf("first: %d %s", a.resp.StatusCode, a.body)
		}
		resp, b = h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(body), withKey("k"))
		if resp.StatusCode != 200 || dataAs[[]apiImage](t, b)[0].ID != dataAs[[]apiImage](t, a.body)[0].ID {
			t.Fatalf("after: %d %s", resp.StatusCode, b)
		}
		if fake.calls.Load() != 1 {
			t.Errorf("provider called %d times", fake.calls.Load())
		}
	})

	t.Run("server_failure_is_not_kept_so_a_retry_runs_again", func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		png := pngBytes(t, 8, 8, 1)
		fake := &fakeGenerator{name: "flaky", generate: func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			if fail.Load() {
				return nil, &imaged.UpstreamError{Provider: "flaky", Status: 400, Err: errors.New("bad")}
			}
			return []imaged.GeneratedImage{{Data: png}}, nil
		}}
		h := newHarness(t, options{providers: []imaged.Generator{fake}})
		body := `{"prompt":"x","provider":"flaky"}`
		resp, b := h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(body), withKey("k"))
		wantError(t, resp, b, 500, imaged.EGeneration)
		fail.Store(false)
		resp, b = h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(body), withKey("k"))
		if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("quota_refusal_is_not_kept", func(t *testing.T) {
		h := newHarness(t, options{quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		if resp, b := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "a"}), jsonHeader); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		resp, b := h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(`{"prompt":"x"}`), withKey("k"))
		wantError(t, resp, b, 429, imaged.EQuotaExceeded)
		h.genClock.Advance(25 * time.Hour)
		resp, b = h.call(t, "POST", idempotentPath, idempotentPath, alice, strings.NewReader(`{"prompt":"x"}`), withKey("k"))
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}

// waitStarted waits until a blocking provider has been called, failing if
// the request answered first.
func waitStarted(t *testing.T, started <-chan struct{}, first <-chan answer) {
	t.Helper()
	select {
	case <-started:
	case a := <-first:
		t.Fatalf("the first request answered before reaching the provider: %v %s", a.err, a.body)
	}
}

func TestGenerateOptionsAndUsage(t *testing.T) {
	alice := mintToken(t, "alice")
	fake := pngGenerator(t, "fake")
	fake.models = []imaged.Model{{ID: "fake-1", AspectRatios: []string{"1:1"}, MaxImages: 4, MaxPromptLength: 1000,
		Options: []imaged.ModelOption{{Name: "quality", Values: []string{"low", "high"}, Default: "low"}}}}
	inner := fake.generate
	var sent map[string]string
	fake.generate = func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		sent = req.Options
		out, err := inner(ctx, req)
		for i := range out {
			out[i].Usage = &imaged.Usage{InputTokens: 12, OutputTokens: 300, TotalTokens: 312, Images: len(out)}
		}
		return out, err
	}
	h := newHarness(t, options{providers: []imaged.Generator{fake}})
	resp, body := h.call(t, "POST", generatePath, generatePath, alice, strings.NewReader(`{"prompt":"x","provider":"fake","options":{"quality":"high"}}`), jsonHeader)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if sent["quality"] != "high" {
		t.Errorf("provider got options %v", sent)
	}
	img := dataAs[[]apiImage](t, body)[0]
	got := dataAs[map[string]any](t, mustGet(t, h, alice, img.ID))
	if o, _ := got["options"].(map[string]any); o["quality"] != "high" {
		t.Errorf("stored options %v", got["options"])
	}
	if u, _ := got["usage"].(map[string]any); u["totalTokens"] != 312.0 || u["images"] != 1.0 {
		t.Errorf("stored usage %v", got["usage"])
	}
	_, body = h.call(t, "GET", "/api/images/models", "/api/images/models", alice, nil, nil)
	if !strings.Contains(string(body), `"options":[{"name":"quality","values":["low","high"],"default":"low"}]`) {
		t.Errorf("models listing does not show the option: %s", body)
	}
}
