package images

import (
	"sync"

	"github.com/imaged/imaged"
)

// keyCacheSize bounds the images remembered by blob key: a few hundred
// bytes each, so a few MiB at most.
const keyCacheSize = 16384

// keyCache remembers images by blob key for the public byte URLs, which
// look an image up on every request. It is used only over a store that is
// an imaged.DeletionFeed, and forgets an image as soon as the store reports
// its deletion, so a deleted image stops serving at once.
//
// A lookup that raced with a deletion must not put the deleted image back:
// every invalidation bumps epoch, and an image read from the store is kept
// only if no invalidation happened since before it was read.
type keyCache struct {
	mu    sync.RWMutex
	m     map[string]*imaged.Image
	epoch uint64
}

func newKeyCache() *keyCache { return &keyCache{m: make(map[string]*imaged.Image)} }

// get returns the cached image and, on a miss, the epoch to give put.
func (c *keyCache) get(key string) (*imaged.Image, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key], c.epoch
}

// put keeps img under key unless an invalidation happened since epoch.
func (c *keyCache) put(key string, img *imaged.Image, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.m) >= keyCacheSize {
		for k := range c.m { // map order: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[key] = img
}

// forget drops key; any lookup in flight will not keep what it read.
func (c *keyCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	c.epoch++
}
