package main

// The delivery benchmark (-only delivery): the bytes of an image as a CDN
// origin serves them, against nginx serving the same file from disk.
//
//  1. Starts imaged on the embedded default (SQLite, blobs in the data
//     directory) and uploads two PNGs of random pixels, of about 100 KiB
//     and 1 MiB, whose URLs (/cdn/{key}) are the originals measured, and
//     a photo-like JPEG of 2048x2048. Two variants (IMAGED_VARIANTS) are
//     fetched once, so that they are rendered and stored, then measured at
//     their URLs (/cdn/{key}/{preset}) like the originals: the photo's
//     "delivery" (a WebP of at most 1200x1200 at quality 85, about 90 KiB)
//     and "delivery-png" of another 1 MiB PNG of noise (a PNG of it,
//     about 1 MiB).
//  2. Writes each answer's bytes into a directory that nginx (the Debian
//     package, found on PATH) serves from a generated configuration on a
//     loopback port, at the same path: sendfile on, two worker processes
//     (one per core, as `worker_processes auto` gives here), keep-alive
//     without a request limit (imaged has none), an access log buffered
//     like imaged's (64 KiB, flushed every 100 ms).
//  3. Starts bench/baseline -dir on the same directory: a bare net/http
//     handler that opens each file and sends it with sendfile, the floor of
//     Go's HTTP server on this machine.
//  4. For each file, -delivery-rounds times: wrk -t2 -c32 -d{-d} against
//     imaged, then nginx, then the bare handler, each after a warm-up of
//     -warmup. It prints req/s of each, the ratios to nginx, and the CPU
//     each server used per request (from /proc: imaged's process; nginx's
//     master and workers; the bare handler's process), then for each file
//     the median of its rounds' ratios to nginx.
//
// wrk and the servers share the machine's cores: the ratio, measured in the
// same run, is the figure; the absolute numbers depend on the machine.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The presets of the stored variants measured: a WebP of at most 1200x1200
// at quality 85, about 90 KiB from the photo-like source, and a PNG of at
// most 2048x2048, about 1 MiB from a 1 MiB PNG of noise.
const (
	deliveryPreset        = "delivery"
	deliveryPresetSpec    = "1200x1200,fit=inside,format=webp,quality=85"
	deliveryPNGPreset     = "delivery-png"
	deliveryPNGPresetSpec = "2048x2048,fit=inside,format=png"
)

// deliveryFile is one URL measured: its path on both servers and its size.
type deliveryFile struct {
	name string // "original 100 KiB"
	path string // /cdn/...
	size int
	body []byte
}

// slug names f in a file name: "variant-86-KiB-WebP".
func (f *deliveryFile) slug() string { return strings.ReplaceAll(f.name, " ", "-") }

// wrkResult is what one wrk run reported.
type wrkResult struct {
	reqPerSec float64
	p50, p99  string
	non2xx    int
	errors    string
	cpuPerReq time.Duration
}

