package generation_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
)

func TestSubmitQueuesAJob(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fake := newFake("fake", nil)
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
	v, err := svc.Submit(ctx, alice, generation.Request{Prompt: " a cat ", N: generation.Count(2)})
	if err != nil {
		t.Fatal(err)
	}
	if !imaged.ValidID(v.ID) || v.Status != imaged.JobQueued || v.Owner != alice || v.Provider != "fake" || v.Attempts != 0 {
		t.Errorf("submitted job %s", describe(v.Job))
	}
	// The request is kept resolved: what a worker will run.
	want := generation.Request{Prompt: "a cat", Provider: "fake", Model: "fake-1", AspectRatio: "1:1", N: generation.Count(2)}
	if !reflect.DeepEqual(v.Request, want) {
		t.Errorf("request %+v, want %+v", v.Request, want)
	}
	got, err := svc.Job(ctx, alice, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != imaged.JobQueued || !reflect.DeepEqual(got.Request, want) || len(got.Images) != 0 || !got.CreatedAt.Equal(f.clock.Now()) {
		t.Errorf("Job() = %s, request %+v", describe(got.Job), got.Request)
	}
	if n := fake.callCount(); n != 0 {
		t.Errorf("Submit called the provider %d times", n)
	}
}

func TestSubmitRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("invalid_request_creates_no_job", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
		_, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(9)})
		wantCode(t, err, imaged.EInvalidPrompt)
		assertNoJobToRun(t, svc)
	})
	t.Run("over_quota_is_429_and_creates_no_job", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}, Quota: imaged.QuotaLimits{ImagesPerDay: 2}})
		if _, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(2)}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		wantCode(t, err, imaged.EQuotaExceeded)
		var e *imaged.Error
		if !errors.As(err, &e) || e.RetryAfter <= 0 {
			t.Errorf("RetryAfter of %v, want positive", err)
		}
		if ran, err := svc.RunOne(ctx); !ran || err != nil {
			t.Fatalf("RunOne of the accepted job = %v, %v", ran, err)
		}
		assertNoJobToRun(t, svc)
	})
}

// assertNoJobToRun checks that no job is waiting.
func assertNoJobToRun(t *testing.T, svc *generation.Service) {
	t.Helper()
	ran, err := svc.RunOne(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("a job was waiting, want none")
	}
}

func TestRunOne(t *testing.T) {
	ctx := context.Background()
	t.Run("nothing_waiting", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
		assertNoJobToRun(t, svc)
	})
	t.Run("queued_job_succeeds_with_its_images", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", nil)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, WorkerID: "w1"})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat", ThemeStyle: "Noir", N: generation.Count(2)})
		if err != nil {
			t.Fatal(err)
		}
		if ran, err := svc.RunOne(ctx); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobSucceeded || got.Attempts != 1 || got.ErrorCode != "" || len(got.ImageIDs) != 2 || len(got.Images) != 2 {
			t.Fatalf("job %s with %d images", describe(got.Job), len(got.Images))
		}
		for i, img := range got.Images {
			if img.ID != got.ImageIDs[i] || img.Owner != alice || img.Generation == nil || img.Generation.Prompt != "a cat" {
				t.Errorf("image %d: %+v", i, img)
			}
		}
		if p := fake.lastRequest(t).Prompt; p != "a cat\nTheme: Noir" {
			t.Errorf("provider prompt %q", p)
		}
		if n := f.imageCount(t, alice); n != 2 {
			t.Errorf("%d images stored, want 2", n)
		}
		assertNoJobToRun(t, svc)
	})
	t.Run("deleted_image_is_left_out_of_the_job", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(2)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RunOne(ctx); err != nil {
			t.Fatal(err)
		}
		done, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.images.Delete(ctx, alice, done.ImageIDs[0]); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Images) != 1 || got.Images[0].ID != done.ImageIDs[1] {
			t.Errorf("images %+v, want only %s", got.Images, done.ImageIDs[1])
		}
	})
	t.Run("failing_provider_fails_the_job_with_a_caller_safe_message", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", failing(&imaged.UpstreamError{Provider: "fake", Status: 500, Err: errors.New("upstream said: secret-detail sk-123")}))
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		if err != nil {
			t.Fatal(err)
		}
		if ran, err := svc.RunOne(ctx); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobFailed || got.ErrorCode != imaged.EGeneration || len(got.ImageIDs) != 0 {
			t.Fatalf("job %s", describe(got.Job))
		}
		if got.ErrorMessage == "" || strings.Contains(got.ErrorMessage, "secret") || strings.Contains(got.ErrorMessage, "500") {
			t.Errorf("error message %q, want a caller-safe one", got.ErrorMessage)
		}
		f.assertNothingStored(t, alice)
		// The failed job charged nothing.
		fake.setGen(nil)
		if _, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat"}); err != nil {
			t.Errorf("after the failed job: %v", err)
		}
	})
	t.Run("provider_timeout_fails_the_job_with_generation_timeout", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", failing(&imaged.UpstreamError{Provider: "fake", Timeout: true, Err: errors.New("read tcp: i/o timeout")}))
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RunOne(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobFailed || got.ErrorCode != imaged.EGenerationTimeout || strings.Contains(got.ErrorMessage, "tcp") {
			t.Errorf("job %s", describe(got.Job))
		}
	})
	t.Run("updated_at_is_when_the_job_finished", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", func(_ context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			f.clock.Advance(time.Minute)
			return pngImages(req), nil
		})
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RunOne(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.UpdatedAt.Equal(f.clock.Now()) || !got.CreatedAt.Equal(v.CreatedAt) {
			t.Errorf("created %v, updated %v; want updated at %v, when it finished", got.CreatedAt, got.UpdatedAt, f.clock.Now())
		}
	})
}

