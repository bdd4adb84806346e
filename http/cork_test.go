package http

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A file answer on a connection accepted through Listener goes out whole,
// headers written with MSG_MORE and the body with sendfile, and the next
// answer on the same connection is not held back by it.
func TestListenerSendsFileAnswers(t *testing.T) {
	data := make([]byte, 300<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	conns := make(chan *moreConn, 4)
	hs := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKeyType{}).(*moreConn)
		conns <- c
		if r.URL.Path == "/small" {
			w.Write([]byte("ok"))
			return
		}
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		sendFile(w, r, f, int64(len(data)), time.Time{})
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(Listener(ln))
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for _, p := range []string{"/file", "/small", "/file"} {
		resp, err := client.Get("http://" + ln.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := data
		if p == "/small" {
			want = []byte("ok")
		}
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("%s: %d, %d bytes, want %d", p, resp.StatusCode, len(body), len(want))
		}
		c := <-conns
		if c == nil {
			t.Fatalf("%s: the request's connection is not Listener's", p)
		}
	}
}
