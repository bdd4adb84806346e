package http

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/webhooks/webhooktest"
)

func TestWebhookField(t *testing.T) {
	h := newHarness(t, options{webhooks: true})
	alice := mintToken(t, "alice")
	async := http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}}
	rc := webhooktest.NewReceiver(t)

	t.Run("accepted_and_shown_on_the_job", func(t *testing.T) {
		resp, body := h.call(t, "POST", generatePath, generatePath, alice,
			jsonBody(map[string]any{"prompt": "a bell", "webhook": map[string]any{"url": rc.URL + "/in", "events": []string{"completed"}}}), async)
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var job struct {
			Webhook *webhookJSON `json:"webhook"`
		}
		json.Unmarshal(decode(t, body).Data, &job)
		if job.Webhook == nil || job.Webhook.URL != rc.URL+"/in" || strings.Join(job.Webhook.Events, ",") != "completed" {
			t.Errorf("job webhook %+v", job.Webhook)
		}
		resp, body = h.call(t, "POST", generatePath, generatePath, alice,
			jsonBody(map[string]any{"prompt": "a bell", "webhook": map[string]any{"url": rc.URL}}), async)
		json.Unmarshal(decode(t, body).Data, &job)
		if resp.StatusCode != 202 || strings.Join(job.Webhook.Events, ",") != "started,completed" {
			t.Errorf("without events: %d %+v, want both events", resp.StatusCode, job.Webhook)
		}
	})
	for _, c := range []struct{ name, webhook string }{
		{"no_url", `{"events":["completed"]}`},
		{"relative_url", `{"url":"/hooks"}`},
		{"ftp", `{"url":"ftp://example.com/in"}`},
		{"credentials", `{"url":"https://user:pw@example.com/in"}`},
		{"unknown_event", `{"url":"https://example.com/in","events":["finished"]}`},
		{"event_twice", `{"url":"https://example.com/in","events":["started","started"]}`},
		{"unknown_field", `{"url":"https://example.com/in","secret":"x"}`},
		{"not_an_object", `"https://example.com/in"`},
		{"long_url", `{"url":"https://example.com/` + strings.Repeat("a", 2100) + `"}`},
		{"metadata_address", `{"url":"http://169.254.169.254/latest/meta-data/"}`},
		{"private_address", `{"url":"http://10.1.2.3/in"}`},
		{"ipv6_loopback_not_allow_listed", `{"url":"http://[::1]:8080/in"}`},
		{"unspecified", `{"url":"http://0.0.0.0/in"}`},
		{"name_that_does_not_resolve", `{"url":"https://hooks.invalid/in"}`},
	} {
		t.Run("400_VALIDATION_ERROR/"+c.name, func(t *testing.T) {
			resp, body := h.call(t, "POST", generatePath, generatePath, alice,
				strings.NewReader(`{"prompt":"a bell","webhook":`+c.webhook+`}`), async)
			e := wantError(t, resp, body, 400, imaged.EValidation)
			if !strings.Contains(e.Message, "webhook") && !strings.Contains(e.Message, `"secret"`) {
				t.Errorf("message %q does not name the webhook", e.Message)
			}
		})
	}
	t.Run("400_on_a_synchronous_request", func(t *testing.T) {
		resp, body := h.call(t, "POST", generatePath, generatePath, alice,
			jsonBody(map[string]any{"prompt": "a bell", "webhook": map[string]any{"url": rc.URL}}), jsonHeader)
		wantError(t, resp, body, 400, imaged.EValidation)
	})
	t.Run("400_when_webhooks_are_off", func(t *testing.T) {
		off := newHarness(t, options{})
		resp, body := off.call(t, "POST", generatePath, generatePath, alice,
			jsonBody(map[string]any{"prompt": "a bell", "webhook": map[string]any{"url": rc.URL}}), async)
		wantError(t, resp, body, 400, imaged.EValidation)
	})
}

