package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/imaged/imaged/client"
	"github.com/imaged/imaged/hydratest"
)

// TestGalleryOIDCWithHydra: the gallery's "Sign in" against a real Ory
// Hydra (a public client with PKCE, CORS for the page's origin on Hydra's
// public endpoints), a login app that accepts through Hydra's admin API,
// and imaged trusting Hydra's JWKS, issuer and audience. In Chromium: sign
// in, see alice's image; sign in again in the same browser (Hydra's
// session skips the login); sign out, which ends Hydra's session
// (end_session_endpoint), so the next sign-in asks for a login again.
func TestGalleryOIDCWithHydra(t *testing.T) {
	alice, _ := users(t)
	addr := freeAddr(t)
	origin := "http://" + addr

	app := hydratest.NewLoginApp(t, alice)
	h := hydratest.Start(t, app.Options(
		"SERVE_PUBLIC_CORS_ENABLED=true",
		"SERVE_PUBLIC_CORS_ALLOWED_ORIGINS="+origin,
	))
	app.Use(h)
	gallery := h.CreateClient(t, map[string]any{
		"client_name":                "imaged gallery",
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
		"scope":                      "openid",
		"audience":                   []string{"imaged"},
		"redirect_uris":              []string{origin + "/"},
		"post_logout_redirect_uris":  []string{origin + "/"},
		"token_endpoint_auth_method": "none", // public: PKCE instead of a secret
	})

	// alice's image, uploaded with the data directory's token by a first
	// run of the service; the second accepts Hydra's tokens only.
	dir := t.TempDir()
	seed := startServer(t, serverOpts{DataDir: dir})
	c, err := client.New(seed.Base, seed.Token(alice), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(context.Background(), client.File{Name: "harbour.png", Body: bytes.NewReader(pngImage(t, 64, 48, 9))}); err != nil {
		t.Fatal(err)
	}
	seed.Stop()

	s := startServer(t, serverOpts{DataDir: dir, Addr: addr, Env: map[string]string{
		"IMAGED_OIDC_ISSUER":    h.PublicURL,
		"IMAGED_OIDC_CLIENT_ID": gallery.ID,
		"IMAGED_OIDC_AUDIENCE":  "imaged",
		"IMAGED_JWKS_URL":       h.JWKSURL(),
		"IMAGED_JWT_ISSUER":     h.Issuer(),
		"IMAGED_JWT_AUDIENCE":   "imaged",
	}})
	browser(t, s, "oidc", "")
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(app.Logins()); got != "[false true false]" {
		t.Errorf("Hydra's login requests skipped %s; want [false true false] (a login, a remembered session, a login after sign-out)", got)
	}
	if n := app.Logouts(); n != 1 {
		t.Errorf("%d logouts reached the login app, want 1", n)
	}
}

// freeAddr is a loopback address with a free port, for a server whose
// address others must know before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
