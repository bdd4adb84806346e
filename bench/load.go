package main

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

// load says how to drive a server.
type load struct {
	Conns  int           // concurrent connections, one goroutine each
	Warmup time.Duration // requests finished before this are not counted
	Dur    time.Duration // the measured window after the warm-up
	// ServerPID, when set, is the server's process, whose CPU time over
	// the measured window is reported next to the load generator's.
	ServerPID int
	// DatabasePID, when set, is the PostgreSQL server imaged uses: the CPU
	// time of its postmaster and backends is reported too.
	DatabasePID int
}

// target is what the load generator asks for: next returns the URL of the
// next request, picked with the worker's own random source.
type target struct {
	next   func(r *rand.Rand) string
	header http.Header
	want   int // the status that counts as success
}

// result is what one load run measured.
type result struct {
	Requests int64 // successful requests finished in the window
	Errors   int64 // failed requests (other status, transport error), warm-up included
	FirstErr string
	Elapsed  time.Duration
	Latency  *histogram
	// ServerCPU, DatabaseCPU and ClientCPU are the CPU time the server
	// process, its database server (PostgreSQL, all processes) and the whole
	// benchmark process (the load generator) used in the window, and
	// OtherCPU what every other process of the machine used; 0 when unknown.
	ServerCPU, DatabaseCPU, ClientCPU, OtherCPU time.Duration
	Database                                    bool // DatabaseCPU was measured
}

func (r *result) throughput() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// cpuPerRequest is the server's CPU time per successful request.
func (r *result) cpuPerRequest() time.Duration { return r.perRequest(r.ServerCPU) }

// dbCPUPerRequest is the database server's CPU time per successful request.
func (r *result) dbCPUPerRequest() time.Duration { return r.perRequest(r.DatabaseCPU) }

func (r *result) perRequest(d time.Duration) time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return d / time.Duration(r.Requests)
}

// run drives t with l.Conns workers. Each worker has its own keep-alive
// client and connection and sends GET requests back to back.
func (l load) run(ctx context.Context, t target) *result {
	seed := uint64(time.Now().UnixNano())
	return l.drive(ctx, func(i int) (op, func()) {
		client, done := newClient(l.Conns)
		rnd := rand.New(rand.NewPCG(seed, uint64(i)))
		header := t.header.Clone()
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.next(rnd), nil)
			if err != nil {
				return err
			}
			req.Header = header
			return send(client, req, t.want)
		}, done
	})
}

// newClient returns a keep-alive HTTP client of its own, for one worker of
// a load of conns workers, and what closes its connections.
func newClient(conns int) (*http.Client, func()) {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections
}

// send sends req with client, reads the whole answer and fails unless its
// status is want.
func send(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// op is one operation of a load worker (a request, a call); nil means it
// succeeded.
type op func(ctx context.Context) error

// drive runs l.Conns workers, worker i calling the op that newOp(i) returns
// back to back until the measured window ends, then the function newOp
// returned with it. Each op's latency is recorded in the worker's histogram
// if it finished inside the measured window; an op that finishes after it
// ends its worker.
func (l load) drive(ctx context.Context, newOp func(i int) (op, func())) *result {
	start := time.Now()
	from, until := start.Add(l.Warmup), start.Add(l.Warmup+l.Dur)
	type worker struct {
		ok, errs int64
		firstErr string
		h        *histogram
	}
	ws := make([]worker, l.Conns)
	var wg sync.WaitGroup
	cpu := make(chan cpuUse, 1)
	go func() { cpu <- l.cpuOver(ctx, from, until) }()
	for i := range ws {
		w := &ws[i]
		w.h = newHistogram()
		do, done := newOp(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done()
			for ctx.Err() == nil {
				t0 := time.Now()
				err := do(ctx)
				t1 := time.Now()
				if t1.After(until) {
					return
				}
				if err != nil {
					if w.errs == 0 {
						w.firstErr = err.Error()
					}
					w.errs++
					continue
				}
				if t1.After(from) {
					w.ok++
					w.h.record(t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	res := &result{Elapsed: l.Dur, Latency: newHistogram(), Database: l.DatabasePID != 0}
	if ctx.Err() != nil {
		res.Elapsed = max(time.Since(from), time.Millisecond)
	}
	c := <-cpu
	res.ServerCPU, res.DatabaseCPU, res.ClientCPU = c.server, c.database, c.client
	res.OtherCPU = max(c.machine-c.server-c.database-c.client, 0)
	for i := range ws {
		res.Requests += ws[i].ok
		res.Errors += ws[i].errs
		if res.FirstErr == "" {
			res.FirstErr = ws[i].firstErr
		}
		res.Latency.merge(ws[i].h)
	}
	return res
}

// cpuUse is the CPU time used by the server, its database, this process
// and the whole machine over some time.
type cpuUse struct{ server, database, client, machine time.Duration }

// cpuOver measures the CPU time the server, its database, this process and
// the whole machine use between from and until; zeros if it cannot.
func (l load) cpuOver(ctx context.Context, from, until time.Time) cpuUse {
	type sample struct {
		cpuUse
		db map[int]time.Duration
	}
	take := func() (s sample, err error) {
		if l.ServerPID != 0 {
			if s.server, err = cpuTime(l.ServerPID); err != nil {
				return s, err
			}
		}
		if l.DatabasePID != 0 {
			if s.db, err = treeCPU(l.DatabasePID); err != nil {
				return s, err
			}
		}
		if s.client, err = cpuTime(os.Getpid()); err != nil {
			return s, err
		}
		s.machine, err = machineBusy()
		return s, err
	}
	wait := func(t time.Time) bool {
		select {
		case <-time.After(time.Until(t)):
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !wait(from) {
		return cpuUse{}
	}
	s0, err := take()
	if err != nil || !wait(until) {
		return cpuUse{}
	}
	s1, err := take()
	if err != nil {
		return cpuUse{}
	}
	return cpuUse{
		server:   s1.server - s0.server,
		database: treeCPUSince(s0.db, s1.db),
		client:   s1.client - s0.client,
		machine:  s1.machine - s0.machine,
	}
}

// histogram counts durations in log-linear buckets, like HdrHistogram: exact
// below 128ns, then 128 buckets per power of two, so any quantile is within
// 0.8% of the true value. Recording does not allocate.
type histogram struct {
	counts []int64
	total  int64
	sum    time.Duration // of every recorded duration, for the mean
}

const subBits = 7 // 1<<subBits buckets per power of two

func newHistogram() *histogram {
	return &histogram{counts: make([]int64, (64-subBits+1)<<subBits)}
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketMid is the value in the middle of bucket i.
func bucketMid(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	lo := uint64(i&(1<<subBits-1)+1<<subBits) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.total++
	h.sum += d
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
}

// mean is the mean of the recorded durations.
func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// quantile returns the duration below which a fraction q of the recorded
// durations fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(i))
		}
	}
	return 0
}
