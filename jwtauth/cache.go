package jwtauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

const (
	// DefaultCacheSize is how many verified tokens an Authenticator
	// remembers when Config.CacheSize is 0.
	DefaultCacheSize = 10_000
	// cacheTTL is the longest a verified token is remembered: a change that
	// would make it fail (a key removed from the key set without a refresh
	// reaching this process, for example) takes effect within this time.
	cacheTTL = time.Minute
	// cacheShards spreads the cache over several locks so that concurrent
	// requests rarely wait on each other.
	cacheShards = 16
)

// tokenCache remembers tokens that passed verification, so that a client
// sending the same token with every request pays for decoding and checking it
// once a minute instead of every time. Only successes are remembered, under
// the SHA-256 of the token (never the token itself), each until the earlier
// of its expiry and cacheTTL from when it was verified; an entry verified
// against an older key set than the current one is ignored. It holds at most
// its size in entries, evicting an arbitrary one when a shard is full.
type tokenCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedToken
}

// cachedToken is what a verified token resolved to.
type cachedToken struct {
	subject string
	until   time.Time // no longer valid at or after this instant
	keys    uint64    // the key-set generation it was verified against
}

// newTokenCache returns a cache of about size entries, or nil (no caching)
// when size is negative.
func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	c := &tokenCache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[int(key[0])%cacheShards]
}

// get returns the subject of the token hashed to key if it was verified
// against key-set generation keys and is still valid at now.
func (c *tokenCache) get(key *[sha256.Size]byte, now time.Time, keys uint64) (string, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.entries[*key]
	s.mu.Unlock()
	if !ok || e.keys != keys || !now.Before(e.until) {
		return "", false
	}
	return e.subject, true
}

// put remembers a token verified at now, valid until exp, against key-set
// generation keys.
func (c *tokenCache) put(key *[sha256.Size]byte, subject string, now, exp time.Time, keys uint64) {
	until := now.Add(cacheTTL)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[*key]; !ok && len(s.entries) >= c.perShard {
		// Make room for this entry and the next few, so that full shards
		// are not scanned on every insert: expired entries first, then
		// arbitrary ones (map iteration starts at a random place).
		for k, e := range s.entries {
			if !now.Before(e.until) || e.keys != keys {
				delete(s.entries, k)
			}
		}
		for k := range s.entries {
			if len(s.entries) < c.perShard-c.perShard/4 {
				break
			}
			delete(s.entries, k)
		}
	}
	s.entries[*key] = cachedToken{subject: subject, until: until, keys: keys}
}

// len returns the number of entries, expired or not.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
