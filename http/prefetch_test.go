package http

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/imaged/imaged"
)

// memBlob is an imaged.Blob over bytes whose reads can be made to fail.
type memBlob struct {
	*bytes.Reader
	size  int64
	fail  error
	reads int
}

func newMemBlob(b []byte) *memBlob { return &memBlob{Reader: bytes.NewReader(b), size: int64(len(b))} }

func (m *memBlob) Read(p []byte) (int, error) {
	m.reads++
	if m.fail != nil {
		return 0, m.fail
	}
	return m.Reader.Read(p)
}
func (m *memBlob) Size() int64  { return m.size }
func (m *memBlob) Close() error { return nil }

func TestPrefetch(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	t.Run("reads_through_the_head_and_the_rest", func(t *testing.T) {
		p, err := prefetch(newMemBlob(data), make([]byte, 100))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	})
	t.Run("seeks_like_a_file", func(t *testing.T) {
		p, _ := prefetch(newMemBlob(data), make([]byte, 100))
		for _, tc := range []struct {
			off    int64
			whence int
			want   int64
		}{{0, io.SeekEnd, 1000}, {50, io.SeekStart, 50}, {500, io.SeekStart, 500}, {-10, io.SeekEnd, 990}, {5, io.SeekCurrent, 995}} {
			pos, err := p.Seek(tc.off, tc.whence)
			if err != nil || pos != tc.want {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", tc.off, tc.whence, pos, err, tc.want)
			}
			got, _ := io.ReadAll(io.LimitReader(p, 3))
			if !bytes.Equal(got, data[pos:min(pos+3, 1000)]) {
				t.Fatalf("after Seek to %d read %v", pos, got)
			}
			p.Seek(pos, io.SeekStart)
		}
	})
	t.Run("a_failing_store_fails_before_any_header", func(t *testing.T) {
		b := newMemBlob(data)
		b.fail = imaged.Unavailable("object storage", errors.New("connection refused"))
		if _, err := prefetch(b, make([]byte, 100)); imaged.ErrCode(err) != imaged.EUnavailable {
			t.Fatalf("err = %v, want SERVICE_UNAVAILABLE", err)
		}
	})
	t.Run("a_short_blob_is_an_internal_error", func(t *testing.T) {
		b := newMemBlob(data[:50])
		b.size = 100 // metadata says more than the store holds
		if _, err := prefetch(b, make([]byte, 100)); imaged.ErrCode(err) != imaged.EInternal {
			t.Fatalf("err = %v, want INTERNAL_SERVER_ERROR", err)
		}
	})
}
