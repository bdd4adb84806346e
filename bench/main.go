// Command bench measures imaged as a user runs it: it builds the real
// binary, starts it as a child process on a loopback port with a fresh data
// directory, and drives it over HTTP with an in-process load generator.
// It is a program that prints figures, not a test: nothing it measures
// passes or fails a build.
//
// Run it from the repository:
//
//	go run ./bench [flags]
//
// What it does, in order:
//
//  1. Builds cmd/imaged and bench/baseline into a temporary directory.
//  2. Seeds -n images of the subject "bench" straight through the store
//     packages (sqlite.Open + CreateImage, one real PNG through fsblob),
//     before the server starts, and mints a token with `imaged token`.
//  3. Starts imaged (default configuration, log level info, its output in a
//     file), uploads one real image through the API and measures the size of
//     a GET /api/images/{id} answer.
//  4. GET: -c connections, each a goroutine with its own keep-alive client,
//     send GET /api/images/{id} back to back for a -warmup, then for -d,
//     with ids picked at random among the seeded images. It reports
//     throughput, p50 and p99 latency and errors (any status but 200).
//  5. List (with -list): the same load on GET /api/images (first page) and
//     on the page that starts at 90% of the seeded images, reached by a
//     cursor computed from the seeded data; p50, p99 and their ratio.
//  6. Baseline: bench/baseline, a bare net/http server in a process of its
//     own answering a constant application/json body of the same size, is
//     driven with the same load; the ratio imaged/baseline is reported.
//  7. Upload memory: a fresh imaged process receives -uploads concurrent
//     uploads of a valid PNG of random, uncompressed pixels just under 20 MiB,
//     each streamed from disk through a pipe (no client buffering), while
//     its VmRSS and VmHWM are sampled from /proc every 50ms. It reports the
//     peak against the 150 MiB budget; every upload must answer 201.
//
// Flags:
//
//	-c N             concurrent connections of the load generator (64)
//	-d DURATION      measured window of each load run (10s)
//	-warmup DURATION load before each measured window, not counted (2s)
//	-n N             images to seed (100000)
//	-only WHAT       run one benchmark only: get, list or upload
//	-list            also run the listing benchmark (first page vs deep page)
//	-skip-upload     skip the upload memory test
//	-uploads N       concurrent uploads in the memory test (16)
//	-cpuprofile FILE write a CPU profile of imaged during its first load run
//	                 (the server is built with net/http/pprof on a private
//	                 port through go build -overlay; the source is untouched);
//	                 read it with: go tool pprof -top FILE
//	-keep            keep the temporary directory (binaries, data, logs)
//
// Each load run prints one summary line (throughput, p50 and p99 of imaged
// and of the baseline, and their throughput ratio), then a table with more
// quantiles, the error count and where the CPU went during the measured
// window, read from /proc: the server's CPU time per request, and the cores
// used by the server, by the load generator (this process) and by every
// other process of the machine. The CPU time per request is the figure that
// other work on the machine disturbs least.
//
// Figures and limits of the measurement:
//
//   - Only loopback traffic. Everything runs on one machine: imaged (or the
//     baseline) and the load generator share its CPUs, each process with the
//     default GOMAXPROCS (the CPU count). On a 2-core machine the load
//     generator takes a large share of the CPU, so absolute numbers are low
//     and the ratio to the baseline is the figure to compare. Run it on an
//     otherwise idle machine: the "other processes' cores" column and the
//     load average in the header show when it was not.
//   - With -n images (default 100000) the SQLite file is about 50 MB, larger
//     than SQLite's page cache, so random lookups read pages from the OS
//     cache as a real store would.
//   - -only upload seeds a single image; the upload test does not need more.
//   - imaged keeps its default log level (info): one access log line per
//     request goes to a file in the temporary directory, as in production.
//   - The whole run is bounded: each load run lasts -warmup + -d, requests
//     time out after 10s, uploads after 3 minutes. Child processes are
//     stopped (and killed with the benchmark if it dies) and the temporary
//     directory is removed.
//   - Only SQLite with local blobs is measured. The backend type in
//     backend.go is where PostgreSQL or S3 would be added.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
)

