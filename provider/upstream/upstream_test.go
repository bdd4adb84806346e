package upstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

// serve starts a server answering every request with h and returns a
// Client for it.
func serve(t *testing.T, h http.HandlerFunc) (*upstream.Client, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &upstream.Client{Provider: "acme", HTTP: srv.Client()}, srv.URL
}

func get(t *testing.T, ctx context.Context, c *upstream.Client, url string) (*upstream.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(req)
}

func TestDoReturnsA2xxAnswer(t *testing.T) {
	c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("seed", "42")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "image bytes")
	})
	r, err := get(t, context.Background(), c, url)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusCreated || string(r.Body) != "image bytes" || r.Header.Get("seed") != "42" {
		t.Errorf("response = %d %q seed %q", r.Status, r.Body, r.Header.Get("seed"))
	}
}

func TestDoClassifiesStatuses(t *testing.T) {
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       imaged.UpstreamError
	}{
		{"unauthorized_401_is_final", 401, "", imaged.UpstreamError{Status: 401}},
		{"forbidden_403_is_final", 403, "", imaged.UpstreamError{Status: 403}},
		{"other_4xx_is_final", 422, "5", imaged.UpstreamError{Status: 422}},
		{"rate_limit_429_is_retryable", 429, "", imaged.UpstreamError{Status: 429, Retryable: true}},
		{"rate_limit_429_waits_the_retry_after_seconds", 429, "7", imaged.UpstreamError{Status: 429, Retryable: true, RetryAfter: 7 * time.Second}},
		{"server_error_500_is_retryable", 500, "", imaged.UpstreamError{Status: 500, Retryable: true}},
		{"unavailable_503_waits_the_retry_after_seconds", 503, "3", imaged.UpstreamError{Status: 503, Retryable: true, RetryAfter: 3 * time.Second}},
		{"a_redirect_that_was_not_followed_is_final", 304, "", imaged.UpstreamError{Status: 304}},
		{"garbage_retry_after_is_ignored", 429, "soon", imaged.UpstreamError{Status: 429, Retryable: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			})
			_, err := get(t, context.Background(), c, url)
			upstreamtest.CheckUpstream(t, err, "acme", &tt.want)
		})
	}
	t.Run("rate_limit_429_waits_until_the_retry_after_date", func(t *testing.T) {
		c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", date)
			w.WriteHeader(http.StatusTooManyRequests)
		})
		_, err := get(t, context.Background(), c, url)
		ue := upstreamtest.UpstreamError(t, err, "acme")
		if !ue.Retryable || ue.RetryAfter < 25*time.Second || ue.RetryAfter > 30*time.Second {
			t.Errorf("retryable %v after %v, want retryable after about 30s", ue.Retryable, ue.RetryAfter)
		}
	})
}

func TestDoLetsTheAdapterReadErrorAnswers(t *testing.T) {
	c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Repeat("x", 100))
	})
	c.MaxBytes = 10
	refusal := errors.New("refused")
	var seen *upstream.Response
	c.MapError = func(r *upstream.Response) error {
		seen = r
		return refusal
	}
	_, err := get(t, context.Background(), c, url)
	if err != refusal {
		t.Fatalf("error = %v, want what MapError returned", err)
	}
	if seen.Status != 503 || seen.Header.Get("Retry-After") != "2" || string(seen.Body) != "xxxxxxxxxx" {
		t.Errorf("MapError saw %d, Retry-After %q, body %q; want 503, 2 and the body cut at 10 bytes",
			seen.Status, seen.Header.Get("Retry-After"), seen.Body)
	}
}

func TestDoBoundsTheAnswer(t *testing.T) {
	body := strings.Repeat("b", 64)
	tests := []struct {
		name   string
		status int
		limit  int64
		want   *imaged.UpstreamError // nil: the body comes back
	}{
		{"answer_of_exactly_the_limit_is_read", 200, 64, nil},
		{"answer_one_byte_over_is_a_final_error", 200, 63, &imaged.UpstreamError{Status: 200}},
		{"error_page_over_the_limit_still_counts_by_its_status", 502, 10, &imaged.UpstreamError{Status: 502, Retryable: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, body)
			})
			c.MaxBytes = tt.limit
			r, err := get(t, context.Background(), c, url)
			if tt.want == nil {
				if err != nil || string(r.Body) != body {
					t.Errorf("Do = %v; want the %d bytes", err, len(body))
				}
				return
			}
			upstreamtest.CheckUpstream(t, err, "acme", tt.want)
			var tl *upstream.TooLargeError
			if tt.status == 200 && (!errors.As(err, &tl) || !strings.Contains(err.Error(), "larger than 63 bytes")) {
				t.Errorf("error %v is not a *TooLargeError naming the limit", err)
			}
		})
	}
}

