package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlushInterval is the longest a log line waits in the buffer.
const logFlushInterval = 100 * time.Millisecond

// logOutput batches log lines: one access log line per request, each written
// with a system call of its own, was a measurable share of a request's cost.
// Lines are written out every logFlushInterval, when the buffer is full,
// right after any record at warning level or above (see flushingHandler), and
// on Close, so an error is never held back and a clean shutdown loses
// nothing. A crash can lose the last interval's informational lines.
type logOutput struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newLogOutput buffers w and starts flushing it every interval until Close.
func newLogOutput(w io.Writer, interval time.Duration) *logOutput {
	o := &logOutput{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go o.flushEvery(interval)
	return o
}

func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// Flush writes out what the buffer holds.
func (o *logOutput) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Flush()
}

// Close stops the periodic flushing and flushes. Lines written after Close
// wait in the buffer until the next Flush.
func (o *logOutput) Close() error {
	o.once.Do(func() { close(o.stop) })
	<-o.done
	return o.Flush()
}

func (o *logOutput) flushEvery(interval time.Duration) {
	defer close(o.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.Flush()
		}
	}
}

// flushingHandler flushes its output after every record at warning level or
// above, so that problems reach the log at once.
type flushingHandler struct {
	slog.Handler
	out *logOutput
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.out.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.out}
}
