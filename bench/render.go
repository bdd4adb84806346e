package main

// The render benchmark (-only render): cold renders, each request a
// different output size so that nothing can come from a cache, against
// imgproxy rendering the same sources in the same run.
//
//  1. Makes the sources: a photo-like PNG of 1024x1024 and a photo-like
//     JPEG of 2048x2048 at quality 90 (smooth shapes, edges, texture and
//     grain, so that they compress like photographs).
//  2. Builds cmd/imaged twice (the default build, which uses libturbojpeg
//     and libwebp when the system has them, and -tags nodynamic, pure Go)
//     and bench/renderserver: imaged's render.Pool as `imaged serve` makes
//     it (isolated `imaged render-worker` processes, one per CPU, queue 64)
//     behind a bare handler that reads the source file and answers the
//     rendered bytes.
//  3. Starts imgproxy when -imgproxy (or $IMGPROXY_BIN) names its binary,
//     serving the same directory (IMGPROXY_LOCAL_FILESYSTEM_ROOT) with its
//     defaults; without it, the anchor is skipped with a message. The
//     benchmark never builds imgproxy.
//  4. For each case (PNG 1024 -> 256 WebP cover, PNG 1024 -> 256 JPEG
//     cover, JPEG 2048 Q90 -> 512 WebP cover) and each server: wrk -t2
//     -c16 with a Lua script that walks through output sizes of 240-272
//     px a side (496-528 for the third case), width and height apart, so
//     that no two requests in a row ask for the same size. It prints req/s,
//     p50, p99, the ratio to imgproxy and the peak memory of the server's
//     process tree (imaged's workers included): the sum of the processes'
//     Pss, so that what they share (imaged's binary) counts once, sampled
//     every 50 ms.
//  5. Memory (-render-mem): wrk -c64 on the third case, the peak memory
//     of each server's tree against the 200 MB budget.
//  6. Soak (-render-soak N): N renders of the three cases by 16 clients
//     on the fast path; the memory of the tree after each tenth, the
//     failures, and the worker crashes and restarts the pool counted.
//
// wrk and the servers share the machine's cores: the ratios, measured in
// the same run, are the figures.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	_ "golang.org/x/image/webp"
)

// renderCase is one cold-render workload.
type renderCase struct {
	name   string
	src    string // file name in the source directory
	format string
	lo     int // smallest side asked; sides walk through lo..lo+32
}

var renderCases = []renderCase{
	{"PNG 1024 -> 256 WebP cover", "photo1024.png", "webp", 240},
	{"PNG 1024 -> 256 JPEG cover", "photo1024.png", "jpeg", 240},
	{"JPEG 2048 Q90 -> 512 WebP cover", "photo2048.jpg", "webp", 496},
}

const sizeSpan = 33 // sides lo..lo+32

// renderServer is one server measured: how to start it and its URLs.
type renderServer struct {
	name string
	c    *child
	// pattern is the path of a render of c with %d for width and height.
	pattern func(rc renderCase) string
	stats   bool // GET /stats answers render.Stats
	// lastPeakRSS is the last load's peak of the summed VmRSS.
	lastPeakRSS int64
}

// sizesScript is wrk's Lua script: each request a different (width,
// height) among sizeSpan x sizeSpan, each thread starting elsewhere. Its
// arguments: the path pattern (two %d), the smallest side, the span.
const sizesScript = `
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local n, pattern, lo, span
function init(args)
  pattern, lo, span = args[1], tonumber(args[2]), tonumber(args[3])
  n = (id or 0) * 541
end
function request()
  n = n + 1
  local w = lo + n % span
  local h = lo + math.floor(n / span) % span
  return wrk.format("GET", string.format(pattern, w, h))
end
`

