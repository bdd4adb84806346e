package jwtauth

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rotationConfig is an authenticator on srv with a short refetch interval.
func rotationConfig(srv *jwksServer, minRefetch time.Duration) Config {
	return Config{JWKSURL: srv.URL, JWKSMinRefetch: minRefetch, CacheSize: -1}
}

func TestJWKSRotation(t *testing.T) {
	oldKey, newKey := testRSAKey(), testRSAKey2()

	t.Run("rotated_key_accepted_on_first_use_right_after_start", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, 200*time.Millisecond))
		if got := srv.hits.Load(); got != 1 {
			t.Fatalf("New fetched %d times, want 1", got)
		}
		srv.setKeys(t, rsaJWK("old", "RS256", &oldKey.PublicKey), rsaJWK("new", "RS256", &newKey.PublicKey))

		// Within the interval of the start's fetch: the token waits for the
		// next allowed refetch instead of being refused.
		tok := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
		start := time.Now()
		sub, err := a.Authenticate(context.Background(), tok)
		if err != nil || sub != "alice" {
			t.Fatalf("Authenticate = %q, %v; want alice", sub, err)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("waited %v for the refetch, want about the interval (200ms)", waited)
		}
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("server hits = %d, want 2", got)
		}
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("server hits = %d after a known kid, want 2", got)
		}
	})

	t.Run("concurrent_unknown_kids_share_one_refetch", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, 100*time.Millisecond))
		srv.setKeys(t, rsaJWK("new", "RS256", &newKey.PublicKey))
		tok := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
		forged := sign(t, jwt.SigningMethodRS256, newKey, "forged", claims("mallory"))

		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				if i%2 == 0 {
					_, err := a.Authenticate(context.Background(), tok)
					errs <- err
				} else if _, err := a.Authenticate(context.Background(), forged); err == nil {
					errs <- fmt.Errorf("forged kid accepted")
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("server hits = %d, want 2 (the start and one shared refetch)", got)
		}
	})

	t.Run("kid_proven_unknown_refused_at_once_without_fetch", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, 300*time.Millisecond))
		forged := sign(t, jwt.SigningMethodRS256, newKey, "forged", claims("mallory"))
		_, err := a.Authenticate(context.Background(), forged)
		wantUnauthorized(t, err, msgInvalid, forged)
		hits := srv.hits.Load()
		for range 5 {
			start := time.Now()
			_, err := a.Authenticate(context.Background(), forged)
			wantUnauthorized(t, err, msgInvalid, forged)
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("a kid proven unknown waited %v", d)
			}
		}
		if got := srv.hits.Load(); got != hits {
			t.Errorf("server hits went from %d to %d for a kid proven unknown", hits, got)
		}
	})

	t.Run("kid_proven_unknown_accepted_once_a_fetch_brings_it", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, 50*time.Millisecond))
		early := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
		if _, err := a.Authenticate(context.Background(), early); err == nil {
			t.Fatal("accepted a key not published yet")
		}
		srv.setKeys(t, rsaJWK("old", "RS256", &oldKey.PublicKey), rsaJWK("new", "RS256", &newKey.PublicKey))
		if _, err := a.jwks.refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(context.Background(), early); err != nil {
			t.Fatalf("after the key set changed: %v", err)
		}
	})

	t.Run("flood_of_unknown_kids_costs_one_fetch_per_interval_and_rotation_still_works", func(t *testing.T) {
		const interval = 200 * time.Millisecond
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, interval))
		start := time.Now()
		stop := make(chan struct{})
		var flood sync.WaitGroup
		for w := range 8 {
			flood.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					kid := fmt.Sprintf("forged-%d-%d", w, i)
					tok := handMade(`{"alg":"RS256","kid":"`+kid+`"}`, `{"sub":"x","exp":9999999999}`, []byte("sig"))
					if _, err := a.Authenticate(context.Background(), tok); err == nil {
						t.Error("forged kid accepted")
						return
					}
				}
			})
		}
		// Mid-flood the provider rotates; its new key must work within
		// about one interval of its first use.
		time.Sleep(3 * interval)
		srv.setKeys(t, rsaJWK("old", "RS256", &oldKey.PublicKey), rsaJWK("new", "RS256", &newKey.PublicKey))
		tok := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
		t0 := time.Now()
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Errorf("rotated key refused during the flood: %v", err)
		}
		if d := time.Since(t0); d > 3*interval {
			t.Errorf("rotated key took %v to be accepted, want under %v", d, 3*interval)
		}
		time.Sleep(3 * interval)
		close(stop)
		flood.Wait()
		elapsed := time.Since(start)
		// One fetch at start, then at most one per started interval.
		limit := 1 + int64(elapsed/interval) + 1
		if got := srv.hits.Load(); got > limit {
			t.Errorf("%d fetches in %v, want at most %d (one per %v)", got, elapsed, limit, interval)
		}
		t.Logf("%d fetches in %v of flood", srv.hits.Load(), elapsed.Round(time.Millisecond))
	})

	t.Run("waiting_caller_that_hangs_up_is_released", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, rotationConfig(srv, time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		tok := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
		_, err := a.Authenticate(ctx, tok)
		wantUnauthorized(t, err, msgInvalid, tok)
	})

	t.Run("refresh_drops_keys_the_provider_removed", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, Config{JWKSURL: srv.URL, JWKSMinRefetch: 10 * time.Millisecond})
		tok := sign(t, jwt.SigningMethodRS256, oldKey, "old", claims("alice"))
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		srv.setKeys(t, rsaJWK("new", "RS256", &newKey.PublicKey))
		if _, err := a.jwks.refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgInvalid, tok)
	})

	t.Run("unchanged_key_set_keeps_cached_tokens", func(t *testing.T) {
		srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
		a := newAuthenticator(t, Config{JWKSURL: srv.URL})
		gen := a.keysGeneration()
		if _, err := a.jwks.refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a.keysGeneration() != gen {
			t.Error("a refetch of the same key set forgot the verified tokens")
		}
	})
}

