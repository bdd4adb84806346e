package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawExchange is one request written byte by byte on its own connection.
type rawExchange struct {
	// Head is the request line and header fields, without the blank line
	// ending them; Host and X-Request-Id are added.
	Head string
	// Body parts are written one after the other, Pause apart.
	Body  []string
	Pause time.Duration
	// Then, after the body: "read" (wait for the answer), "half-close"
	// (close the writing side, then read), "hang-up" (close at once).
	Then string
}

// rawResponse is what came back, and the request id to find its log lines.
type rawResponse struct {
	*response
	RequestID string
	Elapsed   time.Duration
	Close     bool // the server said it closes the connection
}

func (s *server) raw(t *testing.T, x rawExchange) rawResponse {
	t.Helper()
	id := fmt.Sprintf("raw-%d", time.Now().UnixNano())
	u, _ := url.Parse(s.Base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	head := x.Head + "\r\nHost: " + u.Host + "\r\nX-Request-Id: " + id + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	for i, part := range x.Body {
		if i > 0 && x.Pause > 0 {
			time.Sleep(x.Pause)
		}
		if _, err := io.WriteString(conn, part); err != nil {
			t.Fatalf("writing body part %d: %v", i, err)
		}
	}
	switch x.Then {
	case "hang-up":
		conn.Close()
		return rawResponse{RequestID: id}
	case "half-close":
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return rawResponse{&response{Status: resp.StatusCode, Header: resp.Header, Body: body}, id, time.Since(start), resp.Close}
}

// logLines returns the JSON log lines of request id, waiting (up to 5 s)
// for its access log line.
func (s *server) logLines(t *testing.T, id string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var lines []map[string]any
		access := false
		for _, l := range strings.Split(s.output.String(), "\n") {
			if !strings.Contains(l, id) {
				continue
			}
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			lines = append(lines, m)
			if m["msg"] == "request" {
				access = true
			}
		}
		if access || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantLogged checks that request id was logged with status, nothing at
// ERROR, and (when msg is set) a line msg at level.
func (s *server) wantLogged(t *testing.T, id string, status int, level, msg string) {
	t.Helper()
	lines := s.logLines(t, id)
	var access map[string]any
	found := msg == ""
	for _, l := range lines {
		if l["level"] == "ERROR" {
			t.Errorf("logged at ERROR: %v", l)
		}
		if l["msg"] == "request" {
			access = l
		}
		if l["msg"] == msg && l["level"] == level {
			found = true
		}
	}
	if access == nil {
		t.Fatalf("no access log line for %s in:\n%s", id, s.output.String())
	}
	if got := int(access["status"].(float64)); got != status {
		t.Errorf("access log status = %d, want %d", got, status)
	}
	if !found {
		t.Errorf("no %s line %q for %s: %v", level, msg, id, lines)
	}
}

// tempFiles lists what is left in the blob store's temporary directory.
func tempFiles(t *testing.T, s *server) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.DataDir, "blobs", ".tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBrokenRequests(t *testing.T) {
	if os.Getenv(e2ePrefix+"S3_BUCKET") != "" {
		t.Skip("checks the local blob directory's temporary files")
	}
	s := startServer(t, serverOpts{Env: map[string]string{
		"IMAGED_LOG_FORMAT":        "json",
		"IMAGED_BODY_IDLE_TIMEOUT": "1s",
	}})
	alice, _ := users(t)
	token := s.Token(alice)
	img := pngImage(t, 64, 48, 1)
	stored := s.upload(t, token, file{Name: "a.png", Data: img})

	const boundary = "XBOUNDARYX"
	partHead := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n"
	multipartOf := func(extraHeader string, data []byte) string {
		return partHead + extraHeader + "\r\n" + string(data) + "\r\n--" + boundary + "--\r\n"
	}
	upload := func(length string) string {
		h := "POST /api/media/upload HTTP/1.1\r\nAuthorization: Bearer " + token +
			"\r\nContent-Type: multipart/form-data; boundary=" + boundary
		if length == "chunked" {
			return h + "\r\nTransfer-Encoding: chunked"
		}
		return h + "\r\nContent-Length: " + length
	}

	t.Run("quoted_printable_part_with_binary_bytes_is_400", func(t *testing.T) {
		body := multipartOf("Content-Transfer-Encoding: quoted-printable\r\n", img)
		r := s.raw(t, rawExchange{Head: upload(fmt.Sprint(len(body))), Body: []string{body}, Then: "read"})
		wantError(t, r.response, 400, "VALIDATION_ERROR")
		s.wantLogged(t, r.RequestID, 400, "", "")
	})

	t.Run("body_shorter_than_content_length_is_400", func(t *testing.T) {
		body := multipartOf("", img)
		for _, cut := range []int{len(body) / 2, len(body)} {
			before := countImages(t, s, token)
			r := s.raw(t, rawExchange{Head: upload(fmt.Sprint(len(body) + 100)), Body: []string{body[:cut]}, Then: "half-close"})
			wantError(t, r.response, 400, "VALIDATION_ERROR")
			s.wantLogged(t, r.RequestID, 400, "INFO", "request cancelled by the client")
			if n := countImages(t, s, token); n != before {
				t.Errorf("cut at %d of %d: %d images, want %d (nothing kept)", cut, len(body), n, before)
			}
		}
	})

	t.Run("broken_chunked_framing_is_400", func(t *testing.T) {
		body := multipartOf("", img)
		chunks := fmt.Sprintf("%x\r\n%s\r\nzz-not-hex\r\n", 100, body[:100])
		r := s.raw(t, rawExchange{Head: upload("chunked"), Body: []string{chunks}, Then: "read"})
		wantError(t, r.response, 400, "VALIDATION_ERROR")
		s.wantLogged(t, r.RequestID, 400, "", "")
	})

	t.Run("client_hanging_up_mid_upload_is_logged_as_a_cancellation", func(t *testing.T) {
		body := multipartOf("", img)
		r := s.raw(t, rawExchange{Head: upload(fmt.Sprint(len(body))), Body: []string{body[:len(body)/2]}, Pause: 0, Then: "hang-up"})
		s.wantLogged(t, r.RequestID, 400, "INFO", "request cancelled by the client")
		if left := tempFiles(t, s); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})

	t.Run("stalled_body_is_cut_off_with_408_and_its_temporary_file_removed", func(t *testing.T) {
		body := multipartOf("", noisyPNG(t, 128, 128))
		// The header of the image arrives, so the upload has begun writing
		// its temporary file, then nothing.
		x := rawExchange{Head: upload(fmt.Sprint(len(body))), Body: []string{body[:len(partHead)+200]}, Then: "read"}
		r := s.raw(t, x)
		wantError(t, r.response, 408, "REQUEST_TIMEOUT")
		if r.Elapsed < 900*time.Millisecond || r.Elapsed > 10*time.Second {
			t.Errorf("cut off after %v, want about IMAGED_BODY_IDLE_TIMEOUT (1s)", r.Elapsed)
		}
		if !r.Close {
			t.Error("the connection is kept open after a stalled body")
		}
		s.wantLogged(t, r.RequestID, 408, "", "")
		if left := tempFiles(t, s); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})

	t.Run("slow_body_that_keeps_arriving_is_accepted", func(t *testing.T) {
		body := multipartOf("", img)
		var parts []string
		for i := 0; i < len(body); i += len(body)/4 + 1 {
			parts = append(parts, body[i:min(len(body), i+len(body)/4+1)])
		}
		r := s.raw(t, rawExchange{Head: upload(fmt.Sprint(len(body))), Body: parts, Pause: 600 * time.Millisecond, Then: "read"})
		if r.Status != 201 {
			t.Fatalf("status %d, want 201 (each pause is under the idle timeout): %s", r.Status, r.Body)
		}
	})

	cdn := "GET " + strings.TrimPrefix(stored.URL, s.Base) + " HTTP/1.1"
	t.Run("range_bytes_minus_0_is_416", func(t *testing.T) {
		r := s.raw(t, rawExchange{Head: cdn + "\r\nRange: bytes=-0", Then: "read"})
		wantError(t, r.response, 416, "RANGE_NOT_SATISFIABLE")
		if cr, want := r.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", len(img)); cr != want {
			t.Errorf("Content-Range = %q, want %q", cr, want)
		}
		s.wantLogged(t, r.RequestID, 416, "", "")
	})

	t.Run("range_past_the_end_is_416", func(t *testing.T) {
		r := s.raw(t, rawExchange{Head: cdn + fmt.Sprintf("\r\nRange: bytes=%d-", len(img)), Then: "read"})
		wantError(t, r.response, 416, "RANGE_NOT_SATISFIABLE")
	})

	t.Run("thousands_of_tiny_ranges_get_the_whole_file", func(t *testing.T) {
		var spec []string
		for i := 0; i < 2000 && i < len(img); i += 2 {
			spec = append(spec, fmt.Sprintf("%d-%d", i/10, i/10))
		}
		r := s.raw(t, rawExchange{Head: cdn + "\r\nRange: bytes=" + strings.Join(spec, ","), Then: "read"})
		if r.Status != 200 || !bytes.Equal(r.Body, img) {
			t.Fatalf("status %d with %d bytes, want 200 with the file's %d", r.Status, len(r.Body), len(img))
		}
	})

	t.Run("satisfiable_part_of_a_range_list_is_served", func(t *testing.T) {
		r := s.raw(t, rawExchange{Head: cdn + fmt.Sprintf("\r\nRange: bytes=-0,%d-,0-9", len(img)+5), Then: "read"})
		if r.Status != 206 || !bytes.Equal(r.Body, img[:10]) || r.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-9/%d", len(img)) {
			t.Fatalf("status %d, Content-Range %q, %d bytes; want 206 with bytes 0-9", r.Status, r.Header.Get("Content-Range"), len(r.Body))
		}
	})

	list := func(query string) rawResponse {
		return s.raw(t, rawExchange{Head: "GET /api/images?" + query + " HTTP/1.1\r\nAuthorization: Bearer " + token, Then: "read"})
	}
	for _, q := range []string{"search=%00", "search=a%00b", "search=%zz", "search=%", "search=%e9", "pageSize=%3"} {
		t.Run("query_"+q+"_is_400", func(t *testing.T) {
			r := list(q)
			wantError(t, r.response, 400, "VALIDATION_ERROR")
			s.wantLogged(t, r.RequestID, 400, "", "")
		})
	}

	t.Run("forged_cursor_page_is_400", func(t *testing.T) {
		s.upload(t, token, file{Name: "b.png", Data: pngImage(t, 8, 8, 2)})
		e := wantOK(t, list("pageSize=1").response, 200)
		next := *e.Pagination.NextCursor
		payload, sig, _ := strings.Cut(next, ".")
		raw, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		json.Unmarshal(raw, &c)
		c["p"] = 999
		forged, _ := json.Marshal(c)
		r := list("pageSize=1&cursor=" + base64.RawURLEncoding.EncodeToString(forged) + "." + sig)
		wantError(t, r.response, 400, "VALIDATION_ERROR")
		// The real one still works and says page 2.
		e = wantOK(t, list("pageSize=1&cursor="+next).response, 200)
		if e.Pagination.CurrentPage != 2 {
			t.Errorf("currentPage = %d, want 2", e.Pagination.CurrentPage)
		}
	})

	t.Run("empty_idempotency_key_is_400_IDEMPOTENCY_KEY_INVALID", func(t *testing.T) {
		body := `{"prompt":"x"}`
		for _, path := range []string{"/api/images/generate", "/api/images/generate-with-idempotency"} {
			r := s.raw(t, rawExchange{Head: "POST " + path + " HTTP/1.1\r\nAuthorization: Bearer " + token +
				"\r\nContent-Type: application/json\r\nIdempotency-Key:\r\nContent-Length: " + fmt.Sprint(len(body)), Body: []string{body}, Then: "read"})
			wantError(t, r.response, 400, "IDEMPOTENCY_KEY_INVALID")
		}
	})

	t.Run("oversized_headers_are_a_431_envelope", func(t *testing.T) {
		r := s.raw(t, rawExchange{Head: "GET /api/images HTTP/1.1\r\nX-Big: " + strings.Repeat("x", 80<<10), Then: "read"})
		wantError(t, r.response, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
		s.wantLogged(t, r.RequestID, 431, "", "")
	})
}
