package fsblob

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobtest"
)

func openWith(t *testing.T, n int) *Store {
	t.Helper()
	s, err := OpenWith(t.TempDir(), Options{OpenFiles: n})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, key string, size int64, seed uint64) []byte {
	t.Helper()
	if _, err := s.Put(t.Context(), key, blobtest.Content(size, seed)); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	want, err := io.ReadAll(blobtest.Content(size, seed))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func openBlob(t *testing.T, s *Store, key string) *blob {
	t.Helper()
	b, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	return b.(*blob)
}

// isClosed reports whether f's descriptor was closed.
func isClosed(f *os.File) bool {
	_, err := f.Stat()
	return errors.Is(err, os.ErrClosed)
}

// Readers of one key share its file, each at its own position, and the
// file stays open for the next reader after they are done.
func TestOpenFilesAreSharedAndKept(t *testing.T) {
	s := openWith(t, 4)
	want := put(t, s, "k", 64<<10, 1)
	a, b := openBlob(t, s, "k"), openBlob(t, s, "k")
	if a.LocalFile() != b.LocalFile() {
		t.Fatal("two readers of one key opened two files")
	}
	// Interleaved reads and seeks, each reader at its own place.
	var ga, gb bytes.Buffer
	buf := make([]byte, 1000)
	for ga.Len() < len(want) || gb.Len() < len(want) {
		for _, r := range []struct {
			b *blob
			w *bytes.Buffer
		}{{a, &ga}, {b, &gb}} {
			n, err := r.b.Read(buf)
			r.w.Write(buf[:n])
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
	}
	if !bytes.Equal(ga.Bytes(), want) || !bytes.Equal(gb.Bytes(), want) {
		t.Fatal("interleaved readers read other bytes than the blob's")
	}
	if _, err := a.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, _ := io.ReadFull(a, buf[:10]); n != 10 || !bytes.Equal(buf[:10], want[100:110]) {
		t.Fatal("read after Seek is not at the position sought")
	}
	f := a.LocalFile()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want os.ErrClosed", err)
	}
	b.Close()
	if isClosed(f) {
		t.Fatal("the file was closed with its last reader: not kept")
	}
	c := openBlob(t, s, "k")
	defer c.Close()
	if c.LocalFile() != f {
		t.Fatal("the next reader did not get the kept file")
	}
	if c.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", c.Size(), len(want))
	}
}

// Delete closes a kept file once its readers are done, and they keep
// reading the bytes they opened; the key then answers NotFound.
func TestDeleteForgetsTheKeptFile(t *testing.T) {
	s := openWith(t, 4)
	want := put(t, s, "k", 10<<10, 2)
	r := openBlob(t, s, "k")
	f := r.LocalFile()
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if s.files.kept() != 0 {
		t.Fatal("a deleted blob's file is still kept")
	}
	if isClosed(f) {
		t.Fatal("Delete closed a file a reader still reads")
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("an open reader of a deleted blob: %d bytes, %v", len(got), err)
	}
	r.Close()
	if !isClosed(f) {
		t.Fatal("a deleted blob's file stays open after its last reader")
	}
	if _, err := s.Open(t.Context(), "k"); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("Open after Delete: %v, want not found", err)
	}
}

// A Put over a key makes the next Open read the new file.
func TestPutForgetsTheKeptFile(t *testing.T) {
	s := openWith(t, 4)
	put(t, s, "k", 100, 3)
	openBlob(t, s, "k").Close()
	want := put(t, s, "k", 200, 4)
	r := openBlob(t, s, "k")
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after a second Put: %d bytes, %v; want the new %d", len(got), err, len(want))
	}
}

// At most Options.OpenFiles files are kept, the least recently used leave
// (closed), and 0 keeps none.
func TestOpenFilesAreBounded(t *testing.T) {
	s := openWith(t, 2)
	files := map[string]*os.File{}
	for _, k := range []string{"a", "b", "a", "c"} { // b is the least recently used
		put(t, s, k, 10, 5)
		r := openBlob(t, s, k)
		files[k] = r.LocalFile()
		r.Close()
	}
	if n := s.files.kept(); n != 2 {
		t.Fatalf("%d files kept, want 2", n)
	}
	if !isClosed(files["b"]) || isClosed(files["a"]) || isClosed(files["c"]) {
		t.Fatalf("closed: a %v, b %v, c %v; want only b", isClosed(files["a"]), isClosed(files["b"]), isClosed(files["c"]))
	}

	none := openWith(t, 0)
	put(t, none, "k", 10, 6)
	r := openBlob(t, none, "k")
	f := r.LocalFile()
	r.Close()
	if none.files.kept() != 0 || !isClosed(f) {
		t.Fatal("OpenFiles 0 kept a file")
	}
}

// Many readers opening, reading and closing keys while others are deleted
// and written again (run with -race): every read gives a whole blob's bytes,
// and nothing stays open once they are done but the kept files.
func TestOpenFilesConcurrently(t *testing.T) {
	s := openWith(t, 3)
	keys := []string{"a", "b", "c", "d", "e"}
	want := map[string][]byte{}
	for _, k := range keys {
		want[k] = put(t, s, k, 20<<10, 7) // a Put again writes the same bytes
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				if g == 0 && i%10 == 0 {
					if err := s.Delete(t.Context(), k); err != nil {
						t.Error(err)
					}
					if _, err := s.Put(t.Context(), k, blobtest.Content(20<<10, 7)); err != nil {
						t.Error(err)
					}
					continue
				}
				b, err := s.Open(t.Context(), k)
				if imaged.ErrCode(err) == imaged.ENotFound {
					continue // between the Delete and the Put
				} else if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(b)
				b.Close()
				if err != nil || !bytes.Equal(got, want[k]) {
					t.Errorf("%s: %d bytes, %v", k, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := s.files.kept(); n > 3 {
		t.Fatalf("%d files kept, at most 3 allowed", n)
	}
}