func TestBackgroundRefreshPicksUpNewKeys(t *testing.T) {
	oldKey, newKey := testRSAKey(), testRSAKey2()
	srv := newJWKSServer(t, rsaJWK("old", "RS256", &oldKey.PublicKey))
	// The refetch interval is an hour, so only the background refresh can
	// bring in the new key.
	a := newAuthenticator(t, Config{JWKSURL: srv.URL, JWKSRefresh: time.Millisecond, JWKSMinRefetch: time.Hour})
	srv.setKeys(t, rsaJWK("new", "RS256", &newKey.PublicKey))
	tok := sign(t, jwt.SigningMethodRS256, newKey, "new", claims("alice"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a.jwks.has("new") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background refresh never published the new key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshInterval(t *testing.T) {
	const def = 10 * time.Minute
	tests := []struct {
		cacheControl []string
		want         time.Duration
	}{
		{nil, def},
		{[]string{"public"}, def},
		{[]string{"max-age=600"}, 10 * time.Minute},
		{[]string{"public, max-age=1800, must-revalidate"}, 30 * time.Minute},
		{[]string{"max-age=5"}, MinJWKSRefresh},
		{[]string{"max-age=0"}, MinJWKSRefresh},
		{[]string{"no-cache"}, MinJWKSRefresh},
		{[]string{"no-store"}, MinJWKSRefresh},
		{[]string{"max-age=86400"}, MaxJWKSRefresh},
		{[]string{"max-age=99999999999999999999"}, def},
		{[]string{"max-age=-1"}, def},
		{[]string{"max-age=\"120\""}, 2 * time.Minute},
		{[]string{"max-age=900", "max-age=120"}, 2 * time.Minute},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.cacheControl {
			h.Add("Cache-Control", v)
		}
		if got := refreshInterval(h, def); got != tt.want {
			t.Errorf("Cache-Control %q: interval %v, want %v", tt.cacheControl, got, tt.want)
		}
	}
}

func TestFetchHonoursCacheControl(t *testing.T) {
	srv := newJWKSServer(t, rsaJWK("k", "RS256", &testRSAKey().PublicKey))
	srv.cacheControl = "public, max-age=120"
	a := newAuthenticator(t, Config{JWKSURL: srv.URL})
	next, err := a.jwks.refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if next != 2*time.Minute {
		t.Errorf("next refresh in %v, want 2m from max-age=120", next)
	}
}
