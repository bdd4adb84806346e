package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

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
