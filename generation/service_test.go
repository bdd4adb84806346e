package generation_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/provider/builtin"
)

func TestGenerateRetries(t *testing.T) {
	retryable := &imaged.UpstreamError{Provider: "fake", Status: 503, Retryable: true, Err: errors.New("overloaded")}
	permanent := &imaged.UpstreamError{Provider: "fake", Status: 400, Err: errors.New("bad request")}
	policy := imaged.Errorf(imaged.EContentPolicy, "The prompt was refused by the provider's content policy")
	tests := []struct {
		name        string
		maxAttempts int
		failures    []error // what the first calls return; later calls succeed
		calls       int
		err         error // nil for success
	}{
		{"retryable_failure_twice_then_success", 0, []error{retryable, retryable}, 3, nil},
		{"retryable_failure_three_times_gives_up_after_the_default_3_attempts", 0, []error{retryable, retryable, retryable}, 3, retryable},
		{"non_retryable_failure_is_not_retried", 0, []error{permanent}, 1, permanent},
		{"application_error_is_not_retried", 0, []error{policy}, 1, policy},
		{"plain_error_is_not_retried", 0, []error{errors.New("boom")}, 1, nil},
		{"max_attempts_1_never_retries", 1, []error{retryable}, 1, retryable},
		{"max_attempts_2_stops_after_two_calls", 2, []error{retryable, retryable, retryable}, 2, retryable},
		{"max_attempts_5_allows_five_calls", 5, []error{retryable, retryable, retryable, retryable}, 5, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			fake := newFake("fake", func(_ context.Context, call int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				if call <= len(tc.failures) {
					return nil, tc.failures[call-1]
				}
				return pngImages(req), nil
			})
			svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, MaxAttempts: tc.maxAttempts})
			imgs, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat"})
			if got := fake.callCount(); got != tc.calls {
				t.Errorf("provider called %d times, want %d", got, tc.calls)
			}
			wantFailure := tc.calls <= len(tc.failures)
			switch {
			case !wantFailure && err != nil:
				t.Fatalf("Generate: %v", err)
			case !wantFailure && len(imgs) != 1:
				t.Fatalf("%d images, want 1", len(imgs))
			case wantFailure && err == nil:
				t.Fatal("Generate succeeded, want an error")
			case wantFailure && tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if wantFailure {
				f.assertNothingStored(t, alice)
			}
		})
	}
}

// TestGenerateGivesUpWhenRetryAfterExceedsTheDeadline: a Retry-After that
// ends past the generation's deadline is not waited for.
func TestGenerateGivesUpWhenRetryAfterExceedsTheDeadline(t *testing.T) {
	f := newFixture(t)
	upstream := &imaged.UpstreamError{Provider: "fake", Status: 429, Retryable: true, RetryAfter: 25 * time.Second, Err: errors.New("slow down")}
	var (
		mu      sync.Mutex
		callCtx context.Context
	)
	fake := newFake("fake", func(ctx context.Context, _ int, _ imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		mu.Lock()
		callCtx = ctx
		mu.Unlock()
		return nil, upstream
	})
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Timeout: 20 * time.Second})
	_, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat"})
	if !errors.Is(err, upstream) {
		t.Fatalf("error %v, want the upstream error", err)
	}
	if n := fake.callCount(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	// Had it waited, the generation's context would have reached its
	// deadline before Generate returned.
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		t.Error("Generate waited until the deadline instead of giving up at once")
	}
}

// TestGenerateHonoursRetryAfter: a Retry-After within the deadline is
// waited for and the call retried.
func TestGenerateHonoursRetryAfter(t *testing.T) {
	f := newFixture(t)
	fake := newFake("fake", func(_ context.Context, call int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		if call == 1 {
			return nil, &imaged.UpstreamError{Provider: "fake", Status: 429, Retryable: true, RetryAfter: 5 * time.Millisecond, Err: errors.New("slow down")}
		}
		return pngImages(req), nil
	})
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
	if _, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat"}); err != nil {
		t.Fatal(err)
	}
	if n := fake.callCount(); n != 2 {
		t.Errorf("provider called %d times, want 2", n)
	}
}

