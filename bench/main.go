// Command bench measures imaged as a user runs it: it builds the real
// binary, starts it as a child process on a loopback port with a fresh data
// directory, and drives it over HTTP: with wrk for GET by id and delivery,
// with an in-process load generator for the rest.
// It is a program that prints figures, not a test: nothing it measures
// passes or fails a build.
//
// Run it from the repository, on the embedded default (SQLite and a local
// directory; what make bench runs):
//
//	go run ./bench [flags]
//
// and to measure imaged on PostgreSQL too, in the same run and next to the
// embedded default (scripts/start-postgres.sh starts a throw-away cluster
// and prints its URL):
//
//	eval "$(scripts/start-postgres.sh)"; go run ./bench -database-url "$IMAGED_TEST_DATABASE_URL"
//
// What it does, in order:
//
//  1. Builds cmd/imaged and bench/baseline into a temporary directory, and
//     mints tokens with `imaged token`.
//  2. SQLite: seeds -n images of the subject "bench" straight through the
//     store packages (sqlite.Open + CreateImage, one real PNG through
//     fsblob), before the server starts.
//  3. Starts imaged (default configuration, log level info, its output in a
//     file), uploads one real image through the API and measures the size of
//     a GET /api/images/{id} answer.
//  4. GET: wrk -t2 -c{-c} (the Debian package; see getwrk.go) sends
//     GET /api/images/{id} with ids picked at random among the seeded
//     images and a real token, for a -warmup, then for -d with --latency.
//     It measures throughput, p50 to p99, answers other than 2xx and the
//     CPU per request of imaged (and of PostgreSQL).
//  5. List (with -list): -list-c connections on GET /api/images (first page)
//     and on the page that starts at 90% of the seeded images, reached by a
//     cursor computed from the seeded data; p50, p99 and their ratio,
//     against the target: the deep page no slower than twice the first.
//  6. PostgreSQL (with -database-url or $IMAGED_BENCH_DATABASE_URL, a
//     postgres:// URL; -list is then on unless -list=false): in a schema of
//     its own, bench_<random>, created in that database, passed to imaged
//     with search_path in IMAGED_DATABASE_URL and dropped at the end, it
//     seeds -n images of "bench" and, for the listing, -deep + 200 images of
//     "bench-deep" (1,000,200 by default) with COPY, in the columns
//     postgres.CreateImage writes (about a minute per million rows), then
//     vacuums and analyzes them and recomputes the per-owner counts. It runs
//     steps 3 to 5 on it, the deep page being the one at position -deep,
//     whose cursor is computed with imaged.Cursor.Encode (no walking), and
//     prints the plans (EXPLAIN ANALYZE, custom and generic) of the deep
//     page's two queries. Blobs stay in the data directory, or go to S3 when
//     IMAGED_BENCH_S3_BUCKET is set: IMAGED_BENCH_S3_* are then given to
//     imaged as IMAGED_S3_*, under a prefix of the run's own, emptied at the
//     end.
//  7. Baseline: bench/baseline, a bare net/http server in a process of its
//     own answering a constant application/json body of the same size, is
//     driven with the same wrk run; every backend's GET figures are printed
//     next to it with the ratio imaged/baseline and the verdict on the
//     target (>= 0.6 with p99 < 10 ms).
//  8. Generation (SQLite), each figure at 1 and at 16 concurrent clients,
//     each run a one-second warm-up then -gen-d, the work done back to
//     back by each client:
//     - the service's own cost per generation: in this process, a
//     generation.Service over a SQLite file and a blob directory of its own
//     (in the temporary directory), behind images.Service, with no quota
//     (imaged's default) and one provider, "fixed", that answers at once
//     with the same pre-encoded PNG (the builtin's 1024x1024 render of the
//     prompt, about 300 KiB). Its latency is everything but the provider:
//     validation, the quota reservation and its finish in the database,
//     inspection, hashing, the blob write with its fsync and the metadata
//     insert;
//     - the builtin provider's render time: its Generate called directly
//     (render and PNG encoding of one image) at 1:1 and 16:9. At 16 clients
//     on a 2-core machine the renders wait for a core: the throughput is
//     the figure, the latency mostly queueing;
//     - images per second end to end: a fresh imaged (the SQLite store)
//     receives POST /api/images/generate {"prompt", "aspectRatio": "1:1"}
//     with the builtin provider from 1 and 16 keep-alive connections, with
//     a token of the subject "bench-gen"; any status but 200 is an error.
//     One generation is checked first (one 1024x1024 image whose URL serves
//     its bytes).
//     It prints one line per figure (ops/s, mean, p50, p99 at each
//     concurrency), the sum at 1 client of render and service time next to
//     the API's latency, and a table with the op counts, more quantiles and
//     the CPU per op (this process's for the in-process rows, imaged's for
//     the API).
//  9. Upload memory (SQLite): a fresh imaged process receives -uploads
//     concurrent uploads of a valid PNG of random, uncompressed pixels just
//     under 20 MiB, each streamed from disk through a pipe (no client
//     buffering), while its VmRSS and VmHWM are sampled from /proc every
//     50ms. It reports the peak against the 150 MiB budget; every upload
//     must answer 201.
//
// Flags:
//
//	-c N             concurrent connections of wrk on GET (64)
//	-list-c N        concurrent connections of the listing load (16)
//	-d DURATION      measured window of each load run (10s)
//	-warmup DURATION load before each measured window, not counted (2s)
//	-n N             images to seed for GET and the SQLite listing (100000)
//	-database-url U  also measure imaged on the PostgreSQL database at U
//	                 (default $IMAGED_BENCH_DATABASE_URL)
//	-deep N          position of the PostgreSQL listing's deep page (1000000)
//	-only WHAT       run one benchmark only: get, list, gen, upload,
//	                 provenance, search (search.go: a search's cost at 100k
//	                 and 1M images, in process), validation (validation.go: upload
//	                 validation throughput against io.Copy, in process),
//	                 delivery (delivery.go; needs wrk and nginx), render
//	                 (render.go; needs wrk), webhooks (webhooks.go: webhook
//	                 delivery throughput, in process) or sse (sse.go: 1,000
//	                 event streams held open, imaged's memory and CPU against
//	                 a bare net/http server's); delivery and render run only
//	                 when asked
//	-search-cache DIR   keep the search benchmark's seeded SQLite files in DIR
//	                 and reuse them (seeding a million images takes minutes)
//	-delivery-rounds N  wrk rounds per file in the delivery benchmark (2)
//	-imgproxy FILE   the imgproxy binary of -only render (render.go), the
//	                 anchor (default $IMGPROXY_BIN; skipped when absent)
//	-render-mem      -only render: also the peak RSS under 64 renders at once
//	-render-soak N   -only render: also N renders in a row, RSS as it goes
//	-list            also run the listing benchmark (first page vs deep page)
//	-skip-upload     skip the upload memory test
//	-uploads N       concurrent uploads in the memory test (16)
//	-gen-d DURATION  measured window of each generation run (5s)
//	-image-cache N   run imaged with --image-cache N (default: imaged's own,
//	                 65,536 images)
//	-cpuprofile FILE write a CPU profile of imaged during its first load run
//	                 (with -only delivery: one per file, FILE.<file>, of
//	                 its first round)
//	                 (the server is built with net/http/pprof on a private
//	                 port through go build -overlay; the source is untouched);
//	                 read it with: go tool pprof -top FILE
//	-keep            keep the temporary directory (binaries, data, logs)
//
// Each load run prints one summary line (throughput, p50 and p99, and for
// GET the throughput ratio to the baseline), then a table with more
// quantiles, the error count and where the CPU went during the measured
// window, read from /proc: imaged's CPU time per request, PostgreSQL's (its
// postmaster and backends, when it runs on this machine), and the cores used
// by imaged, by PostgreSQL, by the load generator (this process) and by
// every other process of the machine. The CPU time per request is the
// figure that other work on the machine disturbs least.
//
// Figures and limits of the measurement:
//
//   - Only loopback traffic. Everything runs on one machine: imaged (or the
//     baseline), PostgreSQL and the load generator share its CPUs, each Go
//     process with the default GOMAXPROCS (the CPU count). On a 2-core
//     machine the load generator takes a large share of the CPU, so absolute
//     numbers are low and the ratio to the baseline is the figure to
//     compare. Run it on an otherwise idle machine: the "other processes'
//     cores" column and the load average in the header show when it was not.
//   - With -n images (default 100000) the SQLite file is about 50 MB, larger
//     than SQLite's page cache, so random lookups read pages from the OS
//     cache as a real store would. The PostgreSQL table holds both subjects'
//     images (1.1 million rows by default).
//   - -only gen and -only upload seed a single image, in SQLite only; the
//     generation and upload tests do not need more.
//   - Generation stores every image it makes: the in-process runs write
//     about 2 GB of blobs to the temporary directory (a few thousand images
//     at 300 KiB), through fsync, so the disk under the temporary directory
//     is part of the service's figure. The process measured in-process is
//     this one, with the default GOMAXPROCS as imaged.
//   - imaged keeps its default log level (info): one access log line per
//     request goes to a file in the temporary directory, as in production.
//   - The whole run is bounded: each load run lasts -warmup + -d, requests
//     time out after 10s, uploads after 3 minutes, each PostgreSQL
//     administration statement after a minute. Child processes are stopped
//     (and killed with the benchmark if it dies), the temporary directory is
//     removed and the PostgreSQL schema dropped; only a benchmark killed
//     with SIGKILL leaves a bench_* schema behind.
//   - The default run takes 3 to 4 minutes, most of it seeding SQLite one
//     image at a time, and the generation benchmark about a minute
//     (-only gen takes just over a minute with the build); -database-url
//     adds about a minute (COPY seeds a
//     million rows in 20 to 30 seconds) plus the extra load runs.
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
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
)

