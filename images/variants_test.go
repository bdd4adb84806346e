package images_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
)

// putVariant stores a blob under a variant key of original.
func putVariant(t *testing.T, f *fixture, original, digest string) string {
	t.Helper()
	k := imaged.VariantKey(original, digest, "webp")
	if _, err := f.blobs.Put(context.Background(), k, bytes.NewReader([]byte("variant of "+original))); err != nil {
		t.Fatal(err)
	}
	return k
}

func exists(t *testing.T, f *fixture, key string) bool {
	t.Helper()
	_, err := f.blobs.Stat(context.Background(), key)
	if err != nil && imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatal(err)
	}
	return err == nil
}

func TestDelete_removes_the_variants_and_only_them(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, images.Config{})
	doomed, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	gone := []string{putVariant(t, f, doomed.BlobKey, "0123456789abcdef"), putVariant(t, f, doomed.BlobKey, "fedcba9876543210")}
	kept := putVariant(t, f, other.BlobKey, "0123456789abcdef")
	if err := f.svc.Delete(ctx, "alice", doomed.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range gone {
		if exists(t, f, k) {
			t.Errorf("variant %s survived its image's deletion", k)
		}
	}
	if !exists(t, f, kept) || !exists(t, f, other.BlobKey) {
		t.Errorf("deleting one image removed another's bytes or variants")
	}
}

// A crash between deleting the record and the variants leaves variants
// whose original has no record: gc removes them, and keeps the variants of
// images that exist.
func TestCollectGarbage_knows_variants(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, images.Config{})
	live, err := f.svc.Store(ctx, images.NewImage{Owner: "alice", Source: imaged.SourceUpload}, bytes.NewReader(pngBytes(t, 4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	liveVariant := putVariant(t, f, live.BlobKey, "0123456789abcdef")
	orphanVariant := putVariant(t, f, imaged.NewBlobKey("png"), "0123456789abcdef")

	f.now = time.Now().Add(2 * time.Hour)
	st, err := f.svc.CollectGarbage(ctx, time.Hour)
	if err != nil || st.Removed != 1 || st.Checked != 3 {
		t.Fatalf("gc: %+v, %v; want 3 checked, 1 removed", st, err)
	}
	if exists(t, f, orphanVariant) {
		t.Error("the variant of a deleted image survived gc")
	}
	if !exists(t, f, liveVariant) || !exists(t, f, live.BlobKey) {
		t.Error("gc removed an existing image's bytes or variant")
	}
}