// rssLimit is the memory budget of imaged during the upload test.
const rssLimit = 150 << 20

type options struct {
	conns      int
	dur        time.Duration
	warmup     time.Duration
	n          int
	only       string
	list       bool
	skipUpload bool
	uploads    int
	cpuprofile string
	keep       bool
}

func main() {
	var o options
	flag.IntVar(&o.conns, "c", 64, "concurrent connections of the load generator")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "measured window of each load run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each measured window, not counted")
	flag.IntVar(&o.n, "n", 100000, "images to seed")
	flag.StringVar(&o.only, "only", "", "run one benchmark only: get, list or upload")
	flag.BoolVar(&o.list, "list", false, "also run the listing benchmark (first page vs a page at 90% depth)")
	flag.BoolVar(&o.skipUpload, "skip-upload", false, "skip the upload memory test")
	flag.IntVar(&o.uploads, "uploads", 16, "concurrent uploads in the memory test")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of imaged during its first load run to `file`")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, data, server logs)")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch o.only {
	case "":
	case "get", "list", "upload":
		o.list = o.list || o.only == "list"
	default:
		return fmt.Errorf("-only must be get, list or upload, got %q", o.only)
	}
	if o.conns < 1 || o.dur <= 0 || o.warmup < 0 || o.uploads < 1 {
		return fmt.Errorf("-c and -uploads must be positive, -d positive, -warmup not negative")
	}
	if o.n < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	return nil
}

func (o *options) runs(what string) bool {
	switch what {
	case "get":
		return o.only == "" || o.only == "get"
	case "list":
		return o.list && (o.only == "" || o.only == "list")
	case "upload":
		return !o.skipUpload && (o.only == "" || o.only == "upload")
	}
	return false
}

// bench is one run: its options, where its files are and what it found.
type bench struct {
	o        options
	root     string // the module's directory
	work     string // the temporary directory
	dataDir  string
	imaged   string // the built binaries
	baseline string
	be       *backend
	owner    string
	token    string
	seed     *seeded
	pprof    string // address of imaged's pprof listener, with -cpuprofile
	report   io.Writer
}

func run(ctx context.Context, o options) (err error) {
	b := &bench{o: o, be: sqliteBackend(), owner: "bench",
		report: os.Stdout}
	if b.root, err = moduleRoot(ctx); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "imaged-bench-"); err != nil {
		return err
	}
	if o.keep {
		defer progress("kept %s", b.work)
	} else {
		defer os.RemoveAll(b.work)
	}
	b.dataDir = filepath.Join(b.work, "data")
	if err := os.Mkdir(b.dataDir, 0o750); err != nil {
		return err
	}
	if err := b.build(ctx); err != nil {
		return err
	}

	fmt.Printf("imaged benchmark: %s %s/%s, GOMAXPROCS %d, %d CPUs (shared by imaged and the load generator), load average %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAverage())

	small, w, h := smallPNG()
	sum := sha256.Sum256(small)
	n := o.n
	if !o.runs("get") && !o.runs("list") {
		n = 1
	}
	progress("seeding %d images in %s", n, b.be.name)
	b.seed, err = seedImages(ctx, b.be, b.dataDir, b.owner, n, small, w, h, hex.EncodeToString(sum[:]),
		func(done int) { progress("  %d images seeded", done) })
	if err != nil {
		return err
	}
	fmt.Printf("store: %s, %d images of one subject seeded in %s (%.0f/s)\n\n",
		b.be.name, n, b.seed.took.Round(time.Millisecond), float64(n)/b.seed.took.Seconds())
	if b.token, err = b.mintToken(ctx); err != nil {
		return err
	}

	if o.runs("get") || o.runs("list") {
		if err := b.measureReads(ctx); err != nil {
			return err
		}
	}
	if o.runs("upload") {
		if err := b.measureUploads(ctx); err != nil {
			return err
		}
	}
	return nil
}