// TestGenerateReturnsPromptlyWhenCancelledDuringBackoff: the backoff is an
// hour; cancelling the caller's context during it ends the generation.
func TestGenerateReturnsPromptlyWhenCancelledDuringBackoff(t *testing.T) {
	f := newFixture(t)
	waiting := make(chan struct{}, 1)
	fake := newFake("fake", failing(&imaged.UpstreamError{Provider: "fake", Status: 503, Retryable: true, Err: errors.New("overloaded")}))
	svc := f.service(t, generation.Config{
		Providers: []imaged.Generator{fake},
		Backoff:   time.Hour,
		Timeout:   3 * time.Hour,
		Logger:    slog.New(signalHandler{waiting}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat"})
		done <- err
	}()
	<-waiting // "provider failed, retrying": the backoff starts
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := fake.callCount(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
}

func TestGenerateWhenTheContextEnds(t *testing.T) {
	t.Run("deadline_exceeded_is_generation_timeout", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", func(ctx context.Context, _ int, _ imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			<-ctx.Done()
			return nil, &imaged.UpstreamError{Provider: "fake", Retryable: true, Err: ctx.Err()}
		})
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Timeout: 10 * time.Millisecond})
		_, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat"})
		wantCode(t, err, imaged.EGenerationTimeout)
		if n := fake.callCount(); n != 1 {
			t.Errorf("provider called %d times, want 1", n)
		}
	})
	t.Run("caller_cancellation_is_not_a_timeout", func(t *testing.T) {
		f := newFixture(t)
		started, release := make(chan struct{}), make(chan struct{})
		fake := newFake("fake", blocking(started, release))
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat"})
			done <- err
		}()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		f.assertNothingStored(t, alice)
	})
}

func TestGenerateStoring(t *testing.T) {
	good := func(i int) imaged.GeneratedImage { return imaged.GeneratedImage{Data: pngBytes(8, 6, byte(i))} }
	text := imaged.GeneratedImage{Data: []byte("<html>Service Unavailable</html>")}
	truncated := imaged.GeneratedImage{Data: good(0).Data[:len(good(0).Data)-10]}
	tests := []struct {
		name string
		n    int
		made []imaged.GeneratedImage
	}{
		{"non_image_is_a_generation_error_and_nothing_is_stored", 1, []imaged.GeneratedImage{text}},
		{"truncated_image_is_a_generation_error", 1, []imaged.GeneratedImage{truncated}},
		{"second_of_three_bad_keeps_none", 3, []imaged.GeneratedImage{good(1), text, good(3)}},
		{"last_of_three_bad_keeps_none", 3, []imaged.GeneratedImage{good(1), good(2), truncated}},
		{"no_image_at_all_is_a_generation_error", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			fake := newFake("fake", func(context.Context, int, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				return tc.made, nil
			})
			svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
			imgs, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a cat", N: generation.Count(tc.n)})
			wantCode(t, err, imaged.EGeneration)
			if imgs != nil {
				t.Errorf("Generate returned %d images with its error", len(imgs))
			}
			f.assertNothingStored(t, alice)
		})
	}
}

func TestGeneratedImageMetadata(t *testing.T) {
	t.Run("fake_provider", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", func(_ context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			out := pngImages(req)
			out[0].RevisedPrompt = "a tabby cat, watercolour"
			out[0].Usage = &imaged.Usage{InputTokens: 50, OutputTokens: 4160, TotalTokens: 4210, Images: 1}
			return out, nil
		})
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}})
		imgs, err := svc.Generate(context.Background(), alice, generation.Request{
			Prompt: "a cat", ArtStyle: "Watercolour", NegativePrompt: "blur", AspectRatio: "16:9", Seed: int64p(7),
			Options: map[string]string{"quality": "high"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 {
			t.Fatalf("%d images, want 1", len(imgs))
		}
		got, err := f.images.Get(context.Background(), alice, imgs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		g := got.Generation
		if got.Source != imaged.SourceGeneration || got.Owner != alice || got.MediaType != "image/png" || g == nil {
			t.Fatalf("stored %+v, want a generated PNG of %s", got, alice)
		}
		if g.Prompt != "a cat" || g.NegativePrompt != "blur" || g.Provider != "fake" || g.Model != "fake-1" ||
			g.AspectRatio != "16:9" || g.Seed == nil || *g.Seed != 7 || g.RevisedPrompt != "a tabby cat, watercolour" {
			t.Errorf("stored generation %+v", g)
		}
		if g.Options["quality"] != "high" || len(g.Options) != 1 {
			t.Errorf("stored options %v, want quality high", g.Options)
		}
		if g.Usage == nil || *g.Usage != (imaged.Usage{InputTokens: 50, OutputTokens: 4160, TotalTokens: 4210, Images: 1}) {
			t.Errorf("stored usage %+v, want the provider's", g.Usage)
		}
		if !strings.HasPrefix(got.OriginalFilename, "generation-") {
			t.Errorf("filename %q, want a generated one", got.OriginalFilename)
		}
	})
	t.Run("builtin_provider", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin"})
		imgs, err := svc.Generate(context.Background(), alice, generation.Request{Prompt: "a lighthouse", AspectRatio: "16:9", N: generation.Count(2), Seed: int64p(1000)})
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 2 {
			t.Fatalf("%d images, want 2", len(imgs))
		}
		for i, img := range imgs {
			g := img.Generation
			if img.MediaType != "image/png" || img.Width != 1024 || img.Height != 576 || img.Source != imaged.SourceGeneration {
				t.Errorf("image %d: %s %dx%d from %s, want a 1024x576 generated PNG", i, img.MediaType, img.Width, img.Height, img.Source)
			}
			if g.Provider != "builtin" || g.Model != builtin.ModelID || g.AspectRatio != "16:9" || g.Seed == nil || *g.Seed != 1000+int64(i) {
				t.Errorf("image %d: generation %+v", i, g)
			}
		}
		if n := f.blobCount(t); n != 2 {
			t.Errorf("%d blobs, want 2", n)
		}
	})
}

