package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"
)

// SIGTERM while a file is being sent (a plain GET, which the fast lane
// answers over the local directory): imaged finishes the answer, then
// exits 0.
func TestShutdownFinishesAnswers(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	data := noisyPNG(t, 1200, 1200) // about 5.8 MB
	img := s.upload(t, s.Token("alice"), file{Name: "big.png", ContentType: "image/png", Data: data})
	u, err := url.Parse(img.URL)
	if err != nil {
		t.Fatal(err)
	}

	// A small receive buffer, read slowly, keeps the answer in flight.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.Path, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != img.FileSize {
		t.Fatalf("GET %s: %d, Content-Length %d, want 200 and %d", u.Path, resp.StatusCode, resp.ContentLength, img.FileSize)
	}
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.Stop() // fails the test unless imaged exits 0
	}()
	select {
	case <-stopped:
		t.Fatal("imaged exited while it was sending an answer")
	case <-time.After(500 * time.Millisecond):
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the rest of the answer after SIGTERM: %v (%d bytes read)", err, len(got)+len(rest))
	}
	if got = append(got, rest...); !bytes.Equal(got, data) {
		t.Errorf("the answer finished after SIGTERM has %d bytes, want the %d uploaded", len(got), len(data))
	}
	<-stopped
}
