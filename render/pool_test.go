package render

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// blockingReader is a source that yields nothing until released, holding
// the worker that reads it.
type blockingReader struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	r       io.Reader
}

func newBlockingReader(src []byte) *blockingReader {
	return &blockingReader{started: make(chan struct{}), release: make(chan struct{}), r: bytes.NewReader(src)}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return b.r.Read(p)
}

// poolTests is the behaviour every Pool has, whatever its workers.
func poolTests(t *testing.T, newPool func(Config) *Pool) {
	src := pngBytes(t, photo(256, 256))
	opt := Options{Width: 64, Height: 64, Format: PNG}

	t.Run("renders", func(t *testing.T) {
		p := newPool(Config{Workers: 2})
		defer p.Close()
		res, err := p.Render(t.Context(), bytes.NewReader(src), opt)
		if err != nil || res.Width != 64 || decodeAny(t, res.Data).Bounds().Dx() != 64 {
			t.Fatalf("render: %v %v", res, err)
		}
		if s := p.Stats(); s.Rendered != 1 || s.Workers != 2 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("full_queue_answers_unavailable_at_once", func(t *testing.T) {
		p := newPool(Config{Workers: 1, Queue: 1})
		defer p.Close()
		hold := newBlockingReader(src)
		errs := make(chan error, 2)
		go func() { _, err := p.Render(context.Background(), hold, opt); errs <- err }()
		<-hold.started // the worker is busy
		go func() { _, err := p.Render(context.Background(), bytes.NewReader(src), opt); errs <- err }()
		waitFor(t, func() bool { return p.Stats().Queued == 1 })
		start := time.Now()
		_, err := p.Render(context.Background(), bytes.NewReader(src), opt)
		var ie *imaged.Error
		if !errors.As(err, &ie) || ie.Code != imaged.EUnavailable || ie.RetryAfter <= 0 {
			t.Fatalf("third render: %v, want SERVICE_UNAVAILABLE with RetryAfter", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the refusal took %v; it must not wait", d)
		}
		close(hold.release)
		for i := 0; i < 2; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("held renders: %v", err)
			}
		}
		if s := p.Stats(); s.Rejected != 1 || s.Rendered != 2 || s.Busy != 0 || s.Queued != 0 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("a_waiting_render_gives_up_with_its_context", func(t *testing.T) {
		p := newPool(Config{Workers: 1, Queue: 4})
		defer p.Close()
		hold := newBlockingReader(src)
		done := make(chan error, 1)
		go func() { _, err := p.Render(context.Background(), hold, opt); done <- err }()
		<-hold.started
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := p.Render(ctx, bytes.NewReader(src), opt); imaged.ErrCode(err) != imaged.EInternal {
			t.Fatalf("got %v", err)
		}
		close(hold.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("time_limit", func(t *testing.T) {
		big := pngBytes(t, photo(3000, 3000))
		p := newPool(Config{Workers: 1, Timeout: 5 * time.Millisecond})
		defer p.Close()
		_, err := p.Render(t.Context(), bytes.NewReader(big), Options{Width: 100, Format: AVIF})
		if imaged.ErrCode(err) != imaged.EInternal || !strings.Contains(imaged.ErrMessage(err), "too long") {
			t.Fatalf("got %v, want INTERNAL_SERVER_ERROR (took too long)", err)
		}
		if p.Stats().TimedOut != 1 {
			t.Fatalf("stats %+v", p.Stats())
		}
		// The worker comes back once the render stops, and works.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.cfg.Timeout = 30 * time.Second
		if _, err := p.Render(ctx, bytes.NewReader(src), opt); err != nil {
			t.Fatalf("next render: %v", err)
		}
	})

	t.Run("bad_options_and_sources_fail_without_a_worker_lost", func(t *testing.T) {
		p := newPool(Config{Workers: 1})
		defer p.Close()
		if _, err := p.Render(t.Context(), bytes.NewReader(src), Options{Format: PNG}); imaged.ErrCode(err) != imaged.EValidation {
			t.Fatalf("got %v", err)
		}
		if _, err := p.Render(t.Context(), strings.NewReader("garbage"), opt); imaged.ErrCode(err) != imaged.EUnsupportedMedia {
			t.Fatalf("got %v", err)
		}
		if _, err := p.Render(t.Context(), bytes.NewReader(src), opt); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("source_over_the_size_limit", func(t *testing.T) {
		p := newPool(Config{Workers: 1, Limits: Limits{MaxSourceBytes: 100}})
		defer p.Close()
		_, err := p.Render(t.Context(), bytes.NewReader(src), opt)
		if imaged.ErrCode(err) != imaged.EUnsupportedMedia || !strings.Contains(imaged.ErrMessage(err), "100 bytes") {
			t.Fatalf("got %v", err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInProcessPool(t *testing.T) { poolTests(t, NewInProcess) }