func (b *bench) measureDelivery(ctx context.Context, be *backend) error {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("delivery: wrk is not installed (Debian package wrk)")
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return errors.New("delivery: nginx is not installed (Debian package nginx)")
		}
		nginx = "/usr/sbin/nginx"
	}

	withPreset := *be
	withPreset.env = append(append([]string(nil), be.env...), "IMAGED_VARIANTS="+deliveryPreset+"="+deliveryPresetSpec+"; "+deliveryPNGPreset+"="+deliveryPNGPresetSpec)
	srv, err := b.startImaged(ctx, &withPreset, "imaged-delivery.log")
	if err != nil {
		return err
	}
	defer srv.stop()
	token := b.tokens[getOwner]

	var files []*deliveryFile
	for _, size := range []int{100 << 10, 1 << 20} {
		data := noisePNG(size)
		img, err := uploadImage(ctx, srv.base, token, data)
		if err != nil {
			return err
		}
		f, err := deliveryTarget(ctx, fmt.Sprintf("original %s PNG", sizeName(len(data))), img.URL)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	// Stored variants: the "delivery" preset of a photo-like JPEG of
	// 2048x2048 and the "delivery-png" one of another 1 MiB PNG of noise
	// (not the original measured: nginx's copy of that is a file where
	// this variant's path would need a directory).
	photo, err := uploadImage(ctx, srv.base, token, encodeJPEG(photoLike(2048, 2048, 5), 90))
	if err != nil {
		return err
	}
	large, err := uploadImage(ctx, srv.base, token, noisePNG(1<<20+1))
	if err != nil {
		return err
	}
	for _, v := range []struct {
		img            *apiImage
		preset, format string
	}{{photo, deliveryPreset, "WebP"}, {large, deliveryPNGPreset, "PNG"}} {
		f, err := storedVariant(ctx, v.img, v.preset)
		if err != nil {
			return err
		}
		f.name = fmt.Sprintf("variant %s %s", sizeName(f.size), v.format)
		files = append(files, f)
	}

	// nginx serves the same bytes at the same paths. Its workers run as
	// another user when started as root: let them through the temporary
	// directory (mode 0700), to their own directory only.
	if err := os.Chmod(b.work, 0o711); err != nil {
		return err
	}
	root := filepath.Join(b.work, "nginx")
	for _, f := range files {
		p := filepath.Join(root, "www", filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.body, 0o644); err != nil {
			return err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	conf, err := writeNginxConf(root, addr)
	if err != nil {
		return err
	}
	ng, err := startChild(ctx, "nginx", nginx, []string{"-p", root, "-c", conf, "-e", filepath.Join(root, "error.log")},
		childEnv(), addr, "/readyz", filepath.Join(b.work, "nginx.out"))
	if err != nil {
		return err
	}
	defer ng.stop()
	// The floor of Go's net/http on this machine: a bare handler sending the
	// same files with sendfile (bench/baseline -dir).
	baddr, err := freeAddr()
	if err != nil {
		return err
	}
	bl, err := startChild(ctx, "baseline", b.baseline, []string{"-addr", baddr, "-dir", filepath.Join(root, "www")},
		childEnv(), baddr, files[0].path, filepath.Join(b.work, "baseline-files.log"))
	if err != nil {
		return err
	}
	defer bl.stop()

	rounds := b.o.deliveryRounds
	fmt.Fprintf(b.report, "\ndelivery: wrk -t2 -c32 -d%s, %d round(s) per file, imaged then nginx each round; load average %s\n",
		b.o.dur, rounds, loadAverage())
	tw := tabwriter.NewWriter(b.report, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfile\tbytes\tround\timaged req/s\tp50\tp99\tCPU/req\tnginx req/s\tp50\tp99\tCPU/req\tratio\tnet/http req/s\tCPU/req\tratio\t")
	ratios := make([][]float64, len(files)) // imaged / nginx, per file and round
	for i, f := range files {
		for round := 1; round <= rounds; round++ {
			// With -cpuprofile, imaged's first measured window of each file
			// is profiled, to the file's own profile.
			var wait func() error
			prof := b.o.cpuprofile + "." + f.slug()
			if b.o.cpuprofile != "" && round == 1 {
				wait = b.profile(ctx, load{Warmup: b.o.warmup, Dur: b.o.dur}, prof)
			}
			im, err := runWrk(ctx, wrk, srv.base+f.path, b.o.warmup, b.o.dur, srv.pid())
			if wait != nil {
				if perr := wait(); perr != nil {
					progress("CPU profile failed: %v", perr)
				} else {
					progress("CPU profile of imaged during delivery of %s written to %s", f.name, prof)
				}
			}
			if err != nil {
				return fmt.Errorf("delivery: imaged %s: %w", f.name, err)
			}
			nx, err := runWrk(ctx, wrk, ng.base+f.path, b.o.warmup, b.o.dur, ng.pid())
			if err != nil {
				return fmt.Errorf("delivery: nginx %s: %w", f.name, err)
			}
			gh, err := runWrk(ctx, wrk, bl.base+f.path, b.o.warmup, b.o.dur, bl.pid())
			if err != nil {
				return fmt.Errorf("delivery: net/http floor %s: %w", f.name, err)
			}
			if im.non2xx > 0 || nx.non2xx > 0 || gh.non2xx > 0 || im.errors != "" || nx.errors != "" || gh.errors != "" {
				return fmt.Errorf("delivery: %s: failed answers: imaged %d non-2xx %s, nginx %d non-2xx %s, net/http %d non-2xx %s",
					f.name, im.non2xx, im.errors, nx.non2xx, nx.errors, gh.non2xx, gh.errors)
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%.2f\t%.0f\t%s\t%.2f\t\n", f.name, f.size, round,
				im.reqPerSec, im.p50, im.p99, us(im.cpuPerReq), nx.reqPerSec, nx.p50, nx.p99, us(nx.cpuPerReq),
				im.reqPerSec/nx.reqPerSec, gh.reqPerSec, us(gh.cpuPerReq), gh.reqPerSec/nx.reqPerSec)
			progress("delivery %s round %d: imaged %.0f req/s, nginx %.0f req/s (%.2f); bare net/http %.0f req/s (%.2f)", f.name, round,
				im.reqPerSec, nx.reqPerSec, im.reqPerSec/nx.reqPerSec, gh.reqPerSec, gh.reqPerSec/nx.reqPerSec)
			ratios[i] = append(ratios[i], im.reqPerSec/nx.reqPerSec)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The machine's other work moves single rounds; the median of the
	// rounds is the figure to compare with the 0.8 goal.
	for i, f := range files {
		r := slices.Sorted(slices.Values(ratios[i]))
		at := 0
		for _, x := range r {
			if x >= 0.8 {
				at++
			}
		}
		fmt.Fprintf(b.report, "delivery %s: imaged / nginx median %.2f over %d rounds (%.2f-%.2f), %d at or above 0.8\n",
			f.name, (r[(len(r)-1)/2]+r[len(r)/2])/2, len(r), r[0], r[len(r)-1], at)
	}
	return nil
}

// apiImage is the part of the image object the benchmark reads.
type apiImage struct {
	ID       string            `json:"id"`
	URL      string            `json:"url"`
	Variants map[string]string `json:"variants"`
}

// uploadImage uploads data and returns its image object.
func uploadImage(ctx context.Context, base, token string, data []byte) (*apiImage, error) {
	id, err := uploadOne(ctx, base, token, data)
	if err != nil {
		return nil, fmt.Errorf("delivery: upload: %w", err)
	}
	body, err := get(ctx, base+"/api/images/"+id, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	var answer struct{ Data apiImage }
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	return &answer.Data, nil
}

// deliveryTarget fetches rawURL once (rendering it if it is a variant) and
// describes it.
func deliveryTarget(ctx context.Context, name, rawURL string) (*deliveryFile, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	body, err := get(ctx, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("delivery: %s: %w", name, err)
	}
	return &deliveryFile{name: name, path: u.EscapedPath(), size: len(body), body: body}, nil
}

// storedVariant fetches img's variant of preset once, so that it is
// rendered and stored, and describes the stored bytes, which are then
// served from the blob store like an original.
func storedVariant(ctx context.Context, img *apiImage, preset string) (*deliveryFile, error) {
	u, ok := img.Variants[preset]
	if !ok {
		return nil, fmt.Errorf("delivery: the image has no %q variant: %v", preset, img.Variants)
	}
	if _, err := deliveryTarget(ctx, "variant", u); err != nil { // renders and stores it
		return nil, err
	}
	return deliveryTarget(ctx, "variant", u)
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// noisePNG is an opaque PNG of random pixels, which do not compress, of
// about size bytes.
func noisePNG(size int) []byte {
	side := 1
	for (side+1)*(side+1)*3 <= size {
		side++
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := 0; i < len(img.Pix); i += 4 {
		v := r.Uint32()
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = byte(v), byte(v>>8), byte(v>>16), 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// writeNginxConf writes nginx's configuration for serving root/www on addr
// and returns its path.
func writeNginxConf(root, addr string) (string, error) {
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    access_log %[1]s/access.log combined buffer=64k flush=100ms;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen %[2]s;
        root %[1]s/www;
        location = /readyz { return 200 "ok"; }
        location / {
            add_header Cache-Control "public, max-age=31536000, immutable";
            add_header X-Content-Type-Options nosniff;
        }
    }
}
`, root, addr)
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(root, "nginx.conf")
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

var (
	wrkReqPerSec = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkNon2xx    = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkErrors    = regexp.MustCompile(`Socket errors:[^\n]*`)
	wrkLatency   = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\S+)`)
)

// runWrk drives u with wrk -t2 -c32 for warmup (not counted), then for dur,
// and measures the CPU time of the process tree of pid meanwhile.
func runWrk(ctx context.Context, wrk, u string, warmup, dur time.Duration, pid int) (*wrkResult, error) {
	return runWrkWith(ctx, wrk, u, 32, nil, nil, warmup, dur, pid)
}

// runWrkWith is runWrk with conns connections, extra wrk arguments before
// the URL (a -s script) and script arguments after it.
func runWrkWith(ctx context.Context, wrk, u string, conns int, extra, scriptArgs []string, warmup, dur time.Duration, pid int) (*wrkResult, error) {
	secs := func(d time.Duration) string { return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s" }
	args := func(d time.Duration, more ...string) []string {
		a := append([]string{"-t2", "-c" + strconv.Itoa(conns), "-d" + secs(d)}, more...)
		a = append(a, extra...)
		a = append(a, u)
		if len(scriptArgs) > 0 {
			a = append(append(a, "--"), scriptArgs...)
		}
		return a
	}
	if warmup > 0 {
		if out, err := exec.CommandContext(ctx, wrk, args(warmup)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("wrk: %v: %s", err, out)
		}
	}
	before, err := treeCPU(pid)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, wrk, args(dur, "--latency")...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, out)
	}
	after, err := treeCPU(pid)
	if err != nil {
		return nil, err
	}
	s := string(out)
	m := wrkReqPerSec.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("wrk printed no Requests/sec: %s", s)
	}
	r := &wrkResult{}
	r.reqPerSec, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkErrors.FindString(s); m != "" {
		r.errors = strings.TrimSpace(m)
	}
	for _, m := range wrkLatency.FindAllStringSubmatch(s, -1) {
		if m[1] == "50" {
			r.p50 = m[2]
		} else {
			r.p99 = m[2]
		}
	}
	if n := r.reqPerSec * dur.Seconds(); n > 0 {
		r.cpuPerReq = time.Duration(float64(treeCPUSince(before, after)) / n)
	}
	return r, nil
}