// TestRunOneTakesOverAnExpiredLease: a job whose worker stopped renewing its
// lease is run by another worker, and the first can no longer finish it.
func TestRunOneTakesOverAnExpiredLease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	fake := newFake("fake", blocking(started, release))
	const timeout = time.Minute
	a := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, WorkerID: "A", Timeout: timeout})
	v, err := a.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
	if err != nil {
		t.Fatal(err)
	}
	lease := timeout + 30*time.Second
	now := f.clock.Now()
	claimed, err := f.db.ClaimJob(ctx, "A", now, now.Add(lease))
	if err != nil || claimed == nil || claimed.ID != v.ID {
		t.Fatalf("A's claim = %v, %v", claimed, err)
	}

	// B's clock is past A's lease.
	later := now.Add(lease + time.Second)
	b := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, WorkerID: "B", Timeout: timeout,
		Now: func() time.Time { return later }})
	type result struct {
		ran bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ran, err := b.RunOne(ctx)
		done <- result{ran, err}
	}()
	<-started // B runs the job
	running, err := f.db.FindJob(ctx, alice, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if running.Status != imaged.JobRunning || running.LeaseOwner != "B" || running.Attempts != 2 {
		t.Errorf("while B runs: %s", describe(running))
	}
	claimed.Status = imaged.JobFailed
	claimed.ErrorCode, claimed.ErrorMessage = imaged.EGeneration, "A gave up"
	wantCode(t, f.db.FinishJob(ctx, claimed, "A"), imaged.EConflict)

	close(release)
	if r := <-done; !r.ran || r.err != nil {
		t.Fatalf("B's RunOne = %v, %v", r.ran, r.err)
	}
	got, err := b.Job(ctx, alice, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != imaged.JobSucceeded || len(got.Images) != 1 {
		t.Fatalf("job %s with %d images", describe(got.Job), len(got.Images))
	}
	// Once B finished, A still cannot overwrite the outcome.
	claimed.Status = imaged.JobSucceeded
	wantCode(t, f.db.FinishJob(ctx, claimed, "A"), imaged.EConflict)
	if got, _ := b.Job(ctx, alice, v.ID); got.Status != imaged.JobSucceeded {
		t.Errorf("after A's FinishJob: %s", describe(got.Job))
	}
}

func TestRunOneFailsAJobInterruptedTooManyTimes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fake := newFake("fake", nil)
	const timeout = time.Minute
	cfg := generation.Config{Providers: []imaged.Generator{fake}, Timeout: timeout, MaxJobAttempts: 1,
		Quota: imaged.QuotaLimits{ImagesPerDay: 1}}
	svc := f.service(t, cfg)
	v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
	if err != nil {
		t.Fatal(err)
	}
	// A worker claims the job and dies without a word.
	now := f.clock.Now()
	if j, err := f.db.ClaimJob(ctx, "dead", now, now.Add(timeout+30*time.Second)); err != nil || j == nil {
		t.Fatalf("claim = %v, %v", j, err)
	}
	f.clock.Advance(timeout + 31*time.Second)
	if ran, err := svc.RunOne(ctx); !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	got, err := svc.Job(ctx, alice, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != imaged.JobFailed || got.ErrorCode != imaged.EGeneration || got.Attempts != 2 || got.ErrorMessage == "" {
		t.Errorf("job %s", describe(got.Job))
	}
	if n := fake.callCount(); n != 0 {
		t.Errorf("provider called %d times, want 0", n)
	}
	// Its quota was released: the day's one image is still available.
	if _, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat"}); err != nil {
		t.Errorf("after the failed job: %v", err)
	}
}

