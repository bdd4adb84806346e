package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
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
	// minRSABits is the smallest RSA modulus accepted from the key set.
	minRSABits = 2048

	// MinJWKSRefresh and MaxJWKSRefresh bound the refresh interval that a
	// key set answer's Cache-Control max-age asks for.
	MinJWKSRefresh = time.Minute
	MaxJWKSRefresh = time.Hour
	// unknownKidTTL is how long a key id that a refetch proved absent is
	// refused at once, without waiting for another refetch, unless a fetch
	// brings a changed key set first.
	unknownKidTTL = 30 * time.Second
	// maxUnknownKids bounds that negative cache.
	maxUnknownKids = 1024
	// maxKidLen is the longest key id looked for; longer ones are refused
	// without a fetch.
	maxKidLen = 256
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
//
// Rotation: a token naming a key id that is not in the set waits for one
// refetch, which every such token arriving meanwhile shares; refetches for
// unknown key ids start at most once per minRefetch, so a flood of forged
// key ids costs the identity provider at most one request per interval,
// and a key the provider has just published is usable within minRefetch
// of its first use. Key ids that a refetch proved absent are refused at
// once for unknownKidTTL (a bounded negative cache), unless a fetch brings
// a changed key set first.
type keySet struct {
	url        string
	client     *http.Client
	refresh0   time.Duration // background refresh without Cache-Control
	minRefetch time.Duration
	base       context.Context // the Authenticator's: bounds waiting refetches

	keys atomic.Pointer[map[string][]publicKey]
	// generation counts the fetches that changed the keys.
	generation atomic.Uint64
	// fetches counts requests to the provider, successful or not.
	fetches atomic.Uint64

	fetchMu sync.Mutex // serialises fetches; guards digest
	digest  [sha256.Size]byte

	mu        sync.Mutex // guards the fields below
	lastFetch time.Time  // when the last fetch started
	pending   *refetch   // the refetch unknown key ids wait for, not started yet
	unknown   map[string]time.Time
}

// refetch is one scheduled fetch that tokens naming unknown key ids wait for.
type refetch struct {
	done chan struct{}
	kids map[string]struct{} // asked for before it started
}

func newKeySet(ctx context.Context, url string, client *http.Client, refresh, minRefetch time.Duration) *keySet {
	return &keySet{url: url, client: client, refresh0: refresh, minRefetch: minRefetch, base: ctx,
		unknown: make(map[string]time.Time)}
}

// key returns the key named kid that accepts alg. An unknown kid waits for
// the next refetch (see keySet).
func (s *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	if key, known, err := s.lookup(kid, alg); known {
		return key, err
	}
	if kid == "" || len(kid) > maxKidLen {
		// Without a key id there is nothing a refetch could bring.
		return nil, errUnknownKid
	}
	c, err := s.refetchFor(kid)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if key, known, err := s.lookup(kid, alg); known {
		return key, err
	}
	return nil, errUnknownKid
}

// refetchFor returns the refetch that will look for kid, scheduling one if
// none is pending, or errUnknownKid if a recent refetch proved kid absent.
func (s *keySet) refetchFor(kid string) (*refetch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if until, ok := s.unknown[kid]; ok {
		if now.Before(until) {
			return nil, errUnknownKid
		}
		delete(s.unknown, kid)
	}
	if s.pending == nil {
		s.pending = &refetch{done: make(chan struct{}), kids: make(map[string]struct{})}
		go s.runRefetch(s.pending, s.lastFetch.Add(s.minRefetch).Sub(now))
	}
	if len(s.pending.kids) < maxUnknownKids {
		s.pending.kids[kid] = struct{}{}
	}
	return s.pending, nil
}

// runRefetch waits delay, then fetches the key set for c's waiters and
// remembers the key ids it did not bring.
func (s *keySet) runRefetch(c *refetch, delay time.Duration) {
	defer close(c.done)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.base.Done():
			t.Stop()
			return
		}
	}
	s.mu.Lock()
	// Later unknown key ids wait for the next refetch, a whole interval
	// from now: lastFetch is set here, with pending, and not only once
	// refresh gets to fetch, or a key id arriving in between would start
	// a second fetch at once.
	s.pending = nil
	s.lastFetch = time.Now()
	s.mu.Unlock()
	if _, err := s.refresh(context.WithoutCancel(s.base)); err != nil {
		slog.Warn("jwtauth: JWKS refetch for an unknown key id failed; keeping the current keys", "url", s.url, "err", err)
		return
	}
	keys := *s.keys.Load()
	until := time.Now().Add(unknownKidTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	for kid := range c.kids {
		if _, ok := keys[kid]; ok {
			continue
		}
		if len(s.unknown) >= maxUnknownKids {
			s.pruneUnknownLocked()
		}
		s.unknown[kid] = until
	}
}

