package telemetry_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/telemetry"
)

// The images service caches the public URLs' lookups only over a store that
// reports its deletions; recording a store's operations must keep that.
func TestImageStoreKeepsDeletionFeed(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wrapped := telemetry.New().ImageStore(db)
	feed, ok := wrapped.(imaged.DeletionFeed)
	if !ok {
		t.Fatal("the recorded SQLite store is no longer an imaged.DeletionFeed")
	}
	if !feed.DeletionsLive() {
		t.Error("DeletionsLive through the wrapper = false over SQLite")
	}
	var deleted []string
	feed.OnImageDeleted(func(img *imaged.Image) { deleted = append(deleted, img.ID) })
	now := time.Now().UTC().Truncate(time.Millisecond)
	img := &imaged.Image{
		ID: imaged.NewID(), Owner: "alice", MediaType: "image/png", Size: 1, Width: 1, Height: 1,
		SHA256: strings.Repeat("0", 64), BlobKey: imaged.NewBlobKey("png"), Source: imaged.SourceUpload,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := wrapped.CreateImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if _, err := wrapped.DeleteImage(context.Background(), "alice", img.ID); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0] != img.ID {
		t.Fatalf("deletions reported through the wrapper: %v, want [%s]", deleted, img.ID)
	}
}
