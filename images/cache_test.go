package images

import (
	"testing"

	"github.com/imaged/imaged"
)

func TestImageCache(t *testing.T) {
	img := &imaged.Image{ID: "x", BlobKey: "k.png"}
	t.Run("keeps_what_was_read", func(t *testing.T) {
		c := newImageCache(100)
		got, epoch := c.get("k.png")
		if got != nil {
			t.Fatal("hit in an empty cache")
		}
		c.put("k.png", img, epoch)
		if got, _ := c.get("k.png"); got != img {
			t.Fatal("miss after put")
		}
	})
	t.Run("forgets_a_deleted_image", func(t *testing.T) {
		c := newImageCache(100)
		_, epoch := c.get("k.png")
		c.put("k.png", img, epoch)
		c.forget("k.png")
		if got, _ := c.get("k.png"); got != nil {
			t.Fatal("hit after forget")
		}
	})
	t.Run("a_lookup_racing_a_deletion_does_not_put_the_image_back", func(t *testing.T) {
		c := newImageCache(100)
		_, epoch := c.get("k.png") // a lookup starts...
		c.forget("k.png")          // ...the image is deleted meanwhile...
		c.put("k.png", img, epoch) // ...and the lookup ends with what it read before
		if got, _ := c.get("k.png"); got != nil {
			t.Fatal("a deleted image came back into the cache")
		}
	})
	t.Run("forgets_everything_when_deletions_may_have_been_missed", func(t *testing.T) {
		c := newImageCache(100)
		_, epoch := c.get("k.png")
		c.put("k.png", img, epoch)
		_, epoch = c.get("other.png") // a lookup in flight
		c.forgetAll()
		c.put("other.png", img, epoch)
		if got, _ := c.get("k.png"); got != nil {
			t.Fatal("hit after forgetAll")
		}
		if got, _ := c.get("other.png"); got != nil {
			t.Fatal("a lookup that started before forgetAll was kept")
		}
	})
	t.Run("is_bounded", func(t *testing.T) {
		c := newImageCache(100)
		for i := range 200 {
			_, epoch := c.get("")
			c.put(imaged.NewBlobKey("png")+string(rune('a'+i%26)), img, epoch)
		}
		if n := len(c.m); n > 100 {
			t.Fatalf("%d entries, bound %d", n, 100)
		}
	})
}
