package jwtauth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenCache(t *testing.T) {
	otherSecret := []byte("another-secret-another-secret-00")

	t.Run("cached_token_is_not_verified_again", func(t *testing.T) {
		clk := &clock{now: t0}
		a := newAuthenticator(t, Config{HMACSecret: testSecret, Now: clk.Now})
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("alice"))
		if sub, err := a.Authenticate(context.Background(), tok); err != nil || sub != "alice" {
			t.Fatalf("Authenticate = %q, %v; want alice", sub, err)
		}
		// From here on, verifying any token signed with testSecret fails:
		// only the cache can accept tok.
		a.hmacSecret = otherSecret
		uncached := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("bob"))
		if _, err := a.Authenticate(context.Background(), uncached); err == nil {
			t.Fatal("a token the authenticator has not seen was not verified")
		}
		clk.Advance(cacheTTL - time.Second)
		if sub, err := a.Authenticate(context.Background(), tok); err != nil || sub != "alice" {
			t.Fatalf("Authenticate of a cached token = %q, %v; want alice from the cache", sub, err)
		}
		if allocs := testing.AllocsPerRun(100, func() { a.Authenticate(context.Background(), tok) }); allocs != 0 {
			t.Errorf("a cached token costs %v allocations, want none", allocs)
		}
	})

	t.Run("cached_token_is_verified_again_after_a_minute", func(t *testing.T) {
		clk := &clock{now: t0}
		a := newAuthenticator(t, Config{HMACSecret: testSecret, Now: clk.Now})
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "exp", t0.Add(time.Hour).Unix()))
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		a.hmacSecret = otherSecret
		clk.Advance(cacheTTL)
		_, err := a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgInvalid, tok)
	})

	t.Run("expired_token_is_refused_even_when_cached", func(t *testing.T) {
		clk := &clock{now: t0}
		a := newAuthenticator(t, Config{HMACSecret: testSecret, Now: clk.Now})
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "exp", t0.Add(10*time.Second).Unix()))
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		// Still within exp plus the leeway: verified again, accepted.
		clk.Advance(20 * time.Second)
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatalf("within the leeway: %v", err)
		}
		clk.Advance(DefaultLeeway)
		_, err := a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgExpired, tok)
	})

	t.Run("refused_token_is_not_cached", func(t *testing.T) {
		clk := &clock{now: t0}
		a := newAuthenticator(t, Config{HMACSecret: testSecret, Now: clk.Now})
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "nbf", t0.Add(time.Minute).Unix()))
		for range 2 {
			_, err := a.Authenticate(context.Background(), tok)
			wantUnauthorized(t, err, msgInvalid, tok)
		}
		if n := a.cache.len(); n != 0 {
			t.Fatalf("cache holds %d entries after refusals, want 0", n)
		}
		clk.Advance(time.Minute)
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatalf("once valid: %v", err)
		}
	})

	t.Run("key_set_change_forgets_cached_tokens", func(t *testing.T) {
		oldKey, newKey := testRSAKey(), testRSAKey2()
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

	t.Run("cache_stays_bounded", func(t *testing.T) {
		const size = 64
		a := newAuthenticator(t, Config{HMACSecret: testSecret, CacheSize: size})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 200 {
					sub := fmt.Sprintf("user-%d-%d", w, i)
					tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims(sub))
					if got, err := a.Authenticate(context.Background(), tok); err != nil || got != sub {
						t.Errorf("Authenticate = %q, %v; want %s", got, err, sub)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := a.cache.len(); n == 0 || n > size {
			t.Fatalf("cache holds %d entries after 800 tokens, want 1 to %d", n, size)
		}
	})

	t.Run("negative_size_disables_the_cache", func(t *testing.T) {
		a := newAuthenticator(t, Config{HMACSecret: testSecret, CacheSize: -1})
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("alice"))
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		a.hmacSecret = otherSecret
		_, err := a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgInvalid, tok)
	})
}

// BenchmarkAuthenticate verifies the same HS256 token again and again, as a
// client sending it with every request makes the server do.
func BenchmarkAuthenticate(b *testing.B) {
	now := time.Now()
	tok, err := Mint(testSecret, "bench", time.Hour, now)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			a, err := New(context.Background(), Config{HMACSecret: testSecret, CacheSize: bc.size})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Authenticate(context.Background(), tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
