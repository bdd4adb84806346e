package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/outbound"
	"github.com/imaged/imaged/sqlite"
	"github.com/imaged/imaged/webhooks"
	"github.com/imaged/imaged/webhooks/webhooktest"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "imaged.db")
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// payload is a body that names the delivery, as the server's would.
func payload(ctx context.Context, d *imaged.WebhookDelivery) ([]byte, error) {
	return json.Marshal(map[string]any{"type": "generation." + d.Event, "timestamp": d.CreatedAt.Format(time.RFC3339), "data": map[string]string{"id": d.JobID}})
}

func newService(t *testing.T, db *sqlite.DB, allow []netip.Prefix, worker string, schedule ...time.Duration) *webhooks.Service {
	t.Helper()
	if schedule == nil {
		schedule = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	}
	svc, err := webhooks.New(webhooks.Config{
		Store:          db,
		Client:         outbound.New(outbound.Config{Allow: allow, Timeout: 5 * time.Second}),
		Payload:        payload,
		Schedule:       schedule,
		AttemptTimeout: 5 * time.Second,
		WorkerID:       worker,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// queue makes a job of owner with a webhook to url and runs it, which
// queues its "started" delivery; it returns the delivery id.
func queue(t *testing.T, db *sqlite.DB, owner, url string) string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	job := &imaged.Job{ID: imaged.NewID(), Owner: owner, Status: imaged.JobQueued, Provider: "builtin",
		Request: json.RawMessage(`{}`), Webhook: &imaged.JobWebhook{URL: url, Events: []string{"started"}},
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if c, err := db.ClaimJob(t.Context(), "jobs", now, now.Add(time.Hour)); err != nil || c.ID != job.ID {
		t.Fatalf("ClaimJob: %v, %v", c, err)
	}
	return imaged.WebhookDeliveryID(job.ID, "started")
}

// delivery reads one delivery back from the store.
func delivery(t *testing.T, db *sqlite.DB, owner, id string) *imaged.WebhookDelivery {
	t.Helper()
	jobID := strings.TrimSuffix(strings.TrimPrefix(id, "msg_"), "_started")
	jobID = jobID[:8] + "-" + jobID[8:12] + "-" + jobID[12:16] + "-" + jobID[16:20] + "-" + jobID[20:]
	ds, err := db.WebhookDeliveries(t.Context(), owner, jobID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("WebhookDeliveries(%s): %v, %v", jobID, ds, err)
	}
	return ds[0]
}

// drain runs DeliverOne until the delivery is no longer pending.
func drain(t *testing.T, svc *webhooks.Service, db *sqlite.DB, owner, id string) *imaged.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := svc.DeliverOne(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := delivery(t, db, owner, id); d.Status != imaged.DeliveryPending {
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("delivery %s still pending after 10s", id)
	return nil
}

func TestSignedPerStandardWebhooks(t *testing.T) {
	db := openDB(t, "")
	svc := newService(t, db, loopback, "")
	rc := webhooktest.NewReceiver(t)
	id := queue(t, db, "alice", rc.URL+"/hooks?team=1")
	before := time.Now().Unix()
	if d := drain(t, svc, db, "alice", id); d.Status != imaged.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != 200 {
		t.Fatalf("delivery %+v", d)
	}
	got := rc.Got()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	d := got[0]
	ts, err := strconv.ParseInt(d.Headers.Get("webhook-timestamp"), 10, 64)
	if d.ID() != id || err != nil || ts < before || ts > time.Now().Unix() || d.Headers.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", d.Headers)
	}
	sec, err := svc.Secret(t.Context(), "alice")
	if err != nil || !strings.HasPrefix(sec.Secret, "whsec_") {
		t.Fatalf("Secret: %+v, %v", sec, err)
	}
	if errs := webhooktest.Verify(t, sec.Secret, d); errs[0] != nil {
		t.Fatalf("the reference library refuses the delivery: %v", errs[0])
	}
	// The check can fail: another secret, another body, another id.
	tampered := d
	tampered.Body = append([]byte(nil), d.Body...)
	tampered.Body[len(tampered.Body)-2] ^= 1
	otherID := webhooktest.Delivery{Headers: d.Headers.Clone(), Body: d.Body}
	otherID.Headers.Set("webhook-id", "msg_other")
	for i, err := range webhooktest.Verify(t, webhooks.NewSecret(), d) {
		if err == nil {
			t.Errorf("%d: accepted under another secret", i)
		}
	}
	for i, err := range webhooktest.Verify(t, sec.Secret, tampered, otherID) {
		if err == nil {
			t.Errorf("%d: a changed delivery is accepted", i)
		}
	}
	if bob, _ := svc.Secret(t.Context(), "bob"); bob.Secret == sec.Secret {
		t.Error("bob and alice share a secret")
	}
}

func TestRetriedUntil2xxWithTheSameIDAndBody(t *testing.T) {
	db := openDB(t, "")
	svc := newService(t, db, loopback, "")
	rc := webhooktest.NewReceiver(t)
	rc.Respond = func(id string, n int) int { return []int{500, 503, 204}[min(n, 2)] }
	id := queue(t, db, "alice", rc.URL)
	d := drain(t, svc, db, "alice", id)
	if d.Status != imaged.DeliveryDelivered || d.Attempts != 3 || d.LastStatus != 204 || d.LastError != "" {
		t.Fatalf("delivery %+v", d)
	}
	got := rc.Got()
	if len(got) != 3 {
		t.Fatalf("%d attempts, want 3", len(got))
	}
	sec, _ := svc.Secret(t.Context(), "alice")
	for i, err := range webhooktest.Verify(t, sec.Secret, got...) {
		if err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
		if got[i].ID() != id || string(got[i].Body) != string(got[0].Body) {
			t.Errorf("attempt %d: id %s, body %s; want %s and the first body", i+1, got[i].ID(), got[i].Body, id)
		}
	}
}

func TestGoneStopsAndTheScheduleEnds(t *testing.T) {
	db := openDB(t, "")
	svc := newService(t, db, loopback, "", 5*time.Millisecond, 5*time.Millisecond)
	gone := webhooktest.NewReceiver(t)
	gone.Respond = func(string, int) int { return http.StatusGone }
	failing := webhooktest.NewReceiver(t)
	failing.Respond = func(string, int) int { return http.StatusInternalServerError }
	g, f := queue(t, db, "alice", gone.URL), queue(t, db, "alice", failing.URL)
	if d := drain(t, svc, db, "alice", g); d.Status != imaged.DeliveryFailed || d.Attempts != 1 || d.LastStatus != 410 {
		t.Errorf("410: %+v", d)
	}
	if d := drain(t, svc, db, "alice", f); d.Status != imaged.DeliveryFailed || d.Attempts != 3 || d.LastStatus != 500 || !strings.Contains(d.LastError, "500") {
		t.Errorf("500s with a schedule of 2 retries: %+v", d)
	}
	time.Sleep(20 * time.Millisecond)
	if sent, err := svc.DeliverOne(t.Context()); sent || err != nil {
		t.Errorf("a finished delivery was sent again: %v, %v", sent, err)
	}
	if len(gone.Got()) != 1 || len(failing.Got()) != 3 {
		t.Errorf("receivers got %d and %d requests, want 1 and 3", len(gone.Got()), len(failing.Got()))
	}
}

func TestJitterStaysWithinItsBounds(t *testing.T) {
	db := openDB(t, "")
	svc := newService(t, db, loopback, "", time.Hour)
	rc := webhooktest.NewReceiver(t)
	rc.Respond = func(string, int) int { return 500 }
	for range 10 {
		id := queue(t, db, "alice", rc.URL)
		start := time.Now()
		if sent, err := svc.DeliverOne(t.Context()); !sent || err != nil {
			t.Fatal(sent, err)
		}
		d := delivery(t, db, "alice", id)
		wait := d.NextAttemptAt.Sub(start)
		if d.Status != imaged.DeliveryPending || wait < 48*time.Minute || wait > 72*time.Minute+time.Second {
			t.Errorf("next attempt in %s, want 1h ± 20%%", wait)
		}
	}
}

func TestOutboundRulesApply(t *testing.T) {
	db := openDB(t, "")
	strict := newService(t, db, nil, "")
	for _, u := range []string{
		"http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]/", "http://10.0.0.1/", "http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://0.0.0.0/", "http://100.100.100.200/",
		"http://[::ffff:127.0.0.1]/", "ftp://example.com/", "file:///etc/passwd", "http://name.invalid/",
	} {
		err := strict.CheckURL(t.Context(), u)
		if imaged.ErrCode(err) != imaged.EValidation {
			t.Errorf("CheckURL(%s) = %v, want VALIDATION_ERROR", u, err)
		} else if strings.Contains(imaged.ErrMessage(err), "127.0.0.1") && !strings.Contains(u, "127.0.0.1") {
			t.Errorf("CheckURL(%s) says what the name resolved to: %q", u, imaged.ErrMessage(err))
		}
	}

	t.Run("a_private_receiver_is_refused_at_delivery", func(t *testing.T) {
		rc := webhooktest.NewReceiver(t)
		id := queue(t, db, "alice", rc.URL)
		if sent, err := strict.DeliverOne(t.Context()); !sent || err != nil {
			t.Fatal(sent, err)
		}
		d := delivery(t, db, "alice", id)
		if d.Status != imaged.DeliveryPending || d.Attempts != 1 || !strings.Contains(d.LastError, "refused: "+outbound.ReasonAddress) {
			t.Errorf("delivery %+v", d)
		}
		if n := len(rc.Got()); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
	})
	t.Run("redirects_are_not_followed", func(t *testing.T) {
		target := webhooktest.NewReceiver(t)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(redirector.Close)
		db := openDB(t, "") // alone: no delivery of the other subtests is due
		svc := newService(t, db, loopback, "", time.Hour)
		id := queue(t, db, "carol", redirector.URL)
		if sent, err := svc.DeliverOne(t.Context()); !sent || err != nil {
			t.Fatal(sent, err)
		}
		if d := delivery(t, db, "carol", id); d.Status != imaged.DeliveryPending || d.LastError == "" {
			t.Errorf("a redirect counts as delivered: %+v", d)
		}
		if n := len(target.Got()); n != 0 {
			t.Errorf("the redirect was followed (%d requests)", n)
		}
	})
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	db := openDB(t, "")
	svc := newService(t, db, loopback, "")
	old, _ := svc.Secret(t.Context(), "alice")
	rot, err := svc.RotateSecret(t.Context(), "alice")
	if err != nil || rot.Secret == old.Secret || rot.Previous != old.Secret {
		t.Fatalf("RotateSecret: %+v, %v", rot, err)
	}
	if until := time.Until(rot.PreviousUntil); until < 23*time.Hour || until > 25*time.Hour {
		t.Errorf("the previous secret signs for %s more, want 24h", until)
	}
	rc := webhooktest.NewReceiver(t)
	drain(t, svc, db, "alice", queue(t, db, "alice", rc.URL))
	d := rc.Got()[0]
	if sigs := strings.Fields(d.Headers.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("signature header %q, want two v1 signatures", d.Headers.Get("webhook-signature"))
	}
	for i, err := range append(webhooktest.Verify(t, rot.Secret, d), webhooktest.Verify(t, old.Secret, d)...) {
		if err != nil {
			t.Errorf("secret %d: %v", i, err)
		}
	}
}

func TestDeliveriesSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imaged.db")
	db := openDB(t, path)
	rc := webhooktest.NewReceiver(t)
	rc.Respond = func(_ string, n int) int { return []int{503, 200}[min(n, 1)] }
	id := queue(t, db, "alice", rc.URL)
	first := newService(t, db, loopback, "before", 50*time.Millisecond)
	if sent, err := first.DeliverOne(t.Context()); !sent || err != nil {
		t.Fatal(sent, err)
	}
	db.Close()

	db = openDB(t, path)
	second := newService(t, db, loopback, "after", 50*time.Millisecond)
	if d := drain(t, second, db, "alice", id); d.Status != imaged.DeliveryDelivered || d.Attempts != 2 {
		t.Fatalf("after the restart: %+v", d)
	}
	got := rc.Got()
	if len(got) != 2 || got[0].ID() != got[1].ID() || string(got[0].Body) != string(got[1].Body) {
		t.Fatalf("the receiver got %d deliveries; want the same id and body twice", len(got))
	}
	sec, _ := second.Secret(t.Context(), "alice")
	for _, err := range webhooktest.Verify(t, sec.Secret, got...) {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestOneSenderPerAttempt runs two senders (two replicas' worth) on one
// database: each delivery reaches the receiver once.
func TestOneSenderPerAttempt(t *testing.T) {
	db := openDB(t, "")
	rc := webhooktest.NewReceiver(t)
	const n = 30
	for range n {
		queue(t, db, "alice", rc.URL)
	}
	var wg sync.WaitGroup
	for _, w := range []string{"replica-a", "replica-b"} {
		svc := newService(t, db, loopback, w)
		wg.Go(func() {
			for {
				sent, err := svc.DeliverOne(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if !sent {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, d := range rc.Got() {
		seen[d.ID()]++
	}
	if len(seen) != n {
		t.Errorf("%d delivery ids, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
}
