package http

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseCORSOrigins(t *testing.T) {
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "ftp://x", "https://u:p@x.example"} {
		if _, err := ParseCORSOrigins(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	if c, err := ParseCORSOrigins(""); c != nil || err != nil {
		t.Errorf("an empty list = %v, %v; want no CORS", c, err)
	}
}

func TestCORS(t *testing.T) {
	tok := mintToken(t, "alice")
	preflight := func(h *harness, origin string) *http.Response {
		resp, _ := h.send(t, http.MethodOptions, "/api/images", "", nil, http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"},
		})
		return resp
	}

	t.Run("none_by_default", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, _ := h.send(t, http.MethodGet, "/api/images", tok, nil, http.Header{"Origin": {"https://app.example.com"}})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET = %d, ACAO %q; want 200 without CORS", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("listed_origin", func(t *testing.T) {
		cors, err := ParseCORSOrigins("https://app.example.com, http://localhost:3000")
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, options{cors: cors})
		resp := preflight(h, "https://app.example.com")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "DELETE") || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight = %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = h.send(t, http.MethodGet, "/api/images", tok, nil, http.Header{"Origin": {"https://app.example.com"}})
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") ||
			!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("GET headers = %v", resp.Header)
		}
		// Another origin gets an answer without permission.
		resp = preflight(h, "https://evil.example")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of an unlisted origin = %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		// The page's own routes are not opened to other origins.
		resp, _ = h.send(t, http.MethodGet, "/healthz", "", nil, http.Header{"Origin": {"https://app.example.com"}})
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("/healthz has CORS headers")
		}
	})

	t.Run("any_origin_without_credentials", func(t *testing.T) {
		cors, _ := ParseCORSOrigins("*")
		h := newHarness(t, options{cors: cors})
		resp := preflight(h, "https://anything.example")
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight with * = %v", resp.Header)
		}
		// An OPTIONS that is not a preflight keeps its 405 envelope.
		resp, _ = h.send(t, http.MethodOptions, "/api/images", "", nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("plain OPTIONS = %d, want 405", resp.StatusCode)
		}
	})
}
