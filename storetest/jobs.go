package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

func newJob(owner string, createdAt time.Time) *imaged.Job {
	return &imaged.Job{
		ID:        imaged.NewID(),
		Owner:     owner,
		Status:    imaged.JobQueued,
		Provider:  "builtin",
		Request:   json.RawMessage(`{"prompt":"a red fox in snow","model":"procedural-1","aspectRatio":"1:1","n":2,"seed":7}`),
		CreatedAt: createdAt,
		UpdatedAt: createdAt,
	}
}

func diffJob(got, want *imaged.Job) []string {
	if got == nil || want == nil {
		if got != want {
			return []string{fmt.Sprintf("got %v, want %v", got, want)}
		}
		return nil
	}
	var d []string
	f := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	f("ID", got.ID, want.ID)
	f("Owner", got.Owner, want.Owner)
	f("Status", got.Status, want.Status)
	f("Provider", got.Provider, want.Provider)
	if !jsonEqual(got.Request, want.Request) {
		d = append(d, fmt.Sprintf("Request: got %s, want %s", got.Request, want.Request))
	}
	if !slices.Equal(got.ImageIDs, want.ImageIDs) {
		d = append(d, fmt.Sprintf("ImageIDs: got %q, want %q", got.ImageIDs, want.ImageIDs))
	}
	f("ErrorCode", got.ErrorCode, want.ErrorCode)
	f("ErrorMessage", got.ErrorMessage, want.ErrorMessage)
	f("Attempts", got.Attempts, want.Attempts)
	f("LeaseOwner", got.LeaseOwner, want.LeaseOwner)
	d = append(d, sameTime("LeaseUntil", got.LeaseUntil, want.LeaseUntil)...)
	d = append(d, sameTime("CreatedAt", got.CreatedAt, want.CreatedAt)...)
	d = append(d, sameTime("UpdatedAt", got.UpdatedAt, want.UpdatedAt)...)
	return d
}

