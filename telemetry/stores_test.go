package telemetry_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/telemetry"
)

// The recording wrapper keeps the store's deletion feed visible, so that
// the images service still caches lookups over it.
func TestImageStoreKeepsTheDeletionFeed(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wrapped := telemetry.New().ImageStore(db)
	feed, ok := wrapped.(imaged.DeletionFeed)
	if !ok {
		t.Fatal("the wrapped SQLite store is no longer an imaged.DeletionFeed")
	}
	if !feed.DeletionsLive() {
		t.Error("DeletionsLive = false over SQLite")
	}
	var heard []string
	feed.OnImageDeleted(func(img *imaged.Image) { heard = append(heard, img.ID) })
	img := &imaged.Image{ID: imaged.NewID(), Owner: "alice", OriginalFilename: "a.png", MediaType: "image/png",
		Size: 1, Width: 1, Height: 1, SHA256: "00", BlobKey: imaged.NewBlobKey("png"), Source: imaged.SourceUpload}
	if err := wrapped.CreateImage(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	if _, err := wrapped.DeleteImage(t.Context(), "alice", img.ID); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || heard[0] != img.ID {
		t.Errorf("the feed reported %v, want [%s]", heard, img.ID)
	}
}