// rssLimit is the memory budget of imaged during the upload test.
const rssLimit = 150 << 20

type options struct {
	conns     int
	listConns int
	// searchCache keeps the search benchmark's seeded SQLite files.
	searchCache string
	dur         time.Duration
	warmup      time.Duration
	n           int
	deep        int
	dbURL       string
	only        string
	list        bool
	skipUpload  bool
	uploads     int
	genDur      time.Duration
	cpuprofile  string
	imageCache  string // imaged's --image-cache, "" for its default
	keep        bool

	deliveryRounds int
	imgproxy       string // the imgproxy binary of the render benchmark's anchor
	renderMem      bool
	renderSoak     int
}

func main() {
	var o options
	flag.IntVar(&o.conns, "c", 64, "concurrent connections of the load generator")
	flag.IntVar(&o.listConns, "list-c", 16, "concurrent connections of the load generator in the listing benchmark")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "measured window of each load run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each measured window, not counted")
	flag.IntVar(&o.n, "n", 100000, "images to seed for GET (and for the SQLite listing)")
	flag.IntVar(&o.deep, "deep", 1000000, "position of the deep page of the PostgreSQL listing")
	flag.StringVar(&o.dbURL, "database-url", os.Getenv("IMAGED_BENCH_DATABASE_URL"),
		"also measure imaged on this PostgreSQL database (`postgres://...`; default $IMAGED_BENCH_DATABASE_URL)")
	flag.StringVar(&o.only, "only", "", "run one benchmark only: get, list, gen, upload, provenance (marking cost, in process), search (search cost at 100k and 1M images, in process; PostgreSQL too with -database-url), validation (upload validation throughput, in process), delivery or render (these two run only when asked; they need wrk, delivery nginx too), webhooks (webhook delivery throughput, in process), sse (1,000 event streams held open)")
	flag.StringVar(&o.imgproxy, "imgproxy", os.Getenv("IMGPROXY_BIN"), "the imgproxy `binary` of the render benchmark's anchor (default $IMGPROXY_BIN; the benchmark never builds it)")
	flag.BoolVar(&o.renderMem, "render-mem", false, "render benchmark: also the peak RSS under 64 concurrent renders")
	flag.IntVar(&o.renderSoak, "render-soak", 0, "render benchmark: also `N` renders in a row on the fast path, RSS after each tenth")
	flag.StringVar(&o.searchCache, "search-cache", "", "search benchmark: keep the seeded SQLite files in `dir` and reuse them in later runs")
	flag.IntVar(&o.deliveryRounds, "delivery-rounds", 2, "rounds of wrk per file in the delivery benchmark, imaged then nginx each round")
	flag.BoolVar(&o.list, "list", false, "also run the listing benchmark (first page vs a deep page; default true with -database-url)")
	flag.BoolVar(&o.skipUpload, "skip-upload", false, "skip the upload memory test")
	flag.IntVar(&o.uploads, "uploads", 16, "concurrent uploads in the memory test")
	flag.DurationVar(&o.genDur, "gen-d", 5*time.Second, "measured window of each run of the generation benchmark")
	flag.StringVar(&o.imageCache, "image-cache", "", "run imaged with --image-cache `N` (images whose metadata it keeps in memory; default: imaged's own)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of imaged during its first load run to `file` (delivery: one per file, to file.<file>)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, data, server logs)")
	flag.Parse()
	listSet := false
	flag.Visit(func(f *flag.Flag) { listSet = listSet || f.Name == "list" })
	if o.dbURL != "" && !listSet {
		o.list = true
	}
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
	case "get", "list", "gen", "upload", "provenance", "search", "validation", "delivery", "render", "webhooks", "sse":
		o.list = o.list || o.only == "list"
	default:
		return fmt.Errorf("-only must be get, list, gen, upload, provenance, search, validation, delivery, render, webhooks or sse, got %q", o.only)
	}
	if o.renderSoak < 0 {
		return fmt.Errorf("-render-soak must not be negative")
	}
	if o.conns < 1 || o.listConns < 1 || o.dur <= 0 || o.genDur <= 0 || o.warmup < 0 || o.uploads < 1 {
		return fmt.Errorf("-c, -list-c and -uploads must be positive, -d and -gen-d positive, -warmup not negative")
	}
	if o.n < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	if o.runs("list") && o.n < 10*images.DefaultPageSize {
		return fmt.Errorf("-list needs -n of at least %d", 10*images.DefaultPageSize)
	}
	if o.deep < images.DefaultPageSize {
		return fmt.Errorf("-deep must be at least %d", images.DefaultPageSize)
	}
	return nil
}

