package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func newMux(t *testing.T, cfg Config) *http.ServeMux {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range p.Routes() {
		mux.HandleFunc(r.Pattern, r.Handler)
	}
	return mux
}

func get(mux http.Handler, target string, header map[string]string, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func TestPage(t *testing.T) {
	mux := newMux(t, Config{})
	rec := get(mux, "/", map[string]string{"Accept-Encoding": "gzip, br"}, "")
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d, headers %v", rec.Code, rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(zr)
	if !bytes.Contains(html, []byte(`<script type="module" src="/static/js/main.js">`)) {
		t.Errorf("the page does not load main.js")
	}
	// No inline script or style: every script has a src, no style attribute.
	if bytes.Contains(html, []byte("<script>")) || bytes.Contains(html, []byte("style=")) || bytes.Contains(html, []byte("<style")) {
		t.Errorf("the page has inline script or style")
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", rec.Header())
	}

	plain := get(mux, "/static/js/main.js", nil, "")
	if plain.Code != 200 || plain.Header().Get("Content-Encoding") != "" || !strings.Contains(plain.Header().Get("Content-Type"), "javascript") {
		t.Errorf("main.js without gzip = %d %v", plain.Code, plain.Header())
	}
	if r := get(mux, "/static/js/main.js", map[string]string{"If-None-Match": plain.Header().Get("ETag")}, ""); r.Code != http.StatusNotModified {
		t.Errorf("revalidation = %d, want 304", r.Code)
	}
	if r := get(mux, "/static/js/main.js", map[string]string{"Accept-Encoding": "gzip;q=0"}, ""); r.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got gzip")
	}
	if r := get(mux, "/static/nope.js", nil, ""); r.Code != 404 {
		t.Errorf("an unknown file = %d", r.Code)
	}
	if r := get(mux, "/static/../web.go", nil, ""); r.Code == 200 {
		t.Errorf("a path outside static answered 200")
	}
	if r := get(mux, "/web/dev-token", nil, "127.0.0.1:5000"); r.Code != 404 {
		t.Errorf("dev token without DevToken = %d, want no such route", r.Code)
	}
	if r := get(mux, "/web/config.json", nil, ""); !strings.Contains(r.Body.String(), `"devToken":false`) || !strings.Contains(r.Body.String(), `"oidc":null`) {
		t.Errorf("config = %s", r.Body.String())
	}
}

func TestDevToken(t *testing.T) {
	mux := newMux(t, Config{DevToken: func() (string, error) { return "dev-secret-token", nil }})
	for _, tc := range []struct {
		name   string
		remote string
		host   string
		header map[string]string
		want   int
	}{
		{"loopback_browser", "127.0.0.1:5000", "127.0.0.1:8080", nil, 200},
		{"localhost_name", "[::1]:5000", "localhost:8080", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"another_machine", "192.0.2.7:5000", "127.0.0.1:8080", nil, 403},
		{"through_a_proxy", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"X-Forwarded-For": "192.0.2.7"}, 403},
		{"forwarded_header", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Forwarded": "for=192.0.2.7"}, 403},
		{"dns_rebinding", "127.0.0.1:5000", "evil.example:8080", nil, 403},
		{"cross_site_fetch", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/web/dev-token", nil)
			req.RemoteAddr, req.Host = tc.remote, tc.host
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 200 && !strings.Contains(rec.Body.String(), `"token":"dev-secret-token"`) {
				t.Errorf("body = %s", rec.Body.String())
			}
			if tc.want != 200 && strings.Contains(rec.Body.String(), "dev-secret-token") {
				t.Errorf("refused answer carries the token: %s", rec.Body.String())
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("headers = %v", rec.Header())
			}
		})
	}
}

func TestOIDCConfig(t *testing.T) {
	if _, err := New(Config{OIDCIssuer: "https://id.example.com"}); err == nil {
		t.Errorf("an issuer without a client id was accepted")
	}
	if _, err := New(Config{OIDCIssuer: "javascript:alert(1)", OIDCClientID: "x"}); err == nil {
		t.Errorf("a javascript: issuer was accepted")
	}
	mux := newMux(t, Config{OIDCIssuer: "https://id.example.com/realms/a/", OIDCClientID: "gallery", ImageOrigins: []string{"https://cdn.example.com/images"}})
	r := get(mux, "/web/config.json", nil, "")
	if !strings.Contains(r.Body.String(), `"issuer":"https://id.example.com/realms/a"`) || !strings.Contains(r.Body.String(), `"clientId":"gallery"`) {
		t.Errorf("config = %s", r.Body.String())
	}
	csp := r.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self' https://id.example.com") || !strings.Contains(csp, "img-src 'self' blob: data: https://cdn.example.com") {
		t.Errorf("CSP = %q", csp)
	}
}

// TestRoutesAreNamedInTheAPIDocument: the page's routes are left out of
// http/openapi.json on purpose, and the document says so, naming each.
func TestRoutesAreNamedInTheAPIDocument(t *testing.T) {
	b, err := os.ReadFile("../http/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{DevToken: func() (string, error) { return "t", nil }, OIDCIssuer: "https://id.example.com", OIDCClientID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.NewReplacer("{$}", "", "{file...}", "{file}").Replace(path)
		if !strings.Contains(doc.Info.Description, "`"+method+" "+path+"`") {
			t.Errorf("the API document's description does not name the page's route `%s %s`", method, path)
		}
		if _, ok := doc.Paths[path]; ok {
			t.Errorf("the page's route %s is among the API's paths", path)
		}
	}
}
