package http

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

const jobsPath = "/api/images/generations"

func TestStyleFieldsKept(t *testing.T) {
	alice := mintToken(t, "alice")
	var seen []string
	prompter := &fakeGenerator{name: "prompter", generate: func(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
		seen = append(seen, req.Prompt)
		return []imaged.GeneratedImage{{Data: pngBytes(t, 8, 8, 3)}}, nil
	}}
	h := newHarness(t, options{providers: []imaged.Generator{prompter}})
	resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{
		"prompt": "a harbour", "provider": "prompter",
		"artStyle": "woodcut", "artDescription": "bold black lines",
		"themeStyle": "winter", "themeDescription": "",
	}), jsonHeader)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	type styled struct {
		ID               string `json:"id"`
		Prompt           string `json:"prompt"`
		ArtStyle         string `json:"artStyle"`
		ArtDescription   string `json:"artDescription"`
		ThemeStyle       string `json:"themeStyle"`
		ThemeDescription string `json:"themeDescription"`
	}
	gens := dataAs[[]styled](t, body)
	want := styled{ID: gens[0].ID, Prompt: "a harbour", ArtStyle: "woodcut", ArtDescription: "bold black lines", ThemeStyle: "winter"}
	if len(gens) != 1 || gens[0] != want {
		t.Fatalf("generated %+v, want %+v", gens, want)
	}
	// Stored: the image object read back carries them too.
	resp, body = h.call(t, "GET", "/api/images/{id}", "/api/images/"+want.ID, alice, nil, nil)
	if got := dataAs[styled](t, body); resp.StatusCode != 200 || got != want {
		t.Errorf("GET image: %d %+v, want %+v", resp.StatusCode, got, want)
	}
	// The provider saw them folded into its prompt, as documented.
	if wantPrompt := "a harbour\nArt style: woodcut (bold black lines)\nTheme: winter"; !slices.Equal(seen, []string{wantPrompt}) {
		t.Errorf("the provider saw %q, want %q", seen, wantPrompt)
	}
}

func TestListJobs(t *testing.T) {
	h := newHarness(t, options{})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	async := http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}}
	submit := func(tok, prompt string) string {
		t.Helper()
		h.genClock.Advance(time.Second)
		resp, body := h.call(t, "POST", generatePath, generatePath, tok, jsonBody(map[string]any{"prompt": prompt}), async)
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return dataAs[apiJob](t, body).ID
	}
	var ids []string // oldest first
	for i := range 5 {
		ids = append(ids, submit(alice, fmt.Sprintf("job %d", i)))
	}
	submit(bob, "bob's")
	// Run the oldest: it succeeds.
	if ran, err := h.gen.RunOne(t.Context()); !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	list := func(tok, query string) ([]apiJob, envelope) {
		t.Helper()
		resp, body := h.call(t, "GET", jobsPath, jobsPath+query, tok, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", query, resp.StatusCode, body)
		}
		return dataAs[[]apiJob](t, body), decode(t, body)
	}

	t.Run("newest_first_across_pages_with_cursor", func(t *testing.T) {
		var got []string
		query := "?pageSize=2"
		for page := 1; ; page++ {
			jobs, e := list(alice, query)
			if e.Pagination == nil || e.Pagination.CurrentPage != page || e.Pagination.PageSize != 2 || e.Pagination.TotalItems != 5 || e.Pagination.TotalPages != 3 {
				t.Fatalf("page %d: pagination %+v", page, e.Pagination)
			}
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if e.Pagination.NextCursor == nil {
				break
			}
			if page > 3 {
				t.Fatal("more pages than jobs")
			}
			query = "?pageSize=2&cursor=" + url.QueryEscape(*e.Pagination.NextCursor)
		}
		want := slices.Clone(ids)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("listed %v, want %v", got, want)
		}
	})
	t.Run("job_objects_are_those_of_GET_job", func(t *testing.T) {
		jobs, _ := list(alice, "?status=succeeded")
		if len(jobs) != 1 || jobs[0].ID != ids[0] || jobs[0].Status != "succeeded" || len(jobs[0].Images) != 1 || jobs[0].Prompt != "job 0" {
			t.Fatalf("succeeded jobs: %+v", jobs)
		}
		_, body := h.call(t, "GET", jobPattern, jobsPath+"/"+ids[0], alice, nil, nil)
		if one := dataAs[apiJob](t, body); one.Images[0].ID != jobs[0].Images[0].ID || one.Attempts != jobs[0].Attempts {
			t.Errorf("listed %+v, GET says %+v", jobs[0], one)
		}
	})
	t.Run("status_filter", func(t *testing.T) {
		jobs, e := list(alice, "?status=queued")
		if len(jobs) != 4 || e.Pagination.TotalItems != 4 {
			t.Fatalf("queued: %d jobs, total %d; want 4", len(jobs), e.Pagination.TotalItems)
		}
		for _, j := range jobs {
			if j.Status != "queued" {
				t.Errorf("queued listing holds a %s job", j.Status)
			}
		}
		if jobs, _ := list(alice, "?status=failed"); len(jobs) != 0 {
			t.Errorf("failed: %d jobs, want none", len(jobs))
		}
	})
	t.Run("only_the_callers_jobs", func(t *testing.T) {
		jobs, _ := list(bob, "")
		if len(jobs) != 1 || jobs[0].Prompt != "bob's" {
			t.Errorf("bob lists %+v", jobs)
		}
		jobs, e := list(mintToken(t, "carol"), "")
		if len(jobs) != 0 || e.Pagination.TotalItems != 0 || e.Pagination.NextCursor != nil {
			t.Errorf("carol lists %+v, %+v", jobs, e.Pagination)
		}
	})
	t.Run("another_owners_cursor_is_refused", func(t *testing.T) {
		_, e := list(alice, "?pageSize=1")
		resp, body := h.call(t, "GET", jobsPath, jobsPath+"?cursor="+url.QueryEscape(*e.Pagination.NextCursor), bob, nil, nil)
		wantError(t, resp, body, 400, imaged.EValidation)
	})
	for _, q := range []string{"?status=done", "?status=QUEUED", "?pageSize=0", "?pageSize=101", "?pageSize=x", "?cursor=abc", "?cursor=%zz"} {
		t.Run("400_VALIDATION_ERROR/"+strings.TrimPrefix(q, "?"), func(t *testing.T) {
			resp, body := h.call(t, "GET", jobsPath, jobsPath+q, alice, nil, nil)
			wantError(t, resp, body, 400, imaged.EValidation)
		})
	}
	t.Run("401_without_a_token", func(t *testing.T) {
		resp, body := h.call(t, "GET", jobsPath, jobsPath, "", nil, nil)
		wantError(t, resp, body, 401, imaged.EUnauthorized)
	})
}
