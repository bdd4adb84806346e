package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flushing goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogOutput(t *testing.T) {
	newLog := func(interval time.Duration) (*slog.Logger, *logOutput, *lockedBuffer) {
		dst := &lockedBuffer{}
		out := newLogOutput(dst, interval)
		t.Cleanup(func() { out.Close() })
		return slog.New(flushingHandler{slog.NewTextHandler(out, nil), out}), out, dst
	}

	t.Run("info_lines_wait_for_the_next_flush", func(t *testing.T) {
		log, _, dst := newLog(20 * time.Millisecond)
		log.Info("request", "status", 200)
		if got := dst.String(); got != "" {
			t.Fatalf("info line written at once: %q", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(dst.String(), "msg=request status=200") {
			if time.Now().After(deadline) {
				t.Fatal("info line never flushed")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("warnings_and_errors_are_written_at_once_with_what_preceded_them", func(t *testing.T) {
		log, _, dst := newLog(time.Hour)
		log.Info("first")
		log.With("requestId", "abc").Error("broken")
		got := dst.String()
		if !strings.Contains(got, "msg=first") || !strings.Contains(got, "msg=broken requestId=abc") {
			t.Fatalf("after an error the output is %q", got)
		}
		log.Warn("careful")
		if !strings.Contains(dst.String(), "msg=careful") {
			t.Fatal("warning not written at once")
		}
	})

	t.Run("close_flushes", func(t *testing.T) {
		log, out, dst := newLog(time.Hour)
		log.Info("last words")
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dst.String(), "last words") {
			t.Fatalf("after Close the output is %q", dst.String())
		}
		if err := out.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
