package fastlane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fileHandler answers /f with a file and counts what it answered.
type fileHandler struct {
	f    *os.File
	size int64
	mu   sync.Mutex
	done []int64 // bytes sent, per answer
	// /slow waits for a value from gate before it is answered as /f.
	entered, gate chan struct{}
}

func (h *fileHandler) Answer(r *Request) *Answer {
	done := func(sent int64, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.done = append(h.done, sent)
	}
	switch r.Path {
	case "/slow":
		h.entered <- struct{}{}
		<-h.gate
	case "/f":
	case "/body":
		// An answer in memory, which Size does not describe.
		return &Answer{Body: []byte("a body of " + r.Host), Size: 1, Header: []byte("X-Lane: body\r\n"), Done: done}
	default:
		return nil
	}
	return &Answer{File: h.f, Offset: 3, Size: h.size - 3, Header: []byte("Content-Type: text/plain\r\nX-Lane: yes\r\n"),
		Done: done}
}

func (h *fileHandler) answered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.done)
}

// lane serves net/http behind a lane over h; net/http answers "net/http
// PATH". It returns the address.
func lane(t *testing.T, cfg Config) (string, *fileHandler, *Listener) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abcdefghij"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := &fileHandler{f: f, size: 10, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, h, cfg)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "net/http %s %s", r.Method, r.URL.RequestURI())
	})}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), h, l
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// An answer in memory goes out with its head, keep-alive, pipelined or
// not, its length in Content-Length; Done gets the body's bytes.
func TestLaneAnswersABody(t *testing.T) {
	addr, h, _ := lane(t, Config{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /body HTTP/1.1\r\nHost: one\r\n\r\nGET /f HTTP/1.1\r\nHost: x\r\n\r\n")
	io.WriteString(c, "GET /body HTTP/1.1\r\nHost: two\r\nConnection: close\r\n\r\n")
	for i, want := range []string{"a body of one", "defghij", "a body of two"} {
		resp, body := readAnswer(t, br, "GET")
		if resp.StatusCode != 200 || body != want || resp.ContentLength != int64(len(want)) || resp.Header.Get("X-Lane") == "" {
			t.Fatalf("answer %d: %d %q (length %d) %v", i, resp.StatusCode, body, resp.ContentLength, resp.Header)
		}
		if resp.Close != (i == 2) {
			t.Errorf("answer %d: Connection: close %v", i, resp.Close)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close: %v, want EOF", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []int64{13, 7, 13}; fmt.Sprint(h.done) != fmt.Sprint(want) {
		t.Errorf("Done got %v, want %v", h.done, want)
	}
}

// Plain GETs are answered in the lane, keep-alive; the first request that
// is not plain goes to net/http with every byte the lane had read,
// pipelined requests after it included, and the connection stays there.
func TestLaneAnswersThenHandsOver(t *testing.T) {
	addr, h, _ := lane(t, Config{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	c, br := dial(t, addr)
	plain := "GET /f HTTP/1.1\r\nHost: x\r\n\r\n"
	io.WriteString(c, plain+plain)
	for i := range 2 {
		resp, body := readAnswer(t, br, "GET")
		if resp.StatusCode != 200 || body != "defghij" || resp.Header.Get("X-Lane") != "yes" ||
			resp.ContentLength != 7 || resp.Header.Get("Date") == "" || resp.Close {
			t.Fatalf("answer %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	// Pipelined: a HEAD (not plain), then a plain GET that net/http now answers.
	io.WriteString(c, "HEAD /f HTTP/1.1\r\nHost: x\r\n\r\n"+plain+"GET /g?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, br, "HEAD"); resp.StatusCode != 200 || resp.Header.Get("X-Lane") != "" {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"net/http GET /f", "net/http GET /g?q=1"} {
		if _, body := readAnswer(t, br, "GET"); body != want {
			t.Fatalf("after the hand-over: %q, want %q", body, want)
		}
	}
	if n := h.answered(); n != 2 {
		t.Errorf("the lane answered %d requests, want 2", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sent := range h.done {
		if sent != 7 {
			t.Errorf("Done told %d bytes sent, want 7", sent)
		}
	}
}

// A request the Handler declines, one split across reads, one too large
// for the lane and one that closes the connection.
func TestLaneEdges(t *testing.T) {
	addr, h, _ := lane(t, Config{ReadHeaderTimeout: 5 * time.Second})
	for name, req := range map[string]string{
		"declined": "GET /other HTTP/1.1\r\nHost: x\r\n\r\n",
		"bare LF":  "GET /other HTTP/1.1\nHost: x\n\n",
		"large":    "GET /other HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("a", 2*maxHeader) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, br := dial(t, addr)
			io.WriteString(c, req)
			if _, body := readAnswer(t, br, "GET"); body != "net/http GET /other" {
				t.Errorf("%q", body)
			}
		})
	}
	t.Run("split", func(t *testing.T) {
		c, br := dial(t, addr)
		for _, part := range []string{"GET /f HT", "TP/1.1\r\nHo", "st: x\r\n", "\r\n"} {
			io.WriteString(c, part)
			time.Sleep(10 * time.Millisecond)
		}
		if resp, body := readAnswer(t, br, "GET"); body != "defghij" || resp.Header.Get("X-Lane") != "yes" {
			t.Errorf("%q %v", body, resp.Header)
		}
	})
	t.Run("close", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, body := readAnswer(t, br, "GET")
		if body != "defghij" || !resp.Close {
			t.Errorf("%q close=%v", body, resp.Close)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("after Connection: close, read %v, want EOF", err)
		}
	})
	if h.answered() != 2 {
		t.Errorf("the lane answered %d, want 2 (split, close)", h.answered())
	}
}

// A client that starts a request and stops is cut off after
// ReadHeaderTimeout; an idle one after IdleTimeout; Close ends idle
// connections at once.
func TestLaneTimeoutsAndClose(t *testing.T) {
	addr, _, _ := lane(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	eof := func(t *testing.T, br *bufio.Reader, within time.Duration) {
		t.Helper()
		start := time.Now()
		for {
			if _, err := br.ReadByte(); err != nil {
				break
			}
		}
		if d := time.Since(start); d > within {
			t.Errorf("closed after %s, want within %s", d, within)
		}
	}
	t.Run("slow head", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /f HTTP/1.1\r\n")
		eof(t, br, 3*time.Second)
	})
	t.Run("slow pipelined head", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\nGET /f HTTP/1.1\r\n")
		readAnswer(t, br, "GET")
		eof(t, br, 3*time.Second)
	})
	t.Run("idle", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
		eof(t, br, 3*time.Second)
	})
	t.Run("close", func(t *testing.T) {
		addr, _, l := lane(t, Config{IdleTimeout: time.Hour}) // only Close can end it
		c, br := dial(t, addr)
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
		readAnswer(t, br, "GET")
		l.Close()
		eof(t, br, 2*time.Second)
		if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Error("the listener still accepts after Close")
		}
	})
}

// Shutdown waits for an answer in the lane to be sent, and gives up when
// its context ends.
func TestLaneShutdownWaitsForAnswers(t *testing.T) {
	addr, h, l := lane(t, Config{IdleTimeout: time.Hour})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-h.entered
	idle, ibr := dial(t, addr) // waits in the lane for its next request: closed at once
	io.WriteString(idle, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, ibr, "GET")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with an answer held = %v, want the context's deadline", err)
	}
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := ibr.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection read: %v, want EOF", err)
	}

	shut := make(chan error, 1)
	go func() { shut <- l.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the answer was sent", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.gate <- struct{}{}
	if _, body := readAnswer(t, br, "GET"); body != "defghij" {
		t.Errorf("answer during shutdown = %q", body)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}
