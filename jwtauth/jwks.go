package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// fetchTimeout bounds one fetch of the key set.
	fetchTimeout = 5 * time.Second
	// maxJWKSSize bounds the key set document, in bytes.
	maxJWKSSize = 1 << 20
	// unknownKidInterval is the least time between two fetches caused by
	// tokens naming a key id that is not in the key set, so that a stream of
	// forged key ids cannot make us hammer the identity provider.
	unknownKidInterval = 30 * time.Second
	// minRSABits is the smallest RSA modulus accepted from the key set.
	minRSABits = 2048
)

var errUnknownKid = errors.New("token's key id is not in the key set")

// publicKey is one usable signing key of the key set.
type publicKey struct {
	alg string // the JWK's declared "alg", or ""
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// accepts reports whether k may verify a token signed with alg: the key's
// type and curve must fit the algorithm, and so must its declared alg.
func (k publicKey) accepts(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		}
	}
	return false
}

// keySet is a cached JSON Web Key Set, indexed by key id.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu   sync.RWMutex
	keys map[string][]publicKey
	// generation counts the fetches that replaced keys.
	generation atomic.Uint64

	fetchMu        sync.Mutex // serialises fetches; guards lastUnknownKid
	lastUnknownKid time.Time
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

// key returns the key named kid that accepts alg. An unknown kid causes one
// rate-limited refetch of the key set.
func (s *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	if key, known, err := s.lookup(kid, alg); known {
		return key, err
	}

	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	// Another request may have fetched the key while this one waited.
	if key, known, err := s.lookup(kid, alg); known {
		return key, err
	}
	now := s.now()
	if !s.lastUnknownKid.IsZero() && now.Sub(s.lastUnknownKid) < unknownKidInterval {
		return nil, errUnknownKid
	}
	s.lastUnknownKid = now
	// The fetch serves every later request, so one caller hanging up must
	// not abort it; fetch bounds it by its own timeout.
	if err := s.fetchLocked(context.WithoutCancel(ctx)); err != nil {
		slog.WarnContext(ctx, "jwtauth: JWKS refetch for an unknown key id failed; keeping the current keys", "url", s.url, "err", err)
		return nil, errUnknownKid
	}
	if key, known, err := s.lookup(kid, alg); known {
		return key, err
	}
	return nil, errUnknownKid
}

// lookup finds kid in the cached keys. known reports whether kid is there at
// all; if it is but none of its keys accepts alg, err says so.
func (s *keySet) lookup(kid, alg string) (key any, known bool, err error) {
	s.mu.RLock()
	keys, known := s.keys[kid]
	s.mu.RUnlock()
	if !known {
		return nil, false, nil
	}
	for _, k := range keys {
		if k.accepts(alg) {
			return k.key, true, nil
		}
	}
	return nil, true, errors.New("the key named by the token does not fit its algorithm")
}

// refresh refetches the key set; on failure the current keys stay.
func (s *keySet) refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.fetchLocked(ctx)
}

// refreshEvery refreshes the key set every interval until ctx is done.
func (s *keySet) refreshEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "jwtauth: JWKS refresh failed; keeping the current keys", "url", s.url, "err", err)
			}
		}
	}
}

// fetchLocked fetches and parses the key set and, if it holds at least one
// usable key, replaces the cached keys. s.fetchMu must be held.
func (s *keySet) fetchLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSSize {
		return fmt.Errorf("JWKS is larger than %d bytes", maxJWKSSize)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	s.generation.Add(1)
	return nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518) that verification needs.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the usable signing keys of a key set by key id. Keys for
// encryption and of unsupported types are skipped; malformed RSA and EC keys
// are skipped with a warning. A set without any usable key is an error.
func parseJWKS(data []byte) (map[string][]publicKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	keys := make(map[string][]publicKey)
	n := 0
	for _, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			slog.Warn("jwtauth: skipping undecodable JWK", "err", err)
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		var (
			pub any
			err error
		)
		switch j.Kty {
		case "RSA":
			pub, err = parseRSA(j)
		case "EC":
			pub, err = parseEC(j)
		default:
			continue
		}
		if err != nil {
			slog.Warn("jwtauth: skipping invalid JWK", "kid", j.Kid, "kty", j.Kty, "err", err)
			continue
		}
		keys[j.Kid] = append(keys[j.Kid], publicKey{alg: j.Alg, key: pub})
		n++
	}
	if n == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return keys, nil
}

func parseRSA(j jwk) (*rsa.PublicKey, error) {
	n, err := decodeB64URL(j.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad modulus")
	}
	e, err := decodeB64URL(j.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	for _, b := range e {
		pub.E = pub.E<<8 | int(b)
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("modulus of %d bits is shorter than %d", pub.N.BitLen(), minRSABits)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("bad exponent")
	}
	return pub, nil
}

func parseEC(j jwk) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	var size int
	switch j.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	default:
		return nil, fmt.Errorf("unsupported curve %q", j.Crv)
	}
	x, errX := decodeB64URL(j.X)
	y, errY := decodeB64URL(j.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, errors.New("bad coordinates")
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4) // uncompressed
	point = append(point, x...)
	point = append(point, y...)
	// ParseUncompressedPublicKey rejects points that are not on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, err
	}
	return pub, nil
}

// decodeB64URL decodes base64url, with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
