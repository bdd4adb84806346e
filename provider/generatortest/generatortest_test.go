package generatortest

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imaged/imaged"
)

// fake is a generator whose every answer a test can break. Its zero value
// does not conform (no name, no model); conforming() does.
type fake struct {
	name     string
	models   []imaged.Model
	generate func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error)
}

func (f *fake) Name() string           { return f.name }
func (f *fake) Models() []imaged.Model { return f.models }
func (f *fake) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	return f.generate(ctx, req)
}

// conforming returns a fake that validates like a careful adapter.
func conforming() *fake {
	f := &fake{
		name: "fake",
		models: []imaged.Model{
			{ID: "square", AspectRatios: []string{"1:1"}, MaxImages: 1},
			{ID: "wide", AspectRatios: []string{"16:9", "1:1"}, MaxImages: 4},
		},
	}
	f.generate = func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		for _, m := range f.models {
			if m.ID != req.Model {
				continue
			}
			if !m.SupportsAspectRatio(req.AspectRatio) {
				return nil, imaged.Errorf(imaged.EInvalidPrompt, "unsupported ratio")
			}
			if err := ctx.Err(); err != nil {
				return nil, &imaged.UpstreamError{Provider: f.name, Err: err}
			}
			return []imaged.GeneratedImage{{Data: []byte("png")}}, nil
		}
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "unknown model")
	}
	return f
}

// recorder is a testing.TB that keeps what a check reports.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// failures runs every check on g and returns what each reported, by check.
func failures(t *testing.T, g imaged.Generator) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, c := range checks {
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.run(r, g)
		}()
		<-done
		if len(r.errors) > 0 {
			got[c.name] = r.errors
		}
	}
	return got
}

func TestConformingGeneratorPasses(t *testing.T) {
	if got := failures(t, conforming()); len(got) != 0 {
		t.Errorf("a conforming generator failed: %v", got)
	}
	Test(t, conforming())
}

func TestEachBreachIsReported(t *testing.T) {
	tests := []struct {
		name   string
		breach func(f *fake)
		check  string // the one check that must fail
		want   string // in its report
	}{
		{"empty_name", func(f *fake) { f.name = "" }, "name_is_a_lowercase_id", "non-empty lowercase"},
		{"uppercase_name", func(f *fake) { f.name = "OpenAI" }, "name_is_a_lowercase_id", "lowercase"},
		{"no_models", func(f *fake) { f.models = nil }, "models_are_described", "empty"},
		{"empty_model_id", func(f *fake) { f.models[1].ID = "" }, "models_are_described", "empty id"},
		{"duplicate_model_id", func(f *fake) { f.models[1].ID = "square" }, "models_are_described", "twice"},
		{"model_without_ratios", func(f *fake) { f.models[0].AspectRatios = nil }, "models_are_described", "no aspect ratio"},
		{"ratio_outside_the_api", func(f *fake) { f.models[1].AspectRatios = append(f.models[1].AspectRatios, "21:9") }, "models_are_described", `"21:9"`},
		{"no_images", func(f *fake) { f.models[1].MaxImages = 0 }, "models_are_described", "at least 1"},
		{"unknown_model_served_by_default", func(f *fake) {
			valid := f.generate
			f.generate = func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				if req.Model != "square" && req.Model != "wide" {
					req.Model = "square"
				}
				return valid(ctx, req)
			}
		}, "unknown_model_is_an_invalid_prompt", "INVALID_IMAGE_PROMPT"},
		{"unsupported_ratio_passed_on", func(f *fake) {
			valid := f.generate
			f.generate = func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				if req.AspectRatio == "9:16" {
					return nil, &imaged.UpstreamError{Provider: "fake", Status: 400}
				}
				return valid(ctx, req)
			}
		}, "unsupported_aspect_ratio_is_an_invalid_prompt", `"9:16"`},
		{"cancellation_ignored", func(f *fake) {
			f.generate = func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				return []imaged.GeneratedImage{{Data: []byte("png")}}, nil
			}
		}, "cancelled_context_is_an_error", "no error"},
		{"cancellation_not_wrapped", func(f *fake) {
			f.generate = func(context.Context, imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				return nil, &imaged.UpstreamError{Provider: "fake", Err: fmt.Errorf("gave up")}
			}
		}, "cancelled_context_is_an_error", "context.Canceled"},
		{"cancellation_retryable", func(f *fake) {
			f.generate = func(ctx context.Context, _ imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
				return nil, &imaged.UpstreamError{Provider: "fake", Retryable: true, Err: ctx.Err()}
			}
		}, "cancelled_context_is_an_error", "retryable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conforming()
			tt.breach(f)
			got := failures(t, f)
			if len(got[tt.check]) == 0 {
				t.Fatalf("check %s did not fail; reports: %v", tt.check, got)
			}
			if report := strings.Join(got[tt.check], "\n"); !strings.Contains(report, tt.want) {
				t.Errorf("check %s reported %q, want it to mention %q", tt.check, report, tt.want)
			}
		})
	}
}

