package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// pprofEnv names the address of the pprof listener that the overlay adds to
// imaged.
const pprofEnv = "IMAGED_BENCH_PPROF_ADDR"

// pprofSource is added to package main of cmd/imaged through go build
// -overlay when a CPU profile is asked for; the repository is not touched.
const pprofSource = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

// Added by the benchmark (bench/pprof.go) through go build -overlay.
func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// pprofOverlay writes the overlay that adds pprofSource to cmd/imaged and
// returns its path.
func pprofOverlay(root, work string) (string, error) {
	src := filepath.Join(work, "zz_bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofSource), 0o644); err != nil {
		return "", err
	}
	overlay := map[string]map[string]string{"Replace": {
		filepath.Join(root, "cmd", "imaged", "zz_bench_pprof.go"): src,
	}}
	b, err := json.Marshal(overlay)
	if err != nil {
		return "", err
	}
	path := filepath.Join(work, "overlay.json")
	return path, os.WriteFile(path, b, 0o644)
}

// profile starts collecting a CPU profile of imaged over the measured window
// of l (it starts after the warm-up) and returns a function that waits for
// it and writes it to path.
func (b *bench) profile(ctx context.Context, l load, path string) func() error {
	done := make(chan error, 1)
	go func() {
		select {
		case <-time.After(l.Warmup):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		secs := max(int(l.Dur.Seconds()), 1)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.pprof, secs)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := (&http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}).Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("pprof: status %d", resp.StatusCode)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return func() error { return <-done }
}
