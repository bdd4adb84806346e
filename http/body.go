package http

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imaged/imaged"
)

// DefaultBodyIdleTimeout is how long a request body may go without a byte
// before the request is cut off with 408.
const DefaultBodyIdleTimeout = 30 * time.Second

// clientBody is a request body whose read failures are the client's: it
// turns them into application errors (4xx, logged below ERROR) instead of
// letting them surface as internal errors, and it cuts off a body that
// stops arriving: a Read that waits longer than idle for bytes is ended
// (by moving the connection's read deadline to now) and answers
// ERequestTimeout. Only the time spent waiting in Read counts, not the time
// the handler spends between reads (storing what it read, for example).
type clientBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	failed  error // the first failure, returned again by later reads
}

func newClientBody(w http.ResponseWriter, r *http.Request, idle time.Duration) *clientBody {
	return &clientBody{body: r.Body, rc: http.NewResponseController(w), idle: idle}
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.failed != nil {
		return 0, b.failed
	}
	if b.idle > 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(b.idle, b.stall)
		} else {
			b.timer.Reset(b.idle)
		}
	}
	n, err := b.body.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err != nil && err != io.EOF {
		b.failed = b.classify(err)
		return n, b.failed
	}
	return n, err
}

// stall ends the pending Read: nothing arrived for the idle time.
func (b *clientBody) stall() {
	b.stalled.Store(true)
	// Without a connection to set it on (tests), the server's own
	// ReadTimeout still applies.
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *clientBody) Close() error {
	b.stop()
	return b.body.Close()
}

// stop ends the idle watch.
func (b *clientBody) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// classify names what went wrong with the body, for the client.
func (b *clientBody) classify(err error) error {
	var mb *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mb), errors.As(err, new(*imaged.Error)):
		return err
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return err
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		if b.stalled.Load() {
			return &imaged.Error{Code: imaged.ERequestTimeout, Err: err,
				Message: "The request body stopped arriving: no byte for " + b.idle.String()}
		}
		return &imaged.Error{Code: imaged.ERequestTimeout, Err: err,
			Message: "The request body took longer than " + bodyReadTimeout.String() + " to arrive"}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return &clientGone{err: &imaged.Error{Code: imaged.EValidation, Err: err,
			Message: "The request body ended early: shorter than its Content-Length or its chunked framing, or the client hung up"}}
	}
	// What is left are the framing errors of net/http's chunked reader.
	return &imaged.Error{Code: imaged.EValidation, Err: err,
		Message: "The request body's framing is malformed (chunked encoding)"}
}

// clientGone marks a body that ended because the connection did: most
// likely the client hung up, so nobody reads the answer. It is logged as a
// cancellation.
type clientGone struct{ err *imaged.Error }

func (e *clientGone) Error() string { return e.err.Error() }
func (e *clientGone) Unwrap() error { return e.err }

// isClientGone reports whether err says the client went away mid-body.
func isClientGone(err error) bool {
	var g *clientGone
	return errors.As(err, &g)
}