// pruneUnknownLocked makes room in the negative cache: expired entries go,
// and if none had, all of them (they are refused again after one refetch).
func (s *keySet) pruneUnknownLocked() {
	now := time.Now()
	for kid, until := range s.unknown {
		if !now.Before(until) {
			delete(s.unknown, kid)
		}
	}
	if len(s.unknown) >= maxUnknownKids {
		clear(s.unknown)
	}
}

// lookup finds kid in the cached keys. known reports whether kid is there at
// all; if it is but none of its keys accepts alg, err says so.
func (s *keySet) lookup(kid, alg string) (key any, known bool, err error) {
	m := s.keys.Load()
	if m == nil {
		return nil, false, nil
	}
	keys, known := (*m)[kid]
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

// has reports whether kid is in the cached keys.
func (s *keySet) has(kid string) bool {
	m := s.keys.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[kid]
	return ok
}

// refresh fetches the key set and returns when the next background refresh
// is due; on failure the current keys stay.
func (s *keySet) refresh(ctx context.Context) (time.Duration, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.fetchLocked(ctx)
}

// refreshLoop refreshes the key set in the background until s.base is done,
// first after next, then as each answer's Cache-Control says (within
// bounds), and one minute at most after a failure.
func (s *keySet) refreshLoop(next time.Duration) {
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
			n, err := s.refresh(s.base)
			if err != nil {
				if s.base.Err() == nil {
					slog.Warn("jwtauth: JWKS refresh failed; keeping the current keys", "url", s.url, "err", err)
				}
				n = min(s.refresh0, time.Minute)
			}
			t.Reset(n)
		}
	}
}

// fetchLocked fetches and parses the key set and, if it holds at least one
// usable key, replaces the cached keys. s.fetchMu must be held.
func (s *keySet) fetchLocked(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	s.lastFetch = time.Now()
	s.mu.Unlock()
	s.fetches.Add(1)

	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return 0, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSSize {
		return 0, fmt.Errorf("JWKS is larger than %d bytes", maxJWKSSize)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return 0, err
	}
	if d := sha256.Sum256(body); d != s.digest || s.keys.Load() == nil {
		s.digest = d
		s.keys.Store(&keys)
		s.generation.Add(1)
		s.mu.Lock()
		clear(s.unknown)
		s.mu.Unlock()
	}
	return refreshInterval(resp.Header, s.refresh0), nil
}

// refreshInterval is when the key set should be fetched again: its
// Cache-Control max-age within [MinJWKSRefresh, MaxJWKSRefresh] (no-cache
// and no-store count as 0), else def.
func refreshInterval(h http.Header, def time.Duration) time.Duration {
	var (
		d     time.Duration
		found bool
	)
	for _, v := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				d, found = 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if !found || time.Duration(min(n, 1<<30))*time.Second < d {
					d, found = time.Duration(min(n, 1<<30))*time.Second, true
				}
			}
		}
	}
	if !found {
		return def
	}
	return min(max(d, MinJWKSRefresh), MaxJWKSRefresh)
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518) that verification
// needs, as decodeJWK reads it.
type jwk struct {
	Kty, Use, Kid, Alg string
	N, E               string // RSA
	Crv, X, Y          string // EC
}

// decodeJWK reads the members of a JWK that jwk holds by their exact
// names: RFC 7517 says member names are case-sensitive, and encoding/json
// would also take "KID" or "Kid" for "kid" (with the last of several
// winning). A member given twice counts once, the last one, as the RFC
// allows; a member of jwk's that is not a string makes the key undecodable.
func decodeJWK(raw json.RawMessage) (jwk, error) {
	var j jwk
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return j, err
	}
	for name, field := range map[string]*string{
		"kty": &j.Kty, "use": &j.Use, "kid": &j.Kid, "alg": &j.Alg,
		"n": &j.N, "e": &j.E, "crv": &j.Crv, "x": &j.X, "y": &j.Y,
	} {
		if v, ok := members[name]; ok {
			if err := json.Unmarshal(v, field); err != nil {
				return j, fmt.Errorf("member %q: %w", name, err)
			}
		}
	}
	return j, nil
}

// parseJWKS returns the usable signing keys of a key set by key id. Keys for
// encryption and of unsupported types are skipped; malformed RSA and EC keys
// are skipped with a warning. A set without any usable key is an error.
func parseJWKS(data []byte) (map[string][]publicKey, error) {
	// "keys" by its exact name too (see decodeJWK).
	var doc map[string]json.RawMessage
	var set []json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	if raw, ok := doc["keys"]; ok {
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("decoding JWKS: keys: %w", err)
		}
	}
	keys := make(map[string][]publicKey)
	n := 0
	for _, raw := range set {
		j, err := decodeJWK(raw)
		if err != nil {
			slog.Warn("jwtauth: skipping undecodable JWK", "err", err)
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		var pub any
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