func (o *options) runs(what string) bool {
	switch what {
	case "get":
		return o.only == "" || o.only == "get"
	case "list":
		return o.list && (o.only == "" || o.only == "list")
	case "gen":
		return o.only == "" || o.only == "gen"
	case "upload":
		return !o.skipUpload && (o.only == "" || o.only == "upload")
	case "delivery":
		return o.only == "delivery"
	}
	return false
}

// Owners of the seeded images: GET and the SQLite listing use getOwner's
// images, the PostgreSQL listing deepOwner's.
const (
	getOwner  = "bench"
	deepOwner = "bench-deep"
)

// bench is one run: its options, where its files are and what it found.
type bench struct {
	o        options
	root     string // the module's directory
	work     string // the temporary directory
	dataDir  string // shared by every backend: the SQLite file, local blobs, the token secret
	imaged   string // the built binaries
	baseline string
	tokens   map[string]string // bearer tokens by owner
	png      []byte            // the one real image
	width    int
	height   int
	sha      string
	profiled bool   // a CPU profile was taken
	pprof    string // address of imaged's pprof listener, with -cpuprofile
	report   io.Writer
}

// backendRun is what was seeded in and measured on one backend.
type backendRun struct {
	be    *backend
	get   *seedSet // getOwner's images
	ids   []string // their ids
	list  *seedSet // the images listed: get on SQLite, deepOwner's on PostgreSQL
	depth int      // the position of the first image of the deep page
	size  int      // bytes of a GET /api/images/{id} answer

	idsFile     string  // r.ids, one a line, for wrk
	getRes      *wrkGet // GET /api/images/{id}
	first, deep *result
}

