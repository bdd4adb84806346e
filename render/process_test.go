package render

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/imaged/imaged"
)

// testWorker runs this test binary as a render worker.
func testWorker() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IMAGED_RENDER_TEST_WORKER=1")
	return cmd
}

func newTestIsolated(cfg Config) *Pool { return NewIsolated(cfg, testWorker) }

// The isolated pool behaves as the in-process one.
func TestIsolatedPool(t *testing.T) { poolTests(t, newTestIsolated) }

func pids(p *Pool) []int { return p.Stats().PIDs }

// A worker killed in the middle of a render (as a crash in native code
// would end it) fails that render with EInternal; the next renders succeed
// on a new process, and renders on the other workers are not disturbed.
func TestKilledWorkerFailsOneRender(t *testing.T) {
	p := newTestIsolated(Config{Workers: 1})
	defer p.Close()
	sent := make(chan struct{}, 8)
	p.sentHook = func() { sent <- struct{}{} }
	small := pngBytes(t, photo(256, 256))
	opt := Options{Width: 64, Height: 64, Format: WebP}
	if _, err := p.Render(t.Context(), bytes.NewReader(small), opt); err != nil {
		t.Fatalf("first render: %v", err)
	}
	first := pids(p)
	big := pngBytes(t, zonePlate(4000, 4000))
	errc := make(chan error, 1)
	go func() {
		_, err := p.Render(context.Background(), bytes.NewReader(big), Options{Width: 1000, Format: AVIF})
		errc <- err
	}()
	<-sent // the first render's
	<-sent // the worker has the big source and is decoding it
	proc, _ := os.FindProcess(first[0])
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if imaged.ErrCode(err) != imaged.EInternal || imaged.ErrMessage(err) != "The render failed" {
		t.Fatalf("killed render: %v, want INTERNAL_SERVER_ERROR", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := p.Render(t.Context(), bytes.NewReader(small), opt); err != nil {
			t.Fatalf("render %d after the kill: %v", i, err)
		}
	}
	s := p.Stats()
	if s.Crashed != 1 || s.Restarts != 1 || s.Rendered != 4 {
		t.Fatalf("stats %+v, want 1 crash, 1 restart, 4 renders", s)
	}
	if now := pids(p); now[0] == first[0] {
		t.Fatalf("still the killed process %d", now[0])
	}
}

// Renders run in parallel on the workers, at most Workers at a time.
func TestIsolatedParallel(t *testing.T) {
	p := newTestIsolated(Config{Workers: 2, Queue: 16})
	defer p.Close()
	src := pngBytes(t, photo(512, 512))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := p.Render(context.Background(), bytes.NewReader(src), Options{Width: 100 + i, Height: 100, Format: JPEG})
			if err == nil && res.Width != 100+i {
				err = imaged.Errorf(imaged.EInternal, "width %d", res.Width)
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(pids(p)); n != 2 {
		t.Fatalf("%d worker processes, want 2", n)
	}
}
