package s3_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/s3"
)

// TestServerGoneDuringReadIsUnavailable: a server that answers the open and
// then breaks off the body (or goes away before a later ranged GET) is an
// unavailable store (503), not an internal error.
func TestServerGoneDuringReadIsUnavailable(t *testing.T) {
	const size = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "image/png")
		h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		h.Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		h.Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		w.Write(make([]byte, 4096))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()

	s, err := s3.Open(t.Context(), s3.Config{
		Endpoint: srv.URL, Bucket: "imaged", Region: "us-east-1",
		AccessKeyID: "key", SecretAccessKey: "secret", PathStyle: true, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(t.Context(), "abcdefghijklmnopqrstuvwxyz234567.png")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	_, err = io.Copy(io.Discard, b)
	if err == nil {
		t.Fatal("reading a body the server broke off succeeded")
	}
	if code := imaged.ErrCode(err); code != imaged.EUnavailable {
		t.Errorf("read error = %v (code %q), want code %q", err, code, imaged.EUnavailable)
	}
}