func run(ctx context.Context, o options) (err error) {
	switch o.only {
	case "provenance":
		return measureProvenance(ctx, os.Stdout)
	case "validation":
		return measureValidation(ctx, os.Stdout)
	case "search":
		return measureSearch(ctx, os.Stdout, o.dbURL, o.searchCache)
	case "webhooks":
		return measureWebhooks(ctx, os.Stdout)
	}
	b := &bench{o: o, tokens: map[string]string{}, report: os.Stdout}
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
	if o.only == "render" {
		return b.measureRender(ctx)
	}
	if o.only == "sse" {
		return b.measureSSE(ctx)
	}

	shared := "imaged and the load generator"
	if o.dbURL != "" {
		shared = "imaged, the load generator and PostgreSQL"
	}
	fmt.Printf("imaged benchmark: %s %s/%s, GOMAXPROCS %d, %d CPUs (shared by %s), load average %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), shared, loadAverage())

	b.png, b.width, b.height = smallPNG()
	sum := sha256.Sum256(b.png)
	b.sha = hex.EncodeToString(sum[:])
	reads := o.runs("get") || o.runs("list")
	n := o.n
	if !reads {
		n = 1
	}
	for _, owner := range []string{getOwner, deepOwner, genOwner} {
		if b.tokens[owner], err = b.mintToken(ctx, owner); err != nil {
			return err
		}
	}

	sq := &backendRun{be: sqliteBackend()}
	runs := []*backendRun{sq}
	if o.dbURL != "" && reads {
		pg, err := postgresBackend(ctx, o.dbURL)
		if err != nil {
			return err
		}
		defer pg.close()
		runs = append(runs, &backendRun{be: pg})
	}
	for _, r := range runs {
		if r.get, err = b.seed(ctx, r.be, getOwner, n); err != nil {
			return err
		}
		r.ids = r.get.ids()
		r.list = r.get
		r.depth = (n * 9 / 10) / images.DefaultPageSize * images.DefaultPageSize
		if r.be.explain != nil && o.runs("list") {
			// Deep enough for a cursor at o.deep and ten more pages.
			if r.list, err = b.seed(ctx, r.be, deepOwner, o.deep+10*images.DefaultPageSize); err != nil {
				return err
			}
			r.depth = o.deep
		}
		fmt.Fprintln(b.report)
		if reads {
			if err := b.measureReads(ctx, r); err != nil {
				return err
			}
		}
	}
	if o.runs("get") {
		if err := b.compareGets(ctx, runs); err != nil {
			return err
		}
	}
	if o.runs("gen") {
		if err := b.measureGeneration(ctx, sq.be); err != nil {
			return err
		}
	}
	if o.runs("upload") {
		if err := b.measureUploads(ctx, sq.be); err != nil {
			return err
		}
	}
	if o.runs("delivery") {
		if err := b.measureDelivery(ctx, sq.be); err != nil {
			return err
		}
	}
	return nil
}

// seed stores n images of owner in be and says how long it took.
func (b *bench) seed(ctx context.Context, be *backend, owner string, n int) (*seedSet, error) {
	s := newSeedSet(owner, n, b.png, b.width, b.height, b.sha)
	progress("seeding %d images of %q in %s", n, owner, be.name)
	took, err := seed(ctx, be, b.dataDir, s)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", be.name, err)
	}
	fmt.Fprintf(b.report, "store: %s, %d images of subject %q seeded in %s (%.0f/s)\n",
		be.name, n, owner, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return s, nil
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

// mintToken makes a token for owner with the secret of the data directory,
// which every backend's imaged uses.
func (b *bench) mintToken(ctx context.Context, owner string) (string, error) {
	cmd := exec.CommandContext(ctx, b.imaged, "token", "--sub", owner, "--data-dir", b.dataDir)
	cmd.Env = childEnv()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("imaged token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *bench) auth(owner string) http.Header {
	return http.Header{"Authorization": {"Bearer " + b.tokens[owner]}}
}

// startImaged starts imaged on be and the seeded data directory.
func (b *bench) startImaged(ctx context.Context, be *backend, logName string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := childEnv(be.env...)
	if b.o.cpuprofile != "" {
		if b.pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, pprofEnv+"="+b.pprof)
	}
	args := []string{"serve", "--addr", addr, "--data-dir", b.dataDir}
	if b.o.imageCache != "" {
		args = append(args, "--image-cache", b.o.imageCache)
	}
	return startChild(ctx, "imaged", b.imaged, args,
		env, addr, "/readyz", filepath.Join(b.work, logName))
}

// measure drives t with l, the server being pid; the first run of the
// benchmark is profiled with -cpuprofile.
func (b *bench) measure(ctx context.Context, name string, l load, pid int, t target) *result {
	return b.measureWith(ctx, name, l, pid, func(l load) *result { return l.run(ctx, t) })
}

// measureWith runs l with run, the server being pid (0 when the work is
// in this process); the first run of an imaged process is profiled with
// -cpuprofile.
func (b *bench) measureWith(ctx context.Context, name string, l load, pid int, run func(load) *result) *result {
	progress("%s: %d concurrent, %s warm-up + %s", name, l.Conns, l.Warmup, l.Dur)
	l.ServerPID = pid
	var wait func() error
	if b.o.cpuprofile != "" && !b.profiled && pid != 0 {
		b.profiled = true
		wait = b.profile(ctx, l, b.o.cpuprofile)
	}
	res := run(l)
	if wait != nil {
		if err := wait(); err != nil {
			progress("CPU profile failed: %v", err)
		} else {
			progress("CPU profile of imaged during %s written to %s", name, b.o.cpuprofile)
		}
	}
	return res
}

// measureReads starts imaged on r's backend and runs the GET (and list)
// benchmarks on it.
func (b *bench) measureReads(ctx context.Context, r *backendRun) error {
	srv, err := b.startImaged(ctx, r.be, "imaged-reads-"+r.be.name+".log")
	if err != nil {
		return err
	}
	defer srv.stop()
	auth := b.auth(getOwner)

	// One real upload through the API, to check the service end to end.
	id, err := uploadOne(ctx, srv.base, b.tokens[getOwner], b.png)
	if err != nil {
		return fmt.Errorf("%s: upload through the API: %w", r.be.name, err)
	}
	if _, err := get(ctx, srv.base+"/api/images/"+id, auth); err != nil {
		return fmt.Errorf("%s: get the uploaded image: %w", r.be.name, err)
	}
	one, err := get(ctx, srv.base+"/api/images/"+r.ids[0], auth)
	if err != nil {
		return fmt.Errorf("%s: get a seeded image: %w", r.be.name, err)
	}
	var answer struct {
		Data struct{ URL string }
	}
	if err := json.Unmarshal(one, &answer); err != nil {
		return fmt.Errorf("%s: get a seeded image: %w", r.be.name, err)
	}
	if _, err := get(ctx, answer.Data.URL, nil); err != nil {
		return fmt.Errorf("%s: get a seeded image's bytes: %w", r.be.name, err)
	}
	r.size = len(one)
	fmt.Fprintf(b.report, "%s: answer of GET /api/images/{id}: %d bytes\n", r.be.name, r.size)

	if b.o.runs("get") {
		if r.idsFile == "" {
			if r.idsFile, err = b.writeIDs(r.be.name, r.ids); err != nil {
				return err
			}
		}
		r.getRes, err = b.runGetWrk(ctx, "imaged on "+r.be.name+" GET /api/images/{id}", srv.base, r.idsFile, srv.pid(), r.be.dbPID)
		if err != nil {
			return fmt.Errorf("%s: GET: %w", r.be.name, err)
		}
	}
	if b.o.runs("list") {
		extra := 0 // the API upload above, for the owner that made it
		if r.list.owner == getOwner {
			extra = 1
		}
		if err := b.measureList(ctx, r, srv.pid(), srv.base, extra); err != nil {
			return err
		}
	}
	srv.stop()
	return ctx.Err()
}

// compareGets drives the baseline with the GET load and prints every
// backend's GET figures next to it.
func (b *bench) compareGets(ctx context.Context, runs []*backendRun) error {
	size := runs[0].size
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
	base, err := b.runGetWrk(ctx, "baseline GET", bl.base, runs[0].idsFile, bl.pid(), 0)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	bl.stop()
	if err := ctx.Err(); err != nil {
		return err
	}

	fmt.Fprintf(b.report, "\nGET /api/images/{id}  wrk -t2 -c%d -d%s, random ids among %d images of one subject; baseline: a bare net/http handler answering %d bytes; load average %s:\n",
		b.o.conns, b.o.dur, b.o.n, size, loadAverage())
	for _, r := range runs {
		fmt.Fprintf(b.report, "  %-12s %s | imaged/baseline %.2f\n", r.be.name, wrkFigures(r.getRes), r.getRes.reqPerSec/base.reqPerSec)
	}
	fmt.Fprintf(b.report, "  %-12s %s\n", "baseline", wrkFigures(base))
	tw := tabwriter.NewWriter(b.report, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t\treq/s\tp50\tp75\tp90\tp99\tserver CPU/req\tdb CPU/req\t")
	row := func(name string, r *wrkGet, db bool) {
		dbReq := "-"
		if db {
			dbReq = us(r.dbCPU)
		}
		fmt.Fprintf(tw, "\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, r.reqPerSec,
			ms(r.p("50")), ms(r.p("75")), ms(r.p("90")), ms(r.p("99")), us(r.serverCPU), dbReq)
	}
	for _, r := range runs {
		row("imaged on "+r.be.name, r.getRes, r.be.dbPID != 0)
	}
	row("baseline", base, false)
	tw.Flush()
	for _, r := range runs {
		verdict := "met"
		if r.getRes.failed() != "" || r.getRes.reqPerSec < 0.6*base.reqPerSec || r.getRes.p("99") >= 10*time.Millisecond {
			verdict = "NOT met"
		}
		fmt.Fprintf(b.report, "  target imaged/baseline >= 0.60 and p99 < 10ms at %d conns, %s: %s\n", b.o.conns, r.be.name, verdict)
	}
	fmt.Fprintln(b.report)
	return nil
}

// measureList compares the first page of GET /api/images with the page
// that starts at position r.depth of r.list, newest first, reached by the
// cursor a client walking the pages would have received there, computed
// from the seeded data. extra images newer than the seeded ones shift the
// first page only.
func (b *bench) measureList(ctx context.Context, r *backendRun, pid int, base string, extra int) error {
	s, depth := r.list, r.depth
	pageSize := images.DefaultPageSize
	last := s.image(s.atDepth(depth - 1))
	cur := &imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID, Page: depth/pageSize + 1}
	first := fmt.Sprintf("%s/api/images?pageSize=%d", base, pageSize)
	secret, err := jwtauth.LoadOrCreateSecret(filepath.Join(b.dataDir, "jwt-secret"))
	if err != nil {
		return err
	}
	deep := fmt.Sprintf("%s&cursor=%s", first, imhttp.EncodeCursor(imhttp.CursorKeyFrom(secret), s.owner, cur))
	auth := b.auth(s.owner)

	// The deep page must hold the images that follow the cursor, and the
	// count must be every image of the owner.
	body, err := get(ctx, deep, auth)
	if err != nil {
		return fmt.Errorf("%s: deep page: %w", r.be.name, err)
	}
	var page struct {
		Data       []struct{ ID string }
		Pagination struct{ TotalItems int64 }
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Data) == 0 || page.Data[0].ID != s.image(s.atDepth(depth)).ID {
		return fmt.Errorf("%s: the deep page does not start where the cursor points (%v)", r.be.name, err)
	}
	if want := int64(s.n + extra); page.Pagination.TotalItems != want {
		return fmt.Errorf("%s: the listing counts %d images of %q, not %d", r.be.name, page.Pagination.TotalItems, s.owner, want)
	}

	l := load{Conns: b.o.listConns, Warmup: b.o.warmup, Dur: b.o.dur, DatabasePID: r.be.dbPID}
	fixed := func(u string) target {
		return target{header: auth, want: http.StatusOK, next: func(*rand.Rand) string { return u }}
	}
	r.first = b.measure(ctx, "imaged on "+r.be.name+" GET /api/images first page", l, pid, fixed(first))
	r.deep = b.measure(ctx, fmt.Sprintf("imaged on %s GET /api/images at depth %d", r.be.name, depth), l, pid, fixed(deep))
	if err := ctx.Err(); err != nil {
		return err
	}
	p50 := ratio(r.deep.Latency.quantile(0.5), r.first.Latency.quantile(0.5))
	p99 := ratio(r.deep.Latency.quantile(0.99), r.first.Latency.quantile(0.99))
	fmt.Fprintf(b.report, "GET /api/images?pageSize=%d  %s  %d conns  %s, %d images of one subject:  first page %s | cursor at %d %s | deep/first p50 %.2f p99 %.2f\n",
		pageSize, r.be.name, l.Conns, l.Dur, s.n+extra, figures(r.first), depth, figures(r.deep), p50, p99)
	details(b.report, []string{"first page", fmt.Sprintf("at %d", depth)}, []*result{r.first, r.deep})
	verdict := "met"
	if p50 > 2 || p99 > 2 {
		verdict = "NOT met"
	}
	fmt.Fprintf(b.report, "  target deep page no slower than twice the first (p50 and p99): %s\n", verdict)
	if r.be.explain != nil {
		fmt.Fprintf(b.report, "  the deep page's queries, run once more after the load:\n")
		if err := r.be.explain(ctx, b.report, s.owner, cur, pageSize); err != nil {
			return fmt.Errorf("%s: explain: %w", r.be.name, err)
		}
	}
	fmt.Fprintln(b.report)
	return nil
}

// measureUploads restarts imaged on be, so that its peak RSS counts from a
// fresh start, and sends it the concurrent large uploads.
func (b *bench) measureUploads(ctx context.Context, be *backend) error {
	path := filepath.Join(b.work, "large.png")
	progress("writing a %d MiB PNG", images.DefaultMaxFileSize>>20)
	size, err := writeLargePNG(path, images.DefaultMaxFileSize)
	if err != nil {
		return err
	}
	srv, err := b.startImaged(ctx, be, "imaged-uploads.log")
	if err != nil {
		return err
	}
	defer srv.stop()
	progress("uploading %d x %.1f MiB at once", b.o.uploads, mib(size))
	res, err := uploadConcurrently(ctx, srv.pid(), srv.base, b.tokens[getOwner], path, b.o.uploads)
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
		res.Files, mib(res.FileSize), be.name, res.Created, res.Files, res.Took.Round(time.Millisecond),
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
	fmt.Fprintln(tw, "\t\treq/s\tp50\tp90\tp99\tp99.9\terrors\tserver CPU/req\tdb CPU/req\tserver cores\tdb cores\tload-gen cores\tother processes' cores\t")
	for i, r := range rs {
		secs := r.Elapsed.Seconds()
		dbReq, dbCores := "-", "-"
		if r.Database {
			dbReq, dbCores = us(r.dbCPUPerRequest()), fmt.Sprintf("%.2f", r.DatabaseCPU.Seconds()/secs)
		}
		fmt.Fprintf(tw, "\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%.2f\t%s\t%.2f\t%.2f\t\n", names[i],
			r.throughput(), ms(r.Latency.quantile(0.5)), ms(r.Latency.quantile(0.9)),
			ms(r.Latency.quantile(0.99)), ms(r.Latency.quantile(0.999)), r.Errors,
			us(r.cpuPerRequest()), dbReq, r.ServerCPU.Seconds()/secs, dbCores,
			r.ClientCPU.Seconds()/secs, r.OtherCPU.Seconds()/secs)
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