func (b *bench) measureRender(ctx context.Context) error {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("render: wrk is not installed (Debian package wrk)")
	}
	srcDir := filepath.Join(b.work, "sources")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(b.work, 0o711); err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"photo1024.png": encodePNG(photoLike(1024, 1024, 1)),
		"photo2048.jpg": encodeJPEG(photoLike(2048, 2048, 2), 90),
	} {
		if err := os.WriteFile(filepath.Join(srcDir, name), data, 0o644); err != nil {
			return err
		}
	}
	script := filepath.Join(b.work, "sizes.lua")
	if err := os.WriteFile(script, []byte(sizesScript), 0o644); err != nil {
		return err
	}

	progress("building imaged (pure Go, -tags nodynamic) and the render server")
	pure := filepath.Join(b.work, "imaged-purego")
	if err := goBuild(ctx, b.root, "./cmd/imaged", pure, "", "-tags", "nodynamic"); err != nil {
		return err
	}
	rs := filepath.Join(b.work, "renderserver")
	if err := goBuild(ctx, b.root, "./bench/renderserver", rs, ""); err != nil {
		return err
	}

	imagedPattern := func(rc renderCase) string {
		return "/" + rc.src + "?w=%d&h=%d&fit=cover&format=" + rc.format
	}
	var servers []*renderServer
	start := func(name, worker string) error {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		c, err := startChild(ctx, name, rs, []string{"-addr", addr, "-dir", srcDir, "-worker", worker},
			childEnv(), addr, "/healthz", filepath.Join(b.work, strings.ReplaceAll(name, " ", "-")+".log"))
		if err != nil {
			return err
		}
		servers = append(servers, &renderServer{name: name, c: c, pattern: imagedPattern, stats: true})
		return nil
	}
	defer func() {
		for _, s := range servers {
			s.c.stop()
		}
	}()
	if err := start("imaged fast path", b.imaged); err != nil {
		return err
	}
	if err := start("imaged pure Go", pure); err != nil {
		return err
	}
	anchor := ""
	if bin := b.o.imgproxy; bin == "" {
		fmt.Fprintln(b.report, "\nrender: no imgproxy binary (-imgproxy or $IMGPROXY_BIN): the anchor is skipped")
	} else if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(b.report, "\nrender: imgproxy binary %s: %v: the anchor is skipped\n", bin, err)
	} else {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		c, err := startChild(ctx, "imgproxy", bin, nil, childEnv("IMGPROXY_BIND="+addr, "IMGPROXY_LOCAL_FILESYSTEM_ROOT="+srcDir),
			addr, "/health", filepath.Join(b.work, "imgproxy.log"))
		if err != nil {
			return err
		}
		anchor = "imgproxy"
		servers = append(servers, &renderServer{name: anchor, c: c, pattern: func(rc renderCase) string {
			return "/insecure/rs:fill:%d:%d:0/plain/local:///" + rc.src + "@" + rc.format
		}})
	}

	// Every server renders every case as promised before anything is timed.
	for _, rc := range renderCases {
		for _, s := range servers {
			if err := checkRender(ctx, s.c.base+fmt.Sprintf(s.pattern(rc), rc.lo+1, rc.lo+7), rc.format, rc.lo+1, rc.lo+7); err != nil {
				return fmt.Errorf("render: %s, %s: %w", s.name, rc.name, err)
			}
		}
	}

	fmt.Fprintf(b.report, "\nrender: cold renders, wrk -t2 -c16 -d%s (after %s), each request another size; load average %s\n",
		b.o.dur, b.o.warmup, loadAverage())
	tw := tabwriter.NewWriter(b.report, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcase\tserver\treq/s\tp50\tp99\tCPU/render\tpeak memory MiB\tvs imgproxy\t")
	for _, rc := range renderCases {
		rates := map[string]float64{}
		var rows []string
		for _, s := range servers {
			r, peak, err := b.runRenderLoad(ctx, wrk, script, s, rc, 16)
			if err != nil {
				return err
			}
			rates[s.name] = r.reqPerSec
			rows = append(rows, fmt.Sprintf("\t%s\t%s\t%.1f\t%s\t%s\t%s\t%.0f\t", rc.name, s.name, r.reqPerSec, r.p50, r.p99,
				ms(r.cpuPerReq), mib(peak)))
			progress("render %s, %s: %.1f req/s, peak memory %.0f MiB", rc.name, s.name, r.reqPerSec, mib(peak))
		}
		for i, s := range servers {
			vs := "-"
			if anchor != "" && rates[anchor] > 0 {
				vs = fmt.Sprintf("%.2f", rates[s.name]/rates[anchor])
			}
			fmt.Fprintf(tw, "%s%s\t\n", rows[i], vs)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if b.o.renderMem {
		rc := renderCases[2]
		fmt.Fprintf(b.report, "\nrender memory: wrk -c64 on %s for %s, peak memory (Pss) of each server's process tree (budget 200 MB):\n", rc.name, b.o.dur)
		for _, s := range servers {
			r, peak, err := b.runRenderLoad(ctx, wrk, script, s, rc, 64)
			if err != nil {
				return err
			}
			verdict := "within"
			if peak > 200e6 {
				verdict = "OVER"
			}
			fmt.Fprintf(b.report, "  %-18s %6.1f req/s  peak %4.0f MiB (%.0f MB): %s budget; summed VmRSS %4.0f MiB\n",
				s.name, r.reqPerSec, mib(peak), float64(peak)/1e6, verdict, mib(s.lastPeakRSS))
		}
	}
	if b.o.renderSoak > 0 {
		if err := b.soak(ctx, servers[0], b.o.renderSoak); err != nil {
			return err
		}
	}
	return nil
}

// runRenderLoad runs wrk with conns connections on one case and one server,
// sampling the peak memory of the server's tree meanwhile. Every answer must be
// a 200.
func (b *bench) runRenderLoad(ctx context.Context, wrk, script string, s *renderServer, rc renderCase, conns int) (*wrkResult, int64, error) {
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var top, topRSS int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if n, rss, err := treeMemoryRSS(s.c.pid()); err == nil {
				top, topRSS = max(top, n), max(topRSS, rss)
			}
			select {
			case <-stop:
				s.lastPeakRSS = topRSS
				peak <- top
				return
			case <-t.C:
			}
		}
	}()
	r, err := runWrkWith(ctx, wrk, s.c.base, conns, []string{"-s", script, "--timeout", "60s"},
		[]string{s.pattern(rc), strconv.Itoa(rc.lo), strconv.Itoa(sizeSpan)}, b.o.warmup, b.o.dur, s.c.pid())
	close(stop)
	top := <-peak
	if err != nil {
		return nil, 0, fmt.Errorf("render: %s, %s: %w", s.name, rc.name, err)
	}
	if r.non2xx > 0 || r.errors != "" {
		return nil, 0, fmt.Errorf("render: %s, %s: %d answers were not 200 %s (its log: %s)", s.name, rc.name, r.non2xx, r.errors, s.c.log.Name())
	}
	return r, top, nil
}

