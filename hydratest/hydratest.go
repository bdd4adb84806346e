// Package hydratest starts a real Ory Hydra, an OpenID Connect provider, for
// tests of sign-in and of signing-key rotation, and drives it through its
// admin API: OAuth2 clients, client-credentials tokens, new signing keys,
// and the login and consent steps of the authorization-code flow.
//
// The binary comes from IMAGED_TEST_HYDRA_BIN (scripts/start-hydra.sh builds
// it from the module proxy and prints the variable); without it the test is
// skipped, or fails under IMAGED_TEST_REQUIRE_BACKENDS=1. Every Start is an
// instance of its own: in-memory storage, loopback ports, JWT access tokens.
package hydratest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/testtool"
)

// Options configure an instance.
type Options struct {
	// LoginURL and ConsentURL are where Hydra sends the browser in the
	// authorization-code flow (a test app answering through AcceptLogin and
	// AcceptConsent). Defaults point at a closed port.
	LoginURL, ConsentURL string
	// LogoutURL is where Hydra sends the browser to confirm an
	// RP-initiated logout (AcceptLogout answers it).
	LogoutURL string
	// Env adds Hydra configuration as environment variables
	// (e.g. "TTL_ACCESS_TOKEN=5m").
	Env []string
}

// Server is a running Hydra.
type Server struct {
	PublicURL string // issuer, /oauth2/auth, /oauth2/token, /.well-known/...
	AdminURL  string // /admin/...
	http      *http.Client
}

