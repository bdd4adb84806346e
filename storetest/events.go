package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

func testJobEvents(t *testing.T, open func(t *testing.T) Stores) {
	events := func(t *testing.T, s imaged.JobStore, id string, after int64) []*imaged.JobEvent {
		t.Helper()
		evs, err := s.JobEvents(t.Context(), id, after, 100)
		if err != nil {
			t.Fatalf("JobEvents: %v", err)
		}
		return evs
	}
	type brief struct {
		Seq     int64
		Type    imaged.JobStatus
		Attempt int
		Percent int // -1 for none
		Images  int
		Code    imaged.ErrorCode
	}
	briefs := func(evs []*imaged.JobEvent) []brief {
		out := []brief{}
		for _, e := range evs {
			b := brief{Seq: e.Seq, Type: e.Type, Attempt: e.Attempt, Percent: -1, Images: len(e.ImageIDs), Code: e.ErrorCode}
			if e.Percent != nil {
				b.Percent = *e.Percent
			}
			out = append(out, b)
		}
		return out
	}

	t.Run("every_change_records_its_event_in_order", func(t *testing.T) {
		s := open(t).Jobs
		job := newJob("alice", t0)
		if err := s.CreateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		c, err := s.ClaimJob(t.Context(), "w1", t0.Add(time.Second), t0.Add(time.Hour))
		if err != nil || c == nil {
			t.Fatalf("ClaimJob: %v, %v", c, err)
		}
		for _, p := range []int{10, 55} {
			if err := s.ReportJobProgress(t.Context(), job.ID, "w1", p, t0.Add(2*time.Second)); err != nil {
				t.Fatalf("ReportJobProgress: %v", err)
			}
		}
		// Handed back (a shutdown), claimed again, failed.
		c.Status = imaged.JobQueued
		if err := s.FinishJob(t.Context(), c, "w1"); err != nil {
			t.Fatal(err)
		}
		c, _ = s.ClaimJob(t.Context(), "w2", t0.Add(3*time.Second), t0.Add(time.Hour))
		c.Status, c.ErrorCode, c.ErrorMessage = imaged.JobFailed, imaged.EGeneration, "The provider failed"
		c.UpdatedAt = t0.Add(4 * time.Second)
		if err := s.FinishJob(t.Context(), c, "w2"); err != nil {
			t.Fatal(err)
		}
		got := events(t, s, job.ID, 0)
		want := []brief{
			{1, imaged.JobQueued, 0, -1, 0, ""},
			{2, imaged.JobRunning, 1, -1, 0, ""},
			{3, imaged.JobRunning, 1, 10, 0, ""},
			{4, imaged.JobRunning, 1, 55, 0, ""},
			{5, imaged.JobQueued, 1, -1, 0, ""},
			{6, imaged.JobRunning, 2, -1, 0, ""},
			{7, imaged.JobFailed, 2, -1, 0, imaged.EGeneration},
		}
		if !slices.Equal(briefs(got), want) {
			t.Fatalf("events\n%+v\nwant\n%+v", briefs(got), want)
		}
		last := got[len(got)-1]
		if last.JobID != job.ID || last.ErrorMessage != "The provider failed" || !last.Terminal() {
			t.Errorf("failed event = %+v", last)
		}
		report(t, "failed event", sameTime("CreatedAt", last.CreatedAt, t0.Add(4*time.Second)))
		report(t, "queued event", sameTime("CreatedAt", got[0].CreatedAt, t0))
		if after := events(t, s, job.ID, 5); !slices.Equal(briefs(after), want[5:]) {
			t.Errorf("after 5: %+v", briefs(after))
		}
		if evs, err := s.JobEvents(t.Context(), job.ID, 0, 2); err != nil || len(evs) != 2 || evs[1].Seq != 2 {
			t.Errorf("limit 2: %+v, %v", briefs(evs), err)
		}
		if evs := events(t, s, imaged.NewID(), 0); evs == nil || len(evs) != 0 {
			t.Errorf("an unknown job's events: %v, want empty", evs)
		}
	})

	t.Run("succeeded_event_carries_the_images", func(t *testing.T) {
		s := open(t).Jobs
		job := newJob("alice", t0)
		s.CreateJob(t.Context(), job)
		c, _ := s.ClaimJob(t.Context(), "w1", t0, t0.Add(time.Hour))
		c.Status, c.ImageIDs = imaged.JobSucceeded, []string{imaged.NewID(), imaged.NewID()}
		if err := s.FinishJob(t.Context(), c, "w1"); err != nil {
			t.Fatal(err)
		}
		evs := events(t, s, job.ID, 2)
		if len(evs) != 1 || evs[0].Type != imaged.JobSucceeded || !slices.Equal(evs[0].ImageIDs, c.ImageIDs) {
			t.Errorf("%+v", briefs(evs))
		}
	})

	t.Run("progress_without_the_lease_is_conflict_and_records_nothing", func(t *testing.T) {
		s := open(t).Jobs
		job := newJob("alice", t0)
		s.CreateJob(t.Context(), job)
		wantCode(t, s.ReportJobProgress(t.Context(), job.ID, "w1", 5, t0), imaged.EConflict, "progress of a queued job")
		s.ClaimJob(t.Context(), "w1", t0, t0.Add(time.Hour))
		wantCode(t, s.ReportJobProgress(t.Context(), job.ID, "w2", 5, t0), imaged.EConflict, "progress by another worker")
		wantCode(t, s.ReportJobProgress(t.Context(), imaged.NewID(), "w1", 5, t0), imaged.EConflict, "progress of an unknown job")
		if n := len(events(t, s, job.ID, 0)); n != 2 {
			t.Errorf("%d events, want 2 (queued, running)", n)
		}
	})

	t.Run("recent_events_tell_which_jobs_have_news", func(t *testing.T) {
		s := open(t).Jobs
		old, fresh := newJob("alice", t0), newJob("bob", t0.Add(time.Minute))
		s.CreateJob(t.Context(), old)
		s.CreateJob(t.Context(), fresh)
		got, err := s.RecentJobEvents(t.Context(), t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[fresh.ID] != 1 {
			t.Errorf("since t0+30s: %v, want only %s at 1", got, fresh.ID)
		}
		s.ClaimJob(t.Context(), "w1", t0.Add(2*time.Minute), t0.Add(time.Hour)) // old, the oldest
		got, _ = s.RecentJobEvents(t.Context(), t0.Add(30*time.Second))
		if len(got) != 2 || got[old.ID] != 2 || got[fresh.ID] != 1 {
			t.Errorf("after the claim: %v", got)
		}
	})
}

func testWebhooks(t *testing.T, open func(t *testing.T) Stores) {
	deliveries := func(t *testing.T, s imaged.WebhookStore, owner, job string) []*imaged.WebhookDelivery {
		t.Helper()
		ds, err := s.WebhookDeliveries(t.Context(), owner, job)
		if err != nil {
			t.Fatalf("WebhookDeliveries: %v", err)
		}
		return ds
	}
	events := func(ds []*imaged.WebhookDelivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.Event)
		}
		return out
	}
	hooked := func(owner string, created time.Time, evs ...string) *imaged.Job {
		j := newJob(owner, created)
		j.Webhook = &imaged.JobWebhook{URL: "https://hooks.example.com/in?x=1", Events: evs}
		return j
	}

	t.Run("job_keeps_its_webhook", func(t *testing.T) {
		st := open(t)
		job := hooked("alice", t0, "completed")
		st.Jobs.CreateJob(t.Context(), job)
		got, err := st.Jobs.FindJob(t.Context(), "alice", job.ID)
		if err != nil || got.Webhook == nil || got.Webhook.URL != job.Webhook.URL || !slices.Equal(got.Webhook.Events, []string{"completed"}) {
			t.Fatalf("FindJob: %+v, %v", got, err)
		}
		plain := newJob("alice", t0)
		st.Jobs.CreateJob(t.Context(), plain)
		if got, _ := st.Jobs.FindJob(t.Context(), "alice", plain.ID); got.Webhook != nil {
			t.Errorf("a job without webhook reads back %+v", got.Webhook)
		}
	})

	t.Run("deliveries_are_queued_once_per_job_and_event", func(t *testing.T) {
		st := open(t)
		both, done, none := hooked("alice", t0, "started", "completed"), hooked("alice", t0.Add(time.Second), "completed"), newJob("alice", t0.Add(2*time.Second))
		for _, j := range []*imaged.Job{both, done, none} {
			st.Jobs.CreateJob(t.Context(), j)
		}
		for _, j := range []*imaged.Job{both, done, none} {
			if len(deliveries(t, st.Webhooks, "alice", j.ID)) != 0 {
				t.Fatal("a delivery before the job ran")
			}
		}
		// both runs, its worker dies, another runs it to the end: one
		// started, one completed.
		c, _ := st.Jobs.ClaimJob(t.Context(), "w1", t0.Add(time.Minute), t0.Add(2*time.Minute))
		if c.ID != both.ID {
			t.Fatalf("claimed %s, want %s", c.ID, both.ID)
		}
		if err := st.Jobs.ReportJobProgress(t.Context(), both.ID, "w1", 50, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		c, _ = st.Jobs.ClaimJob(t.Context(), "w2", t0.Add(3*time.Minute), t0.Add(time.Hour))
		if c.ID != both.ID {
			t.Fatalf("reclaimed %s, want %s", c.ID, both.ID)
		}
		ds := deliveries(t, st.Webhooks, "alice", both.ID)
		if !slices.Equal(events(ds), []string{"started"}) {
			t.Fatalf("after two runs: %v, want one started", events(ds))
		}
		d := ds[0]
		if d.ID != imaged.WebhookDeliveryID(both.ID, "started") || d.Owner != "alice" || d.JobID != both.ID || d.URL != both.Webhook.URL ||
			d.Status != imaged.DeliveryPending || d.Attempts != 0 || d.Body != nil {
			t.Errorf("started delivery = %+v", d)
		}
		report(t, "started delivery", sameTime("NextAttemptAt", d.NextAttemptAt, t0.Add(time.Minute)))
		c.Status, c.ImageIDs = imaged.JobSucceeded, []string{imaged.NewID()}
		c.UpdatedAt = t0.Add(4 * time.Minute)
		st.Jobs.FinishJob(t.Context(), c, "w2")
		if got := events(deliveries(t, st.Webhooks, "alice", both.ID)); !slices.Equal(got, []string{"started", "completed"}) {
			t.Errorf("after the end: %v", got)
		}
		if got := deliveries(t, st.Webhooks, "bob", both.ID); len(got) != 0 {
			t.Errorf("bob sees alice's deliveries: %v", events(got))
		}

		// done subscribed to completed only; a handed-back run is no end.
		c, _ = st.Jobs.ClaimJob(t.Context(), "w1", t0.Add(5*time.Minute), t0.Add(time.Hour))
		c.Status = imaged.JobQueued
		st.Jobs.FinishJob(t.Context(), c, "w1")
		if got := deliveries(t, st.Webhooks, "alice", done.ID); len(got) != 0 {
			t.Errorf("completed-only job after a run handed back: %v", events(got))
		}
		c, _ = st.Jobs.ClaimJob(t.Context(), "w1", t0.Add(5*time.Minute), t0.Add(time.Hour))
		c.Status, c.ErrorCode, c.ErrorMessage = imaged.JobFailed, imaged.EGeneration, "x"
		st.Jobs.FinishJob(t.Context(), c, "w1")
		if got := events(deliveries(t, st.Webhooks, "alice", done.ID)); !slices.Equal(got, []string{"completed"}) {
			t.Errorf("completed-only job after failing: %v", got)
		}
	})

	queue := func(t *testing.T, st Stores, n int) []string {
		t.Helper()
		var ids []string
		for i := range n {
			j := hooked("alice", t0.Add(time.Duration(i)*time.Second), "started")
			st.Jobs.CreateJob(t.Context(), j)
			if _, err := st.Jobs.ClaimJob(t.Context(), "jw", t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, imaged.WebhookDeliveryID(j.ID, "started"))
		}
		return ids
	}

	t.Run("claim_attempt_and_retry", func(t *testing.T) {
		st := open(t)
		s := st.Webhooks
		ids := queue(t, st, 2)
		if d, err := s.ClaimWebhookDelivery(t.Context(), "d1", t0.Add(-time.Minute), t0.Add(time.Hour)); d != nil || err != nil {
			t.Fatalf("before any is due: %v, %v", d, err)
		}
		now := t0.Add(time.Minute)
		d1, err := s.ClaimWebhookDelivery(t.Context(), "d1", now, now.Add(time.Minute))
		if err != nil || d1 == nil || d1.ID != ids[0] || d1.LeaseOwner != "d1" {
			t.Fatalf("first claim: %+v, %v", d1, err)
		}
		report(t, "claimed delivery", sameTime("LeaseUntil", d1.LeaseUntil, now.Add(time.Minute)))
		d2, _ := s.ClaimWebhookDelivery(t.Context(), "d2", now, now.Add(time.Minute))
		if d2 == nil || d2.ID != ids[1] {
			t.Fatalf("second claim: %+v, want %s", d2, ids[1])
		}
		if d, _ := s.ClaimWebhookDelivery(t.Context(), "d3", now, now.Add(time.Minute)); d != nil {
			t.Fatalf("a third claim got %s, leased to another", d.ID)
		}
		// d1 fails: retry in 5 minutes, body kept.
		d1.Attempts, d1.NextAttemptAt, d1.Body, d1.LastStatus, d1.LastError = 1, now.Add(5*time.Minute), []byte(`{"type":"x"}`), 500, "status 500"
		d1.UpdatedAt = now
		wantCode(t, s.FinishWebhookAttempt(t.Context(), d1, "d2"), imaged.EConflict, "finish by another worker")
		if err := s.FinishWebhookAttempt(t.Context(), d1, "d1"); err != nil {
			t.Fatal(err)
		}
		// At +4m d1 is not due yet; d2's lease has passed (its worker
		// died), so d2 is claimable again.
		d2again, _ := s.ClaimWebhookDelivery(t.Context(), "d4", now.Add(4*time.Minute), now.Add(10*time.Minute))
		if d2again == nil || d2again.ID != d2.ID || d2again.LeaseOwner != "d4" {
			t.Fatalf("claim at +4m: %+v, want %s (its lease passed) and not %s (not due)", d2again, d2.ID, d1.ID)
		}
		wantCode(t, s.FinishWebhookAttempt(t.Context(), d2, "d2"), imaged.EConflict, "finish after the lease was taken over")
		d1again, _ := s.ClaimWebhookDelivery(t.Context(), "d3", now.Add(5*time.Minute), now.Add(6*time.Minute))
		if d1again == nil || d1again.ID != d1.ID || d1again.Attempts != 1 || string(d1again.Body) != `{"type":"x"}` || d1again.LastStatus != 500 || d1again.LastError != "status 500" {
			t.Fatalf("retry claim: %+v", d1again)
		}
		// Delivered and failed ones are never claimed again.
		d1again.Status, d1again.Attempts, d1again.LastStatus = imaged.DeliveryDelivered, 2, 204
		d2again.Status, d2again.Attempts, d2again.LastStatus = imaged.DeliveryFailed, 1, 410
		for _, d := range []*imaged.WebhookDelivery{d1again, d2again} {
			if err := s.FinishWebhookAttempt(t.Context(), d, d.LeaseOwner); err != nil {
				t.Fatal(err)
			}
		}
		if d, _ := s.ClaimWebhookDelivery(t.Context(), "d5", now.Add(24*time.Hour), now.Add(25*time.Hour)); d != nil {
			t.Fatalf("claimed %s (%s)", d.ID, d.Status)
		}
		ds := deliveries(t, s, "alice", d1.JobID)
		if len(ds) != 1 || ds[0].Status != imaged.DeliveryDelivered || ds[0].Attempts != 2 || ds[0].LastStatus != 204 || ds[0].LeaseOwner != "" {
			t.Errorf("delivered: %+v", ds)
		}
		wantCode(t, s.FinishWebhookAttempt(t.Context(), ds[0], "d3"), imaged.EConflict, "finish of a delivered one")
	})

	t.Run("concurrent_claims_never_share_a_delivery", func(t *testing.T) {
		st := open(t)
		const n = 12
		queue(t, st, n)
		var (
			mu      sync.Mutex
			claimBy = map[string][]string{}
			wg      sync.WaitGroup
		)
		start := make(chan struct{})
		for w := range 4 {
			worker := string(rune('a' + w))
			wg.Go(func() {
				<-start
				for range n + 1 {
					d, err := st.Webhooks.ClaimWebhookDelivery(t.Context(), worker, t0.Add(time.Hour), t0.Add(2*time.Hour))
					if err != nil {
						t.Errorf("ClaimWebhookDelivery: %v", err)
						return
					}
					if d == nil {
						return
					}
					mu.Lock()
					claimBy[d.ID] = append(claimBy[d.ID], worker)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(claimBy) != n {
			t.Errorf("%d of %d deliveries claimed", len(claimBy), n)
		}
		for id, ws := range claimBy {
			if len(ws) != 1 {
				t.Errorf("delivery %s claimed by %v", id, ws)
			}
		}
	})

	t.Run("secret_is_created_once_and_rotated", func(t *testing.T) {
		s := open(t).Webhooks
		first, err := s.WebhookSecret(t.Context(), "alice", "whsec_one", t0)
		if err != nil || first.Secret != "whsec_one" || first.Owner != "alice" || first.Previous != "" || !first.PreviousUntil.IsZero() {
			t.Fatalf("first: %+v, %v", first, err)
		}
		report(t, "secret", sameTime("CreatedAt", first.CreatedAt, t0))
		again, _ := s.WebhookSecret(t.Context(), "alice", "whsec_two", t0.Add(time.Hour))
		if again.Secret != "whsec_one" {
			t.Errorf("a second read with another candidate: %q, want whsec_one", again.Secret)
		}
		bob, _ := s.WebhookSecret(t.Context(), "bob", "whsec_bob", t0)
		if bob.Secret != "whsec_bob" {
			t.Errorf("bob's: %q", bob.Secret)
		}
		rot, err := s.RotateWebhookSecret(t.Context(), "alice", "whsec_three", t0.Add(time.Hour), t0.Add(25*time.Hour))
		if err != nil || rot.Secret != "whsec_three" || rot.Previous != "whsec_one" {
			t.Fatalf("rotated: %+v, %v", rot, err)
		}
		report(t, "rotated", sameTime("PreviousUntil", rot.PreviousUntil, t0.Add(25*time.Hour)))
		if now, _ := s.WebhookSecret(t.Context(), "alice", "whsec_four", t0.Add(2*time.Hour)); now.Secret != "whsec_three" || now.Previous != "whsec_one" {
			t.Errorf("after rotation: %+v", now)
		}
		fresh, _ := s.RotateWebhookSecret(t.Context(), "carol", "whsec_c", t0, t0.Add(time.Hour))
		if fresh.Secret != "whsec_c" || fresh.Previous != "" {
			t.Errorf("rotating without a secret: %+v", fresh)
		}
	})
}