// checkRender fetches u and checks that it is an image of format at w x h.
func checkRender(ctx context.Context, u, format string, w, h int) error {
	body, err := get(ctx, u, nil)
	if err != nil {
		return err
	}
	cfg, got, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the answer does not decode: %w", err)
	}
	if got != format || cfg.Width != w || cfg.Height != h {
		return fmt.Errorf("got %s %dx%d, want %s %dx%d", got, cfg.Width, cfg.Height, format, w, h)
	}
	return nil
}

// soak renders n times through s (16 clients, the three cases in turn, each
// request another size) and prints the tree's memory after each tenth, the
// failed renders and the pool's crash and restart counters.
func (b *bench) soak(ctx context.Context, s *renderServer, n int) error {
	fmt.Fprintf(b.report, "\nrender soak: %d renders through %s, 16 clients, the three cases in turn:\n", n, s.name)
	var next, failed atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}
	tenth := max(1, n/10)
	var mu sync.Mutex
	marks := map[int64]bool{}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				rc := renderCases[i%3]
				w, h := rc.lo+int(i%sizeSpan), rc.lo+int((i/sizeSpan)%sizeSpan)
				resp, err := client.Get(s.c.base + fmt.Sprintf(s.pattern(rc), w, h))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
				}
				if i%int64(tenth) == 0 {
					rss, _ := treeMemory(s.c.pid())
					mu.Lock()
					if !marks[i] {
						marks[i] = true
						fmt.Fprintf(b.report, "  %7d renders  %6.0fs  memory %4.0f MiB  failed %d\n", i, time.Since(start).Seconds(), mib(rss), failed.Load())
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if s.stats {
		body, err := get(ctx, s.c.base+"/stats", nil)
		if err != nil {
			return err
		}
		var st struct{ Rendered, Failed, Crashed, Restarts uint64 }
		if err := json.Unmarshal(body, &st); err != nil {
			return err
		}
		fmt.Fprintf(b.report, "  pool: %d rendered, %d failed, %d crashed, %d worker restarts\n", st.Rendered, st.Failed, st.Crashed, st.Restarts)
	}
	return ctx.Err()
}

// treeMemory is the memory of pid and its children: the sum of their
// proportional set sizes (Pss, /proc/PID/smaps_rollup), so that the pages
// imaged's worker processes share with it (the same binary) count once,
// and a single process's figure is its resident size.
func treeMemory(pid int) (int64, error) {
	n, _, err := treeMemoryRSS(pid)
	return n, err
}

// treeMemoryRSS is treeMemory and the plain sum of the processes' VmRSS
// (which counts shared pages once per process).
func treeMemoryRSS(pid int) (int64, int64, error) {
	total, err := pss(pid)
	if err != nil {
		return 0, 0, err
	}
	var rss int64
	if m, err := readMemory(pid); err == nil {
		rss += m.RSS
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if ppid, _, err := procStat(p); err == nil && ppid == pid {
			if n, err := pss(p); err == nil {
				total += n
			}
			if m, err := readMemory(p); err == nil {
				rss += m.RSS
			}
		}
	}
	return total, rss, nil
}

// pss reads the Pss line of /proc/PID/smaps_rollup, in bytes.
func pss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup has no Pss", pid)
}

