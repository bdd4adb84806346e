package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged/client"
	"github.com/imaged/imaged/testtool"
)

// browser runs e2e/testdata/gallery.mjs in Debian's Chromium through
// playwright-core against s, and returns the figures it printed. Tests
// skip when node, playwright-core or chromium is missing (and fail under
// IMAGED_TEST_REQUIRE_BACKENDS=1). Screenshots go to IMAGED_TEST_SHOTS when
// set (make screenshots keeps them in docs/), else a temporary directory.
func browser(t *testing.T, s *server, mode, token string, env ...string) map[string]any {
	t.Helper()
	chromium := testtool.Need(t, "chromium")
	script, err := filepath.Abs(filepath.Join("testdata", "gallery.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := testtool.Node(t, []string{"playwright-core"}, script)
	shots := os.Getenv("IMAGED_TEST_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	cmd.Env = append(cmd.Env, "IMAGED_BASE="+s.Base, "IMAGED_TOKEN="+token, "IMAGED_MODE="+mode,
		"IMAGED_FILES="+browserFiles(t), "IMAGED_SHOTS="+shots, "CHROMIUM="+chromium)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		err = <-done
	}
	if err != nil {
		t.Fatalf("the browser test (%s) failed: %v\n%s%s\nscreenshots in %s", mode, err, out.String(), errOut.String(), shots)
	}
	var figures map[string]any
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &figures); err != nil {
		t.Fatalf("the browser test printed %q: %v", out.String(), err)
	}
	return figures
}

var filesOnce sync.Once
var filesDir string

// browserFiles is a directory with the files the page uploads: two
// images, one named like HTML, a text file named .png, big.png (4.8 MB,
// over the gallery test's IMAGED_MAX_FILE_SIZE) and huge.png (small, but
// 7500x7000 pixels: over the default IMAGED_MAX_PIXELS).
func browserFiles(t *testing.T) string {
	filesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imaged-browser-files-")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "a.png"), pngImage(t, 320, 240, 3), 0o644)
		os.WriteFile(filepath.Join(dir, "<img src=x onerror=alert(1)>.png"), pngImage(t, 200, 300, 5), 0o644)
		os.WriteFile(filepath.Join(dir, "notes.png"), []byte("these are notes, not an image\n"), 0o644)
		noise := image.NewNRGBA(image.Rect(0, 0, 1100, 1100))
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := range noise.Pix {
			noise.Pix[i] = byte(rng.Uint32())
		}
		writePNG(t, filepath.Join(dir, "big.png"), noise)
		writePNG(t, filepath.Join(dir, "huge.png"), image.NewPaletted(image.Rect(0, 0, 7500, 7000), color.Palette{color.Black, color.White}))
		filesDir = dir
	})
	return filesDir
}

func writePNG(t *testing.T, name string, img image.Image) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGalleryInBrowser: sign in with a token, upload (one file named like
// HTML, one that is refused), generate, search, filter, the detail view,
// delete, reload, keyboard, 360 px, the first load's weight, and the
// development token.
func TestGalleryInBrowser(t *testing.T) {
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_MAX_FILE_SIZE": "4000000"}})
	alice, _ := users(t)
	figures := browser(t, s, "gallery", s.Token(alice))
	kib := figures["firstLoadBytes"].(float64) / 1024
	t.Logf("first load: %.1f KiB transferred in %v files (before images); %v tiles from thumb variants", kib, figures["firstLoadFiles"], figures["thumbVariants"])
	if kib <= 0 || kib >= 200 {
		t.Errorf("the first load transferred %.1f KiB, want under 200 KiB", kib)
	}
}

// TestGallerySpeed seeds an account with 10,000 images and reports how
// long the page takes to show the first 50 thumbnails (a figure for the
// README, not an assertion on time).
func TestGallerySpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 images")
	}
	testtool.Need(t, "chromium")
	testtool.NodeModules(t, "playwright-core")
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	tok := s.Token(alice)
	c, err := client.New(s.Base, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total, perRequest, workers = 10000, 10, 4
	imgs := make([][]byte, 16)
	for i := range imgs {
		imgs[i] = pngImage(t, 256, 192, uint64(i))
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < total/perRequest; r += workers {
				files := make([]client.File, perRequest)
				for i := range files {
					n := r*perRequest + i
					files[i] = client.File{Name: fmt.Sprintf("seed-%05d.png", n), Body: bytes.NewReader(imgs[n%len(imgs)])}
				}
				if _, err := c.UploadMultiple(context.Background(), files); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d images in %s", total, time.Since(start).Round(time.Millisecond))
	figures := browser(t, s, "speed", tok)
	if !strings.HasPrefix(fmt.Sprint(figures["count"]), "10000 images") {
		t.Errorf("the page counts %v, want 10000 images", figures["count"])
	}
	t.Logf("first 50 thumbnails of 10,000 images shown %vms after the navigation started (%vms by the page's clock)",
		figures["first50ThumbnailsMs"], figures["first50SinceNavigationMs"])
	t.Logf("requests before the images (path start-end ms): %v", figures["timeline"])
}
