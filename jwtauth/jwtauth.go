// Package jwtauth authenticates API callers by the JSON Web Token in their
// "Authorization: Bearer" header, and implements imaged.Authenticator.
//
// Two kinds of signer are accepted, each only when configured:
//
//   - HS256 tokens signed with a shared secret (Config.HMACSecret), such as
//     the ones Mint makes for "imaged token --sub alice". The secret must be
//     at least 32 bytes; the command reads it from IMAGED_JWT_SECRET (which
//     must therefore hold at least 32 bytes) or from a file managed by
//     LoadOrCreateSecret.
//   - RS256, RS384, RS512, PS256, ES256 and ES384 tokens signed by an
//     identity provider whose public keys are published as a JSON Web Key Set
//     (Config.JWKSURL). The key is chosen by the token's "kid" header, and the
//     key's type, curve and declared "alg" must agree with the token's
//     algorithm, so a key is never used for an algorithm it was not meant for.
//
// An HS256 token is only ever checked against the shared secret and an
// asymmetric token only against the key set, which rules out algorithm
// confusion (for example an HS256 token "signed" with an RSA public key), and
// "alg": "none" is never accepted.
//
// Tokens are read strictly. Every token must carry "exp" and a "sub" of at
// most 255 bytes of valid UTF-8, neither blank nor holding control
// characters, which becomes the owner of what the request creates; "nbf" and
// "iat" are honoured when present, all with Config.Leeway of clock skew, and
// all three must be JSON numbers (NumericDate), never strings. Each part must
// be spelled in canonical base64url (no padding, no non-zero trailing bits),
// so that one token has one spelling. A header with "crit" is refused (RFC
// 7515 4.1.11: no extension is understood here). With Config.MaxTTL, a token
// living longer than that ("exp" - "iat") is refused. "iss" and "aud"
// are checked when Config.Issuer and Config.Audience are set ("aud" may be a
// string or an array). Any failure is an *imaged.Error with
// imaged.EUnauthorized and a message that never repeats the token.
//
// A token that passed these checks is remembered (by its SHA-256) for a
// minute at most and never past its "exp", so that a client sending the same
// token with every request does not pay for its verification every time. A
// fetch that changes the key set forgets every remembered token at once.
//
// # Keycloak
//
// The original platform used Keycloak. For a realm served at
// https://sso.example.com/realms/acme, configure
//
//	Issuer:   "https://sso.example.com/realms/acme"
//	JWKSURL:  "https://sso.example.com/realms/acme/protocol/openid-connect/certs"
//	Audience: "account" (Keycloak's default) or the client id, if an audience
//	          mapper adds it to the access token
//
// The issuer is the realm URL exactly as Keycloak writes it into "iss", so it
// must use the hostname clients reach Keycloak by (KC_HOSTNAME). The "sub" of
// a Keycloak access token is the user's id; on Keycloak 25 and later it comes
// from the "basic" client scope, which must stay assigned to the client. The
// "azp" claim (the client the token was issued to) is not checked. Keycloak's
// key set also lists encryption keys ("use": "enc"), which are skipped.
//
// # Key rotation
//
// The key set is fetched when the Authenticator is created and refreshed in
// the background as its answer's Cache-Control max-age says, within
// MinJWKSRefresh and MaxJWKSRefresh (Config.JWKSRefresh when it says
// nothing). A token naming a key id that is not in the set waits for one
// refetch, shared by every such token arriving meanwhile; these refetches
// start at most once per Config.JWKSMinRefetch (5 s), so a key the provider
// has just published works within seconds of its first use, and a flood of
// forged key ids costs the provider one request per interval at most. A key
// id a refetch proved absent is refused at once for 30 s (a negative cache of
// 1024 ids at most) unless a fetch brings a changed key set first. A failed
// fetch keeps the keys already known and is logged with log/slog.
package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imaged/imaged"
)

