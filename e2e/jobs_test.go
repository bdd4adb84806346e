package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/webhooks/webhooktest"
)

const gateMarker = "[gate]"

// gatedWebUI is a fake Stable Diffusion web UI that answers txt2img at
// once, except prompts with gateMarker: it holds those until release is
// closed, telling held which replica ("a", "b") asked.
type gatedWebUI struct {
	URL     string
	held    chan string
	release chan struct{}
	once    sync.Once
}

// open lets the held requests, and the ones to come, through.
func (g *gatedWebUI) open() { g.once.Do(func() { close(g.release) }) }

func newGatedWebUI(t *testing.T) *gatedWebUI {
	t.Helper()
	g := &gatedWebUI{held: make(chan string, 16), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replica, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if r.Method != http.MethodPost || rest != "sdapi/v1/txt2img" {
			http.Error(w, `{"detail":"Not Found"}`, http.StatusNotFound)
			return
		}
		var req struct {
			Prompt string `json:"prompt"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if strings.Contains(req.Prompt, gateMarker) {
			g.held <- replica
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		answerTxt2img(w)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.open) // runs first: Close waits for held requests
	g.URL = srv.URL
	return g
}

// sse is an event of a stream read by a real client.
type sse struct {
	ID, Event string
	Data      map[string]any
}

// stream opens GET .../events on s and delivers its events until it ends.
func (s *server) stream(t *testing.T, token, jobID string) <-chan sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/api/images/generations/"+jobID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("events: status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sse, 32)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && ev.Event != "":
				out <- ev
				ev = sse{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.Data)
			}
		}
	}()
	return out
}

func nextEvent(t *testing.T, events <-chan sse) sse {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended early")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return sse{}
}

// TestJobsAcrossReplicas runs two imaged processes on one PostgreSQL
// database: a job's event stream follows it from the replica that does not
// run it, and every webhook event reaches its receiver under one id, each
// attempt made by one replica only.
func TestJobsAcrossReplicas(t *testing.T) {
	t.Parallel()
	be := requireBackends(t)
	be["IMAGED_DATABASE_URL"] = privateSchema(t, be["IMAGED_DATABASE_URL"])
	fake := newGatedWebUI(t)
	var secret [32]byte
	rand.Read(secret[:])
	replicaEnv := func(name string) map[string]string {
		env := map[string]string{
			"IMAGED_JWT_SECRET":       hex.EncodeToString(secret[:]),
			"IMAGED_SDWEBUI_URL":      fake.URL + "/" + name,
			"IMAGED_DEFAULT_PROVIDER": "sdwebui",
			"IMAGED_OUTBOUND_ALLOW":   "127.0.0.0/8",
			"IMAGED_WORKERS":          "2",
		}
		for k, v := range be {
			env[k] = v
		}
		return env
	}
	a := startServer(t, serverOpts{Env: replicaEnv("a")})
	b := startServer(t, serverOpts{Env: replicaEnv("b")})
	replicas := map[string]*server{"a": a, "b": b}
	alice, _ := users(t)
	token := a.Token(alice)
	submit := func(t *testing.T, s *server, body map[string]any) jobObject {
		t.Helper()
		r := s.postJSON(t, "/api/images/generate", token, body, "Prefer", "respond-async")
		var job jobObject
		if err := json.Unmarshal(wantOK(t, r, http.StatusAccepted).Data, &job); err != nil {
			t.Fatal(err)
		}
		return job
	}

	t.Run("events_stream_from_the_replica_that_does_not_run_the_job", func(t *testing.T) {
		job := submit(t, a, map[string]any{"prompt": "a tide clock " + gateMarker})
		var runner string
		select {
		case runner = <-fake.held:
		case <-time.After(30 * time.Second):
			t.Fatal("no replica ran the job within 30s")
		}
		other := map[string]string{"a": "b", "b": "a"}[runner]
		events := replicas[other].stream(t, token, job.ID)
		if ev := nextEvent(t, events); ev.ID != "1" || ev.Event != "queued" {
			t.Fatalf("first event %+v", ev)
		}
		if ev := nextEvent(t, events); ev.ID != "2" || ev.Event != "running" || ev.Data["attempt"] != 1.0 {
			t.Fatalf("second event %+v", ev)
		}
		fake.open()
		ev := nextEvent(t, events)
		imgs, _ := ev.Data["images"].([]any)
		if ev.ID != "3" || ev.Event != "succeeded" || len(imgs) != 1 {
			t.Fatalf("last event %+v", ev)
		}
		select {
		case extra, ok := <-events:
			if ok {
				t.Errorf("an event after the end: %+v", extra)
			}
		case <-time.After(10 * time.Second):
			t.Error("the stream did not end after succeeded")
		}
		t.Logf("replica %s ran the job, replica %s streamed it", runner, other)
	})

	t.Run("each_webhook_event_arrives_under_one_id_once_per_attempt", func(t *testing.T) {
		rc := webhooktest.NewReceiver(t)
		// Every first attempt fails: the retry (5s later, on whichever
		// replica claims it) must be the only second one.
		rc.Respond = func(_ string, n int) int {
			if n == 0 {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		}
		const jobs = 6
		var want []string
		for i := range jobs {
			s := []*server{a, b}[i%2]
			job := submit(t, s, map[string]any{"prompt": fmt.Sprintf("a paper boat %d", i),
				"webhook": map[string]any{"url": rc.URL + "/imaged", "events": []string{"started", "completed"}}})
			want = append(want, imaged.WebhookDeliveryID(job.ID, "started"), imaged.WebhookDeliveryID(job.ID, "completed"))
		}
		deadline := time.Now().Add(60 * time.Second)
		for len(rc.Got()) < 2*len(want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(7 * time.Second) // room for a duplicate to show up
		got := rc.Got()
		count := map[string]int{}
		for _, d := range got {
			count[d.ID()]++
		}
		slices.Sort(want)
		ids := make([]string, 0, len(count))
		for id := range count {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("delivery ids %v, want %v", ids, want)
		}
		for id, n := range count {
			if n != 2 {
				t.Errorf("%s arrived %d times, want 2 (a failed attempt, then its retry)", id, n)
			}
		}
		e := wantOK(t, b.get(t, "/api/webhooks/secret", token), http.StatusOK)
		var sec struct {
			Secret string `json:"secret"`
		}
		json.Unmarshal(e.Data, &sec)
		for i, err := range webhooktest.Verify(t, sec.Secret, got...) {
			if err != nil {
				t.Errorf("delivery %d (%s): %v", i, got[i].ID(), err)
			}
		}
	})
}

// TestWebhookSurvivesARestart kills the only replica after a failed first
// attempt: the retry is made by the restarted process, same id and body.
func TestWebhookSurvivesARestart(t *testing.T) {
	t.Parallel()
	rc := webhooktest.NewReceiver(t)
	rc.Respond = func(_ string, n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	env := map[string]string{"IMAGED_OUTBOUND_ALLOW": "127.0.0.1"}
	if sharedBackend() {
		// Other tests' servers on the shared database would claim the
		// delivery (and be refused by their outbound rules).
		env["IMAGED_DATABASE_URL"] = privateSchema(t, os.Getenv(e2ePrefix+"DATABASE_URL"))
	}
	s := startServer(t, serverOpts{Env: env})
	token := s.Token("restart-" + imaged.NewID())
	r := s.postJSON(t, "/api/images/generate", token, map[string]any{"prompt": "a lamp",
		"webhook": map[string]any{"url": rc.URL, "events": []string{"completed"}}}, "Prefer", "respond-async")
	var job jobObject
	json.Unmarshal(wantOK(t, r, http.StatusAccepted).Data, &job)
	first := rc.Next(t, 30*time.Second)
	// Killed once the failed attempt is recorded (else its lease, not the
	// schedule, would say when the retry comes).
	type delivery struct {
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	}
	deliveries := func(s *server) []delivery {
		var ds []delivery
		json.Unmarshal(wantOK(t, s.get(t, "/api/images/generations/"+job.ID+"/webhooks", token), http.StatusOK).Data, &ds)
		return ds
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ds := deliveries(s); len(ds) == 1 && ds[0].Attempts == 1 {
			break
		}
	}
	s.kill(t)

	restarted := startServer(t, serverOpts{DataDir: s.DataDir, Env: env})
	second := rc.Next(t, 30*time.Second)
	if first.ID() != imaged.WebhookDeliveryID(job.ID, "completed") || second.ID() != first.ID() || string(second.Body) != string(first.Body) {
		t.Fatalf("before the restart %s, after %s: want the same id and body", first.ID(), second.ID())
	}
	if wait := second.At.Sub(first.At); wait < 3*time.Second {
		t.Errorf("retried %s after the first attempt, want the schedule's 5s ± 20%%", wait)
	}
	ds := deliveries(restarted)
	for deadline := time.Now().Add(10 * time.Second); (len(ds) != 1 || ds[0].Status != "delivered") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		ds = deliveries(restarted)
	}
	if len(ds) != 1 || ds[0].Status != "delivered" || ds[0].Attempts != 2 {
		t.Errorf("deliveries after the restart: %+v", ds)
	}
}