// photoLike is an opaque w x h picture that compresses like a photograph:
// a few soft blobs of colour over a gradient, hard-edged shapes, a fine
// texture in one quarter and a little grain everywhere.
func photoLike(w, h int, seed uint64) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 11))
	type blob struct {
		x, y, rad float64
		c         color.NRGBA
	}
	var blobs []blob
	for i := 0; i < 12; i++ {
		blobs = append(blobs, blob{r.Float64() * float64(w), r.Float64() * float64(h), (0.1 + 0.3*r.Float64()) * float64(w),
			color.NRGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}})
	}
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fr, fg, fb := 90+80*float64(y)/float64(h), 110.0, 150-60*float64(x)/float64(w)
			for _, bl := range blobs {
				d := math.Hypot(float64(x)-bl.x, float64(y)-bl.y) / bl.rad
				if d < 1 {
					k := 0.6 * (1 - d*d)
					fr, fg, fb = fr*(1-k)+float64(bl.c.R)*k, fg*(1-k)+float64(bl.c.G)*k, fb*(1-k)+float64(bl.c.B)*k
				}
			}
			if (x/(w/6)+y/(h/5))%3 == 0 && x%(w/6) < w/12 { // hard-edged bars
				fr, fg, fb = fr*0.5, fg*0.5, fb*0.5
			}
			if x > w/2 && y > h/2 { // fine texture
				t := 30 * math.Sin(float64(x)*0.9) * math.Sin(float64(y)*1.3)
				fr, fg, fb = fr+t, fg+t, fb+t
			}
			g := float64(r.IntN(9) - 4) // grain
			i := m.PixOffset(x, y)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = clamp8(fr+g), clamp8(fg+g), clamp8(fb+g), 255
		}
	}
	return m
}

func clamp8(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

func encodePNG(m image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func encodeJPEG(m image.Image, q int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
