package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged/testtool"
)

func TestMetrics(t *testing.T) {
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_METRICS_TOKEN": "scrape-secret"}})
	alice, _ := users(t)
	token := s.Token(alice)
	img := s.upload(t, token, file{Name: "m.png", Data: pngImage(t, 16, 16, 3)})
	s.getImage(t, token, img.ID)
	s.get(t, "/api/images/"+img.ID, "")

	if r := s.get(t, "/metrics", ""); r.Status != 401 {
		t.Fatalf("GET /metrics without the token: %d, want 401", r.Status)
	}
	r := s.send(t, request{Method: "GET", Target: "/metrics", Token: "scrape-secret"})
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	text := string(r.Body)
	for _, want := range []string{
		`imaged_http_request_duration_seconds_count{code="200",method="GET",route="/api/images/{id}"} 1`,
		`imaged_http_request_duration_seconds_count{code="401",method="GET",route="/api/images/{id}"} 1`,
		`imaged_http_request_duration_seconds_count{code="201",method="POST",route="/api/media/upload"} 1`,
		`imaged_store_operation_duration_seconds_count{operation="find_image",store="metadata"}`,
		`imaged_store_operation_duration_seconds_count{operation="put",store="blob"} 1`,
		`imaged_http_request_body_bytes_total{route="/api/media/upload"}`,
		`imaged_http_requests_in_flight 1`,
		`go_build_info{`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	promtool := testtool.Need(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.Body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// scrape reads s's metrics (no token configured).
func scrape(t *testing.T, s *server) string {
	t.Helper()
	r := s.get(t, "/metrics", "")
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	return string(r.Body)
}

// metricValue sums the samples of name (a full sample name, such as
// imaged_http_request_duration_seconds_count) whose labels include every
// pair of labels (`provider="sdwebui"`); found is false without any.
func metricValue(text, name string, labels ...string) (sum float64, found bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		set, value := "", rest
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			set, value = rest[:end+1], rest[end+1:]
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(set, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// flakyWebUI is a Stable Diffusion web UI (AUTOMATIC1111) behind a proxy
// that fails now and then: a prompt with "[flaky]" answers 503 on its first
// call, one with "[broken]" always 500, one with "[hold]" waits until the
// test releases it; the rest get an image at once.
func flakyWebUI(t *testing.T) (url string, release func()) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt string `json:"prompt"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/sdapi/v1/txt2img" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"detail":"Not Found"}`, http.StatusNotFound)
			return
		}
		mu.Lock()
		first := !seen[req.Prompt]
		seen[req.Prompt] = true
		mu.Unlock()
		switch {
		case strings.Contains(req.Prompt, "[broken]"):
			http.Error(w, `{"error":"RuntimeError","detail":"CUDA out of memory"}`, http.StatusInternalServerError)
			return
		case strings.Contains(req.Prompt, "[flaky]") && first:
			http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
			return
		case strings.Contains(req.Prompt, "[hold]"):
			select {
			case <-released:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"images":     []string{base64.StdEncoding.EncodeToString(txt2imgPNG)},
			"parameters": map[string]any{},
			"info":       `{"seed": 1, "all_seeds": [1]}`,
		})
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first: Close waits for held requests
	return srv.URL, release
}

// TestMetricsMove checks that what the service does shows in its metrics:
// generations by provider, model and outcome, provider retries, quota
// refusals, the job queue, variant renders, and the bytes uploaded and
// served.
func TestMetricsMove(t *testing.T) {
	webui, release := flakyWebUI(t)
	s := startServer(t, serverOpts{Env: map[string]string{
		"IMAGED_SDWEBUI_URL":          webui,
		"IMAGED_DEFAULT_PROVIDER":     "sdwebui",
		"IMAGED_QUOTA_IMAGES_PER_DAY": "2",
		"IMAGED_WORKERS":              "1",
	}})
	alice, bob := users(t)
	tokA, tokB := s.Token(alice), s.Token(bob)
	before := scrape(t, s)
	for _, name := range []string{"imaged_job_queue_depth", "imaged_job_queue_oldest_age_seconds", "imaged_quota_refusals_total"} {
		if v, ok := metricValue(before, name); !ok || v != 0 {
			t.Errorf("at start %s = %v (found %v), want 0", name, v, ok)
		}
	}

	gen := func(tok, prompt string, header ...string) *response {
		return s.postJSON(t, "/api/images/generate", tok, map[string]string{"prompt": prompt}, header...)
	}
	made := decodeGenerated(t, wantOK(t, gen(tokA, "[flaky] a lighthouse"), http.StatusOK))
	wantError(t, gen(tokA, "[broken] a lighthouse"), http.StatusInternalServerError, "GENERATION_ERROR")
	decodeGenerated(t, wantOK(t, gen(tokA, "a second lighthouse"), http.StatusOK))
	wantError(t, gen(tokA, "one lighthouse too many"), http.StatusTooManyRequests, "IMAGE_GENERATION_QUOTA_EXCEEDED")
	img := s.get(t, made[0].URL, "")
	if img.Status != 200 {
		t.Fatalf("GET the generated image: %d", img.Status)
	}
	up := s.upload(t, tokB, file{Name: "up.png", Data: pngImage(t, 40, 30, 5)})
	thumb := s.imageVariants(t, tokB, up.ID).Variants["thumb"]
	if thumb == "" {
		t.Fatal("the image object has no variants.thumb")
	}
	if r := s.get(t, thumb, ""); r.Status != 200 {
		t.Fatalf("GET the thumb variant: %d", r.Status)
	}

	// One worker: the first job is held by the provider, the second waits.
	wantOK(t, gen(tokB, "[hold] a harbour", "Prefer", "respond-async"), http.StatusAccepted)
	wantOK(t, gen(tokB, "a second harbour", "Prefer", "respond-async"), http.StatusAccepted)
	var during string
	deadline := time.Now().Add(10 * time.Second)
	for {
		during = scrape(t, s)
		if v, _ := metricValue(during, "imaged_job_queue_depth"); v == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond)
	during = scrape(t, s)
	if v, _ := metricValue(during, "imaged_job_queue_depth"); v != 1 {
		t.Errorf("with one job running and one waiting, imaged_job_queue_depth = %v, want 1", v)
	}
	if v, _ := metricValue(during, "imaged_job_queue_oldest_age_seconds"); v < 1 {
		t.Errorf("imaged_job_queue_oldest_age_seconds = %v after more than a second, want >= 1", v)
	}
	release()
	deadline = time.Now().Add(20 * time.Second)
	var after string
	for {
		after = scrape(t, s)
		if v, _ := metricValue(after, "imaged_generation_duration_seconds_count", `outcome="ok"`, `provider="sdwebui"`); v >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"imaged_generation_duration_seconds_count", []string{`outcome="ok"`, `provider="sdwebui"`}, 4},
		{"imaged_generation_duration_seconds_count", []string{`outcome="generation_error"`, `provider="sdwebui"`}, 1},
		// the flaky call once, the broken one twice (three attempts)
		{"imaged_provider_retries_total", []string{`provider="sdwebui"`}, 3},
		{"imaged_quota_refusals_total", nil, 1},
		{"imaged_job_queue_depth", nil, 0},
		{"imaged_render_duration_seconds_count", []string{`outcome="ok"`}, 1},
		{"imaged_render_queue_depth", nil, 0},
		{"imaged_render_busy", nil, 0},
		{"imaged_render_rejected_total", nil, 0},
	} {
		if got, ok := metricValue(after, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if v, _ := metricValue(after, "imaged_generation_duration_seconds_count", `model="`); v != 5 {
		t.Errorf("generations with a model label: %v, want 5", v)
	}
	served, _ := metricValue(after, "imaged_http_response_body_bytes_total", `route="/cdn/{key}"`)
	if served < float64(len(img.Body)) {
		t.Errorf("bytes served under /cdn/{key}: %v, want at least the %d of the image fetched", served, len(img.Body))
	}
	uploadedBefore, _ := metricValue(before, "imaged_http_request_body_bytes_total", `route="/api/media/upload"`)
	uploaded, _ := metricValue(after, "imaged_http_request_body_bytes_total", `route="/api/media/upload"`)
	if uploaded-uploadedBefore < float64(up.FileSize) {
		t.Errorf("bytes uploaded grew by %v, want at least the file's %d", uploaded-uploadedBefore, up.FileSize)
	}
	promtool := testtool.Need(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(after)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