func TestDoMapsTransportFailures(t *testing.T) {
	t.Run("deadline_is_a_timeout", func(t *testing.T) {
		c, url := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := get(t, ctx, c, url)
		upstreamtest.CheckUpstream(t, err, "acme", &imaged.UpstreamError{Timeout: true})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
	})
	t.Run("cancellation_is_final", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c, url := serve(t, func(w http.ResponseWriter, r *http.Request) {
			cancel()
			<-r.Context().Done()
		})
		_, err := get(t, ctx, c, url)
		upstreamtest.CheckUpstream(t, err, "acme", &imaged.UpstreamError{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
	})
	t.Run("refused_connection_is_retryable_and_does_not_quote_the_url", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close() // nothing listens there any more
		c := &upstream.Client{Provider: "acme"}
		_, err := get(t, context.Background(), c, srv.URL+"/files/img.png?sig=SIGNED-TOKEN")
		upstreamtest.CheckUpstream(t, err, "acme", &imaged.UpstreamError{Retryable: true})
		if strings.Contains(err.Error(), "SIGNED-TOKEN") {
			t.Errorf("error %q quotes the signed URL", err)
		}
	})
	t.Run("client_timeout_is_a_retryable_timeout", func(t *testing.T) {
		c, url := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		c.HTTP.Timeout = 50 * time.Millisecond
		_, err := get(t, context.Background(), c, url)
		upstreamtest.CheckUpstream(t, err, "acme", &imaged.UpstreamError{Retryable: true, Timeout: true})
	})
}

func TestStatusErrorAndMalformedKeepTheCause(t *testing.T) {
	c := &upstream.Client{Provider: "acme"}
	cause := errors.New("detail for the log")
	r := &upstream.Response{Status: 200, Header: http.Header{}}
	if err := c.Malformed(r, cause); err.Provider != "acme" || err.Status != 200 || err.Retryable || !errors.Is(err, cause) {
		t.Errorf("Malformed = %+v", err)
	}
	r = &upstream.Response{Status: 429, Header: http.Header{"Retry-After": {"4"}}}
	if err := c.StatusError(r, cause); !err.Retryable || err.RetryAfter != 4*time.Second || !errors.Is(err, cause) {
		t.Errorf("StatusError = %+v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"12", 12 * time.Second},
		{" 3 ", 3 * time.Second},
		{"-5", 0},
		{"tomorrow", 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := upstream.RetryAfter(http.Header{"Retry-After": {tt.value}}); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := upstream.Redact("key sk-123 and pw hunter2, key sk-123 again", "sk-123", "", "hunter2")
	if want := "key [redacted] and pw [redacted], key [redacted] again"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if got := upstream.Redact("nothing to hide"); got != "nothing to hide" {
		t.Errorf("Redact without secrets = %q", got)
	}
}

func TestTruncate(t *testing.T) {
	if got := upstream.Truncate("short", 10); got != "short" {
		t.Errorf("Truncate of a short text = %q", got)
	}
	if got := upstream.Truncate("abcdefghij", 4); got != "abcd…" {
		t.Errorf("Truncate = %q, want abcd…", got)
	}
	// "é" is two bytes: a cut inside it backs off to the rune before.
	got := upstream.Truncate("aéé", 2)
	if got != "a…" || !utf8.ValidString(got) {
		t.Errorf("Truncate inside a rune = %q, want a…", got)
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, in := range []string{"iVBORw0KGgo=", "data:image/png;base64,iVBORw0KGgo="} {
		got, err := upstream.DecodeBase64(in)
		if err != nil || !bytes.Equal(got, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("DecodeBase64(%q) = %q, %v; want the PNG signature", in, got, err)
		}
	}
	if _, err := upstream.DecodeBase64("iVBORw0KGgo%%%not*base64"); err == nil || !strings.Contains(err.Error(), "not valid base64") {
		t.Errorf("DecodeBase64 of garbage: error %v, want not valid base64", err)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		raw, fallback, want string
		ok                  bool
	}{
		{"", "https://api.example.com", "https://api.example.com", true},
		{"http://127.0.0.1:7860/", "", "http://127.0.0.1:7860", true},
		{"https://proxy.internal/openai//", "https://api.example.com", "https://proxy.internal/openai", true},
		{"api.example.com", "", "", false},
		{"ftp://api.example.com", "", "", false},
		{"https://", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		got, err := upstream.BaseURL(tt.raw, tt.fallback)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("BaseURL(%q, %q) = %q, %v; want %q, ok %v", tt.raw, tt.fallback, got, err, tt.want, tt.ok)
		}
	}
}

func TestNewJSONRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := upstream.NewJSONRequest(ctx, "https://api.example.com/v1/generate", map[string]any{"prompt": "a fox", "n": 2})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Accept") != "application/json" {
		t.Errorf("request = %s with headers %v", req.Method, req.Header)
	}
	if req.Context() != ctx {
		t.Error("the request is not bound to the caller's context")
	}
	var body map[string]any
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body["prompt"] != "a fox" || body["n"] != 2.0 {
		t.Errorf("body = %v, %v", body, err)
	}
	if _, err := upstream.NewJSONRequest(ctx, "https://api.example.com", func() {}); err == nil {
		t.Error("a body that is not JSON was accepted")
	}
}

func TestContentPolicy(t *testing.T) {
	cause := errors.New("finish-reason CONTENT_FILTERED")
	err := upstream.ContentPolicy(cause)
	upstreamtest.AppError(t, err, imaged.EContentPolicy)
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not keep its cause for the log", err)
	}
}
