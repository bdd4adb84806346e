package images

import (
	"sync"

	"github.com/imaged/imaged"
)

// imageCache remembers images by one key: their blob key, for the public
// byte URLs, or their id, for GET /api/images/{id}; both are looked up on
// every request. It is used only over a store that is an
// imaged.DeletionFeed, and forgets an image as soon as the store reports its
// deletion (here or on another replica), so a deleted image stops answering
// at once.
//
// A lookup that raced with a deletion must not put the deleted image back:
// every invalidation bumps epoch, and an image read from the store is kept
// only if no invalidation happened since before it was read.
type imageCache struct {
	size  int // entries at most
	mu    sync.RWMutex
	m     map[string]*imaged.Image
	epoch uint64
}

func newImageCache(size int) *imageCache {
	return &imageCache{size: size, m: make(map[string]*imaged.Image)}
}

// get returns the cached image and, on a miss, the epoch to give put.
func (c *imageCache) get(key string) (*imaged.Image, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key], c.epoch
}

// put keeps img under key unless an invalidation happened since epoch.
func (c *imageCache) put(key string, img *imaged.Image, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.m) >= c.size {
		for k := range c.m { // map order: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[key] = img
}

// forget drops key; any lookup in flight will not keep what it read.
func (c *imageCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	c.epoch++
}

// forgetAll empties the cache; any lookup in flight will not keep what it
// read.
func (c *imageCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.epoch++
}

// imageCaches are the service's two indexes of cached images over a
// DeletionFeed.
type imageCaches struct {
	feed        imaged.DeletionFeed
	byKey, byID *imageCache
}

func newImageCaches(feed imaged.DeletionFeed, size int) *imageCaches {
	c := &imageCaches{feed: feed, byKey: newImageCache(size), byID: newImageCache(size)}
	feed.OnImageDeleted(c.deleted)
	return c
}

// deleted is the DeletionFeed's callback.
func (c *imageCaches) deleted(img *imaged.Image) {
	if img == nil {
		c.byKey.forgetAll()
		c.byID.forgetAll()
		return
	}
	c.byKey.forget(img.BlobKey)
	c.byID.forget(img.ID)
}

// lookup answers from index when the feed is live, else (and on a miss)
// with find, keeping what it found.
func (c *imageCaches) lookup(index *imageCache, key string, find func() (*imaged.Image, error)) (*imaged.Image, error) {
	if !c.feed.DeletionsLive() {
		return find()
	}
	img, epoch := index.get(key)
	if img != nil {
		return img, nil
	}
	img, err := find()
	if err != nil {
		return nil, err
	}
	index.put(key, img, epoch)
	return img, nil
}
