// Package blobtest is the conformance suite for imaged.BlobStore. Every
// implementation (fsblob, s3, ...) runs the same Test from its own tests, so
// the contract of a blob store is written down once, here.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/imaged/imaged"
)

// Test runs the conformance suite. open must return a fresh, empty store on
// every call; each sub-test calls it once and sees no other sub-test's blobs.
func Test(t *testing.T, open func(t *testing.T) imaged.BlobStore) {
	t.Run("round_trip", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			size int64
		}{
			{"empty", 0},
			{"one_byte", 1},
			{"small", 1000},
			{"several_MiB_streamed", 6<<20 + 12345},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				ctx := t.Context()
				const key = "round-trip.bin"
				n, err := s.Put(ctx, key, Content(tc.size, 1))
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				if n != tc.size {
					t.Fatalf("Put returned %d bytes, want %d", n, tc.size)
				}
				b := mustOpen(t, s, key)
				if got := b.Size(); got != tc.size {
					t.Errorf("Size() = %d, want %d", got, tc.size)
				}
				checkContent(t, b, 0, tc.size, 1)
			})
		}
	})

	t.Run("seek_and_read_ranges", func(t *testing.T) {
		s := open(t)
		const key = "ranges.bin"
		const size = 300_000
		mustPut(t, s, key, Content(size, 2))
		b := mustOpen(t, s, key)

		seek := func(offset int64, whence int, want int64) {
			t.Helper()
			pos, err := b.Seek(offset, whence)
			if err != nil {
				t.Fatalf("Seek(%d, %d): %v", offset, whence, err)
			}
			if pos != want {
				t.Fatalf("Seek(%d, %d) = %d, want %d", offset, whence, pos, want)
			}
		}
		readN := func(off, n int64) {
			t.Helper()
			buf := make([]byte, n)
			if _, err := io.ReadFull(b, buf); err != nil {
				t.Fatalf("reading %d bytes at %d: %v", n, off, err)
			}
			if want := expected(off, n, 2); !bytes.Equal(buf, want) {
				t.Fatalf("bytes at %d..%d differ from what was stored", off, off+n)
			}
		}

		// Reading a prefix, then jumping around as an HTTP range request would.
		readN(0, 10)
		seek(size/2, io.SeekStart, size/2)
		readN(size/2, 4096)
		seek(-100, io.SeekCurrent, size/2+4096-100)
		readN(size/2+4096-100, 200)
		seek(0, io.SeekCurrent, size/2+4096+100)
		seek(-777, io.SeekEnd, size-777)
		checkContent(t, b, size-777, 777, 2)
		seek(7, io.SeekStart, 7)
		readN(7, 1)

		// At and past the end a read answers io.EOF, as a file does.
		seek(0, io.SeekEnd, size)
		if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("Read at end = %d, %v; want 0, io.EOF", n, err)
		}
		seek(size+10, io.SeekStart, size+10)
		if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("Read past end = %d, %v; want 0, io.EOF", n, err)
		}
		// Back from the end to the start still works.
		seek(0, io.SeekStart, 0)
		checkContent(t, b, 0, size, 2)

		if _, err := b.Seek(-1, io.SeekStart); err == nil {
			t.Errorf("Seek to a negative offset succeeded")
		}
	})

	t.Run("stat_describes_blob", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "stat.png", Content(4321, 3))
		info, err := s.Stat(t.Context(), "stat.png")
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if info.Key != "stat.png" || info.Size != 4321 {
			t.Errorf("Stat = %+v, want key stat.png, size 4321", info)
		}
		if info.ModTime.IsZero() {
			t.Errorf("Stat ModTime is zero")
		}
	})

	t.Run("missing_key_is_not_found", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "present", Content(10, 4))
		ctx := t.Context()
		b, err := s.Open(ctx, "absent")
		if code := imaged.ErrCode(err); code != imaged.ENotFound {
			if b != nil {
				b.Close()
			}
			t.Errorf("Open(missing) error = %v (code %q), want code %q", err, code, imaged.ENotFound)
		}
		_, err = s.Stat(ctx, "absent")
		if code := imaged.ErrCode(err); code != imaged.ENotFound {
			t.Errorf("Stat(missing) error = %v (code %q), want code %q", err, code, imaged.ENotFound)
		}
	})

	t.Run("delete_then_open_is_not_found", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		mustPut(t, s, "doomed", Content(100, 5))
		mustPut(t, s, "kept", Content(100, 6))
		if err := s.Delete(ctx, "doomed"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Open(ctx, "doomed"); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("Open after Delete error = %v, want not found", err)
		}
		if _, err := s.Stat(ctx, "doomed"); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("Stat after Delete error = %v, want not found", err)
		}
		checkWalk(t, s, "", []imaged.BlobInfo{{Key: "kept", Size: 100}})
	})

	t.Run("delete_of_missing_key_is_nil", func(t *testing.T) {
		s := open(t)
		if err := s.Delete(t.Context(), "never-stored"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
		mustPut(t, s, "once", Content(1, 7))
		if err := s.Delete(t.Context(), "once"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s.Delete(t.Context(), "once"); err != nil {
			t.Errorf("second Delete = %v, want nil", err)
		}
	})

	t.Run("put_over_existing_key_replaces_it", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "replaced", Content(5000, 8))
		mustPut(t, s, "replaced", Content(1234, 9))
		b := mustOpen(t, s, "replaced")
		if b.Size() != 1234 {
			t.Errorf("Size() after replace = %d, want 1234", b.Size())
		}
		checkContent(t, b, 0, 1234, 9)
		checkWalk(t, s, "", []imaged.BlobInfo{{Key: "replaced", Size: 1234}})
	})

	t.Run("invalid_keys_are_refused", func(t *testing.T) {
		for _, key := range []string{"../x", "a/b", "", ".hidden", "UPPER", "a..b", "x/../../etc", "sp ace", "nul\x00", strings.Repeat("a", 129)} {
			t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
				s := open(t)
				ctx := t.Context()
				r := &countingReader{r: Content(100, 10)}
				if _, err := s.Put(ctx, key, r); err == nil {
					t.Errorf("Put(%q) succeeded", key)
				} else if code := imaged.ErrCode(err); code != imaged.EValidation {
					t.Errorf("Put(%q) error = %v (code %q), want code %q", key, err, code, imaged.EValidation)
				}
				if r.n != 0 {
					t.Errorf("Put(%q) read %d bytes before refusing", key, r.n)
				}
				if b, err := s.Open(ctx, key); err == nil {
					b.Close()
					t.Errorf("Open(%q) succeeded", key)
				}
				if _, err := s.Stat(ctx, key); err == nil {
					t.Errorf("Stat(%q) succeeded", key)
				}
				if err := s.Delete(ctx, key); err == nil {
					t.Errorf("Delete(%q) succeeded", key)
				}
				checkWalk(t, s, "", nil)
			})
		}
	})

	t.Run("failing_reader", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			after int64
		}{
			{"at_once", 0},
			{"after_a_few_bytes", 10},
			{"after_several_MiB", 6<<20 + 1},
		} {
			t.Run(tc.name+"/returns_its_error_and_leaves_nothing", func(t *testing.T) {
				s := open(t)
				ctx := t.Context()
				readErr := errors.New("reader broke")
				_, err := s.Put(ctx, "broken", &failingReader{r: Content(tc.after+1000, 11), after: tc.after, err: readErr})
				if !errors.Is(err, readErr) {
					t.Fatalf("Put error = %v, want the reader's error", err)
				}
				if _, err := s.Stat(ctx, "broken"); imaged.ErrCode(err) != imaged.ENotFound {
					t.Errorf("Stat after failed Put error = %v, want not found", err)
				}
				checkWalk(t, s, "", nil)
			})
		}
		t.Run("over_an_existing_blob_keeps_the_old_one", func(t *testing.T) {
			s := open(t)
			mustPut(t, s, "precious", Content(777, 12))
			readErr := errors.New("reader broke")
			_, err := s.Put(t.Context(), "precious", &failingReader{r: Content(5000, 13), after: 2000, err: readErr})
			if !errors.Is(err, readErr) {
				t.Fatalf("Put error = %v, want the reader's error", err)
			}
			b := mustOpen(t, s, "precious")
			checkContent(t, b, 0, 777, 12)
		})
	})

	t.Run("cancelled_context", func(t *testing.T) {
		t.Run("before_put_leaves_nothing", func(t *testing.T) {
			s := open(t)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.Put(ctx, "cancelled", Content(1000, 14))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put error = %v, want context.Canceled", err)
			}
			if _, err := s.Stat(t.Context(), "cancelled"); imaged.ErrCode(err) != imaged.ENotFound {
				t.Errorf("Stat after cancelled Put error = %v, want not found", err)
			}
			checkWalk(t, s, "", nil)
		})
		t.Run("during_put_aborts_it_and_leaves_nothing", func(t *testing.T) {
			s := open(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// The reader cancels the context once it has yielded 1 MiB and
			// would go on for 32 MiB: a Put that ignored the cancellation
			// would complete and be caught below.
			const size = 32 << 20
			r := &cancellingReader{r: Content(size, 15), after: 1 << 20, cancel: cancel}
			_, err := s.Put(ctx, "cancelled", r)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put error = %v, want context.Canceled", err)
			}
			if r.read >= size {
				t.Errorf("Put read all %d bytes of the stream after its context was cancelled", r.read)
			}
			if _, err := s.Stat(t.Context(), "cancelled"); imaged.ErrCode(err) != imaged.ENotFound {
				t.Errorf("Stat after cancelled Put error = %v, want not found", err)
			}
			checkWalk(t, s, "", nil)
		})
	})

	t.Run("walk", func(t *testing.T) {
		s := open(t)
		// Keys chosen to cross any fan-out by prefix: short keys, shared
		// prefixes, and every character class a key may hold.
		keys := []string{
			"m", "ab", "abc", "abcd", "abcde", "abd", "a-1", "a.b", "a_b", "a0",
			"0", "09z", "z9", "zz.png", "b-", "mmmmmmmmmm", "mm-", "m.m",
			"kjtw3bq5zvyg7nq2e5jmurfkq2wy5xth.png",
		}
		want := make([]imaged.BlobInfo, 0, len(keys))
		for i, k := range keys {
			size := int64(i * 7)
			mustPut(t, s, k, Content(size, 16))
			want = append(want, imaged.BlobInfo{Key: k, Size: size})
		}
		slices.SortFunc(want, func(a, b imaged.BlobInfo) int { return compareKeys(a.Key, b.Key) })

		t.Run("lists_all_in_ascending_order_with_sizes", func(t *testing.T) {
			checkWalk(t, s, "", want)
		})
		t.Run("after_an_existing_key", func(t *testing.T) {
			i := slices.IndexFunc(want, func(b imaged.BlobInfo) bool { return b.Key == "abcd" })
			checkWalk(t, s, "abcd", want[i+1:])
		})
		t.Run("after_an_absent_key", func(t *testing.T) {
			i := slices.IndexFunc(want, func(b imaged.BlobInfo) bool { return b.Key > "abcc" })
			checkWalk(t, s, "abcc", want[i:])
		})
		t.Run("after_the_last_key", func(t *testing.T) {
			checkWalk(t, s, want[len(want)-1].Key, nil)
		})
		t.Run("after_everything", func(t *testing.T) {
			checkWalk(t, s, "zzzz", nil)
		})
		t.Run("stops_on_fn_error", func(t *testing.T) {
			stop := errors.New("enough")
			var seen []string
			err := s.Walk(t.Context(), "", func(b imaged.BlobInfo) error {
				seen = append(seen, b.Key)
				if len(seen) == 3 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) {
				t.Errorf("Walk error = %v, want fn's error", err)
			}
			if wantSeen := []string{want[0].Key, want[1].Key, want[2].Key}; !slices.Equal(seen, wantSeen) {
				t.Errorf("Walk called fn with %q, want %q", seen, wantSeen)
			}
		})
		t.Run("of_an_empty_store_calls_nothing", func(t *testing.T) {
			checkWalk(t, open(t), "", nil)
		})
	})

	// Variants are blobs like any other, under keys derived from their
	// original's (imaged.VariantKey); deleting an image finds them by
	// walking from imaged.VariantPrefix, so they must come first there.
	t.Run("variants_follow_their_original_in_a_walk", func(t *testing.T) {
		s := open(t)
		const orig = "kjtw3bq5zvyg7nq2e5jmurfkq2wy5xth.png"
		variants := []string{
			imaged.VariantKey(orig, "0123456789abcdef", "webp"),
			imaged.VariantKey(orig, "0123456789abcdef", "avif"),
			imaged.VariantKey(orig, "ffffffffffffffff", "jpg"),
		}
		for i, k := range append([]string{orig, orig + "0", "kjtw3bq5zvyg7nq2e5jmurfkq2wy5xth.pn", "kjtw3bq5zvyg7nq2e5jmurfkq2wy5xti.png"}, variants...) {
			mustPut(t, s, k, Content(int64(i+1), 17))
		}
		var seen []string
		err := s.Walk(t.Context(), imaged.VariantPrefix(orig), func(b imaged.BlobInfo) error {
			seen = append(seen, b.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(variants)
		if len(seen) < len(variants) || !slices.Equal(seen[:len(variants)], variants) {
			t.Errorf("Walk from %q lists %q, want the variants %q first", imaged.VariantPrefix(orig), seen, variants)
		}
		for _, k := range seen[min(len(seen), len(variants)):] {
			if strings.HasPrefix(k, imaged.VariantPrefix(orig)) {
				t.Errorf("variant %q listed after a key that is not one", k)
			}
		}
		for _, k := range variants {
			mustOpen(t, s, k)
		}
	})

	t.Run("concurrent_puts_of_different_keys", func(t *testing.T) {
		s := open(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.Put(t.Context(), fmt.Sprintf("concurrent-%d", i), Content(int64(100_000+i), uint64(100+i)))
			})
		}
		wg.Wait()
		var want []imaged.BlobInfo
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Put %d: %v", i, errs[i])
				continue
			}
			key := fmt.Sprintf("concurrent-%d", i)
			checkContent(t, mustOpen(t, s, key), 0, int64(100_000+i), uint64(100+i))
			want = append(want, imaged.BlobInfo{Key: key, Size: int64(100_000 + i)})
		}
		checkWalk(t, s, "", want)
	})
}

