// Command baseline is the reference server of the imaged benchmark: a bare
// net/http handler that answers every request with the same constant JSON
// body of -size bytes, the size of imaged's GET /api/images/{id} answer, on
// an http.Server configured as imaged's (http.NewHTTPServer). It
// runs as a process of its own, like imaged, so that both compete with the
// load generator for the CPUs in the same way.
//
//	baseline -addr 127.0.0.1:PORT -size BYTES
//
// With -dir it serves the files under that directory instead, at their
// paths, the way the delivery benchmark's floor is measured: a bare handler
// that opens the file and sends it whole with sendfile (Content-Type,
// Content-Length, nothing else: no lookup, no log, no conditional request).
//
//	baseline -addr 127.0.0.1:PORT -dir DIR
//
// With -sse it answers every request with a Server-Sent Events stream that
// holds one event and then stays open, a comment every 15 seconds, until the
// client goes away: the floor of the event streams benchmark.
//
//	baseline -addr 127.0.0.1:PORT -sse
//
// It serves until SIGINT or SIGTERM.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	imhttp "github.com/imaged/imaged/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	size := flag.Int("size", 512, "bytes in the body of every answer (at least 16)")
	dir := flag.String("dir", "", "serve the files under this directory instead of a constant body")
	sse := flag.Bool("sse", false, "answer every request with an event stream held open")
	flag.Parse()
	if *size < 16 {
		fmt.Fprintln(os.Stderr, "baseline: -size must be at least 16")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := constant(body(*size))
	if *dir != "" {
		h = files(*dir)
	}
	if *sse {
		h = stream()
	}
	if err := serve(ctx, *addr, h); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// body is a valid JSON document of exactly n bytes, newline included, like
// imaged's answers.
func body(n int) []byte {
	const head, tail = `{"data":"`, "\"}\n"
	b := []byte(head)
	b = append(b, bytes.Repeat([]byte("x"), n-len(head)-len(tail))...)
	return append(b, tail...)
}

// constant answers b to every request.
func constant(b []byte) http.Handler {
	length := strconv.Itoa(len(b))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	})
}

// stream answers an event stream: one event like imaged's first, then
// silence (a comment each 15s) until the client leaves.
func stream() http.Handler {
	first := []byte("retry: 2000\n\nid: 1\nevent: queued\ndata: {\"jobId\":\"01a23802-caaf-7a90-be09-68c84b1968ec\",\"status\":\"queued\",\"attempt\":0,\"createdAt\":\"2026-12-02T18:00:00Z\"}\n\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		w.Write(first)
		rc.Flush()
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				w.Write([]byte(": keep-alive\n\n"))
				rc.Flush()
			}
		}
	})
}

// files answers the file at the request's path under dir, whole, with
// sendfile (the headers flushed first, so that net/http does not read the
// file's first bytes to sniff a type).
func files(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// path.Clean of a rooted path cannot climb above the root.
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+r.URL.Path))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		_, _ = io.Copy(w, f)
	})
}

func serve(ctx context.Context, addr string, h http.Handler) error {
	// The same server settings (timeouts, header limit) as imaged: the
	// comparison is between handlers.
	hs := imhttp.NewHTTPServer(h)
	hs.Addr = addr
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
