package render

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"

	"github.com/imaged/imaged"
)

// NewIsolated returns a Pool whose workers are supervised child processes,
// each made by command (cmd/imaged runs itself as `imaged render-worker`)
// and serving ServeWorker on its stdin and stdout. A worker that crashes
// (native or WASM code failing, the kernel's OOM killer) or overruns the time
// limit (it is killed) costs the render it was doing, which fails with
// EInternal; the next render starts a new process. The service itself is
// never taken down by a render.
func NewIsolated(cfg Config, command func() *exec.Cmd) *Pool {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newPool(cfg, func(p *Pool) worker {
		return &processWorker{pool: p, command: command, limits: cfg.Limits, log: log}
	})
}

// processWorker is one supervised worker process, started on first use and
// again after it died.
type processWorker struct {
	pool    *Pool
	command func() *exec.Cmd
	limits  Limits
	log     *slog.Logger

	mu      sync.Mutex // guards the fields below against close
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	exited  chan struct{} // closed once the process is reaped
	waitErr error
	starts  int
	closed  bool
}

func (w *processWorker) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("render pool closed")
	}
	cmd := w.command()
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if w.starts > 0 {
		w.pool.stats.restarts.Add(1)
		w.log.Warn("render worker restarted", "pid", cmd.Process.Pid)
	}
	w.starts++
	w.cmd, w.stdin, w.stdout = cmd, stdin, bufio.NewReaderSize(stdout, 64<<10)
	exited := make(chan struct{})
	w.exited = exited
	go func() {
		err := cmd.Wait()
		w.mu.Lock()
		w.waitErr = err
		w.mu.Unlock()
		close(exited)
	}()
	return nil
}

// alive reports whether the process is running.
func (w *processWorker) alive() bool {
	if w.cmd == nil {
		return false
	}
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// pid is the running process's id, 0 if none.
func (w *processWorker) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.alive() {
		return 0
	}
	return w.cmd.Process.Pid
}

// kill stops the process and waits until it is reaped.
func (w *processWorker) kill() {
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Kill()
	<-w.exited
}

func (w *processWorker) render(ctx context.Context, src []byte, opt Options, release func()) (*Result, error) {
	defer release()
	if !w.alive() {
		if err := w.start(); err != nil {
			return nil, &imaged.Error{Code: imaged.EInternal, Message: "The render failed", Err: fmt.Errorf("starting a render worker: %w", err)}
		}
	}
	type reply struct {
		kind byte
		ok   okHeader
		fail errorHeader
		body []byte
		err  error
	}
	done := make(chan reply, 1)
	stdin, stdout := w.stdin, w.stdout
	go func() {
		var r reply
		if r.err = writeFrame(stdin, frameRequest, requestHeader{Options: opt, Limits: w.limits}, src); r.err != nil {
			done <- r
			return
		}
		if w.pool.sentHook != nil {
			w.pool.sentHook()
		}
		var hdr struct {
			okHeader
			errorHeader
		}
		r.kind, r.body, r.err = readFrame(stdout, maxWorkerSource, &hdr)
		r.ok, r.fail = hdr.okHeader, hdr.errorHeader
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			// The pipe broke: the process died under the render.
			w.kill()
			w.pool.stats.crashed.Add(1)
			w.mu.Lock()
			status := w.waitErr
			w.mu.Unlock()
			w.log.Error("render worker died during a render", "pid", w.cmd.Process.Pid, "status", status, "err", r.err)
			return nil, &imaged.Error{Code: imaged.EInternal, Message: "The render failed", Err: fmt.Errorf("render worker died: %v (%v)", status, r.err)}
		}
		switch r.kind {
		case frameOK:
			return &Result{MediaType: r.ok.MediaType, Width: r.ok.Width, Height: r.ok.Height, Data: r.body}, nil
		case frameError:
			return nil, &imaged.Error{Code: imaged.ErrorCode(r.fail.Code), Message: r.fail.Message, Err: errors.New(r.fail.Detail)}
		}
		w.kill()
		return nil, &imaged.Error{Code: imaged.EInternal, Message: "The render failed", Err: errors.New("render worker: unexpected reply")}
	case <-ctx.Done():
		// Over the time limit: the process is killed, which also ends the
		// goroutine above (its pipes close).
		w.kill()
		<-done
		w.log.Warn("render worker killed", "pid", w.cmd.Process.Pid, "reason", ctx.Err())
		return nil, asRenderError(ctx.Err())
	}
}

func (w *processWorker) close() {
	w.mu.Lock()
	w.closed = true
	stdin, exited := w.stdin, w.exited
	w.mu.Unlock()
	if stdin != nil {
		stdin.Close() // the worker's loop ends at EOF
		<-exited
	}
}
