package render

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
)

// Config configures a Pool.
type Config struct {
	// Workers is how many renders run at once (default: the number of CPUs).
	Workers int
	// Queue is how many renders may wait for a worker (default 64); past it
	// a render is refused at once with EUnavailable and a RetryAfter.
	Queue int
	// Timeout bounds one render once it has a worker (default 30s). An
	// isolated worker that overruns it is killed.
	Timeout time.Duration
	// Limits bound the sources and outputs.
	Limits Limits
	// Observe, when set, is called after every render that had a worker,
	// with its duration and its error (for metrics).
	Observe func(d time.Duration, err error)
	// Logger receives the isolated workers' crashes and restarts.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultQueue   = 64
	DefaultTimeout = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// worker runs one render at a time. It calls release when it can take the
// next one, which may be after render returned (a timed-out in-process
// render still holds its CPU until it notices).
type worker interface {
	render(ctx context.Context, src []byte, opt Options, release func()) (*Result, error)
	close()
}

// Pool is a Renderer with a bounded number of workers, a bounded queue and
// a time limit per render. Its sources are read only once a worker is free,
// so waiting renders hold no image in memory.
type Pool struct {
	cfg     Config
	idle    chan worker
	all     []worker
	waiting atomic.Int64
	busy    atomic.Int64
	stats   struct {
		rendered, failed, rejected, timedOut, crashed, restarts atomic.Uint64
		nanos                                                   atomic.Int64
	}
	closeOnce sync.Once
	// sentHook, in tests, is called once an isolated worker has its request.
	sentHook func()
}

func newPool(cfg Config, newWorker func(*Pool) worker) *Pool {
	p := &Pool{cfg: cfg, idle: make(chan worker, cfg.Workers)}
	for i := 0; i < cfg.Workers; i++ {
		w := newWorker(p)
		p.all = append(p.all, w)
		p.idle <- w
	}
	return p
}

// NewInProcess returns a Pool whose workers are goroutines of this process.
// A panic in a render is recovered; a crash of native or WASM code would
// take the process down, which NewIsolated prevents.
func NewInProcess(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	return newPool(cfg, func(p *Pool) worker { return &localWorker{limits: cfg.Limits} })
}

// Render implements Renderer.
func (p *Pool) Render(ctx context.Context, src io.Reader, opt Options) (*Result, error) {
	if err := opt.Validate(p.cfg.Limits.MaxSide); err != nil {
		return nil, err
	}
	w, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.busy.Add(1)
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.busy.Add(-1)
			p.idle <- w
		})
	}
	b, err := readSource(src, p.cfg.Limits.MaxSourceBytes)
	if err != nil {
		release()
		return nil, err
	}
	// A render outlives a caller that goes away (its variant is still worth
	// storing) but never its time limit.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res, err := w.render(rctx, b, opt, release)
	d := time.Since(start)
	p.stats.nanos.Add(int64(d))
	if err != nil {
		p.stats.failed.Add(1)
		if rctx.Err() == context.DeadlineExceeded {
			p.stats.timedOut.Add(1)
		}
	} else {
		p.stats.rendered.Add(1)
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(d, err)
	}
	return res, err
}

// acquire takes an idle worker, waiting in the queue if there is room.
func (p *Pool) acquire(ctx context.Context) (worker, error) {
	select {
	case w := <-p.idle:
		return w, nil
	default:
	}
	if p.waiting.Add(1) > int64(p.cfg.Queue) {
		p.waiting.Add(-1)
		p.stats.rejected.Add(1)
		return nil, &imaged.Error{Code: imaged.EUnavailable, Message: "Too many renders are waiting; try again shortly", RetryAfter: time.Second}
	}
	defer p.waiting.Add(-1)
	select {
	case w := <-p.idle:
		return w, nil
	case <-ctx.Done():
		return nil, asRenderError(ctx.Err())
	}
}

// Stats are a Pool's counters, for metrics and logs.
type Stats struct {
	Workers    int // renders that can run at once
	Busy       int // renders running
	Queued     int // renders waiting for a worker
	QueueLimit int
	Rendered   uint64        // renders that succeeded
	Failed     uint64        // renders that failed (bad sources, time-outs, crashes)
	Rejected   uint64        // renders refused because the queue was full
	TimedOut   uint64        // renders stopped at the time limit
	Crashed    uint64        // renders whose worker process died under them
	Restarts   uint64        // worker processes started again after one died or was killed
	RenderTime time.Duration // time spent in renders, in all (mean: RenderTime/(Rendered+Failed))
	PIDs       []int         // the running worker processes (isolated pools)
}

// Stats returns the pool's counters now.
func (p *Pool) Stats() Stats {
	return Stats{
		Workers: p.cfg.Workers, Busy: int(p.busy.Load()), Queued: int(p.waiting.Load()), QueueLimit: p.cfg.Queue,
		Rendered: p.stats.rendered.Load(), Failed: p.stats.failed.Load(), Rejected: p.stats.rejected.Load(),
		TimedOut: p.stats.timedOut.Load(), Crashed: p.stats.crashed.Load(), Restarts: p.stats.restarts.Load(),
		RenderTime: time.Duration(p.stats.nanos.Load()),
		PIDs:       p.pids(),
	}
}

// pids lists the worker processes that are running.
func (p *Pool) pids() []int {
	var out []int
	for _, w := range p.all {
		if pw, ok := w.(*processWorker); ok {
			if pid := pw.pid(); pid > 0 {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Close stops the pool's workers (worker processes exit).
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		for _, w := range p.all {
			w.close()
		}
	})
	return nil
}

// localWorker renders in a goroutine of this process.
type localWorker struct{ limits Limits }

func (l *localWorker) render(ctx context.Context, src []byte, opt Options, release func()) (*Result, error) {
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer release()
		res, err := renderBytes(ctx, src, opt, l.limits)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		// The goroutine stops at its next step and only then frees the worker.
		return nil, asRenderError(ctx.Err())
	}
}

func (l *localWorker) close() {}
