// Package web is the gallery page of imaged: static files (HTML, CSS and
// vanilla JavaScript split by concern, no build step) embedded in the
// binary and served gzip-compressed under a strict Content-Security-Policy,
// plus the page's small configuration document and, on the embedded default
// only, the development token for loopback visitors.
//
// The page is a client of the public API like any other: it signs in with
// a bearer token (pasted, the development token, or OpenID Connect in the
// browser) and calls /api with it. The HTTP layer knows nothing of it;
// cmd/imaged mounts its routes.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// Config is what the page needs from the service's settings.
type Config struct {
	// OIDCIssuer and OIDCClientID enable "Sign in" with OpenID Connect
	// (authorization code with PKCE, a public client). The service must
	// accept the provider's access tokens (IMAGED_JWKS_URL).
	OIDCIssuer   string
	OIDCClientID string
	// OIDCScopes are asked for; "openid" when empty.
	OIDCScopes []string
	// OIDCAudience, when set, is sent as the authorization request's
	// "audience" parameter (Ory Hydra, Auth0: the access token's aud).
	OIDCAudience string
	// DevToken, when set, mints the development token the service printed
	// at start; the page offers it to loopback visitors only. Set it only
	// where the service generated its own secret (the embedded default).
	DevToken func() (string, error)
	// MaxFileSize is the largest upload the service accepts, in bytes (0:
	// not told): the page refuses bigger files before sending them.
	MaxFileSize int64
	// ImageOrigins are origins other than the page's own that image URLs
	// point at (IMAGED_PUBLIC_URL): the CSP must let the page show them.
	ImageOrigins []string
}

// Route is one route of the page, for the HTTP server to register.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// asset is one embedded file, compressed once at start.
type asset struct {
	contentType string
	etag        string
	plain, gz   []byte
}

// Page serves the gallery.
type Page struct {
	cfg    Config
	assets map[string]*asset // by path under static/, "index.html" included
	csp    string
	config []byte // the JSON of GET /web/config.json
}

// New reads and compresses the embedded files.
func New(cfg Config) (*Page, error) {
	p := &Page{cfg: cfg, assets: map[string]*asset{}}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		p.assets[strings.TrimPrefix(name, "static/")] = &asset{
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			plain:       b,
			gz:          gz.Bytes(),
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.assets["index.html"] == nil {
		return nil, fmt.Errorf("web: index.html is not embedded")
	}
	connect := []string{"'self'"}
	if cfg.OIDCIssuer != "" {
		u, err := url.Parse(cfg.OIDCIssuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("IMAGED_OIDC_ISSUER must be an http(s) URL, got %q", cfg.OIDCIssuer)
		}
		if cfg.OIDCClientID == "" {
			return nil, fmt.Errorf("IMAGED_OIDC_ISSUER needs IMAGED_OIDC_CLIENT_ID")
		}
		connect = append(connect, u.Scheme+"://"+u.Host)
	}
	imgs := []string{"'self'", "blob:", "data:"}
	for _, o := range cfg.ImageOrigins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			imgs = append(imgs, u.Scheme+"://"+u.Host)
		}
	}
	// No inline script or style anywhere; Trusted Types make any HTML
	// string sink (innerHTML...) throw, so the code can only build nodes.
	p.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + strings.Join(imgs, " ") +
		"; connect-src " + strings.Join(connect, " ") +
		"; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
	scopes := cfg.OIDCScopes
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	doc := map[string]any{"devToken": cfg.DevToken != nil, "oidc": nil, "maxFileSize": cfg.MaxFileSize}
	if cfg.OIDCIssuer != "" {
		doc["oidc"] = map[string]any{"issuer": strings.TrimRight(cfg.OIDCIssuer, "/"), "clientId": cfg.OIDCClientID,
			"scope": strings.Join(scopes, " "), "audience": cfg.OIDCAudience}
	}
	p.config, _ = json.Marshal(doc)
	return p, nil
}

// CSP is the Content-Security-Policy of the page.
func (p *Page) CSP() string { return p.csp }

// Routes are the page's routes: the page itself, its files, its
// configuration and, when enabled, the development token.
func (p *Page) Routes() []Route {
	r := []Route{
		{"GET /{$}", p.serveIndex},
		{"GET /static/{file...}", p.serveStatic},
		{"GET /web/config.json", p.serveConfig},
	}
	if p.cfg.DevToken != nil {
		r = append(r, Route{"GET /web/dev-token", p.serveDevToken})
	}
	return r
}

// securityHeaders go on every answer of the page.
func (p *Page) securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (p *Page) serveIndex(w http.ResponseWriter, r *http.Request) {
	p.serveAsset(w, r, p.assets["index.html"])
}

func (p *Page) serveStatic(w http.ResponseWriter, r *http.Request) {
	a := p.assets[r.PathValue("file")]
	if a == nil || r.PathValue("file") == "index.html" {
		p.securityHeaders(w.Header())
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	p.serveAsset(w, r, a)
}

// serveAsset answers a file, gzip-compressed when the client takes it,
// revalidated on every load (no-cache with an ETag: a new binary's files
// are seen at once, an unchanged one costs a 304).
func (p *Page) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	p.securityHeaders(h)
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", a.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.plain
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reads Accept-Encoding: gzip, unless its q is 0.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		for _, param := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
			if q, err := strconv.ParseFloat(v, 64); strings.EqualFold(k, "q") && err == nil && q == 0 {
				return false
			}
		}
		return true
	}
	return false
}

func (p *Page) serveConfig(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	p.securityHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	w.Write(p.config)
}

// serveDevToken gives the development token to a browser on this machine.
// It exists only on the embedded default (the service generated its own
// secret), and answers only a direct loopback connection that names a
// loopback host: not through a proxy (which would make every visitor look
// local), not to a page of another site reaching 127.0.0.1 through DNS
// rebinding (its Host is the other site's name), and never to another
// origin (no CORS headers, and Sec-Fetch-Site must not be cross-site).
func (p *Page) serveDevToken(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	p.securityHeaders(h)
	h.Set("Cache-Control", "no-store")
	if !localRequest(r) {
		http.Error(w, "the development token is only given to a browser on the service's own machine", http.StatusForbidden)
		return
	}
	tok, err := p.cfg.DevToken()
	if err != nil {
		http.Error(w, "no development token", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": tok, "subject": "local-user"})
}

func localRequest(r *http.Request) bool {
	for _, name := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(name) != "" {
			return false
		}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !isLoopback(host) {
		return false
	}
	reqHost := r.Host
	if h, _, err := net.SplitHostPort(reqHost); err == nil {
		reqHost = h
	}
	return isLoopback(strings.Trim(reqHost, "[]")) || strings.EqualFold(reqHost, "localhost")
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