func TestGenerateQuota(t *testing.T) {
	ctx := context.Background()
	cat := generation.Request{Prompt: "a cat"}
	t.Run("daily_limit_refuses_with_retry_after", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", nil)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Quota: imaged.QuotaLimits{ImagesPerDay: 2}})
		if _, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(2)}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Generate(ctx, alice, cat)
		wantCode(t, err, imaged.EQuotaExceeded)
		var e *imaged.Error
		if !errors.As(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > 24*time.Hour {
			t.Errorf("RetryAfter of %v, want within 24h", err)
		}
		if n := fake.callCount(); n != 1 {
			t.Errorf("provider called %d times, want 1", n)
		}
		if _, err := svc.Generate(ctx, bob, cat); err != nil {
			t.Errorf("another owner: %v", err)
		}
	})
	t.Run("n_over_the_daily_limit_is_refused", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}, Quota: imaged.QuotaLimits{ImagesPerDay: 2}})
		_, err := svc.Generate(ctx, alice, generation.Request{Prompt: "a cat", N: generation.Count(3)})
		wantCode(t, err, imaged.EQuotaExceeded)
	})
	t.Run("failed_generation_charges_nothing", func(t *testing.T) {
		f := newFixture(t)
		fake := newFake("fake", failing(&imaged.UpstreamError{Provider: "fake", Status: 400, Err: errors.New("bad")}))
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		if _, err := svc.Generate(ctx, alice, cat); err == nil {
			t.Fatal("failing provider: Generate succeeded")
		}
		fake.setGen(func(_ context.Context, _ int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			return []imaged.GeneratedImage{{Data: []byte("not an image")}}, nil
		})
		_, err := svc.Generate(ctx, alice, cat)
		wantCode(t, err, imaged.EGeneration)
		fake.setGen(nil)
		if _, err := svc.Generate(ctx, alice, cat); err != nil {
			t.Fatalf("after failures: %v", err)
		}
		_, err = svc.Generate(ctx, alice, cat)
		wantCode(t, err, imaged.EQuotaExceeded)
	})
	t.Run("allowed_again_after_24_hours", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{newFake("fake", nil)}, Quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		if _, err := svc.Generate(ctx, alice, cat); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(23 * time.Hour)
		_, err := svc.Generate(ctx, alice, cat)
		wantCode(t, err, imaged.EQuotaExceeded)
		f.clock.Advance(time.Hour + time.Second)
		if _, err := svc.Generate(ctx, alice, cat); err != nil {
			t.Fatalf("24h later: %v", err)
		}
	})
	t.Run("concurrent_limit_refuses_a_second_running_generation", func(t *testing.T) {
		f := newFixture(t)
		started, release := make(chan struct{}), make(chan struct{})
		slow := blocking(started, release)
		fake := newFake("fake", func(ctx context.Context, call int, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
			if req.Prompt == "slow" {
				return slow(ctx, call, req)
			}
			return pngImages(req), nil
		})
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{fake}, Quota: imaged.QuotaLimits{Concurrent: 1}})
		done := make(chan error, 1)
		go func() {
			_, err := svc.Generate(ctx, alice, generation.Request{Prompt: "slow"})
			done <- err
		}()
		<-started
		_, err := svc.Generate(ctx, alice, cat)
		wantCode(t, err, imaged.EQuotaExceeded)
		var e *imaged.Error
		if !errors.As(err, &e) || e.RetryAfter <= 0 {
			t.Errorf("RetryAfter of %v, want positive", err)
		}
		if _, err := svc.Generate(ctx, bob, cat); err != nil {
			t.Errorf("another owner: %v", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("first generation: %v", err)
		}
		if _, err := svc.Generate(ctx, alice, cat); err != nil {
			t.Fatalf("after the first finished: %v", err)
		}
	})
}