func TestWebhookDeliveryThroughTheAPI(t *testing.T) {
	h := newHarness(t, options{webhooks: true, schedule: []time.Duration{time.Millisecond}})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	rc := webhooktest.NewReceiver(t)
	rc.Respond = func(id string, n int) int {
		if strings.HasSuffix(id, "_completed") && n == 0 {
			return 502 // the first completed attempt fails
		}
		return 200
	}
	job := submitAsync(t, h, alice, map[string]any{"prompt": "a bell", "webhook": map[string]any{"url": rc.URL + "/in"}})
	if ran, err := h.gen.RunOne(t.Context()); !ran || err != nil {
		t.Fatalf("RunOne: %v, %v", ran, err)
	}
	for range 10 {
		if _, err := h.hooks.DeliverOne(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	got := rc.Got()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (started, completed failed, completed)", len(got))
	}
	resp, body := h.call(t, "GET", "/api/webhooks/secret", "/api/webhooks/secret", alice, nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	secret := dataAs[secretJSON](t, body).Secret
	for i, err := range webhooktest.Verify(t, secret, got...) {
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	// Deliveries are not ordered among themselves (the test's clock
	// stands still, so both are due at once): group them by id.
	byID := map[string][]webhooktest.Delivery{}
	for _, d := range got {
		byID[d.ID()] = append(byID[d.ID()], d)
	}
	startedID, completedID := imaged.WebhookDeliveryID(job.ID, "started"), imaged.WebhookDeliveryID(job.ID, "completed")
	if len(byID[startedID]) != 1 || len(byID[completedID]) != 2 {
		t.Fatalf("deliveries by id: %d started, %d completed; want 1 and 2", len(byID[startedID]), len(byID[completedID]))
	}
	var started, completed webhookPayload
	json.Unmarshal(byID[startedID][0].Body, &started)
	json.Unmarshal(byID[completedID][1].Body, &completed)
	if started.Type != "generation.started" || started.Data.ID != job.ID || started.Data.Status != "running" || len(started.Data.Images) != 0 {
		t.Errorf("started payload %s", byID[startedID][0].Body)
	}
	if completed.Type != "generation.completed" || completed.Data.Status != "succeeded" || len(completed.Data.Images) != 1 ||
		!strings.HasPrefix(completed.Data.Images[0].URL, h.ts.URL+"/cdn/") {
		t.Errorf("completed payload %s", byID[completedID][1].Body)
	}
	if string(byID[completedID][0].Body) != string(byID[completedID][1].Body) {
		t.Error("the retry is not the same message")
	}

	deliveries := "/api/images/generations/" + job.ID + "/webhooks"
	resp, body = h.call(t, "GET", "/api/images/generations/{jobId}/webhooks", deliveries, alice, nil, nil)
	ds := dataAs[[]deliveryJSON](t, body)
	if resp.StatusCode != 200 || len(ds) != 2 {
		t.Fatalf("deliveries: %d %s", resp.StatusCode, body)
	}
	for _, d := range ds {
		want := map[string]int{startedID: 1, completedID: 2}[d.ID]
		if d.Status != "delivered" || d.Attempts != want || d.LastStatus != 200 || d.ID != imaged.WebhookDeliveryID(job.ID, d.Event) {
			t.Errorf("delivery %+v, want delivered after %d attempts", d, want)
		}
	}
	resp, body = h.call(t, "GET", "/api/images/generations/{jobId}/webhooks", deliveries, bob, nil, nil)
	wantError(t, resp, body, 404, imaged.EJobNotFound)

	t.Run("rotation", func(t *testing.T) {
		resp, body := h.call(t, "POST", "/api/webhooks/secret/rotate", "/api/webhooks/secret/rotate", alice, nil, nil)
		rot := dataAs[secretJSON](t, body)
		if resp.StatusCode != 200 || rot.Secret == secret || rot.PreviousExpiresAt == nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		_, body = h.call(t, "GET", "/api/webhooks/secret", "/api/webhooks/secret", alice, nil, nil)
		if now := dataAs[secretJSON](t, body); now.Secret != rot.Secret {
			t.Errorf("after rotation GET says %q, want %q", now.Secret, rot.Secret)
		}
		_, body = h.call(t, "GET", "/api/webhooks/secret", "/api/webhooks/secret", bob, nil, nil)
		if b := dataAs[secretJSON](t, body); b.Secret == rot.Secret || b.Secret == secret {
			t.Error("bob got alice's secret")
		}
	})
}

// TestEditJobsHaveWebhooksAndEvents: an edit job takes the same webhook
// field as a generation, and streams the same events.
func TestEditJobsHaveWebhooksAndEvents(t *testing.T) {
	h := newHarness(t, options{webhooks: true, schedule: []time.Duration{time.Millisecond}})
	alice := mintToken(t, "alice")
	rc := webhooktest.NewReceiver(t)
	src := h.upload(t, alice, "harbour.png", pngBytes(t, 64, 48, 2))
	hook := map[string]any{"url": rc.URL, "events": []string{"completed"}}
	resp, body := h.call(t, "POST", editPattern, editPath(src.ID), alice,
		jsonBody(map[string]any{"prompt": "make it stormy", "webhook": hook}), jsonHeader)
	wantError(t, resp, body, 400, imaged.EValidation) // synchronous
	resp, body = h.call(t, "POST", editPattern, editPath(src.ID), alice,
		jsonBody(map[string]any{"prompt": "make it stormy", "webhook": hook}),
		http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}})
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	job := dataAs[apiJob](t, body)
	events := openStream(t, h.ts.URL, alice, job.ID, "")
	if ev := next(t, events); ev.Event != "queued" {
		t.Fatalf("first event %+v", ev)
	}
	if ran, err := h.gen.RunOne(t.Context()); !ran || err != nil {
		t.Fatalf("RunOne: %v, %v", ran, err)
	}
	next(t, events) // running
	if ev := next(t, events); ev.Event != "succeeded" || len(ev.Data.Images) != 1 {
		t.Fatalf("last event %+v", ev)
	}
	if sent, err := h.hooks.DeliverOne(t.Context()); !sent || err != nil {
		t.Fatalf("DeliverOne: %v, %v", sent, err)
	}
	got := rc.Got()
	var p webhookPayload
	if len(got) != 1 || json.Unmarshal(got[0].Body, &p) != nil || p.Type != "generation.completed" || p.Data.ID != job.ID || p.Data.Status != "succeeded" {
		t.Fatalf("deliveries %d, payload %+v", len(got), p)
	}
}
