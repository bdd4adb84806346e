// Command renderserver is the render benchmark's HTTP front to imaged's
// render package: the same render.Pool that `imaged serve` builds (workers:
// the number of CPUs; queue 64; supervised `imaged render-worker`
// processes by default), behind a bare net/http handler that reads a source
// file and answers the rendered bytes. It measures the render path alone:
// no store lookup, no variant cache, nothing kept.
//
//	renderserver -addr 127.0.0.1:PORT -dir DIR -worker /path/to/imaged [-isolation none]
//
// GET /{file}?w=W&h=H&format=webp|jpeg|avif|png[&fit=cover] renders DIR/{file};
// GET /stats answers the pool's counters as JSON (render.Stats); GET /healthz
// answers 200. Errors answer their status and the message in plain text.
// It serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/imaged/imaged"
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/render"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	dir := flag.String("dir", ".", "directory of the source images")
	worker := flag.String("worker", "", "the imaged binary whose `imaged render-worker` renders (isolation process)")
	isolation := flag.String("isolation", "process", "process (supervised worker processes, imaged's default) or none (in this process)")
	workers := flag.Int("workers", 0, "renders at once (0: the number of CPUs)")
	flag.Parse()

	cfg := render.Config{Workers: *workers}
	var pool *render.Pool
	switch *isolation {
	case "process":
		if *worker == "" {
			fmt.Fprintln(os.Stderr, "renderserver: -worker is required with -isolation process")
			os.Exit(2)
		}
		pool = render.NewIsolated(cfg, func() *exec.Cmd { return exec.Command(*worker, "render-worker") })
	case "none":
		pool = render.NewInProcess(cfg)
	default:
		fmt.Fprintln(os.Stderr, "renderserver: -isolation must be process or none")
		os.Exit(2)
	}
	defer pool.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(pool.Stats())
	})
	mux.HandleFunc("GET /{file}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		atoi := func(k string) int { n, _ := strconv.Atoi(q.Get(k)); return n }
		opt := render.Options{Width: atoi("w"), Height: atoi("h"), Format: q.Get("format"), Fit: render.Fit(q.Get("fit")), Quality: atoi("q")}
		f, err := os.Open(filepath.Join(*dir, filepath.FromSlash(path.Clean("/"+r.PathValue("file")))))
		if err != nil {
			http.Error(w, "no such source", http.StatusNotFound)
			return
		}
		defer f.Close()
		res, err := pool.Render(r.Context(), f, opt)
		if err != nil {
			status := http.StatusInternalServerError
			switch imaged.ErrCode(err) {
			case imaged.EValidation:
				status = http.StatusBadRequest
			case imaged.EUnsupportedMedia:
				status = http.StatusUnsupportedMediaType
			case imaged.EUnavailable:
				status = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), status)
			return
		}
		w.Header().Set("Content-Type", res.MediaType)
		w.Header().Set("Content-Length", strconv.Itoa(len(res.Data)))
		_, _ = w.Write(res.Data)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := imhttp.NewHTTPServer(mux)
	hs.Addr = *addr
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "renderserver:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "renderserver:", err)
	}
}