// Start runs Hydra until the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	bin := os.Getenv("IMAGED_TEST_HYDRA_BIN")
	if bin == "" {
		testtool.Missing(t, "IMAGED_TEST_HYDRA_BIN is not set (eval \"$(scripts/start-hydra.sh)\")")
	}
	pub, adm := freePort(t), freePort(t)
	s := &Server{
		PublicURL: fmt.Sprintf("http://127.0.0.1:%d", pub),
		AdminURL:  fmt.Sprintf("http://127.0.0.1:%d", adm),
		http:      &http.Client{Timeout: 10 * time.Second},
	}
	if opt.LoginURL == "" {
		opt.LoginURL = "http://127.0.0.1:9/login"
	}
	if opt.ConsentURL == "" {
		opt.ConsentURL = "http://127.0.0.1:9/consent"
	}
	if opt.LogoutURL == "" {
		opt.LogoutURL = "http://127.0.0.1:9/logout"
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"LOG_LEVEL=warn",
		"SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_PUBLIC_PORT=%d", pub),
		"SERVE_ADMIN_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", adm),
		"URLS_SELF_ISSUER="+s.PublicURL+"/",
		"URLS_LOGIN="+opt.LoginURL,
		"URLS_CONSENT="+opt.ConsentURL,
		"URLS_LOGOUT="+opt.LogoutURL,
		"SECRETS_SYSTEM="+base64.StdEncoding.EncodeToString(secret),
	)
	cmd.Env = append(cmd.Env, opt.Env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("hydratest: starting %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("hydra's log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.http.Get(s.AdminURL + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.warmKeys(t)
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("hydratest: hydra exited at start:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydratest: hydra not ready after 20 s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// warmKeys fetches the JWKS once: Hydra makes its signing keys on first
// use (RSA, seconds on a busy machine), which must not eat into the time a
// service under test gives its first JWKS fetch.
func (s *Server) warmKeys(t testing.TB) {
	t.Helper()
	// The admin side can be ready a moment before the public one answers
	// (seen as an EOF on a loaded machine): try again within a bound.
	c := &http.Client{Timeout: 60 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(s.JWKSURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydratest: warming the JWKS: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issuer is the issuer URL tokens carry in iss (with Hydra's trailing slash).
func (s *Server) Issuer() string { return s.PublicURL + "/" }

// JWKSURL is where the token-signing keys are published.
func (s *Server) JWKSURL() string { return s.PublicURL + "/.well-known/jwks.json" }

// Client is an OAuth2 client registered with Hydra.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// CreateClient registers a client; fields are Hydra's admin API JSON
// (grant_types, response_types, redirect_uris, audience, scope,
// token_endpoint_auth_method...).
func (s *Server) CreateClient(t testing.TB, fields map[string]any) Client {
	t.Helper()
	var c Client
	s.adminJSON(t, "POST", "/admin/clients", fields, &c)
	return c
}

// CreateMachineClient registers a client_credentials client for audience.
func (s *Server) CreateMachineClient(t testing.TB, audience string) Client {
	t.Helper()
	return s.CreateClient(t, map[string]any{
		"grant_types":                []string{"client_credentials"},
		"audience":                   []string{audience},
		"token_endpoint_auth_method": "client_secret_basic",
	})
}

// Token gets an access token (a JWT) by the client_credentials grant.
func (s *Server) Token(t testing.TB, c Client, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {audience}}
	req, _ := http.NewRequest("POST", s.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	s.do(t, req, &tok)
	if tok.AccessToken == "" {
		t.Fatal("hydratest: no access_token in the token answer")
	}
	return tok.AccessToken
}

// RotateKey adds a new ES256 key to the access-token key set; Hydra signs
// new tokens with it from then on. It returns the new key's kid.
func (s *Server) RotateKey(t testing.TB) string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	s.adminJSON(t, "POST", "/admin/keys/hydra.jwt.access-token", map[string]any{"alg": "ES256", "use": "sig", "kid": ""}, &set)
	if len(set.Keys) == 0 {
		t.Fatal("hydratest: key creation returned no key")
	}
	return set.Keys[0].Kid
}

// AcceptLogin accepts the login challenge for subject, answering the
// redirect the browser must follow next.
func (s *Server) AcceptLogin(t testing.TB, challenge, subject string) string {
	t.Helper()
	_, to, err := s.acceptLogin(context.Background(), challenge, subject, false)
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// AcceptConsent grants the requested scopes and audiences of the consent
// challenge, answering the redirect the browser must follow next.
func (s *Server) AcceptConsent(t testing.TB, challenge string) string {
	t.Helper()
	to, err := s.acceptConsent(context.Background(), challenge)
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// acceptLogin accepts a login challenge; with remember, Hydra keeps a
// session (a cookie of its own) so that the next sign-in of the browser
// skips the login step until the session ends (logout).
// It reports whether Hydra had such a session already (skip).
func (s *Server) acceptLogin(ctx context.Context, challenge, subject string, remember bool) (skip bool, to string, err error) {
	q := "?login_challenge=" + url.QueryEscape(challenge)
	var lr struct {
		Skip    bool   `json:"skip"`
		Subject string `json:"subject"`
	}
	if err := s.call(ctx, "GET", "/admin/oauth2/auth/requests/login"+q, nil, &lr); err != nil {
		return false, "", err
	}
	if lr.Skip {
		subject = lr.Subject // Hydra insists on the remembered subject
	}
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	body := map[string]any{"subject": subject}
	if remember {
		body["remember"] = true
		body["remember_for"] = 3600
	}
	err = s.call(ctx, "PUT", "/admin/oauth2/auth/requests/login/accept"+q, body, &r)
	return lr.Skip, r.RedirectTo, err
}

func (s *Server) acceptConsent(ctx context.Context, challenge string) (string, error) {
	q := "?consent_challenge=" + url.QueryEscape(challenge)
	var cr struct {
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
	}
	if err := s.call(ctx, "GET", "/admin/oauth2/auth/requests/consent"+q, nil, &cr); err != nil {
		return "", err
	}
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	err := s.call(ctx, "PUT", "/admin/oauth2/auth/requests/consent/accept"+q,
		map[string]any{"grant_scope": cr.RequestedScope, "grant_access_token_audience": cr.RequestedAudience}, &r)
	return r.RedirectTo, err
}

func (s *Server) acceptLogout(ctx context.Context, challenge string) (string, error) {
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	err := s.call(ctx, "PUT", "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+url.QueryEscape(challenge), nil, &r)
	return r.RedirectTo, err
}

func (s *Server) adminJSON(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if err := s.call(context.Background(), method, path, body, out); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) do(t testing.TB, req *http.Request, out any) {
	t.Helper()
	if err := s.send(req, out); err != nil {
		t.Fatal(err)
	}
}

// call sends a JSON request to the admin API (body nil: none).
func (s *Server) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.AdminURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return s.send(req, out)
}

func (s *Server) send(req *http.Request, out any) error {
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	resp, err := s.http.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("hydratest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydratest: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("hydratest: %s %s: %v in %s", req.Method, req.URL.Path, err, b)
		}
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
