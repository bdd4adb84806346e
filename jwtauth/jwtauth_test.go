package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imaged/imaged"
)

const (
	testIssuer   = "https://sso.example.com/realms/acme"
	testAudience = "imaged"
	msgInvalid   = "Missing or invalid bearer token"
	msgExpired   = "Token expired"
)

var (
	t0         = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	testSecret = []byte("0123456789abcdef0123456789abcdef")

	// Keys are generated once: RSA generation is slow.
	testRSAKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	testRSAKey2 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	testECKey   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	testEC384   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a settable time source for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// jwksServer is a fake identity provider's key set endpoint.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	down atomic.Bool
	mu   sync.Mutex
	body []byte
	// cacheControl, when set, is sent as the answer's Cache-Control.
	cacheControl string
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		body, cc := s.body, s.cacheControl
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(body)
}

func (s *jwksServer) setBody(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid, alg string, pub *rsa.PublicKey) map[string]any {
	m := map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func ecJWK(kid, alg string, pub *ecdsa.PublicKey) map[string]any {
	point, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(point) - 1) / 2
	m := map[string]any{
		"kty": "EC", "use": "sig", "kid": kid, "crv": pub.Curve.Params().Name,
		"x": b64(point[1 : 1+size]), "y": b64(point[1+size:]),
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

// claims returns valid claims for the test authenticator at t0.
func claims(sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": sub,
		"iss": testIssuer,
		"aud": testAudience,
		"iat": t0.Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(),
	}
}

func with(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	c[key] = value
	return c
}

func without(c jwt.MapClaims, key string) jwt.MapClaims {
	delete(c, key)
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handMade assembles a token from a JSON header, JSON payload and signature.
func handMade(header, payload string, sig []byte) string {
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "." + b64(sig)
}

func hs256(secret []byte, signingInput string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return mac.Sum(nil)
}

func rsaPublicPEM(t *testing.T, pub *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func newAuthenticator(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// wantUnauthorized fails unless err is an EUnauthorized *imaged.Error with
// message msg that does not repeat token.
func wantUnauthorized(t *testing.T, err error, msg, token string) {
	t.Helper()
	var e *imaged.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *imaged.Error", err)
	}
	if e.Code != imaged.EUnauthorized {
		t.Errorf("code = %s, want %s", e.Code, imaged.EUnauthorized)
	}
	if e.Message != msg {
		t.Errorf("message = %q, want %q", e.Message, msg)
	}
	if token != "" {
		if strings.Contains(e.Message, token) || strings.Contains(err.Error(), token) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	rsaKey, ecKey, ec384 := testRSAKey(), testECKey(), testEC384()
	srv := newJWKSServer(t,
		rsaJWK("rsa-1", "RS256", &rsaKey.PublicKey),
		rsaJWK("rsa-any", "", &rsaKey.PublicKey),
		ecJWK("ec-1", "ES256", &ecKey.PublicKey),
		ecJWK("ec-384", "", &ec384.PublicKey),
	)
	a := newAuthenticator(t, Config{
		HMACSecret: testSecret,
		JWKSURL:    srv.URL,
		Issuer:     testIssuer,
		Audience:   testAudience,
	})

	valid := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("alice"))
	validParts := strings.Split(valid, ".")
	otherPayload := strings.Split(sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-00"), "", claims("mallory")), ".")[1]
	rs256Header := `{"alg":"RS256","kid":"rsa-1","typ":"JWT"}`
	payload, _ := json.Marshal(claims("alice"))
	rs256Input := b64([]byte(rs256Header)) + "." + b64(payload)

	tests := []struct {
		name    string
		token   string
		wantSub string // "" means the token must be refused
		wantMsg string // when refused; default msgInvalid
	}{
		{name: "valid_HS256_returns_subject", token: valid, wantSub: "alice"},
		{name: "valid_RS256_from_JWKS", token: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("bob")), wantSub: "bob"},
		{name: "valid_ES256_from_JWKS", token: sign(t, jwt.SigningMethodES256, ecKey, "ec-1", claims("carol")), wantSub: "carol"},
		{name: "valid_ES384_from_JWKS", token: sign(t, jwt.SigningMethodES384, ec384, "ec-384", claims("dave")), wantSub: "dave"},
		{name: "valid_PS256_with_key_declaring_no_alg", token: sign(t, jwt.SigningMethodPS256, rsaKey, "rsa-any", claims("erin")), wantSub: "erin"},
		{name: "valid_RS512_with_key_declaring_no_alg", token: sign(t, jwt.SigningMethodRS512, rsaKey, "rsa-any", claims("frank")), wantSub: "frank"},
		{name: "audience_in_array_accepted", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "aud", []string{"account", testAudience})), wantSub: "alice"},
		{name: "expired_within_leeway_accepted", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "exp", t0.Add(-20*time.Second).Unix())), wantSub: "alice"},
		{name: "sub_of_255_bytes_accepted", token: sign(t, jwt.SigningMethodHS256, testSecret, "", claims(strings.Repeat("s", 255))), wantSub: strings.Repeat("s", 255)},

		{name: "missing_sub_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", without(claims(""), "sub"))},
		{name: "empty_sub_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", claims(""))},
		{name: "sub_over_255_bytes_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", claims(strings.Repeat("s", 256)))},
		{name: "expired_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "exp", t0.Add(-time.Minute).Unix())), wantMsg: msgExpired},
		{name: "missing_exp_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", without(claims("alice"), "exp"))},
		{name: "not_yet_valid_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "nbf", t0.Add(time.Minute).Unix()))},
		{name: "issued_in_the_future_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "iat", t0.Add(time.Minute).Unix()))},
		{name: "wrong_secret_refused", token: sign(t, jwt.SigningMethodHS256, []byte("the-wrong-secret-the-wrong-secret"), "", claims("alice"))},
		{name: "wrong_issuer_refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", with(claims("bob"), "iss", "https://evil.example.com/realms/acme"))},
		{name: "missing_issuer_refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", without(claims("bob"), "iss"))},
		{name: "wrong_audience_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "aud", "account"))},
		{name: "audience_array_without_ours_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "aud", []string{"account", "other"}))},
		{name: "tampered_payload_refused", token: validParts[0] + "." + otherPayload + "." + validParts[2]},
		{name: "tampered_signature_refused", token: validParts[0] + "." + validParts[1] + "." + b64(make([]byte, 32))},
		{name: "alg_none_refused", token: handMade(`{"alg":"none","typ":"JWT"}`, string(payload), nil)},
		{name: "alg_none_with_signature_refused", token: handMade(`{"alg":"none"}`, string(payload), hs256(testSecret, b64([]byte(`{"alg":"none"}`))+"."+b64(payload)))},
		{name: "HS256_signed_with_RSA_public_key_PEM_refused", token: sign(t, jwt.SigningMethodHS256, rsaPublicPEM(t, &rsaKey.PublicKey), "rsa-1", claims("mallory"))},
		{name: "RS256_header_with_HMAC_secret_signature_refused", token: rs256Input + "." + b64(hs256(testSecret, rs256Input))},
		{name: "HS384_refused", token: sign(t, jwt.SigningMethodHS384, testSecret, "", claims("alice"))},
		{name: "RS256_naming_EC_key_refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, "ec-1", claims("bob"))},
		{name: "ES256_naming_RSA_key_refused", token: sign(t, jwt.SigningMethodES256, ecKey, "rsa-1", claims("carol"))},
		{name: "PS256_naming_key_declared_RS256_refused", token: sign(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", claims("erin"))},
		{name: "ES384_naming_P256_key_refused", token: sign(t, jwt.SigningMethodES384, ec384, "ec-1", claims("dave"))},
		{name: "RS256_signed_by_another_key_refused", token: sign(t, jwt.SigningMethodRS256, testRSAKey2(), "rsa-1", claims("bob"))},
		{name: "RS256_without_kid_refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims("bob"))},
		{name: "oversized_token_refused", token: sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims("alice"), "pad", strings.Repeat("x", MaxTokenLen)))},
		{name: "empty_string_refused", token: ""},
		{name: "two_segments_refused", token: "a.b"},
		{name: "three_garbage_segments_refused", token: "a.b.c"},
		{name: "bearer_prefix_garbage_refused", token: "Bearer x"},
		{name: "bearer_prefix_before_valid_token_refused", token: "Bearer " + valid},
		{name: "payload_not_json_refused", token: handMade(`{"alg":"HS256"}`, "not json", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := a.Authenticate(context.Background(), tt.token)
			if tt.wantSub != "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if sub != tt.wantSub {
					t.Fatalf("subject = %q, want %q", sub, tt.wantSub)
				}
				return
			}
			if err == nil {
				t.Fatalf("Authenticate accepted the token as %q", sub)
			}
			if sub != "" {
				t.Errorf("subject = %q on failure, want empty", sub)
			}
			msg := tt.wantMsg
			if msg == "" {
				msg = msgInvalid
			}
			wantUnauthorized(t, err, msg, tt.token)
		})
	}
}

