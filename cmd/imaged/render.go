package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"time"

	"github.com/imaged/imaged/render"
)

// newRenderer returns the variant renderer the settings ask for: a pool of
// supervised `imaged render-worker` processes (the default: a crash in the
// WebP/AVIF encoders' native or WASM code costs one render, not the
// service), or renders in this process with IMAGED_RENDER_ISOLATION=none.
// observe, when set, hears every render (for metrics). The caller closes it
// on shutdown.
func newRenderer(cfg *config, log *slog.Logger, observe func(time.Duration, error)) (*render.Pool, error) {
	rc := render.Config{
		Workers: cfg.RenderWorkers,
		Queue:   cfg.RenderQueue,
		Timeout: cfg.RenderTimeout,
		Limits: render.Limits{
			MaxSide:        cfg.RenderMaxSide,
			MaxPixels:      cfg.MaxPixels,
			MaxSourceBytes: max(cfg.MaxFileSize, render.DefaultMaxSourceBytes),
		},
		Observe: observe,
		Logger:  log,
	}
	switch cfg.RenderIsolation {
	case "none":
		return render.NewInProcess(rc), nil
	case "process", "":
	default:
		return nil, usagef("render-isolation must be process or none, got %q", cfg.RenderIsolation)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("render workers: %w", err)
	}
	return render.NewIsolated(rc, func() *exec.Cmd { return exec.Command(exe, "render-worker") }), nil
}

// renderWorker is `imaged render-worker`: the child process of an isolated
// render pool, serving renders on stdin and stdout until stdin closes.
func renderWorker(args []string, stderr io.Writer) error {
	fs := newCommandFlags("render-worker", stderr)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Renders allocate large short-lived buffers: collect at the
		// default pace, not at the service's 300.
		debug.SetGCPercent(100)
	}
	return render.ServeWorker(os.Stdin, os.Stdout)
}
