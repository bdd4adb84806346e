package http

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/provider/builtin"
)

const eventsPattern = "/api/images/generations/{jobId}/events"

// sseEvent is one Server-Sent Event as a client reads it.
type sseEvent struct {
	ID    string
	Event string
	Data  eventJSON
}

// openStream opens the event stream of job with a real HTTP client and
// returns its events as they arrive; the channel closes when the stream
// ends. The first answer's status and headers are checked.
func openStream(t *testing.T, base, tok, jobID, lastEventID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/images/generations/"+jobID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		resp.Body.Close()
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					if err := json.Unmarshal([]byte(data), &ev.Data); err != nil {
						t.Errorf("event data %q: %v", data, err)
						return
					}
					out <- ev
				}
				ev, data = sseEvent{}, ""
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry: "):
			default:
				t.Errorf("unexpected line %q", line)
			}
		}
	}()
	return out
}

// next returns the stream's next event, failing t after a while.
func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return sseEvent{}
}

// wantEnd fails t unless the stream ends without another event.
func wantEnd(t *testing.T, events <-chan sseEvent) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("an event after the end: %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end within 20s")
	}
}

func submitAsync(t *testing.T, h *harness, tok string, body map[string]any) apiJob {
	t.Helper()
	resp, b := h.call(t, "POST", generatePath, generatePath, tok, jsonBody(body),
		http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}})
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return dataAs[apiJob](t, b)
}

func TestJobEvents(t *testing.T) {
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	// stepper reports 30%, waits for the test to have seen it, reports
	// 60% and makes one image.
	seen30 := make(chan struct{}, 1)
	stepper := &fakeGenerator{name: "stepper", generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		imaged.ReportProgress(ctx, 30)
		select {
		case <-seen30:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		imaged.ReportProgress(ctx, 60)
		imaged.ReportProgress(ctx, 50) // backwards: ignored
		return []imaged.GeneratedImage{{Data: pngBytes(t, 8, 8, 9)}}, nil
	}}
	failing := &fakeGenerator{name: "failing", generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		return nil, imaged.Errorf(imaged.EContentPolicy, "The provider refused the prompt")
	}}
	h := newHarness(t, options{providers: []imaged.Generator{stepper, failing}})

	job := submitAsync(t, h, alice, map[string]any{"prompt": "a slow kite", "provider": "stepper"})
	events := openStream(t, h.ts.URL, alice, job.ID, "")
	ev := next(t, events)
	if ev.ID != "1" || ev.Event != "queued" || ev.Data.Status != "queued" || ev.Data.JobID != job.ID || ev.Data.Attempt != 0 {
		t.Fatalf("first event %+v", ev)
	}
	ran := make(chan error, 1)
	go func() { _, err := h.gen.RunOne(context.Background()); ran <- err }()
	want := []struct {
		id, event string
		percent   int
	}{{"2", "running", -1}, {"3", "running", 30}, {"4", "running", 60}}
	for _, w := range want {
		ev := next(t, events)
		pct := -1
		if ev.Data.Percent != nil {
			pct = *ev.Data.Percent
		}
		if ev.ID != w.id || ev.Event != w.event || pct != w.percent || ev.Data.Attempt != 1 {
			t.Fatalf("event %+v (percent %d), want %+v", ev, pct, w)
		}
		if pct == 30 {
			seen30 <- struct{}{}
		}
	}
	done := next(t, events)
	if done.ID != "5" || done.Event != "succeeded" || len(done.Data.Images) != 1 || done.Data.Images[0].Source != "generation" || done.Data.Error != nil {
		t.Fatalf("last event %+v", done)
	}
	wantEnd(t, events)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	t.Run("resumes_after_Last-Event-ID", func(t *testing.T) {
		events := openStream(t, h.ts.URL, alice, job.ID, "3")
		if ev := next(t, events); ev.ID != "4" || *ev.Data.Percent != 60 {
			t.Errorf("first after 3: %+v", ev)
		}
		if ev := next(t, events); ev.ID != "5" || ev.Event != "succeeded" {
			t.Errorf("second after 3: %+v", ev)
		}
		wantEnd(t, events)
	})
	t.Run("after_the_last_event_it_ends_at_once", func(t *testing.T) {
		wantEnd(t, openStream(t, h.ts.URL, alice, job.ID, "5"))
	})
	t.Run("failed_job_ends_with_its_error", func(t *testing.T) {
		f := submitAsync(t, h, alice, map[string]any{"prompt": "nope", "provider": "failing"})
		if _, err := h.gen.RunOne(t.Context()); err != nil {
			t.Fatal(err)
		}
		events := openStream(t, h.ts.URL, alice, f.ID, "")
		var last sseEvent
		for ev := range events {
			last = ev
		}
		if last.Event != "failed" || last.Data.Error == nil || last.Data.Error.ErrorCode != string(imaged.EContentPolicy) || last.Data.Error.Message != "The provider refused the prompt" {
			t.Errorf("last event %+v", last)
		}
	})
	t.Run("another_owners_job_is_404", func(t *testing.T) {
		resp, body := h.call(t, "GET", eventsPattern, "/api/images/generations/"+job.ID+"/events", bob, nil, nil)
		wantError(t, resp, body, 404, imaged.EJobNotFound)
		resp, body = h.call(t, "GET", eventsPattern, "/api/images/generations/not-an-id/events", alice, nil, nil)
		wantError(t, resp, body, 404, imaged.EJobNotFound)
	})
	for _, v := range []string{"x", "-1", "1.5", "99999999999999999999"} {
		t.Run("400_Last-Event-ID_"+v, func(t *testing.T) {
			resp, body := h.call(t, "GET", eventsPattern, "/api/images/generations/"+job.ID+"/events", alice, nil, http.Header{"Last-Event-ID": {v}})
			wantError(t, resp, body, 400, imaged.EValidation)
		})
	}
	t.Run("401_without_a_token", func(t *testing.T) {
		resp, body := h.call(t, "GET", eventsPattern, "/api/images/generations/"+job.ID+"/events", "", nil, nil)
		wantError(t, resp, body, 401, imaged.EUnauthorized)
	})
}

// TestJobEventsFromAnotherReplica streams, through this harness's server, a
// job that another generation service on the same database runs: the
// stream hears of it only through the database.
func TestJobEventsFromAnotherReplica(t *testing.T) {
	h := newHarness(t, options{})
	alice := mintToken(t, "alice")
	other, err := generation.New(h.images, h.db, h.db, generation.Config{
		Providers: []imaged.Generator{builtin.New()},
		WorkerID:  "other-replica",
		Now:       h.genClock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	job := submitAsync(t, h, alice, map[string]any{"prompt": "a far lighthouse"})
	events := openStream(t, h.ts.URL, alice, job.ID, "")
	if ev := next(t, events); ev.Event != "queued" {
		t.Fatalf("first event %+v", ev)
	}
	if ran, err := other.RunOne(t.Context()); !ran || err != nil {
		t.Fatalf("the other replica's RunOne: %v, %v", ran, err)
	}
	if ev := next(t, events); ev.Event != "running" || ev.ID != "2" {
		t.Errorf("second event %+v", ev)
	}
	ev := next(t, events)
	if ev.Event != "succeeded" || len(ev.Data.Images) != 1 {
		t.Errorf("third event %+v", ev)
	}
	wantEnd(t, events)
	if ran, _ := h.gen.RunOne(t.Context()); ran {
		t.Error("this replica ran the job again")
	}
}
