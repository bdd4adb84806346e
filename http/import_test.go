package http

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

func TestImport(t *testing.T) {
	png := pngBytes(t, 32, 24, 3)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.png":
			w.Write(png)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer origin.Close()
	h := newHarness(t, options{importAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	alice := mintToken(t, "alice")
	const pattern = "/api/media/import"
	post := func(t *testing.T, body string, hdr http.Header) (*http.Response, []byte) {
		t.Helper()
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set("Content-Type", "application/json")
		return h.call(t, "POST", pattern, pattern, alice, strings.NewReader(body), hdr)
	}

	t.Run("stored_like_an_upload", func(t *testing.T) {
		resp, body := post(t, `{"url": "`+origin.URL+`/a.png", "filename": "holiday.png"}`, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		img := dataAs[apiImage](t, body)
		if resp.Header.Get("Location") != "/api/images/"+img.ID || img.OriginalFilename != "holiday.png" || img.MediaType != "image/png" || img.FileSize != int64(len(png)) {
			t.Fatalf("Location %q, image %+v", resp.Header.Get("Location"), img)
		}
		_, got := h.call(t, "GET", "/cdn/{key}", cdnPath(t, img.URL), "", nil, nil)
		if string(got) != string(png) {
			t.Fatal("served bytes differ from the origin's")
		}
	})
	t.Run("idempotency_key_replays", func(t *testing.T) {
		hdr := http.Header{"Idempotency-Key": {`"import-1"`}}
		_, first := post(t, `{"url": "`+origin.URL+`/a.png"}`, hdr)
		resp, again := post(t, `{"url": "`+origin.URL+`/a.png"}`, hdr.Clone())
		if resp.Header.Get("Idempotent-Replayed") != "true" || dataAs[apiImage](t, first).ID != dataAs[apiImage](t, again).ID {
			t.Fatalf("replay: %s / %s", first, again)
		}
	})
	for _, tc := range []struct {
		name, body string
		status     int
		code       imaged.ErrorCode
	}{
		{"no_url", `{}`, 400, imaged.EValidation},
		{"not_json", `url=x`, 400, imaged.EValidation},
		{"unknown_field", `{"url": "https://example.com/a.png", "headers": {}}`, 400, imaged.EValidation},
		{"two_objects", `{"url": "https://example.com/a.png"} {}`, 400, imaged.EValidation},
		{"ftp", `{"url": "ftp://example.com/a.png"}`, 400, imaged.EValidation},
		{"metadata_address", `{"url": "http://169.254.169.254/latest/meta-data/"}`, 422, imaged.EImportRefused},
		{"redirect_to_metadata", `{"url": "` + origin.URL + `/to-metadata"}`, 422, imaged.EImportRefused},
		{"origin_404", `{"url": "` + origin.URL + `/nothing.png"}`, 502, imaged.EImportFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, tc.body, nil)
			e := wantError(t, resp, body, tc.status, tc.code)
			if strings.Contains(e.Message, "169.254") || strings.Contains(e.Message, "127.0.0.1") {
				t.Fatalf("message tells an address: %q", e.Message)
			}
		})
	}
}
