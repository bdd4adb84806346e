package fsblob_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobtest"
	"github.com/imaged/imaged/fsblob"
)

func open(t *testing.T, dir string) *fsblob.Store {
	t.Helper()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Test(t, func(t *testing.T) imaged.BlobStore { return open(t, t.TempDir()) })
}

func TestOpenRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Put(t.Context(), "kept", blobtest.Content(10, 1)); err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a Put leaves behind.
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(filepath.Join(tmp, "put-123"), []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "odd", "dir"), 0o700); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	assertEmpty(t, tmp)
	if _, err := s.Stat(t.Context(), "kept"); err != nil {
		t.Errorf("Stat(kept) after reopening: %v", err)
	}
}

func TestBlobsAreFannedOutByKeyPrefix(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for key, path := range map[string]string{
		"kjtw3bq5zvyg7nq2.png": "kj/tw/kjtw3bq5zvyg7nq2.png",
		"abc":                  "ab/c+/abc",
		"a":                    "a+/++/a",
	} {
		if _, err := s.Put(t.Context(), key, blobtest.Content(3, 2)); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		if _, err := os.Stat(filepath.Join(dir, path)); err != nil {
			t.Errorf("blob %q is not at %s: %v", key, path, err)
		}
	}
}

func TestFilesAreNotWorldWritable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Put(t.Context(), "abcdef.png", blobtest.Content(100, 3)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ab", "ab/cd", "ab/cd/abcdef.png", ".tmp"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o002 != 0 {
			t.Errorf("%s has mode %v, world-writable", p, fi.Mode())
		}
	}
}

func TestNoTemporaryFileIsLeft(t *testing.T) {
	readErr := errors.New("reader broke")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    io.Reader
	}{
		{"after_a_put", context.Background(), blobtest.Content(5000, 4)},
		{"after_a_failed_put", context.Background(), io.MultiReader(blobtest.Content(5000, 4), errReader{readErr})},
		{"after_a_cancelled_put", cancelled, blobtest.Content(5000, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			_, err := s.Put(tc.ctx, "some-key", tc.r)
			if tc.name != "after_a_put" && err == nil {
				t.Fatalf("Put succeeded")
			}
			assertEmpty(t, filepath.Join(dir, ".tmp"))
		})
	}
}

func TestWalkSkipsWhatIsNotABlob(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Put(t.Context(), "abcd", blobtest.Content(1, 5)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"stray", "ab/stray", "ab/cd/xyz", "ab/cd/UPPER", "zz/zz/zzzz/nested"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.Walk(t.Context(), "", func(b imaged.BlobInfo) error {
		keys = append(keys, b.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "abcd" {
		t.Errorf("Walk listed %q, want only abcd", keys)
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s holds %s", dir, e.Name())
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
