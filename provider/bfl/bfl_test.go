package bfl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/bfl"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

const testKey = "bfl-TESTKEY-0123456789-SECRET"

// fakeBFL reproduces the documented flow: POST {submit}/v1/{model} with
// x-key answers {id, polling_url, cost}; the polling URL lives on another,
// regional host (GET with x-key answers {id, status, result, progress});
// the result's sample is a signed URL on a delivery host that expires.
type fakeBFL struct {
	t                        *testing.T
	submit, region, delivery *httptest.Server
	statuses                 []string // what successive polls answer; the last repeats
	submitStatus             int      // non-zero: the submission answers it
	expiry                   time.Duration
	mu                       sync.Mutex
	bodies                   []map[string]any
	polls                    map[string]int
	image                    []byte
}

func newFakeBFL(t *testing.T) *fakeBFL {
	f := &fakeBFL{t: t, statuses: []string{"Pending", "Ready"}, polls: map[string]int{}, expiry: 10 * time.Minute,
		image: upstreamtest.PNG(t, 4, 4, color.RGBA{R: 9, G: 99, B: 199, A: 255})}
	f.delivery = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-key") != "" {
			t.Error("the key was sent to the delivery host")
		}
		se, _ := strconv.ParseInt(r.URL.Query().Get("se"), 10, 64)
		if time.Now().UnixMilli() > se {
			http.Error(w, "<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed</Message></Error>", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(append(bytes.Clone(f.image), []byte(r.URL.Query().Get("id"))...))
	}))
	f.region = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/get_result" || r.Header.Get("x-key") != testKey {
			t.Errorf("poll %s with key %q", r.URL.Path, r.Header.Get("x-key"))
			w.WriteHeader(http.StatusForbidden)
			return
		}
		id := r.URL.Query().Get("id")
		f.mu.Lock()
		i := f.polls[id]
		f.polls[id]++
		status := f.statuses[min(i, len(f.statuses)-1)]
		f.mu.Unlock()
		if status == "429" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		out := map[string]any{"id": id, "status": status, "result": nil, "progress": nil}
		switch status {
		case "Pending":
			out["progress"] = 0.5
		case "Ready":
			se := time.Now().Add(f.expiry).UnixMilli()
			out["result"] = map[string]any{"sample": fmt.Sprintf("%s/results/%s/sample.png?se=%d&sig=x&id=%s", f.delivery.URL, id, se, id),
				"prompt": "x", "seed": 7, "start_time": 1, "end_time": 2, "duration": 1}
		}
		json.NewEncoder(w).Encode(out)
	}))
	f.submit = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-key") != testKey {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]any{"detail": "Not authenticated - Invalid Authentication"})
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		body["path"] = r.URL.Path
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		id := fmt.Sprintf("task-%d", len(f.bodies))
		f.mu.Unlock()
		if f.submitStatus != 0 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(f.submitStatus)
			json.NewEncoder(w).Encode(map[string]any{"detail": "You have exceeded the number of active tasks"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": id, "polling_url": f.region.URL + "/v1/get_result?id=" + id, "cost": 3.0})
	}))
	t.Cleanup(func() { f.submit.Close(); f.region.Close(); f.delivery.Close() })
	return f
}