// build compiles imaged (with a pprof listener, through an overlay, when a
// profile is asked for) and the baseline server.
func (b *bench) build(ctx context.Context) error {
	progress("building imaged and the baseline")
	b.imaged = filepath.Join(b.work, "imaged")
	b.baseline = filepath.Join(b.work, "baseline")
	overlay := ""
	if b.o.cpuprofile != "" {
		var err error
		if overlay, err = pprofOverlay(b.root, b.work); err != nil {
			return err
		}
	}
	if err := goBuild(ctx, b.root, "./cmd/imaged", b.imaged, overlay); err != nil {
		return err
	}
	return goBuild(ctx, b.root, "./bench/baseline", b.baseline, "")
}

func (b *bench) mintToken(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, b.imaged, "token", "--sub", b.owner, "--data-dir", b.dataDir)
	cmd.Env = childEnv(b.be.env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("imaged token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startImaged starts imaged on the seeded data directory.
func (b *bench) startImaged(ctx context.Context, logName string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := childEnv(b.be.env...)
	if b.o.cpuprofile != "" {
		if b.pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, pprofEnv+"="+b.pprof)
	}
	return startChild(ctx, "imaged", b.imaged, []string{"serve", "--addr", addr, "--data-dir", b.dataDir},
		env, addr, "/readyz", filepath.Join(b.work, logName))
}

// measureReads runs the GET (and list) benchmarks on imaged, then the
// baseline with the same load.
func (b *bench) measureReads(ctx context.Context) error {
	srv, err := b.startImaged(ctx, "imaged-reads.log")
	if err != nil {
		return err
	}
	defer srv.stop()
	auth := http.Header{"Authorization": {"Bearer " + b.token}}

	// One real upload through the API, to check the service end to end.
	small, _, _ := smallPNG()
	id, err := uploadOne(ctx, srv.base, b.token, small)
	if err != nil {
		return fmt.Errorf("upload through the API: %w", err)
	}
	if _, err := get(ctx, srv.base+"/api/images/"+id, auth); err != nil {
		return fmt.Errorf("get the uploaded image: %w", err)
	}
	one, err := get(ctx, srv.base+"/api/images/"+b.seed.images[0].ID, auth)
	if err != nil {
		return fmt.Errorf("get a seeded image: %w", err)
	}
	var answer struct {
		Data struct{ URL string }
	}
	if err := json.Unmarshal(one, &answer); err != nil {
		return fmt.Errorf("get a seeded image: %w", err)
	}
	if _, err := get(ctx, answer.Data.URL, nil); err != nil {
		return fmt.Errorf("get a seeded image's bytes: %w", err)
	}
	size := len(one)
	fmt.Fprintf(b.report, "answer of GET /api/images/{id}: %d bytes (baseline body: the same size)\n\n", size)

	l := load{Conns: b.o.conns, Warmup: b.o.warmup, Dur: b.o.dur}
	ids := b.seed.images
	getTarget := target{header: auth, want: http.StatusOK,
		next: func(r *rand.Rand) string { return srv.base + "/api/images/" + ids[r.IntN(len(ids))].ID }}
	profiled := false
	measure := func(name string, pid int, t target) *result {
		progress("%s: %d connections, %s warm-up + %s", name, l.Conns, l.Warmup, l.Dur)
		l := l
		l.ServerPID = pid
		var wait func() error
		if b.o.cpuprofile != "" && !profiled {
			profiled = true
			wait = b.profile(ctx, l)
		}
		r := l.run(ctx, t)
		if wait != nil {
			if err := wait(); err != nil {
				progress("CPU profile failed: %v", err)
			} else {
				progress("CPU profile of imaged during %s written to %s", name, b.o.cpuprofile)
			}
		}
		return r
	}

	var imagedGet *result
	if b.o.runs("get") {
		imagedGet = measure("imaged GET /api/images/{id}", srv.pid(), getTarget)
	}
	if b.o.runs("list") {
		if err := b.measureList(ctx, srv.base, auth, func(name string, t target) *result { return measure(name, srv.pid(), t) }); err != nil {
			return err
		}
	}
	srv.stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	if imagedGet == nil {
		return nil
	}

	// The baseline, with the same requests, after imaged has exited.
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	bl, err := startChild(ctx, "baseline", b.baseline, []string{"-addr", addr, "-size", strconv.Itoa(size)},
		childEnv(), addr, "/", filepath.Join(b.work, "baseline.log"))
	if err != nil {
		return err
	}
	defer bl.stop()
	getTarget.next = func(r *rand.Rand) string { return bl.base + "/api/images/" + ids[r.IntN(len(ids))].ID }
	baseGet := measure("baseline GET", bl.pid(), getTarget)
	bl.stop()
	if err := ctx.Err(); err != nil {
		return err
	}

	fmt.Fprintf(b.report, "GET /api/images/{id}  %s  %d conns  %s:  imaged %s | baseline %s | ratio %.2f\n",
		b.be.name, l.Conns, l.Dur, figures(imagedGet), figures(baseGet),
		imagedGet.throughput()/baseGet.throughput())
	details(b.report, []string{"imaged", "baseline"}, []*result{imagedGet, baseGet})
	verdict := "met"
	if imagedGet.throughput() < 0.6*baseGet.throughput() || imagedGet.Latency.quantile(0.99) >= 10*time.Millisecond {
		verdict = "NOT met"
	}
	fmt.Fprintf(b.report, "  target imaged/baseline >= 0.60 and p99 < 10ms at %d conns: %s\n\n", l.Conns, verdict)
	return nil
}

// measureList compares the first page of GET /api/images with the page
// that starts at 90% of the seeded images, reached by a cursor computed from
// the seeded data as a client walking the pages would have received it.
func (b *bench) measureList(ctx context.Context, base string, auth http.Header, measure func(string, target) *result) error {
	imgs := b.seed.images
	pageSize := images.DefaultPageSize
	// Newest first: position k is imgs[len-1-k]; the deep page starts at
	// position depth, after the cursor of the image just before it.
	depth := (len(imgs) * 9 / 10) / pageSize * pageSize
	if depth < 1 {
		return fmt.Errorf("-list needs at least %d seeded images", pageSize*10)
	}
	last := imgs[len(imgs)-depth]
	cursor := (&imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID, Page: depth/pageSize + 1}).Encode()
	first := fmt.Sprintf("%s/api/images?pageSize=%d", base, pageSize)
	deep := fmt.Sprintf("%s&cursor=%s", first, cursor)

	// The deep page must hold the images that follow the cursor; the API
	// upload made in measureReads is newer than every seeded image, so it
	// only shifts the first page.
	body, err := get(ctx, deep, auth)
	if err != nil {
		return fmt.Errorf("deep page: %w", err)
	}
	var page struct {
		Data []struct{ ID string }
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Data) == 0 || page.Data[0].ID != imgs[len(imgs)-depth-1].ID {
		return fmt.Errorf("deep page does not start where the cursor points (%v)", err)
	}

	fixed := func(u string) target {
		return target{header: auth, want: http.StatusOK, next: func(*rand.Rand) string { return u }}
	}
	r1 := measure("imaged GET /api/images first page", fixed(first))
	r2 := measure(fmt.Sprintf("imaged GET /api/images at depth %d", depth), fixed(deep))
	fmt.Fprintf(b.report, "GET /api/images?pageSize=%d  %s  %d conns  %s:  first page %s | cursor at %d of %d (90%%) %s | deep/first p50 %.2f p99 %.2f\n",
		pageSize, b.be.name, b.o.conns, b.o.dur, figures(r1), depth, len(imgs), figures(r2),
		ratio(r2.Latency.quantile(0.5), r1.Latency.quantile(0.5)),
		ratio(r2.Latency.quantile(0.99), r1.Latency.quantile(0.99)))
	details(b.report, []string{"first page", "90% deep"}, []*result{r1, r2})
	fmt.Fprintln(b.report)
	return nil
}

