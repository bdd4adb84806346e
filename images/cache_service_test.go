package images_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/sqlite"
)

// countingStore is a real SQLite store that counts its lookups and whose
// deletion feed can be switched off, as a PostgreSQL store's is while its
// listening connection is down.
type countingStore struct {
	*sqlite.DB
	finds   atomic.Int64
	offline atomic.Bool
	reset   func() // calls the service's callback with nil
}

func (s *countingStore) FindImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	s.finds.Add(1)
	return s.DB.FindImage(ctx, owner, id)
}

func (s *countingStore) DeletionsLive() bool { return !s.offline.Load() }

func (s *countingStore) OnImageDeleted(fn func(*imaged.Image)) {
	s.DB.OnImageDeleted(fn)
	s.reset = func() { fn(nil) }
}

func TestGetIsCachedUntilDeleted(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{DB: db}
	svc := images.New(store, blobs, images.Config{})
	ctx := t.Context()
	img, err := svc.Store(ctx, images.NewImage{Owner: "alice", Filename: "a.png", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	get := func(owner string) (*imaged.Image, error) { return svc.Get(ctx, owner, img.ID) }

	t.Run("second_lookup_from_the_cache", func(t *testing.T) {
		before := store.finds.Load()
		for range 3 {
			got, err := get("alice")
			if err != nil || got.ID != img.ID {
				t.Fatalf("Get = %v, %v", got, err)
			}
		}
		if n := store.finds.Load() - before; n != 1 {
			t.Errorf("%d store lookups for three Gets, want 1", n)
		}
	})
	t.Run("cached_image_is_not_found_for_another_owner", func(t *testing.T) {
		if _, err := get("bob"); imaged.ErrCode(err) != imaged.ENotFound {
			t.Fatalf("Get(bob) = %v, want not found", err)
		}
	})
	t.Run("no_cache_while_the_feed_is_down", func(t *testing.T) {
		store.offline.Store(true)
		defer store.offline.Store(false)
		before := store.finds.Load()
		for range 2 {
			if _, err := get("alice"); err != nil {
				t.Fatal(err)
			}
		}
		if n := store.finds.Load() - before; n != 2 {
			t.Errorf("%d store lookups for two Gets with the feed down, want 2", n)
		}
	})
	t.Run("forget_everything", func(t *testing.T) {
		get("alice")
		store.reset()
		before := store.finds.Load()
		get("alice")
		if n := store.finds.Load() - before; n != 1 {
			t.Errorf("%d store lookups after the feed said to forget everything, want 1", n)
		}
	})
	t.Run("deleted_image_is_not_found_at_once", func(t *testing.T) {
		if _, err := get("alice"); err != nil {
			t.Fatal(err)
		}
		if err := svc.Delete(ctx, "alice", img.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := get("alice"); imaged.ErrCode(err) != imaged.ENotFound {
			t.Fatalf("Get after delete = %v, want not found", err)
		}
	})
}
