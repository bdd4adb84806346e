package hydratest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// kidOf returns the kid of a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("JWT header without kid: %s", b)
	}
	return h.Kid
}

func publishedKids(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	resp, err := http.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kids[k.Kid] = true
	}
	return kids
}

func TestTokensAndRotation(t *testing.T) {
	s := Start(t, Options{})
	c := s.CreateMachineClient(t, "imaged")
	first := s.Token(t, c, "imaged")
	kid1 := kidOf(t, first)
	if !publishedKids(t, s)[kid1] {
		t.Fatalf("the token's kid %s is not in the JWKS", kid1)
	}
	kid2 := s.RotateKey(t)
	second := s.Token(t, c, "imaged")
	if got := kidOf(t, second); got != kid2 || got == kid1 {
		t.Fatalf("after rotation tokens carry kid %s; want the new key %s (old %s)", got, kid2, kid1)
	}
	if kids := publishedKids(t, s); !kids[kid1] || !kids[kid2] {
		t.Fatalf("JWKS after rotation lacks a key: %v (want %s and %s)", kids, kid1, kid2)
	}
}

// signIn runs the authorization-code flow with PKCE as a browser would
// (following redirects with its cookies) and returns the ID token.
func signIn(t *testing.T, browser *http.Client, s *Server, c Client, redirect string) string {
	t.Helper()
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {"state-12345678"}, "nonce": {"nonce-12345678"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err := browser.Get(s.PublicURL + "/oauth2/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := resp.Request.URL // where the redirects ended: the client's redirect URI
	code := got.Query().Get("code")
	if !strings.HasPrefix(got.String(), redirect) || code == "" || got.Query().Get("state") != "state-12345678" {
		t.Fatalf("the flow ended at %s, want %s?code=...&state=...", got, redirect)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {c.ID}, "code_verifier": {verifier}}
	resp, err = http.PostForm(s.PublicURL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		t.Fatalf("token answer %s without id_token (%v)", resp.Status, err)
	}
	return tok.IDToken
}

// TestLoginAppSessionAndLogout: the login app signs in with a remembered
// session, the second sign-in skips the login, and an RP-initiated logout
// ends the session, so the third asks for a login again.
func TestLoginAppSessionAndLogout(t *testing.T) {
	app := NewLoginApp(t, "alice")
	s := Start(t, app.Options())
	app.Use(s)
	done := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer done.Close()
	redirect := done.URL + "/"
	c := s.CreateClient(t, map[string]any{
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"scope": "openid", "redirect_uris": []string{redirect}, "post_logout_redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none",
	})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	signIn(t, browser, s, c, redirect)
	idToken := signIn(t, browser, s, c, redirect)
	q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {redirect}, "state": {"bye-12345678"}}
	resp, err := browser.Get(s.PublicURL + "/oauth2/sessions/logout?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), redirect) || resp.Request.URL.Query().Get("state") != "bye-12345678" {
		t.Fatalf("logout ended at %s, want %s?state=bye-12345678", resp.Request.URL, redirect)
	}
	signIn(t, browser, s, c, redirect)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(app.Logins()); got != "[false true false]" || app.Logouts() != 1 {
		t.Fatalf("login requests skipped %s with %d logouts; want [false true false] and 1", got, app.Logouts())
	}
}