// measureUploads restarts imaged, so that its peak RSS counts from a fresh
// start, and sends it the concurrent large uploads.
func (b *bench) measureUploads(ctx context.Context) error {
	path := filepath.Join(b.work, "large.png")
	progress("writing a %d MiB PNG", images.DefaultMaxFileSize>>20)
	size, err := writeLargePNG(path, images.DefaultMaxFileSize)
	if err != nil {
		return err
	}
	srv, err := b.startImaged(ctx, "imaged-uploads.log")
	if err != nil {
		return err
	}
	defer srv.stop()
	progress("uploading %d x %.1f MiB at once", b.o.uploads, mib(size))
	res, err := uploadConcurrently(ctx, srv.pid(), srv.base, b.token, path, b.o.uploads)
	if err != nil {
		return err
	}
	srv.stop()
	peak := max(res.HWM, res.PeakRSS)
	verdict := "OK"
	if peak >= rssLimit {
		verdict = "OVER THE LIMIT"
	}
	fmt.Fprintf(b.report, "upload %dx%.1fMiB  %s  %d/%d answered 201 in %s:  peak RSS (VmHWM) %.1f MiB (limit %d MiB) %s | idle RSS %.1f MiB, largest sampled VmRSS %.1f MiB (%d samples)\n",
		res.Files, mib(res.FileSize), b.be.name, res.Created, res.Files, res.Took.Round(time.Millisecond),
		mib(peak), rssLimit>>20, verdict, mib(res.Idle.RSS), mib(res.PeakRSS), res.Samples)
	if res.Created != res.Files {
		fmt.Fprintf(b.report, "  upload failures: %d, first: %s\n", res.Files-res.Created, res.FirstErr)
	}
	return nil
}