// Defaults and limits.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultJWKSRefresh = 10 * time.Minute
	// DefaultJWKSMinRefetch is the default Config.JWKSMinRefetch.
	DefaultJWKSMinRefetch = 5 * time.Second

	// MinSecretLen is the shortest HMAC secret accepted, in bytes.
	MinSecretLen = 32
	// MaxTokenLen is the longest token accepted, in bytes.
	MaxTokenLen = 8 << 10
	// MaxSubjectLen is the longest "sub" accepted, in bytes.
	MaxSubjectLen = 255
)

// Config says which tokens an Authenticator accepts. At least one of
// HMACSecret and JWKSURL must be set.
type Config struct {
	// HMACSecret verifies HS256 tokens. Nil disables HS256.
	HMACSecret []byte
	// JWKSURL is where the identity provider publishes its signing keys.
	// Empty disables the asymmetric algorithms.
	JWKSURL string
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be the token's "aud" or one of its entries.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// JWKSRefresh is how often the key set is refetched (default 10m).
	JWKSRefresh time.Duration
	// HTTPClient fetches the key set (default: a client with a 5s timeout).
	// Each fetch is also bounded to 5s by its context.
	HTTPClient *http.Client
	// Now returns the current time (default time.Now); tests set it.
	Now func() time.Time
	// JWKSMinRefetch is the least time between two fetches of the key set
	// caused by tokens naming a key id it does not hold (default
	// DefaultJWKSMinRefetch). Such tokens wait for the next allowed fetch,
	// which serves them all.
	JWKSMinRefetch time.Duration
	// MaxTTL, when positive, is the longest lifetime accepted: a token whose
	// "exp" is more than MaxTTL after its "iat" (or, without "iat", after
	// now) is refused.
	MaxTTL time.Duration
	// CacheSize is how many verified tokens are remembered, so that a token
	// sent again is not decoded and verified again (default
	// DefaultCacheSize; negative disables the cache). A remembered token
	// is accepted until it expires but for a minute at most, and no longer
	// once the key set is refetched.
	CacheSize int
}

// Authenticator verifies bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	hmacSecret []byte
	jwks       *keySet
	parser     *jwt.Parser
	now        func() time.Time
	leeway     time.Duration
	maxTTL     time.Duration
	cache      *tokenCache // nil when disabled
}

var _ imaged.Authenticator = (*Authenticator)(nil)

// Algorithm names accepted from the key set.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"}

// New returns an Authenticator for cfg. When cfg.JWKSURL is set it fetches the
// key set before returning, failing if it cannot, and keeps it fresh in the
// background until ctx is done.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	if cfg.HMACSecret == nil && cfg.JWKSURL == "" {
		return nil, errors.New("jwtauth: neither an HMAC secret nor a JWKS URL is configured")
	}
	if cfg.HMACSecret != nil && len(cfg.HMACSecret) < MinSecretLen {
		return nil, fmt.Errorf("jwtauth: HMAC secret is %d bytes, want at least %d", len(cfg.HMACSecret), MinSecretLen)
	}
	if cfg.Leeway < 0 || cfg.JWKSRefresh < 0 || cfg.JWKSMinRefetch < 0 || cfg.MaxTTL < 0 {
		return nil, errors.New("jwtauth: negative leeway, JWKS interval or maximum lifetime")
	}
	if cfg.JWKSMinRefetch == 0 {
		cfg.JWKSMinRefetch = DefaultJWKSMinRefetch
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.JWKSRefresh == 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}

	a := &Authenticator{now: cfg.Now, leeway: cfg.Leeway, maxTTL: cfg.MaxTTL, cache: newTokenCache(cfg.CacheSize)}
	var methods []string
	if cfg.HMACSecret != nil {
		a.hmacSecret = append([]byte(nil), cfg.HMACSecret...)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		a.jwks = newKeySet(ctx, cfg.JWKSURL, cfg.HTTPClient, cfg.JWKSRefresh, cfg.JWKSMinRefetch)
		next, err := a.jwks.refresh(ctx)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: initial JWKS fetch: %w", err)
		}
		go a.jwks.refreshLoop(next)
		methods = append(methods, asymmetricAlgs...)
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		// Only the canonical base64url spelling of each part: no padding,
		// no non-zero trailing bits (one token, one spelling).
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// tokenDigest is the SHA-256 of token, the cache's key. Tokens up to 2 KiB
// (identity providers' access tokens are commonly 0.5-2 KiB) are hashed
// from a copy on the stack: []byte(token) was a heap copy of every token
// on every request. A larger buffer would make every check clear more
// memory for the few tokens beyond 2 KiB.
func tokenDigest(token string) [sha256.Size]byte {
	var buf [2 << 10]byte
	return sha256.Sum256(append(buf[:0], token...))
}

