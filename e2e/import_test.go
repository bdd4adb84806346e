package e2e

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imaged/imaged/testtool"
)

// TestImportByURL runs the import over the real binary: an origin on
// loopback that only the allow-list lets the service reach, serving a photo
// with a GPS position; refusals of what the guard must never reach.
func TestImportByURL(t *testing.T) {
	t.Parallel()
	exiftool := testtool.Need(t, "exiftool")
	photo := jpegImage(t, 80, 60, 7)
	p := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(p, photo, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exiftool, "-q", "-overwrite_original", "-GPSLatitude=51.5007", "-GPSLatitudeRef=N", p).CombinedOutput(); err != nil {
		t.Fatalf("exiftool: %v: %s", err, out)
	}
	photo, _ = os.ReadFile(p)

	var secretHits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photos/lake.jpg":
			w.Write(photo)
		case "/secret":
			secretHits.Add(1)
			w.Write([]byte("instance-credentials"))
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer origin.Close()
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())

	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_OUTBOUND_ALLOW": "127.0.0.1"}})
	alice, _ := users(t)
	token := s.Token(alice)

	r := s.postJSON(t, "/api/media/import", token, map[string]string{"url": origin.URL + "/photos/lake.jpg"})
	img := decodeImage(t, s, wantOK(t, r, http.StatusCreated).Data)
	if img.OriginalFilename != "lake.jpg" || img.MediaType != "image/jpeg" || img.Width != 80 || img.Source != "upload" {
		t.Fatalf("imported %+v", img)
	}
	stored := s.get(t, img.URL, "").Body
	if int64(len(stored)) != img.FileSize || bytes.Equal(stored, photo) {
		t.Fatalf("stored %d bytes (record %d); identical to the origin's: %v", len(stored), img.FileSize, bytes.Equal(stored, photo))
	}
	sp := filepath.Join(t.TempDir(), "stored.jpg")
	os.WriteFile(sp, stored, 0o600)
	if out, _ := exec.Command(exiftool, "-s3", "-GPSLatitude", sp).Output(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("the imported photo kept its GPS position: %s", out)
	}

	for _, tc := range []struct {
		name, url string
		status    int
		code      string
	}{
		{"cloud_metadata", "http://169.254.169.254/latest/meta-data/", 422, "IMPORT_URL_REFUSED"},
		{"unspecified", "http://0.0.0.0:" + port + "/secret", 422, "IMPORT_URL_REFUSED"},
		{"ipv4_mapped_unspecified", "http://[::ffff:0.0.0.0]:" + port + "/secret", 422, "IMPORT_URL_REFUSED"},
		{"loopback_outside_the_allow_list", "http://[::1]:" + port + "/secret", 422, "IMPORT_URL_REFUSED"},
		{"redirect_to_unspecified", origin.URL + "/redirect?to=http://0.0.0.0:" + port + "/secret", 422, "IMPORT_URL_REFUSED"},
		{"not_http", "gopher://127.0.0.1:" + port + "/secret", 400, "VALIDATION_ERROR"},
		{"missing", origin.URL + "/nothing.png", 502, "IMPORT_FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.postJSON(t, "/api/media/import", token, map[string]string{"url": tc.url})
			m := wantError(t, r, tc.status, tc.code)
			if msg, _ := m["message"].(string); strings.Contains(msg, "credentials") || strings.Contains(msg, "127.0.0.1") {
				t.Fatalf("message %q", msg)
			}
		})
	}
	// The command line does the same.
	c := newCLI(t, "IMAGED_URL="+s.Base, "IMAGED_TOKEN="+token)
	if out := c.ok("import", origin.URL+"/photos/lake.jpg", "--name", "Lake.jpg"); !strings.Contains(out, "Lake.jpg") || !strings.Contains(out, "80x60") {
		t.Errorf("imaged import printed %q", out)
	}
	c.fails(1, "IMPORT_URL_REFUSED", "import", "http://169.254.169.254/latest/meta-data/")

	if n := secretHits.Load(); n != 0 {
		t.Fatalf("refused addresses were reached %d times", n)
	}
}