// figures formats one load result on one line.
func figures(r *result) string {
	s := fmt.Sprintf("%.0f req/s p50 %s p99 %s", r.throughput(), ms(r.Latency.quantile(0.5)), ms(r.Latency.quantile(0.99)))
	if r.Errors > 0 {
		return s + fmt.Sprintf(" ERRORS %d (first: %s)", r.Errors, r.FirstErr)
	}
	return s
}

// details writes a table of load results: latency quantiles, errors and
// where the CPU went.
func details(w io.Writer, names []string, rs []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t\treq/s\tp50\tp90\tp99\tp99.9\terrors\tserver CPU/req\tserver cores\tload-gen cores\tother processes' cores\t")
	for i, r := range rs {
		secs := r.Elapsed.Seconds()
		fmt.Fprintf(tw, "\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%.2f\t%.2f\t%.2f\t\n", names[i],
			r.throughput(), ms(r.Latency.quantile(0.5)), ms(r.Latency.quantile(0.9)),
			ms(r.Latency.quantile(0.99)), ms(r.Latency.quantile(0.999)), r.Errors,
			us(r.cpuPerRequest()), r.ServerCPU.Seconds()/secs, r.ClientCPU.Seconds()/secs, r.OtherCPU.Seconds()/secs)
	}
	tw.Flush()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// loadAverage is the machine's 1, 5 and 15 minute load average: other work
// on the machine skews every figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// smallPNG is the one real image of the seeded store: a 64x64 gradient.
func smallPNG() ([]byte, int, int) {
	const w, h = 64, 64
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes(), w, h
}

// uploadOne uploads data through the API and returns the new image's id.
func uploadOne(ctx context.Context, base, token string, data []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "bench.png")
	if err != nil {
		return "", err
	}
	part.Write(data)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/media/upload", &body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Data struct{ ID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d (%v)", resp.StatusCode, err)
	}
	return answer.Data.ID, nil
}

// get returns the body of a GET that must answer 200.
func get(ctx context.Context, url string, header http.Header) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if header != nil {
		req.Header = header.Clone()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return body, nil
}