// Authenticate verifies token and returns its subject. Any failure is an
// *imaged.Error with imaged.EUnauthorized.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", unauthorized(errors.New("empty token"))
	}
	if len(token) > MaxTokenLen {
		return "", unauthorized(fmt.Errorf("token is %d bytes, limit %d", len(token), MaxTokenLen))
	}
	var (
		key  [sha256.Size]byte
		now  time.Time
		keys uint64
	)
	if a.cache != nil {
		key, now, keys = tokenDigest(token), a.now(), a.keysGeneration()
		if sub, ok := a.cache.get(&key, now, keys); ok {
			return sub, nil
		}
	}
	var claims strictClaims
	_, err := a.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if err := checkHeader(t.Header); err != nil {
			return nil, err
		}
		return a.verificationKey(ctx, t)
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return "", &imaged.Error{Code: imaged.EUnauthorized, Message: "Token expired", Err: err}
		}
		return "", unauthorized(err)
	}
	if err := checkSubject(claims.Subject); err != nil {
		return "", unauthorized(err)
	}
	if err := a.checkLifetime(&claims.RegisteredClaims); err != nil {
		return "", unauthorized(err)
	}
	if a.cache != nil {
		// The parser refused a token without "exp".
		a.cache.put(&key, claims.Subject, now, claims.ExpiresAt.Time, keys)
	}
	return claims.Subject, nil
}

// checkLifetime refuses a token that lives longer than the maximum lifetime.
func (a *Authenticator) checkLifetime(c *jwt.RegisteredClaims) error {
	if a.maxTTL <= 0 {
		return nil
	}
	from, slack := a.now(), a.leeway
	if c.IssuedAt != nil {
		from, slack = c.IssuedAt.Time, 0
	}
	if c.ExpiresAt.Sub(from) > a.maxTTL+slack {
		return fmt.Errorf("token lives longer than the maximum of %s", a.maxTTL)
	}
	return nil
}

// keysGeneration identifies the key set tokens are verified against, so that
// cached verifications end when it changes.
func (a *Authenticator) keysGeneration() uint64 {
	if a.jwks == nil {
		return 0
	}
	return a.jwks.generation.Load()
}

// verificationKey returns the key that may verify t: the HMAC secret for
// HS256 only, a key-set key for the asymmetric algorithms only.
func (a *Authenticator) verificationKey(ctx context.Context, t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if alg != jwt.SigningMethodHS256.Alg() || a.hmacSecret == nil {
			return nil, errors.New("HMAC algorithm not accepted")
		}
		return a.hmacSecret, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS, *jwt.SigningMethodECDSA:
		if a.jwks == nil {
			return nil, errors.New("asymmetric algorithm not accepted")
		}
		kid, _ := t.Header["kid"].(string)
		return a.jwks.key(ctx, kid, alg)
	default:
		return nil, errors.New("algorithm not accepted")
	}
}

func unauthorized(cause error) *imaged.Error {
	return &imaged.Error{Code: imaged.EUnauthorized, Message: "Missing or invalid bearer token", Err: cause}
}