func TestAlgorithmConfusion(t *testing.T) {
	rsaKey := testRSAKey()
	pemKey := rsaPublicPEM(t, &rsaKey.PublicKey)
	srv := newJWKSServer(t, rsaJWK("rsa-1", "RS256", &rsaKey.PublicKey))

	t.Run("HS256_signed_with_RSA_public_key_PEM_refused_without_HMAC_secret", func(t *testing.T) {
		a := newAuthenticator(t, Config{JWKSURL: srv.URL})
		for _, kid := range []string{"rsa-1", ""} {
			tok := sign(t, jwt.SigningMethodHS256, pemKey, kid, claims("mallory"))
			_, err := a.Authenticate(context.Background(), tok)
			if err == nil {
				t.Fatalf("kid %q: HS256 token signed with the public key was accepted", kid)
			}
			wantUnauthorized(t, err, msgInvalid, tok)
		}
	})
	t.Run("HS256_signed_with_RSA_modulus_refused_without_HMAC_secret", func(t *testing.T) {
		a := newAuthenticator(t, Config{JWKSURL: srv.URL})
		tok := sign(t, jwt.SigningMethodHS256, rsaKey.N.Bytes(), "rsa-1", claims("mallory"))
		if _, err := a.Authenticate(context.Background(), tok); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("RS256_refused_by_HMAC_only_authenticator", func(t *testing.T) {
		a := newAuthenticator(t, Config{HMACSecret: testSecret})
		tok := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("bob"))
		_, err := a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgInvalid, tok)

		header := b64([]byte(`{"alg":"RS256","typ":"JWT"}`))
		payload, _ := json.Marshal(claims("bob"))
		input := header + "." + b64(payload)
		tok = input + "." + b64(hs256(testSecret, input))
		_, err = a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgInvalid, tok)
	})
}