func TestNoNetwork(t *testing.T) {
	t.Run("a_request_under_a_live_context_fails_the_test", func(t *testing.T) {
		r := &recorder{TB: t}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/images?key=SECRET", nil)
		if _, err := NoNetwork(r).Do(req); err == nil {
			t.Error("the request succeeded")
		}
		if len(r.errors) != 1 || !strings.Contains(r.errors[0], "POST https://api.example.com/v1/images") || strings.Contains(r.errors[0], "SECRET") {
			t.Errorf("reports = %q, want one naming the request without its query", r.errors)
		}
	})
	t.Run("a_request_under_a_done_context_gets_its_error", func(t *testing.T) {
		r := &recorder{TB: t}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
		if _, err := NoNetwork(r).Do(req); err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("error = %v, want context canceled", err)
		}
		if len(r.errors) != 0 {
			t.Errorf("reports = %q, want none", r.errors)
		}
	})
}

// editingFake is a fake that edits, validating like a careful adapter.
type editingFake struct {
	*fake
	edit func(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error)
}

func (f *editingFake) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	return f.edit(ctx, req)
}

func conformingEditor() *editingFake {
	f := &editingFake{fake: conforming()}
	f.models[1].SupportsEdit, f.models[1].SupportsStrength = true, true
	f.edit = func(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
		for _, m := range f.models {
			switch {
			case m.ID != req.Model:
				continue
			case !m.SupportsEdit, req.Mask != nil && !m.SupportsMask, req.Strength != nil && !m.SupportsStrength:
				return nil, imaged.Errorf(imaged.EInvalidPrompt, "cannot")
			}
			return f.generate(ctx, req.GenerateRequest)
		}
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "unknown model")
	}
	return f
}

func TestEditBreachesAreReported(t *testing.T) {
	if got := failures(t, conformingEditor()); len(got) != 0 {
		t.Fatalf("a conforming editor failed: %v", got)
	}
	Test(t, conformingEditor())

	t.Run("edit_claimed_without_an_editor", func(t *testing.T) {
		f := conforming()
		f.models[0].SupportsEdit = true
		if got := failures(t, f)["edit_capabilities_are_consistent"]; len(got) == 0 || !strings.Contains(got[0], "imaged.Editor") {
			t.Errorf("reports %q", got)
		}
	})
	t.Run("mask_without_edit", func(t *testing.T) {
		f := conformingEditor()
		f.models[0].SupportsMask = true
		if got := failures(t, f)["edit_capabilities_are_consistent"]; len(got) == 0 {
			t.Errorf("no report")
		}
	})
	t.Run("mask_passed_on", func(t *testing.T) {
		f := conformingEditor()
		valid := f.edit
		f.edit = func(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
			req.Mask = nil
			return valid(ctx, req)
		}
		if got := failures(t, f)["edit_refuses_what_the_model_cannot_do"]; len(got) == 0 || !strings.Contains(got[0], "a mask") {
			t.Errorf("reports %q", got)
		}
	})
	t.Run("edit_cancellation_ignored", func(t *testing.T) {
		f := conformingEditor()
		valid := f.edit
		f.edit = func(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
			return valid(context.Background(), req)
		}
		if got := failures(t, f)["edit_cancelled_context_is_an_error"]; len(got) == 0 {
			t.Errorf("no report")
		}
	})
}