func (f *fakeBFL) generator(t *testing.T) *bfl.Generator {
	g, err := bfl.New(bfl.Config{APIKey: testKey, BaseURL: f.submit.URL, PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGenerate(t *testing.T) {
	f := newFakeBFL(t)
	seed := int64(40)
	images, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a fox", AspectRatio: "16:9", N: 2, Seed: &seed,
		Options: map[string]string{"output_format": "png", "safety_tolerance": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 2 || bytes.Equal(images[0].Data, images[1].Data) {
		t.Fatalf("%d images, want 2 distinct", len(images))
	}
	for _, img := range images {
		if !bytes.HasPrefix(img.Data, f.image) || img.Usage == nil || img.Usage.Credits != 3 || img.Seed == nil {
			t.Errorf("image %+v", img.Usage)
		}
	}
	seeds := map[float64]bool{}
	for _, b := range f.bodies {
		if b["path"] != "/v1/flux-2-pro" || b["width"] != 1280.0 || b["height"] != 720.0 || b["output_format"] != "png" || b["safety_tolerance"] != 1.0 {
			t.Errorf("body %v", b)
		}
		seeds[b["seed"].(float64)] = true
	}
	if !seeds[40] || !seeds[41] {
		t.Errorf("seeds %v, want 40 and 41", seeds)
	}
	t.Run("ultra_takes_the_aspect_ratio", func(t *testing.T) {
		if _, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "x", Model: "flux-pro-1.1-ultra", AspectRatio: "9:16", N: 1,
			Options: map[string]string{"raw": "true"}}); err != nil {
			t.Fatal(err)
		}
		b := f.bodies[len(f.bodies)-1]
		if b["path"] != "/v1/flux-pro-1.1-ultra" || b["aspect_ratio"] != "9:16" || b["raw"] != true || b["width"] != nil {
			t.Errorf("body %v", b)
		}
	})
}

func TestStatuses(t *testing.T) {
	cat := imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}
	for _, tt := range []struct {
		name     string
		statuses []string
		expiry   time.Duration
		submit   int
		code     imaged.ErrorCode
		upstream *imaged.UpstreamError
	}{
		{"request_moderated", []string{"Pending", "Request Moderated"}, 0, 0, imaged.EContentPolicy, nil},
		{"content_moderated", []string{"Content Moderated"}, 0, 0, imaged.EContentPolicy, nil},
		{"error", []string{"Pending", "Error"}, 0, 0, "", &imaged.UpstreamError{Status: 200}},
		{"task_not_found", []string{"Task not found"}, 0, 0, "", &imaged.UpstreamError{Status: 200}},
		{"a_poll_429_is_polled_again", []string{"429", "Pending", "Ready"}, 10 * time.Minute, 0, "", nil},
		{"an_expired_sample_is_an_error", []string{"Ready"}, -time.Second, 0, "", &imaged.UpstreamError{Status: 403}},
		{"too_many_active_tasks_429_is_retryable", nil, 0, 429, "", &imaged.UpstreamError{Status: 429, Retryable: true, RetryAfter: 3 * time.Second}},
		{"no_credits_402_is_not", nil, 0, 402, "", &imaged.UpstreamError{Status: 402}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBFL(t)
			if tt.statuses != nil {
				f.statuses = tt.statuses
			}
			f.expiry, f.submitStatus = tt.expiry, tt.submit
			_, err := f.generator(t).Generate(context.Background(), cat)
			switch {
			case tt.code != "":
				upstreamtest.AppError(t, err, tt.code)
			case tt.upstream != nil:
				upstreamtest.CheckUpstream(t, err, "bfl", tt.upstream)
			case err != nil:
				t.Fatal(err)
			}
		})
	}
}

func TestEdit(t *testing.T) {
	f := newFakeBFL(t)
	src := upstreamtest.PNG(t, 3, 3, upstreamtest.Gray(50))
	_, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
		GenerateRequest: imaged.GenerateRequest{Prompt: "make it night", Model: "flux-kontext-pro", AspectRatio: "4:3", N: 1},
		Image:           imaged.InputImage{Data: src, MediaType: "image/png"}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.bodies[0]
	if b["path"] != "/v1/flux-kontext-pro" || b["aspect_ratio"] != "4:3" || b["input_image"] == nil {
		t.Errorf("body %v", b["path"])
	}
	_, err = f.generator(t).Edit(context.Background(), imaged.EditRequest{
		GenerateRequest: imaged.GenerateRequest{Prompt: "x", Model: "flux-pro-1.1", AspectRatio: "1:1", N: 1},
		Image:           imaged.InputImage{Data: src, MediaType: "image/png"}})
	upstreamtest.AppError(t, err, imaged.EInvalidPrompt)
}

func TestConformance(t *testing.T) {
	g, err := bfl.New(bfl.Config{APIKey: testKey, HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}
