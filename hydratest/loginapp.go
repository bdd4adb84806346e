package hydratest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// LoginApp is the login, consent and logout app of a test: Hydra sends the
// browser to it, and it accepts at once through the admin API, signing in
// its subject with a remembered session (so a second sign-in of the same
// browser skips the login step, until a logout ends the session). It
// records what it saw, for the test to check.
//
//	app := hydratest.NewLoginApp(t, "alice")
//	h := hydratest.Start(t, app.Options())
//	app.Use(h)
type LoginApp struct {
	URL     string // the app's base URL
	subject string

	mu      sync.Mutex
	hydra   *Server
	logins  []bool // the skip flag of every login request, in order
	logouts int
	errs    []error
}

// NewLoginApp starts the app until the test ends.
func NewLoginApp(t testing.TB, subject string) *LoginApp {
	t.Helper()
	a := &LoginApp{subject: subject}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /consent", a.consent)
	mux.HandleFunc("GET /logout", a.logout)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Options are Hydra options with the app's login, consent and logout URLs.
func (a *LoginApp) Options(env ...string) Options {
	return Options{LoginURL: a.URL + "/login", ConsentURL: a.URL + "/consent", LogoutURL: a.URL + "/logout", Env: env}
}

// Use tells the app which Hydra it answers for.
func (a *LoginApp) Use(h *Server) {
	a.mu.Lock()
	a.hydra = h
	a.mu.Unlock()
}

// Logins are the login requests seen so far: true where Hydra already had
// a session for the browser (skip), false where it asked for a login.
func (a *LoginApp) Logins() []bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]bool(nil), a.logins...)
}

// Logouts counts the logout requests accepted.
func (a *LoginApp) Logouts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logouts
}

// Err is the first error of an admin API call, if any.
func (a *LoginApp) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) == 0 {
		return nil
	}
	return a.errs[0]
}

func (a *LoginApp) server() *Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hydra
}

// finish redirects the browser, or records and shows the error.
func (a *LoginApp) finish(w http.ResponseWriter, r *http.Request, to string, err error) {
	if err == nil && to == "" {
		err = fmt.Errorf("hydratest: %s: Hydra gave no redirect", r.URL.Path)
	}
	if err != nil {
		a.mu.Lock()
		a.errs = append(a.errs, err)
		a.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

func (a *LoginApp) login(w http.ResponseWriter, r *http.Request) {
	h := a.server()
	if h == nil {
		a.finish(w, r, "", fmt.Errorf("hydratest: the login app has no Hydra (call Use)"))
		return
	}
	skip, to, err := h.acceptLogin(r.Context(), r.URL.Query().Get("login_challenge"), a.subject, true)
	if err == nil {
		a.mu.Lock()
		a.logins = append(a.logins, skip)
		a.mu.Unlock()
	}
	a.finish(w, r, to, err)
}

func (a *LoginApp) consent(w http.ResponseWriter, r *http.Request) {
	to, err := a.server().acceptConsent(r.Context(), r.URL.Query().Get("consent_challenge"))
	a.finish(w, r, to, err)
}

func (a *LoginApp) logout(w http.ResponseWriter, r *http.Request) {
	to, err := a.server().acceptLogout(r.Context(), r.URL.Query().Get("logout_challenge"))
	if err == nil {
		a.mu.Lock()
		a.logouts++
		a.mu.Unlock()
	}
	a.finish(w, r, to, err)
}
