package e2e

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/render"
)

// The real `imaged render-worker` serves an isolated render pool; killed in
// the middle of a render it fails that render only, and is replaced.
func TestRenderWorkerProcess(t *testing.T) {
	p := render.NewIsolated(render.Config{Workers: 1}, func() *exec.Cmd { return exec.Command(binary, "render-worker") })
	defer p.Close()
	src := testPNG(t, 300, 200)
	res, err := p.Render(t.Context(), bytes.NewReader(src), render.Options{Width: 120, Height: 120, Format: render.WebP})
	if err != nil || res.MediaType != "image/webp" || res.Width != 120 || res.Height != 120 {
		t.Fatalf("render through imaged render-worker: %v %v", res, err)
	}

	// Kill the worker while it renders a large source. If the kill lands
	// before the worker got the request, that render goes to a new worker
	// and succeeds: try again.
	big := testPNG(t, 4000, 3000)
	crashed := false
	for attempt := 0; attempt < 5 && !crashed; attempt++ {
		errc := make(chan error, 1)
		go func() {
			_, err := p.Render(context.Background(), bytes.NewReader(big), render.Options{Width: 2000, Format: render.AVIF})
			errc <- err
		}()
		deadline := time.Now().Add(10 * time.Second)
		for p.Stats().Busy == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		pids := p.Stats().PIDs
		if len(pids) != 1 {
			t.Fatalf("worker processes %v", pids)
		}
		proc, err := os.FindProcess(pids[0])
		if err != nil {
			t.Fatal(err)
		}
		proc.Kill()
		err = <-errc
		switch {
		case err == nil:
			continue
		case imaged.ErrCode(err) != imaged.EInternal:
			t.Fatalf("killed render: %v, want INTERNAL_SERVER_ERROR", err)
		}
		crashed = true
	}
	if !crashed {
		t.Fatal("no render was killed in five attempts")
	}
	if _, err := p.Render(t.Context(), bytes.NewReader(src), render.Options{Width: 50, Format: render.JPEG}); err != nil {
		t.Fatalf("render after the kill: %v", err)
	}
	if s := p.Stats(); s.Crashed != 1 || s.Restarts < 1 {
		t.Fatalf("stats %+v", s)
	}
}

func testPNG(t *testing.T, w, h int) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