func testJobs(t *testing.T, open func(t *testing.T) Stores) {
	create := func(t *testing.T, s imaged.JobStore, jobs ...*imaged.Job) {
		t.Helper()
		for _, j := range jobs {
			if err := s.CreateJob(t.Context(), j); err != nil {
				t.Fatalf("CreateJob: %v", err)
			}
		}
	}
	find := func(t *testing.T, s imaged.JobStore, owner, id string) *imaged.Job {
		t.Helper()
		j, err := s.FindJob(t.Context(), owner, id)
		if err != nil {
			t.Fatalf("FindJob(%s, %s): %v", owner, id, err)
		}
		return j
	}
	claim := func(t *testing.T, s imaged.JobStore, worker string, now, leaseUntil time.Time) *imaged.Job {
		t.Helper()
		j, err := s.ClaimJob(t.Context(), worker, now, leaseUntil)
		if err != nil {
			t.Fatalf("ClaimJob(%s): %v", worker, err)
		}
		return j
	}
	// claimed is want as ClaimJob by worker at now leaves it.
	claimed := func(want *imaged.Job, worker string, now, leaseUntil time.Time) *imaged.Job {
		w := *want
		w.Status, w.LeaseOwner, w.LeaseUntil = imaged.JobRunning, worker, leaseUntil
		w.Attempts++
		w.UpdatedAt = now
		return &w
	}

	t.Run("create_find_round_trip", func(t *testing.T) {
		s := open(t).Jobs
		want := newJob("alice", t0.In(time.FixedZone("UTC+1", 3600)))
		want.UpdatedAt = t0.Add(time.Second)
		create(t, s, want)
		report(t, "found job", diffJob(find(t, s, "alice", want.ID), want))
	})

	t.Run("find_unknown_malformed_or_other_owner_is_not_found", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		for _, tc := range []struct{ owner, id string }{
			{"bob", j.ID},
			{"", j.ID},
			{"alice", imaged.NewID()},
			{"alice", ""},
			{"alice", "not-a-job"},
			{"alice", "' OR 1=1 --"},
		} {
			_, err := s.FindJob(t.Context(), tc.owner, tc.id)
			wantCode(t, err, imaged.EJobNotFound, fmt.Sprintf("FindJob(%q, %q)", tc.owner, tc.id))
		}
	})

	t.Run("create_duplicate_id_fails", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		dup := newJob("bob", t0)
		dup.ID = j.ID
		if err := s.CreateJob(t.Context(), dup); err == nil {
			t.Fatal("CreateJob with a taken id succeeded")
		}
		report(t, "first job", diffJob(find(t, s, "alice", j.ID), j))
	})

	t.Run("claim_none_returns_nil", func(t *testing.T) {
		s := open(t).Jobs
		if j := claim(t, s, "w1", t0, t0.Add(time.Minute)); j != nil {
			t.Errorf("ClaimJob on an empty store returned %+v", j)
		}
	})

	t.Run("claim_takes_oldest_queued_first", func(t *testing.T) {
		s := open(t).Jobs
		second := newJob("alice", t0.Add(time.Second))
		third := newJob("bob", t0.Add(2*time.Second))
		first := newJob("carol", t0)
		create(t, s, second, third, first)
		now, until := t0.Add(time.Hour), t0.Add(time.Hour+time.Minute)
		for _, want := range []*imaged.Job{first, second, third} {
			got := claim(t, s, "w1", now, until)
			want := claimed(want, "w1", now, until)
			report(t, "claimed job", diffJob(got, want))
			report(t, "job after claim", diffJob(find(t, s, want.Owner, want.ID), want))
		}
		if j := claim(t, s, "w1", now, until); j != nil {
			t.Errorf("ClaimJob with every job leased returned %s", j.ID)
		}
	})

	t.Run("queued_jobs_counts_the_waiting_and_dates_the_oldest", func(t *testing.T) {
		s := open(t).Jobs
		q, ok := s.(interface {
			QueuedJobs(ctx context.Context) (int, time.Time, error)
		})
		if !ok {
			t.Skip("the store does not report its queue (QueuedJobs)")
		}
		queued := func() (int, time.Time) {
			t.Helper()
			n, oldest, err := q.QueuedJobs(t.Context())
			if err != nil {
				t.Fatalf("QueuedJobs: %v", err)
			}
			return n, oldest
		}
		if n, oldest := queued(); n != 0 || !oldest.IsZero() {
			t.Fatalf("empty store: QueuedJobs = %d, %v; want 0 and the zero time", n, oldest)
		}
		create(t, s, newJob("alice", t0.Add(time.Second)), newJob("bob", t0), newJob("carol", t0.Add(2*time.Second)))
		if n, oldest := queued(); n != 3 || !oldest.Equal(t0) {
			t.Errorf("three queued: QueuedJobs = %d, %v; want 3, %v", n, oldest, t0)
		}
		claim(t, s, "w1", t0.Add(time.Hour), t0.Add(2*time.Hour)) // takes bob's, the oldest
		if n, oldest := queued(); n != 2 || !oldest.Equal(t0.Add(time.Second)) {
			t.Errorf("after a claim: QueuedJobs = %d, %v; want 2, %v", n, oldest, t0.Add(time.Second))
		}
	})

	t.Run("expired_lease_is_claimable_by_another_worker", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		claim(t, s, "w1", t0, t0.Add(time.Minute))
		if got := claim(t, s, "w2", t0.Add(59*time.Second), t0.Add(2*time.Minute)); got != nil {
			t.Fatalf("w2 claimed %s while w1's lease holds", got.ID)
		}
		now, until := t0.Add(time.Minute), t0.Add(2*time.Minute)
		got := claim(t, s, "w2", now, until)
		want := claimed(claimed(j, "w1", t0, t0.Add(time.Minute)), "w2", now, until)
		report(t, "reclaimed job", diffJob(got, want))
		if got != nil && got.Attempts != 2 {
			t.Errorf("Attempts %d after two claims", got.Attempts)
		}
	})

	t.Run("extend_moves_lease", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		claim(t, s, "w1", t0, t0.Add(time.Minute))
		if err := s.ExtendJob(t.Context(), j.ID, "w1", t0.Add(5*time.Minute)); err != nil {
			t.Fatalf("ExtendJob: %v", err)
		}
		if got := find(t, s, "alice", j.ID); !got.LeaseUntil.Equal(t0.Add(5 * time.Minute)) {
			t.Errorf("LeaseUntil after extend: %v, want %v", got.LeaseUntil, t0.Add(5*time.Minute))
		}
		if got := claim(t, s, "w2", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); got != nil {
			t.Errorf("w2 claimed %s under w1's extended lease", got.ID)
		}
		if got := claim(t, s, "w2", t0.Add(5*time.Minute), t0.Add(6*time.Minute)); got == nil || got.LeaseOwner != "w2" {
			t.Errorf("w2 could not claim the job once the extended lease passed: %+v", got)
		}
	})

	t.Run("lost_lease_is_conflict", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		claim(t, s, "w1", t0, t0.Add(time.Minute))
		claim(t, s, "w2", t0.Add(2*time.Minute), t0.Add(3*time.Minute))

		err := s.ExtendJob(t.Context(), j.ID, "w1", t0.Add(10*time.Minute))
		wantCode(t, err, imaged.EConflict, "ExtendJob by w1 after losing the lease")
		done := *j
		done.Status, done.ImageIDs = imaged.JobSucceeded, []string{imaged.NewID()}
		err = s.FinishJob(t.Context(), &done, "w1")
		wantCode(t, err, imaged.EConflict, "FinishJob by w1 after losing the lease")

		got := find(t, s, "alice", j.ID)
		if got.Status != imaged.JobRunning || got.LeaseOwner != "w2" || !got.LeaseUntil.Equal(t0.Add(3*time.Minute)) || len(got.ImageIDs) != 0 {
			t.Errorf("w1's refused calls changed the job: %+v", got)
		}
		if err := s.ExtendJob(t.Context(), j.ID, "w2", t0.Add(4*time.Minute)); err != nil {
			t.Errorf("ExtendJob by the holder: %v", err)
		}
	})

	t.Run("extend_or_finish_unclaimed_job_is_conflict", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		wantCode(t, s.ExtendJob(t.Context(), j.ID, "w1", t0.Add(time.Minute)), imaged.EConflict, "ExtendJob of a queued job")
		done := *j
		done.Status = imaged.JobSucceeded
		wantCode(t, s.FinishJob(t.Context(), &done, "w1"), imaged.EConflict, "FinishJob of a queued job")
		wantCode(t, s.ExtendJob(t.Context(), imaged.NewID(), "w1", t0.Add(time.Minute)), imaged.EConflict, "ExtendJob of an unknown job")
		if got := find(t, s, "alice", j.ID); got.Status != imaged.JobQueued {
			t.Errorf("status %q, want still queued", got.Status)
		}
	})

	t.Run("finish_persists_outcome", func(t *testing.T) {
		s := open(t).Jobs
		ok, bad := newJob("alice", t0), newJob("alice", t0.Add(time.Second))
		create(t, s, ok, bad)
		until := t0.Add(time.Minute)
		claim(t, s, "w1", t0, until)
		claim(t, s, "w1", t0, until)

		succeeded := claimed(ok, "w1", t0, until)
		succeeded.Status = imaged.JobSucceeded
		succeeded.ImageIDs = []string{imaged.NewID(), imaged.NewID()}
		succeeded.UpdatedAt = t0.Add(30 * time.Second)
		if err := s.FinishJob(t.Context(), succeeded, "w1"); err != nil {
			t.Fatalf("FinishJob(succeeded): %v", err)
		}
		failed := claimed(bad, "w1", t0, until)
		failed.Status = imaged.JobFailed
		failed.ErrorCode = imaged.EContentPolicy
		failed.ErrorMessage = "The prompt was refused by the provider"
		failed.UpdatedAt = t0.Add(40 * time.Second)
		if err := s.FinishJob(t.Context(), failed, "w1"); err != nil {
			t.Fatalf("FinishJob(failed): %v", err)
		}
		for _, want := range []*imaged.Job{succeeded, failed} {
			got := find(t, s, "alice", want.ID)
			report(t, "finished job", diffJob(got, want))
		}
		// Finished jobs are never claimed again, whatever their lease.
		if got := claim(t, s, "w2", t0.Add(time.Hour), t0.Add(2*time.Hour)); got != nil {
			t.Errorf("finished job %s (%s) was claimed", got.ID, got.Status)
		}
		// Nor finished twice.
		wantCode(t, s.FinishJob(t.Context(), succeeded, "w1"), imaged.EConflict, "FinishJob twice")
	})

	t.Run("finish_queued_hands_job_back", func(t *testing.T) {
		s := open(t).Jobs
		j := newJob("alice", t0)
		create(t, s, j)
		got := claim(t, s, "w1", t0, t0.Add(time.Hour))
		back := *got
		back.Status = imaged.JobQueued
		back.UpdatedAt = t0.Add(time.Second)
		if err := s.FinishJob(t.Context(), &back, "w1"); err != nil {
			t.Fatalf("FinishJob(queued): %v", err)
		}
		if got := find(t, s, "alice", j.ID); got.Status != imaged.JobQueued {
			t.Errorf("status %q after handing back, want queued", got.Status)
		}
		wantCode(t, s.ExtendJob(t.Context(), j.ID, "w1", t0.Add(2*time.Hour)), imaged.EConflict, "ExtendJob after handing back")
		// Claimable at once, long before the old lease would have passed.
		got = claim(t, s, "w2", t0.Add(2*time.Second), t0.Add(time.Minute))
		if got == nil || got.ID != j.ID || got.LeaseOwner != "w2" || got.Attempts != 2 {
			t.Errorf("claim after handing back: %+v, want the job leased to w2 with 2 attempts", got)
		}
	})

	t.Run("concurrent_claims_never_share_a_job", func(t *testing.T) {
		s := open(t).Jobs
		const jobs, workers = 12, 6
		for i := range jobs {
			create(t, s, newJob("alice", t0.Add(time.Duration(i)*time.Millisecond)))
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			start   = make(chan struct{})
			claimBy = map[string][]string{} // job id -> workers
		)
		for w := range workers {
			worker := fmt.Sprintf("w%d", w)
			wg.Go(func() {
				<-start
				// More claims than jobs can only succeed by sharing one.
				for range jobs + 1 {
					j, err := s.ClaimJob(t.Context(), worker, t0.Add(time.Second), t0.Add(time.Hour))
					if err != nil {
						t.Errorf("ClaimJob(%s): %v", worker, err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					claimBy[j.ID] = append(claimBy[j.ID], worker)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(claimBy) != jobs {
			t.Errorf("%d of %d jobs claimed", len(claimBy), jobs)
		}
		for id, ws := range claimBy {
			if len(ws) != 1 {
				t.Errorf("job %s claimed by %v", id, ws)
			}
		}
	})

	t.Run("list_newest_first_with_cursor_and_status", func(t *testing.T) {
		s := open(t).Jobs
		// Five jobs of alice, two at the same instant (the id breaks the
		// tie), one of bob in between; two of alice's run, one finished.
		var alice []*imaged.Job
		for _, d := range []time.Duration{0, time.Second, time.Second, 2 * time.Second, 3 * time.Second} {
			alice = append(alice, newJob("alice", t0.Add(d)))
		}
		create(t, s, alice...)
		create(t, s, newJob("bob", t0.Add(1500*time.Millisecond)))
		claimed := claim(t, s, "w1", t0.Add(time.Minute), t0.Add(time.Hour)) // alice[0], the oldest
		claimed.Status, claimed.ImageIDs = imaged.JobSucceeded, []string{imaged.NewID()}
		claimed.UpdatedAt = t0.Add(2 * time.Minute)
		if err := s.FinishJob(t.Context(), claimed, "w1"); err != nil {
			t.Fatalf("FinishJob: %v", err)
		}
		claim(t, s, "w1", t0.Add(time.Minute), t0.Add(time.Hour)) // alice[1] or alice[2]

		want := slices.Clone(alice)
		slices.SortFunc(want, func(a, b *imaged.Job) int { // newest first
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		var got []*imaged.Job
		var cursor *imaged.Cursor
		for page := 0; ; page++ {
			p, err := s.ListJobs(t.Context(), imaged.JobFilter{Owner: "alice", Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatalf("ListJobs: %v", err)
			}
			if len(p.Jobs) > 2 {
				t.Fatalf("page %d holds %d jobs, limit 2", page, len(p.Jobs))
			}
			if p.TotalItems != int64(len(alice)) {
				t.Errorf("page %d: TotalItems %d, want %d", page, p.TotalItems, len(alice))
			}
			got = append(got, p.Jobs...)
			if p.Next == nil {
				break
			}
			last := p.Jobs[len(p.Jobs)-1]
			if !p.Next.CreatedAt.Equal(last.CreatedAt) || p.Next.ID != last.ID {
				t.Errorf("Next = %v, want the last job's (%v, %s)", p.Next, last.CreatedAt, last.ID)
			}
			if page > len(alice) {
				t.Fatal("the listing does not end")
			}
			cursor = p.Next
		}
		if len(got) != len(want) {
			t.Fatalf("listed %d jobs, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Errorf("job %d: %s, want %s", i, got[i].ID, want[i].ID)
			}
		}
		// The listed job is the stored one, field by field.
		for _, j := range got {
			if j.ID == claimed.ID {
				report(t, "listed finished job", diffJob(j, find(t, s, "alice", j.ID)))
			}
		}

		for status, n := range map[imaged.JobStatus]int{imaged.JobQueued: 3, imaged.JobRunning: 1, imaged.JobSucceeded: 1, imaged.JobFailed: 0} {
			p, err := s.ListJobs(t.Context(), imaged.JobFilter{Owner: "alice", Status: status, Limit: 10})
			if err != nil {
				t.Fatalf("ListJobs(%s): %v", status, err)
			}
			if len(p.Jobs) != n || p.Next != nil || p.TotalItems != int64(n) {
				t.Errorf("%s: %d jobs (total %d, next %v), want %d and no next", status, len(p.Jobs), p.TotalItems, p.Next, n)
			}
			for _, j := range p.Jobs {
				if j.Status != status || j.Owner != "alice" {
					t.Errorf("%s listing holds a %s job of %s", status, j.Status, j.Owner)
				}
			}
		}
		p, err := s.ListJobs(t.Context(), imaged.JobFilter{Owner: "carol", Limit: 10})
		if err != nil || p.Jobs == nil || len(p.Jobs) != 0 || p.Next != nil {
			t.Errorf("an owner without jobs: %v, %v; want an empty, non-nil page", p, err)
		}
	})
}
