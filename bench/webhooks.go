package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/outbound"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/webhooks"
)

// The webhooks benchmark (-only webhooks) measures, in this process, how many
// webhook deliveries per second the senders of one replica make from the
// queue in a SQLite file to a receiver on loopback that answers 204 at once:
// webhookDeliveries deliveries queued by real jobs (CreateJob then ClaimJob,
// which queues each job's "started" delivery), then drained by
// webhooks.Service with 2 senders (the default) and with 8. Each delivery is
// one claim (a write transaction), the owner's secret read, the HMAC, the
// POST through the outbound guard and the attempt recorded (a second write
// transaction). The baseline, in the same run, is the floor of that work
// without the database: the same number of signed POSTs of the same body,
// sent by as many goroutines through the same outbound client.
const webhookDeliveries = 2000

// webhookBody is the size of a completed delivery's payload with one image.
var webhookBody = bytes.Repeat([]byte("x"), 1500)

func measureWebhooks(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "imaged-bench-webhooks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var got atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	client := outbound.New(outbound.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: 15 * time.Second})
	fmt.Fprintf(w, "webhooks benchmark: %s, %d CPUs (shared by the senders, SQLite and the receiver, all in this process), load average %s\n",
		runtime.Version(), runtime.NumCPU(), loadAverage())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tdeliveries\ttook\tdeliveries/s\tratio to baseline\tCPU ms/delivery (whole process)\t")
	for _, senders := range []int{2, 8} {
		rate, cpu, took, err := webhookBaseline(ctx, client, recv.URL, senders)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "baseline: signed POSTs, %d goroutines, no database\t%d\t%s\t%.0f\t1.00\t%.3f\t\n", senders, webhookDeliveries, took.Round(time.Millisecond), rate, cpu)
		baseRate := rate
		db, err := sqlite.Open(ctx, filepath.Join(dir, "webhooks-"+strconv.Itoa(senders)+".db"))
		if err != nil {
			return err
		}
		progress("queueing %d deliveries in SQLite", webhookDeliveries)
		if err := queueDeliveries(ctx, db, recv.URL); err != nil {
			db.Close()
			return err
		}
		got.Store(0)
		svc, err := webhooks.New(webhooks.Config{
			Store:   db,
			Client:  client,
			Payload: func(context.Context, *imaged.WebhookDelivery) ([]byte, error) { return webhookBody, nil },
			Workers: senders,
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			db.Close()
			return err
		}
		cpu0 := processCPU()
		start := time.Now()
		s := svc.Start(ctx)
		for got.Load() < webhookDeliveries && ctx.Err() == nil && time.Since(start) < 5*time.Minute {
			time.Sleep(2 * time.Millisecond)
		}
		took = time.Since(start)
		s.Stop()
		cpuPer := float64(processCPU()-cpu0) / float64(time.Millisecond) / webhookDeliveries
		db.Close()
		if n := got.Load(); n != webhookDeliveries {
			return fmt.Errorf("webhooks: %d of %d deliveries arrived", n, webhookDeliveries)
		}
		rate = webhookDeliveries / took.Seconds()
		fmt.Fprintf(tw, "imaged: webhooks.Service, %d senders, SQLite queue\t%d\t%s\t%.0f\t%.2f\t%.3f\t\n", senders, webhookDeliveries, took.Round(time.Millisecond), rate, rate/baseRate, cpuPer)
	}
	return tw.Flush()
}

// queueDeliveries makes webhookDeliveries jobs with a webhook to url and
// claims each, which queues its "started" delivery.
func queueDeliveries(ctx context.Context, db *sqlite.DB, url string) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := &imaged.JobWebhook{URL: url, Events: []string{imaged.WebhookStarted}}
	for i := range webhookDeliveries {
		job := &imaged.Job{ID: imaged.NewID(), Owner: "bench-" + strconv.Itoa(i%10), Status: imaged.JobQueued, Provider: "builtin",
			Request: json.RawMessage(`{}`), Webhook: hook, CreatedAt: now, UpdatedAt: now}
		if err := db.CreateJob(ctx, job); err != nil {
			return err
		}
		if _, err := db.ClaimJob(ctx, "bench", now, now.Add(time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

// webhookBaseline sends webhookDeliveries signed POSTs from n goroutines.
func webhookBaseline(ctx context.Context, client *outbound.Client, url string, n int) (rate, cpuMs float64, took time.Duration, err error) {
	secret := webhooks.NewSecret()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	cpu0 := processCPU()
	start := time.Now()
	for range n {
		wg.Go(func() {
			for i := next.Add(1); i <= webhookDeliveries; i = next.Add(1) {
				id := "msg_bench_" + strconv.FormatInt(i, 10)
				ts := time.Now().Unix()
				sig, _ := webhooks.Sign(id, ts, webhookBody, secret)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(webhookBody))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("webhook-id", id)
				req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
				req.Header.Set("webhook-signature", sig)
				resp, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	took = time.Since(start)
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	return webhookDeliveries / took.Seconds(), float64(processCPU()-cpu0) / float64(time.Millisecond) / webhookDeliveries, took, nil
}

// processCPU is this process's CPU time so far.
func processCPU() time.Duration {
	d, _ := cpuTime(os.Getpid())
	return d
}
