package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The event streams benchmark (-only sse) holds sseStreams Server-Sent Events
// streams open on one imaged process (SQLite, the embedded default) and
// reports its memory and CPU, next to the same number of streams on the
// baseline (bench/baseline -sse: a bare net/http handler that sends one
// event and waits). imaged runs one worker whose provider (a fake Stable
// Diffusion web UI in this process) never answers, and sseStreams jobs are
// queued, so every stream stays open after its first event ("queued"): one
// job per stream, as clients following their own jobs would. Each stream is
// a connection of its own from this process. It measures the time to open
// them all (each counts once its first event arrived), VmRSS before and
// after, and the CPU each server used during sseHold with every stream idle
// (imaged's: the one database poll per 500ms that serves every stream, and
// the heartbeats).
const (
	sseStreams = 1000
	sseHold    = 10 * time.Second
)

type sseRow struct {
	name             string
	open             time.Duration
	before, after    memory
	holdCPU          time.Duration
	opened, expected int
}

func (b *bench) measureSSE(ctx context.Context) error {
	fmt.Fprintf(b.report, "event streams benchmark: %d streams, one connection each, held %s (one machine: imaged, the baseline and the clients share its CPUs)\n", sseStreams, sseHold)
	release := make(chan struct{})
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a provider that never answers: the job stays running
		case <-r.Context().Done():
		case <-release:
		}
		http.Error(w, `{"detail":"stopped"}`, http.StatusServiceUnavailable)
	}))
	defer fake.Close()
	defer close(release) // first: Close waits for the held requests

	token, err := b.mintToken(ctx, genOwner)
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := childEnv("IMAGED_SDWEBUI_URL="+fake.URL, "IMAGED_DEFAULT_PROVIDER=sdwebui", "IMAGED_WORKERS=1", "IMAGED_GENERATION_TIMEOUT=10m")
	srv, err := startChild(ctx, "imaged", b.imaged, []string{"serve", "--addr", addr, "--data-dir", b.dataDir},
		env, addr, "/readyz", filepath.Join(b.work, "imaged-sse.log"))
	if err != nil {
		return err
	}
	defer srv.stop()
	progress("queueing %d jobs", sseStreams)
	ids, err := submitJobs(ctx, srv.base, token, sseStreams)
	if err != nil {
		return err
	}
	im, err := holdStreams(ctx, "imaged", srv.pid(), func(i int) string {
		return srv.base + "/api/images/generations/" + ids[i] + "/events"
	}, token)
	if err != nil {
		return err
	}
	srv.stop()

	baddr, err := freeAddr()
	if err != nil {
		return err
	}
	bl, err := startChild(ctx, "baseline", b.baseline, []string{"-addr", baddr, "-sse"}, childEnv(), baddr, "/", filepath.Join(b.work, "baseline-sse.log"))
	if err != nil {
		return err
	}
	defer bl.stop()
	base, err := holdStreams(ctx, "baseline (bare net/http)", bl.pid(), func(i int) string { return bl.base + "/events" }, "")
	if err != nil {
		return err
	}
	bl.stop()

	tw := tabwriter.NewWriter(b.report, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tstreams open\topened in\tRSS before\tRSS with the streams\tper stream\tCPU during the hold\tcores\t")
	for _, r := range []*sseRow{im, base} {
		per := float64(r.after.RSS-r.before.RSS) / float64(max(r.opened, 1))
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%.1f MiB\t%.1f MiB\t%.1f KiB\t%s\t%.3f\t\n", r.name, r.opened, r.expected,
			r.open.Round(time.Millisecond), mib(r.before.RSS), mib(r.after.RSS), per/1024, r.holdCPU.Round(time.Millisecond),
			r.holdCPU.Seconds()/sseHold.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	perIm := float64(im.after.RSS-im.before.RSS) / float64(max(im.opened, 1))
	perBase := float64(base.after.RSS-base.before.RSS) / float64(max(base.opened, 1))
	fmt.Fprintf(b.report, "memory per stream, imaged / baseline: %.2f\n", perIm/max(perBase, 1))
	return nil
}

// submitJobs queues n asynchronous generations and returns their ids.
func submitJobs(ctx context.Context, base, token string, n int) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				body, _ := json.Marshal(map[string]string{"prompt": fmt.Sprintf("a lighthouse %d", i)})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/images/generate", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Prefer", "respond-async")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				var e struct {
					Data struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || e.Data.ID == "" {
					firstErr.CompareAndSwap(nil, fmt.Errorf("submit: status %d", resp.StatusCode))
					return
				}
				ids[i] = e.Data.ID
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	return ids, nil
}

// holdStreams opens sseStreams streams on the server pid, waits for each
// one's first event, holds them for sseHold and closes them.
func holdStreams(ctx context.Context, name string, pid int, url func(i int) string, token string) (*sseRow, error) {
	row := &sseRow{name: name, expected: sseStreams}
	time.Sleep(time.Second) // let the server settle after what came before
	var err error
	if row.before, err = readMemory(pid); err != nil {
		return nil, err
	}
	progress("%s: opening %d event streams (RSS %.1f MiB)", name, sseStreams, mib(row.before.RSS))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var opened atomic.Int64
	var wg sync.WaitGroup
	firstEvents := make(chan struct{}, sseStreams)
	start := time.Now()
	sem := make(chan struct{}, 64) // connections being set up at once
	for i := range sseStreams {
		sem <- struct{}{}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(sctx, http.MethodGet, url(i), nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				<-sem
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			first := true
			for sc.Scan() {
				if first && strings.HasPrefix(sc.Text(), "event: ") {
					first = false
					opened.Add(1)
					<-sem
					firstEvents <- struct{}{}
				}
			}
			if first {
				<-sem
			}
		})
	}
	deadline := time.After(2 * time.Minute)
wait:
	for n := 0; n < sseStreams; n++ {
		select {
		case <-firstEvents:
		case <-deadline:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	row.open = time.Since(start)
	row.opened = int(opened.Load())
	progress("%s: %d streams open in %s; holding them %s", name, row.opened, row.open.Round(time.Millisecond), sseHold)
	cpu0, _ := cpuTime(pid)
	time.Sleep(sseHold)
	cpu1, _ := cpuTime(pid)
	row.holdCPU = cpu1 - cpu0
	if row.after, err = readMemory(pid); err != nil {
		return nil, err
	}
	cancel()
	wg.Wait()
	progress("%s: streams closed", name)
	return row, nil
}