// compareKeys orders keys as Walk must: by bytes, which for the ASCII keys a
// store accepts is also S3's UTF-8 binary order.
func compareKeys(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }

func mustPut(t *testing.T, s imaged.BlobStore, key string, r io.Reader) {
	t.Helper()
	if _, err := s.Put(t.Context(), key, r); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustOpen(t *testing.T, s imaged.BlobStore, key string) imaged.Blob {
	t.Helper()
	b, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// checkContent reads b from its current position to EOF and checks that it
// yields exactly the n bytes Content(_, seed) holds at offset off.
func checkContent(t *testing.T, b io.Reader, off, n int64, seed uint64) {
	t.Helper()
	got := sha256.New()
	read, err := io.Copy(got, b)
	if err != nil {
		t.Fatalf("reading blob: %v", err)
	}
	if read != n {
		t.Fatalf("read %d bytes, want %d", read, n)
	}
	want := sha256.New()
	io.Copy(want, io.NewSectionReader(contentAt(seed), off, n))
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("the %d bytes read at %d differ from what was stored", n, off)
	}
}

func checkWalk(t *testing.T, s imaged.BlobStore, after string, want []imaged.BlobInfo) {
	t.Helper()
	var got []imaged.BlobInfo
	err := s.Walk(t.Context(), after, func(b imaged.BlobInfo) error {
		if b.ModTime.IsZero() {
			t.Errorf("Walk gave %q a zero ModTime", b.Key)
		}
		got = append(got, imaged.BlobInfo{Key: b.Key, Size: b.Size})
		return nil
	})
	if err != nil {
		t.Fatalf("Walk(after %q): %v", after, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk(after %q) listed\n  %v\nwant\n  %v", after, got, want)
	}
}

func expected(off, n int64, seed uint64) []byte {
	buf := make([]byte, n)
	contentAt(seed).ReadAt(buf, off)
	return buf
}

// Content returns a reader of size deterministic pseudo-random bytes that are
// generated as they are read, so large blobs never sit in memory. Different
// seeds give different bytes; the byte at each offset depends on the offset,
// so a read from the wrong place is caught.
func Content(size int64, seed uint64) io.Reader {
	return io.NewSectionReader(contentAt(seed), 0, size)
}

// contentAt is the endless byte sequence behind Content.
type contentAt uint64

func (c contentAt) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		o := uint64(off) + uint64(i)
		p[i] = byte(splitmix(uint64(c)<<40^o/8) >> (8 * (o % 8)))
	}
	return len(p), nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// failingReader yields after bytes of r, then fails with err.
type failingReader struct {
	r     io.Reader
	after int64
	err   error
	read  int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.read >= f.after {
		return 0, f.err
	}
	if rest := f.after - f.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := f.r.Read(p)
	f.read += int64(n)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

// cancellingReader calls cancel once it has yielded after bytes, and goes on
// yielding r.
type cancellingReader struct {
	r      io.Reader
	after  int64
	cancel context.CancelFunc
	read   int64
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}
