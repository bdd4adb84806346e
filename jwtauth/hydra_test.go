package jwtauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged/hydratest"
)

// countingJWKS serves Hydra's key set through a proxy that counts the
// requests reaching it, so that a test sees every fetch the Authenticator
// makes of the real provider.
type countingJWKS struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingJWKS(t *testing.T, upstream string) *countingJWKS {
	t.Helper()
	c := &countingJWKS{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		resp, err := http.Get(upstream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for _, h := range []string{"Content-Type", "Cache-Control"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(c.Close)
	return c
}

// hydraAuthenticator verifies Hydra's access tokens for audience "imaged"
// through the counting proxy, on the real clock.
func hydraAuthenticator(t *testing.T, h *hydratest.Server, jwks *countingJWKS, minRefetch time.Duration) *Authenticator {
	t.Helper()
	return newAuthenticator(t, Config{
		JWKSURL:        jwks.URL,
		Issuer:         h.Issuer(),
		Audience:       "imaged",
		JWKSMinRefetch: minRefetch,
		Now:            time.Now,
	})
}

// tokenKid returns the kid of a JWT's header.
func tokenKid(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("token header without kid: %s", b)
	}
	return h.Kid
}

// TestHydraKeyRotation rotates the access-token signing key of a real Ory
// Hydra and checks that tokens signed with the new key are accepted within
// the refetch interval of their first use (no outage), with the default
// interval, and that tokens signed with the old key still are.
func TestHydraKeyRotation(t *testing.T) {
	h := hydratest.Start(t, hydratest.Options{})
	jwks := newCountingJWKS(t, h.JWKSURL())
	a := hydraAuthenticator(t, h, jwks, 0) // DefaultJWKSMinRefetch
	client := h.CreateMachineClient(t, "imaged")
	ctx := context.Background()

	before := h.Token(t, client, "imaged")
	if sub, err := a.Authenticate(ctx, before); err != nil || sub != client.ID {
		t.Fatalf("token before rotation: Authenticate = %q, %v; want %q", sub, err, client.ID)
	}

	// Twice: right after the start's fetch, and again once a refetch for
	// the first rotation has just happened (the case that used to cost a
	// 30 s outage).
	for round := 1; round <= 2; round++ {
		kid := h.RotateKey(t)
		after := h.Token(t, client, "imaged")
		if got := tokenKid(t, after); got != kid {
			t.Fatalf("round %d: Hydra signed with kid %s, want the new key %s", round, got, kid)
		}
		hits := jwks.hits.Load()
		start := time.Now()
		sub, err := a.Authenticate(ctx, after)
		waited := time.Since(start)
		if err != nil || sub != client.ID {
			t.Fatalf("round %d: token signed with the new key: Authenticate = %q, %v after %v", round, sub, err, waited)
		}
		if limit := DefaultJWKSMinRefetch + 2*time.Second; waited > limit {
			t.Errorf("round %d: the new key took %v to be accepted, want under %v", round, waited, limit)
		}
		if got := jwks.hits.Load() - hits; got != 1 {
			t.Errorf("round %d: %d fetches of the key set for the new key, want 1", round, got)
		}
		t.Logf("round %d: new key %s accepted after %v", round, kid, waited.Round(time.Millisecond))
		if _, err := a.Authenticate(ctx, before); err != nil {
			t.Errorf("round %d: token signed with the old key refused: %v", round, err)
		}
	}
}

// TestHydraUnknownKidFlood sends tokens naming random key ids as fast as
// sixteen clients can, each giving up after 20 ms as an impatient attacker
// would (a token naming an unknown kid waits for the next refetch), while
// Hydra rotates its key: the provider (behind a counting proxy) must see at
// most one fetch per interval, and the rotated key must still work within
// about an interval of its first use.
func TestHydraUnknownKidFlood(t *testing.T) {
	const interval = time.Second
	h := hydratest.Start(t, hydratest.Options{})
	jwks := newCountingJWKS(t, h.JWKSURL())
	a := hydraAuthenticator(t, h, jwks, interval)
	client := h.CreateMachineClient(t, "imaged")
	ctx := context.Background()

	start := time.Now()
	stop := make(chan struct{})
	var (
		flood   sync.WaitGroup
		refused atomic.Int64
	)
	for range 16 {
		flood.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				kid := rand.Text()
				tok := handMade(`{"alg":"ES256","typ":"JWT","kid":"`+kid+`"}`,
					fmt.Sprintf(`{"sub":"mallory","aud":"imaged","iss":%q,"exp":%d}`, h.Issuer(), time.Now().Add(time.Hour).Unix()),
					make([]byte, 64))
				rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				_, err := a.Authenticate(rctx, tok)
				cancel()
				if err == nil {
					t.Error("a token naming a forged kid was accepted")
					return
				}
				refused.Add(1)
			}
		})
	}

	time.Sleep(2 * interval)
	h.RotateKey(t)
	tok := h.Token(t, client, "imaged")
	t0 := time.Now()
	if _, err := a.Authenticate(ctx, tok); err != nil {
		t.Errorf("the rotated key was refused during the flood: %v", err)
	}
	if d := time.Since(t0); d > 2*interval+time.Second {
		t.Errorf("the rotated key took %v to be accepted during the flood, want under %v", d, 2*interval+time.Second)
	}
	time.Sleep(2 * interval)
	close(stop)
	flood.Wait()

	elapsed := time.Since(start)
	// The fetch at start, then at most one per interval begun.
	limit := 1 + int64(elapsed/interval) + 1
	got := jwks.hits.Load()
	if got > limit {
		t.Errorf("Hydra's key set was fetched %d times in %v of flood, want at most %d (one per %v)", got, elapsed, limit, interval)
	}
	if refused.Load() < 1000 {
		t.Errorf("only %d forged tokens were sent; the flood did not happen", refused.Load())
	}
	t.Logf("%d forged tokens refused, %d fetches of the key set in %v", refused.Load(), got, elapsed.Round(time.Millisecond))
}