func TestJobNotFound(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
	v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, owner, id string
	}{
		{"another_owner", bob, v.ID},
		{"malformed_id", alice, "not-an-id"},
		{"id_in_upper_case", alice, strings.ToUpper(v.ID)},
		{"empty_id", alice, ""},
		{"unknown_id", alice, imaged.NewID()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Job(ctx, tc.owner, tc.id)
			wantCode(t, err, imaged.EJobNotFound)
		})
	}
}

// gatedBlobs lets the images service store its first images in the real
// blob store, then holds Put number gate until the context ends.
type gatedBlobs struct {
	imaged.BlobStore
	gate    int32
	puts    atomic.Int32
	reached chan struct{}
}

func (g *gatedBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if g.puts.Add(1) == g.gate {
		close(g.reached)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return g.BlobStore.Put(ctx, key, r)
}

func TestWorkersStop(t *testing.T) {
	ctx := context.Background()
	t.Run("running_job_finishes_within_grace", func(t *testing.T) {
		f := newFixture(t)
		started, release := make(chan struct{}), make(chan struct{})
		var cancelled atomic.Bool
		fake := newFake("fake", func(ctx context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			started <- struct{}{}
			<-release
			cancelled.Store(ctx.Err() != nil)
			return pngImages(req), nil
		})
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		if err != nil {
			t.Fatal(err)
		}
		w := svc.StartWorkers(ctx)
		<-started
		stopped := make(chan struct{})
		go func() {
			w.Stop(time.Hour)
			close(stopped)
		}()
		select {
		case <-stopped:
			t.Fatal("Stop returned while a job was running")
		default:
		}
		close(release)
		<-stopped
		if cancelled.Load() {
			t.Error("the running job was cancelled within its grace")
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobSucceeded || len(got.Images) != 1 {
			t.Errorf("job %s with %d images", describe(got.Job), len(got.Images))
		}
	})
	t.Run("job_past_grace_is_handed_back_to_the_queue", func(t *testing.T) {
		f := newFixture(t)
		started := make(chan struct{})
		fake := newFake("fake", blocking(started, nil)) // returns only when cancelled
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
		if err != nil {
			t.Fatal(err)
		}
		w := svc.StartWorkers(ctx)
		<-started
		w.Stop(time.Millisecond)
		got, err := f.db.FindJob(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobQueued || got.LeaseOwner != "" || !got.LeaseUntil.IsZero() || got.Attempts != 1 || got.ImageIDs != nil {
			t.Errorf("job after Stop: %s", describe(got))
		}
		f.assertNothingStored(t, alice)
		// Any worker runs it again, within the quota reserved at Submit.
		fake.setGen(nil)
		if ran, err := svc.RunOne(ctx); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		again, err := svc.Job(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != imaged.JobSucceeded || again.Attempts != 2 || len(again.Images) != 1 {
			t.Errorf("job run again: %s with %d images", describe(again.Job), len(again.Images))
		}
	})
	t.Run("partial_images_of_a_job_past_grace_are_removed", func(t *testing.T) {
		gate := &gatedBlobs{gate: 2, reached: make(chan struct{})}
		f := newFixtureWithBlobs(t, func(b imaged.BlobStore) imaged.BlobStore { gate.BlobStore = b; return gate })
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
		v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(3)})
		if err != nil {
			t.Fatal(err)
		}
		w := svc.StartWorkers(ctx)
		<-gate.reached // the first image is stored, the second on its way
		if n := f.imageCount(t, alice); n != 1 {
			t.Fatalf("%d images before Stop, want 1", n)
		}
		w.Stop(time.Millisecond)
		got, err := f.db.FindJob(ctx, alice, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imaged.JobQueued || got.ImageIDs != nil {
			t.Errorf("job after Stop: %s", describe(got))
		}
		f.assertNothingStored(t, alice)
	})
	t.Run("stop_without_jobs_returns", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}})
		svc.StartWorkers(ctx).Stop(time.Hour)
		var nilWorkers *generation.Workers
		nilWorkers.Stop(time.Hour)
	})
}

func TestJobProgress(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fake := newFake("fake", func(ctx context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		for _, p := range []int{0, 10, 10, 5, 50, 140} { // a repeat, a step back, one out of range
			imaged.ReportProgress(ctx, p)
		}
		return pngImages(req), nil
	})
	type event struct {
		job     string
		percent int
	}
	var mu sync.Mutex
	var got []event
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake},
		JobProgress: func(_ context.Context, jobID string, percent int) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, event{jobID, percent})
		}})
	v, err := svc.Submit(ctx, alice, generation.Request{Prompt: "a cat"})
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := svc.RunOne(ctx); !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	want := []event{{v.ID, 0}, {v.ID, 10}, {v.ID, 50}, {v.ID, 100}}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("progress heard %v, want %v", got, want)
	}
	// A synchronous generation has nobody listening: reporting is harmless.
	if _, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat"}); err != nil {
		t.Fatal(err)
	}
}
