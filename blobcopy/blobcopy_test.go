package blobcopy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobcopy"
	"github.com/imaged/imaged/blobtest"
	"github.com/imaged/imaged/fsblob"
)

func openFS(t *testing.T) *fsblob.Store {
	t.Helper()
	s, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s imaged.BlobStore, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s imaged.BlobStore, key string) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The fallback is a blob store in its own right while a migration runs.
func TestFallbackConformance(t *testing.T) {
	blobtest.Test(t, func(t *testing.T) imaged.BlobStore {
		return &blobcopy.Fallback{Primary: openFS(t), Secondary: openFS(t)}
	})
}

func TestFallback_reads_what_is_not_copied_yet(t *testing.T) {
	ctx := context.Background()
	oldStore, newStore := openFS(t), openFS(t)
	put(t, oldStore, "old.png", []byte("old bytes"))
	f := &blobcopy.Fallback{Primary: newStore, Secondary: oldStore}
	if got := read(t, f, "old.png"); string(got) != "old bytes" {
		t.Fatalf("read through fallback = %q", got)
	}
	put(t, f, "new.png", []byte("new bytes"))
	if _, err := oldStore.Stat(ctx, "new.png"); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatal("a write through the fallback reached the old store")
	}
	if err := f.Delete(ctx, "old.png"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(ctx, "old.png"); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("deleted blob still readable: %v", err)
	}
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, dst := openFS(t), openFS(t)
	blobs := map[string][]byte{"a1.png": []byte("first"), "b2.png": []byte("second"), "c3.png": bytes.Repeat([]byte("x"), 1<<20)}
	for k, v := range blobs {
		put(t, src, k, v)
	}

	st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{Verify: true})
	if err != nil || st.Copied != 3 || st.Skipped != 0 || st.Bytes != int64(5+6+1<<20) || st.Last != "c3.png" {
		t.Fatalf("first run: %+v, %v", st, err)
	}
	for k, v := range blobs {
		if !bytes.Equal(read(t, dst, k), v) {
			t.Fatalf("%s differs after copy", k)
		}
	}

	t.Run("second_run_skips_everything", func(t *testing.T) {
		st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{})
		if err != nil || st.Copied != 0 || st.Skipped != 3 {
			t.Fatalf("%+v, %v", st, err)
		}
	})
	t.Run("resume_after_a_key", func(t *testing.T) {
		put(t, src, "d4.png", []byte("late"))
		st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{After: "b2.png"})
		if err != nil || st.Copied != 1 || st.Skipped != 1 {
			t.Fatalf("%+v, %v", st, err)
		}
	})
	t.Run("verify_repairs_a_corrupt_copy", func(t *testing.T) {
		put(t, dst, "a1.png", []byte("FIRST")) // same size, other bytes
		st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{Verify: true})
		if err != nil || st.Copied != 1 {
			t.Fatalf("%+v, %v", st, err)
		}
		if string(read(t, dst, "a1.png")) != "first" {
			t.Fatal("corrupt copy not repaired")
		}
	})
	t.Run("size_only_check_misses_same_size_corruption", func(t *testing.T) {
		put(t, dst, "b2.png", []byte("SECOND"))
		st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{})
		if err != nil || st.Copied != 0 {
			t.Fatalf("%+v, %v", st, err)
		}
	})
	t.Run("cancelled_context_stops", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := blobcopy.Copy(cctx, src, openFS(t), blobcopy.Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