func TestJWKSRefreshFailureKeepsKeys(t *testing.T) {
	key := testRSAKey()
	tests := []struct {
		name   string
		break_ func(*jwksServer)
	}{
		{"server_down", func(s *jwksServer) { s.down.Store(true) }},
		{"server_answers_garbage", func(s *jwksServer) { s.setBody([]byte("<html>oops</html>")) }},
		{"server_answers_no_usable_key", func(s *jwksServer) {
			s.setBody([]byte(`{"keys":[{"kty":"RSA","use":"enc","kid":"x","n":"AQAB","e":"AQAB"}]}`))
		}},
		{"server_answers_over_1MiB", func(s *jwksServer) {
			s.setBody([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSSize) + `"}`))
		}},
		{"server_gone", func(s *jwksServer) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, rsaJWK("k1", "RS256", &key.PublicKey))
			a := newAuthenticator(t, Config{JWKSURL: srv.URL})
			tok := sign(t, jwt.SigningMethodRS256, key, "k1", claims("alice"))
			tt.break_(srv)

			if _, err := a.jwks.refresh(context.Background()); err == nil {
				t.Fatal("refresh succeeded against a broken server")
			}
			sub, err := a.Authenticate(context.Background(), tok)
			if err != nil || sub != "alice" {
				t.Fatalf("Authenticate after failed refresh = %q, %v; want alice", sub, err)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	rsaKey, ecKey := testRSAKey(), testECKey()
	good := ecJWK("ec", "", &ecKey.PublicKey)
	offCurve := ecJWK("off", "", &ecKey.PublicKey)
	y, _ := base64.RawURLEncoding.DecodeString(offCurve["y"].(string))
	y[len(y)-1] ^= 1
	offCurve["y"] = b64(y)
	encKey := rsaJWK("enc", "RSA-OAEP", &rsaKey.PublicKey)
	encKey["use"] = "enc"
	noUse := rsaJWK("nouse", "RS256", &rsaKey.PublicKey)
	delete(noUse, "use")
	padded := rsaJWK("padded", "RS256", &rsaKey.PublicKey)
	padded["n"] = base64.URLEncoding.EncodeToString(rsaKey.N.Bytes())
	weak := rsaJWK("weak", "RS256", &mustRSA(1024).PublicKey)
	p521 := ecJWK("p521", "", &mustEC(elliptic.P521()).PublicKey)
	shortX := ecJWK("shortx", "", &ecKey.PublicKey)
	shortX["x"] = shortX["x"].(string)[2:]
	evenE := rsaJWK("even", "RS256", &rsaKey.PublicKey)
	evenE["e"] = b64([]byte{1, 0, 0})
	okp := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(make([]byte, 32))}
	// Member names are case-sensitive (RFC 7517 4).
	upper := map[string]any{}
	for k, v := range ecJWK("upper", "", &ecKey.PublicKey) {
		upper[strings.ToUpper(k)] = v
	}
	otherKid := ecJWK("", "", &ecKey.PublicKey)
	delete(otherKid, "kid")
	otherKid["Kid"] = "loud"
	numericKid := ecJWK("", "", &ecKey.PublicKey)
	numericKid["kid"] = 7

	tests := []struct {
		name     string
		keys     []map[string]any
		wantKids []string // nil means the set must be refused
	}{
		{"EC_P256_key_parsed", []map[string]any{good}, []string{"ec"}},
		{"EC_point_off_curve_skipped", []map[string]any{offCurve, good}, []string{"ec"}},
		{"only_off_curve_point_refused", []map[string]any{offCurve}, nil},
		{"encryption_key_skipped", []map[string]any{encKey, good}, []string{"ec"}},
		{"key_without_use_accepted", []map[string]any{noUse}, []string{"nouse"}},
		{"padded_base64_accepted", []map[string]any{padded}, []string{"padded"}},
		{"RSA_1024_skipped", []map[string]any{weak, good}, []string{"ec"}},
		{"P521_skipped", []map[string]any{p521, good}, []string{"ec"}},
		{"short_coordinate_skipped", []map[string]any{shortX, good}, []string{"ec"}},
		{"even_exponent_skipped", []map[string]any{evenE, good}, []string{"ec"}},
		{"OKP_skipped", []map[string]any{okp, good}, []string{"ec"}},
		{"empty_set_refused", []map[string]any{}, nil},
		{"upper_case_members_not_read", []map[string]any{upper}, nil},
		{"Kid_is_not_kid", []map[string]any{otherKid}, []string{""}},
		{"numeric_kid_skipped", []map[string]any{numericKid, good}, []string{"ec"}},
	}
	t.Run("KEYS_is_not_keys", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"KEYS": []map[string]any{good}})
		if got, err := parseJWKS(body); err == nil {
			t.Fatalf("parseJWKS read \"KEYS\": %v", got)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := json.Marshal(map[string]any{"keys": tt.keys})
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseJWKS(body)
			if tt.wantKids == nil {
				if err == nil {
					t.Fatalf("parseJWKS accepted the set: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantKids) {
				t.Fatalf("got %d kids, want %v", len(got), tt.wantKids)
			}
			for _, kid := range tt.wantKids {
				if _, ok := got[kid]; !ok {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	srv := newJWKSServer(t, rsaJWK("k", "RS256", &testRSAKey().PublicKey))
	down := newJWKSServer(t)
	down.down.Store(true)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"nothing_configured_refused", Config{}, false},
		{"short_secret_refused", Config{HMACSecret: []byte("short")}, false},
		{"negative_leeway_refused", Config{HMACSecret: testSecret, Leeway: -time.Second}, false},
		{"unreachable_JWKS_refused", Config{JWKSURL: down.URL}, false},
		{"secret_only_accepted", Config{HMACSecret: testSecret}, true},
		{"JWKS_only_accepted", Config{JWKSURL: srv.URL}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := New(ctx, tt.cfg)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestDefaultLeeway(t *testing.T) {
	clk := &clock{now: t0}
	a := newAuthenticator(t, Config{HMACSecret: testSecret, Now: clk.Now})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", jwt.MapClaims{"sub": "alice", "exp": t0.Unix()})
	clk.Advance(DefaultLeeway - time.Second)
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("inside the leeway: %v", err)
	}
	clk.Advance(2 * time.Second)
	_, err := a.Authenticate(context.Background(), tok)
	wantUnauthorized(t, err, msgExpired, tok)
}

func TestMint(t *testing.T) {
	a := newAuthenticator(t, Config{HMACSecret: testSecret})

	t.Run("round_trips_through_Authenticate", func(t *testing.T) {
		tok, err := Mint(testSecret, "alice", time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := a.Authenticate(context.Background(), tok)
		if err != nil || sub != "alice" {
			t.Fatalf("Authenticate = %q, %v; want alice", sub, err)
		}
	})
	t.Run("sets_iat_exp_and_a_random_jti", func(t *testing.T) {
		var jtis []string
		for range 2 {
			tok, err := Mint(testSecret, "alice", time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			var c jwt.RegisteredClaims
			if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
				t.Fatal(err)
			}
			if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("iat, exp = %v, %v", c.IssuedAt, c.ExpiresAt)
			}
			if c.ID == "" {
				t.Error("no jti")
			}
			jtis = append(jtis, c.ID)
		}
		if jtis[0] == jtis[1] {
			t.Errorf("two tokens share jti %q", jtis[0])
		}
	})
	t.Run("token_expires_after_ttl", func(t *testing.T) {
		tok, err := Mint(testSecret, "alice", time.Hour, t0.Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Authenticate(context.Background(), tok)
		wantUnauthorized(t, err, msgExpired, tok)
	})
	t.Run("refuses_bad_arguments", func(t *testing.T) {
		for name, call := range map[string]func() (string, error){
			"short_secret":  func() (string, error) { return Mint([]byte("short"), "alice", time.Hour, t0) },
			"empty_subject": func() (string, error) { return Mint(testSecret, "", time.Hour, t0) },
			"long_subject":  func() (string, error) { return Mint(testSecret, strings.Repeat("s", 256), time.Hour, t0) },
			"zero_ttl":      func() (string, error) { return Mint(testSecret, "alice", 0, t0) },
		} {
			if _, err := call(); err == nil {
				t.Errorf("%s: Mint succeeded", name)
			}
		}
	})
}

func TestLoadOrCreateSecret(t *testing.T) {
	t.Run("creates_0600_file_and_returns_same_secret_next_time", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state", "jwt.secret")
		first, err := LoadOrCreateSecret(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 32 {
			t.Fatalf("secret is %d bytes, want 32", len(first))
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode = %v, want 0600", perm)
		}
		raw, _ := os.ReadFile(path)
		if got := strings.TrimSpace(string(raw)); got != hex.EncodeToString(first) {
			t.Errorf("file holds %q, want the hex secret", got)
		}
		second, err := LoadOrCreateSecret(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(second) != string(first) {
			t.Error("second call returned a different secret")
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the secret", len(entries))
		}
	})
	t.Run("concurrent_creators_agree", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jwt.secret")
		var wg sync.WaitGroup
		results := make([][]byte, 16)
		for i := range results {
			wg.Go(func() {
				s, err := LoadOrCreateSecret(path)
				if err != nil {
					t.Error(err)
				}
				results[i] = s
			})
		}
		wg.Wait()
		for i, s := range results {
			if string(s) != string(results[0]) || len(s) != 32 {
				t.Fatalf("caller %d got a different secret", i)
			}
		}
	})
	t.Run("reads_existing_file_with_newline", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jwt.secret")
		want := []byte(strings.Repeat("k", 40))
		os.WriteFile(path, []byte(hex.EncodeToString(want)+"\n"), 0o600)
		got, err := LoadOrCreateSecret(path)
		if err != nil || string(got) != string(want) {
			t.Fatalf("LoadOrCreateSecret = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("group_readable_file_accepted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jwt.secret")
		os.WriteFile(path, []byte(hex.EncodeToString(testSecret)), 0o644)
		if _, err := LoadOrCreateSecret(path); err != nil {
			t.Fatal(err)
		}
	})
	for name, content := range map[string]string{
		"short_secret_refused": hex.EncodeToString([]byte("only-16-bytes!!!")),
		"non_hex_refused":      strings.Repeat("z", 64),
		"empty_file_refused":   "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "jwt.secret")
			os.WriteFile(path, []byte(content), 0o600)
			if _, err := LoadOrCreateSecret(path); err == nil {
				t.Fatal("LoadOrCreateSecret accepted the file")
			}
			if raw, _ := os.ReadFile(path); string(raw) != content {
				t.Error("the existing file was overwritten")
			}
		})
	}
}
