package http

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A file answer on a connection accepted through Listener goes out whole,
// headers written with MSG_MORE and the body with sendfile, and the next
// answer on the same connection is not held back by it.
func TestListenerSendsFileAnswers(t *testing.T) {
	path, data := randomFile(t, 300<<10, 1)
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
		sendFile(w, r, io.NewSectionReader(f, 0, int64(len(data))), time.Time{})
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

// Answers sharing one open file (fsblob keeps them open) send it at their
// own offsets through Listener's sendfile, whole or in ranges, concurrently,
// whatever the file's own position.
func TestListenerSendsSharedFileAtOffsets(t *testing.T) {
	path, data := randomFile(t, 200<<10, 2)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(12345, io.SeekStart); err != nil { // must not matter
		t.Fatal(err)
	}
	hs := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fa := io.NewSectionReader(f, 0, int64(len(data)))
		if r.Header.Get("Range") == "" {
			sendFile(w, r, fa, time.Time{})
			return
		}
		http.ServeContent(w, r, "", time.Time{}, fa)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(Listener(ln))
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/"
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				req, _ := http.NewRequest("GET", url, nil)
				want, status := data, 200
				if (g+i)%2 == 1 {
					from := (g*7919 + i*104729) % len(data)
					to := min(from+(i+1)*5000, len(data)-1)
					req.Header.Set("Range", "bytes="+strconv.Itoa(from)+"-"+strconv.Itoa(to))
					want, status = data[from:to+1], 206
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != status || !bytes.Equal(body, want) {
					t.Errorf("Range %q: %d, %d bytes (%v); want %d, %d bytes", req.Header.Get("Range"), resp.StatusCode, len(body), err, status, len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 12345 {
		t.Errorf("the shared file's position moved to %d", pos)
	}
}

// randomFile writes size random bytes (from seed) to a file and returns its
// path and bytes.
func randomFile(t *testing.T, size int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}
