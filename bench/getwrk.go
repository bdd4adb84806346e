package main

// The GET benchmark's load generator is wrk (Debian package): written in C,
// it takes far less CPU per request than a Go client would, so that on a
// small machine the server, not the load generator, is what is measured.
// wrk -t2 -c{-c} runs a Lua script that asks for
// GET /api/images/{id} with ids picked at random (per thread) among the
// seeded images, with a real bearer token in -H; the baseline gets the same
// requests. --latency gives the 50th, 75th, 90th and 99th percentiles.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// getWrkScript picks a random id of the file %q for every request.
const getWrkScript = `-- Written by the imaged benchmark (bench/getwrk.go).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

local ids = {}
function init(args)
  for line in io.lines(%q) do ids[#ids + 1] = line end
  math.randomseed(os.time() * 1000 + seed)
end

function request()
  return wrk.format("GET", "/api/images/" .. ids[math.random(#ids)])
end
`

// wrkGet is what one wrk run of the GET benchmark measured.
type wrkGet struct {
	reqPerSec float64
	latency   map[string]time.Duration // by percentile: "50", "75", "90", "99"
	non2xx    int
	errors    string        // wrk's "Socket errors" line, if any
	serverCPU time.Duration // per request
	dbCPU     time.Duration // per request, when a database process is known
}

func (r *wrkGet) p(q string) time.Duration { return r.latency[q] }

// failed says why the run does not count, or "".
func (r *wrkGet) failed() string {
	var s []string
	if r.non2xx > 0 {
		s = append(s, fmt.Sprintf("%d answers other than 2xx", r.non2xx))
	}
	if r.errors != "" {
		s = append(s, r.errors)
	}
	return strings.Join(s, ", ")
}

var (
	wrkPercentile = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
)

// writeIDs writes the ids the script picks from, one a line.
func (b *bench) writeIDs(name string, ids []string) (string, error) {
	path := filepath.Join(b.work, "ids-"+name+".txt")
	return path, os.WriteFile(path, []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}

// runGetWrk drives base with the GET script over the ids in idsFile: a
// warm-up of -warmup, not counted, then -d measured, with the CPU time of
// the server (pid) and of the database (dbPID, 0 if none) over the window.
func (b *bench) runGetWrk(ctx context.Context, name, base, idsFile string, pid, dbPID int) (*wrkGet, error) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return nil, errors.New("GET: wrk is not installed (Debian package wrk)")
	}
	script := filepath.Join(b.work, "get-"+filepath.Base(idsFile)+".lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(getWrkScript, idsFile)), 0o644); err != nil {
		return nil, err
	}
	secs := func(d time.Duration) string { return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s" }
	args := func(d time.Duration) []string {
		return []string{"-t2", "-c" + strconv.Itoa(b.o.conns), "-d" + secs(d), "--timeout", "10s", "--latency",
			"-H", "Authorization: Bearer " + b.tokens[getOwner], "-s", script, base}
	}
	progress("%s: wrk -t2 -c%d, %s warm-up + %s", name, b.o.conns, b.o.warmup, b.o.dur)
	if b.o.warmup > 0 {
		if out, err := exec.CommandContext(ctx, wrk, args(b.o.warmup)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("wrk: %v: %s", err, out)
		}
	}
	var wait func() error
	if b.o.cpuprofile != "" && !b.profiled && pid != 0 {
		b.profiled = true
		wait = b.profile(ctx, load{Dur: b.o.dur}, b.o.cpuprofile)
	}
	before, err := treeCPU(pid)
	if err != nil {
		return nil, err
	}
	var dbBefore map[int]time.Duration
	if dbPID != 0 {
		if dbBefore, err = treeCPU(dbPID); err != nil {
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, wrk, args(b.o.dur)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, out)
	}
	after, err := treeCPU(pid)
	if err != nil {
		return nil, err
	}
	r, err := parseWrkGet(string(out))
	if err != nil {
		return nil, err
	}
	if n := r.reqPerSec * b.o.dur.Seconds(); n > 0 {
		r.serverCPU = time.Duration(float64(treeCPUSince(before, after)) / n)
		if dbBefore != nil {
			if dbAfter, err := treeCPU(dbPID); err == nil {
				r.dbCPU = time.Duration(float64(treeCPUSince(dbBefore, dbAfter)) / n)
			}
		}
	}
	if wait != nil {
		if err := wait(); err != nil {
			progress("CPU profile failed: %v", err)
		} else {
			progress("CPU profile of imaged during %s written to %s", name, b.o.cpuprofile)
		}
	}
	return r, nil
}

// parseWrkGet reads wrk's report.
func parseWrkGet(s string) (*wrkGet, error) {
	m := wrkReqPerSec.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("wrk printed no Requests/sec: %s", s)
	}
	r := &wrkGet{latency: map[string]time.Duration{}}
	r.reqPerSec, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkErrors.FindString(s); m != "" {
		r.errors = strings.TrimSpace(m)
	}
	for _, m := range wrkPercentile.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		r.latency[m[1]] = time.Duration(v * float64(unit))
	}
	if _, ok := r.latency["99"]; !ok {
		return nil, fmt.Errorf("wrk printed no latency distribution: %s", s)
	}
	return r, nil
}

// wrkFigures formats one wrk run on one line.
func wrkFigures(r *wrkGet) string {
	s := fmt.Sprintf("%.0f req/s p50 %s p99 %s", r.reqPerSec, ms(r.p("50")), ms(r.p("99")))
	if f := r.failed(); f != "" {
		s += " FAILED: " + f
	}
	return s
}
