package http

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/jwtauth"
)

var rfc3339Z = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)

func TestHealth(t *testing.T) {
	h := newHarness(t, options{})
	t.Run("healthz_answers_ok", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/healthz", "/healthz", "", nil, nil)
		if resp.StatusCode != 200 || dataAs[map[string]string](t, body)["status"] != "ok" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("readyz_pings_the_database", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/readyz", "/readyz", "", nil, nil)
		var data struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		data = dataAs[struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}](t, body)
		if resp.StatusCode != 200 || data.Status != "ready" || data.Checks["database"] != "ok" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("readyz_answers_503_when_the_database_is_down", func(t *testing.T) {
		h := newHarness(t, options{})
		h.db.Close()
		resp, body := h.call(t, "GET", "/readyz", "/readyz", "", nil, nil)
		e := wantError(t, resp, body, 503, imaged.EUnavailable)
		if strings.Contains(e.Message, "sql") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("message %q, Retry-After %q", e.Message, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("request_id_is_echoed_when_plain_and_replaced_when_not", func(t *testing.T) {
		resp, _ := h.send(t, "GET", "/healthz", "", nil, http.Header{"X-Request-Id": {"abc-123"}})
		if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
			t.Errorf("X-Request-Id = %q", got)
		}
		resp, _ = h.send(t, "GET", "/healthz", "", nil, http.Header{"X-Request-Id": {"bad id\tinjected"}})
		if got := resp.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \t") {
			t.Errorf("X-Request-Id = %q", got)
		}
	})
}

// algNoneToken is an unsigned token ("alg": "none") for subject.
func algNoneToken(subject string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": subject, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	return header + "." + enc.EncodeToString(claims) + "."
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, options{})
	img := h.upload(t, mintToken(t, "alice"), "a.png", pngBytes(t, 4, 4, 1))
	expired, err := jwtauth.Mint(testSecret, "alice", time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, err := jwtauth.Mint([]byte("another-secret-another-secret-another-secret"), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	valid := mintToken(t, "alice")
	cases := []struct {
		name          string
		authorization string
	}{
		{"missing_header_is_refused", ""},
		{"garbage_token_is_refused", "Bearer not.a.token"},
		{"expired_token_is_refused", "Bearer " + expired},
		{"alg_none_token_is_refused", "Bearer " + algNoneToken("alice")},
		{"token_signed_with_another_secret_is_refused", "Bearer " + otherSecret},
		{"basic_scheme_is_refused", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))},
		{"bearer_without_token_is_refused", "Bearer "},
	}
	routes := []struct{ method, pattern, path string }{
		{"GET", "/api/images/{id}", "/api/images/" + img.ID},
		{"GET", "/api/images", "/api/images"},
		{"DELETE", "/api/images/{id}", "/api/images/" + img.ID},
		{"POST", "/api/media/upload", "/api/media/upload"},
		{"GET", "/api/images/models", "/api/images/models"},
		{"POST", "/api/images/generate", "/api/images/generate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range routes {
				hdr := http.Header{}
				if c.authorization != "" {
					hdr.Set("Authorization", c.authorization)
				}
				resp, body := h.call(t, r.method, r.pattern, r.path, "", strings.NewReader(`{"prompt":"x"}`), hdr)
				e := wantError(t, resp, body, 401, imaged.EUnauthorized)
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate = %q", r.method, r.path, got)
				}
				if len(c.authorization) > 10 && strings.Contains(string(body), c.authorization[7:]) {
					t.Errorf("the answer repeats the token: %s", body)
				}
				if !rfc3339Z.MatchString(e.Timestamp) || e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
					t.Errorf("timestamp %q, requestId %q", e.Timestamp, e.RequestID)
				}
			}
		})
	}
	t.Run("refused_requests_change_nothing", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, valid, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("the image is gone after refused deletes: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("lowercase_bearer_scheme_is_accepted", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, "", nil, http.Header{"Authorization": {"bearer " + valid}})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestRouting(t *testing.T) {
	h := newHarness(t, options{})
	alice := mintToken(t, "alice")
	t.Run("unknown_route_is_404_NOT_FOUND_envelope", func(t *testing.T) {
		for _, path := range []string{"/nope", "/api/nope", "/api/images/x/y", "/cdn"} {
			resp, body := h.send(t, "GET", path, alice, nil, nil)
			checkComponentResponse(t, h.doc, "RouteNotFound", resp, body)
			wantError(t, resp, body, 404, imaged.ERouteNotFound)
		}
	})
	t.Run("wrong_method_is_405_with_Allow", func(t *testing.T) {
		cases := []struct {
			method, path string
			allow        []string
		}{
			{"POST", "/api/images/some-id", []string{"GET", "HEAD", "DELETE"}},
			{"PUT", "/api/images", []string{"GET", "HEAD"}},
			{"GET", "/api/media/upload", []string{"POST", "DELETE"}}, // DELETE /api/media/{id} matches too
			{"DELETE", "/cdn/abc.png", []string{"GET", "HEAD"}},
			{"PATCH", "/healthz", []string{"GET", "HEAD"}},
			{"GET", "/api/images/generate", nil}, // GET /api/images/{id} matches: not a 405
		}
		for _, c := range cases {
			resp, body := h.send(t, c.method, c.path, alice, nil, nil)
			if c.allow == nil {
				if resp.StatusCode == 405 {
					t.Errorf("%s %s: 405", c.method, c.path)
				}
				continue
			}
			checkComponentResponse(t, h.doc, "MethodNotAllowed", resp, body)
			wantError(t, resp, body, 405, imaged.EMethodNotAllowed)
			allow := strings.Split(resp.Header.Get("Allow"), ", ")
			slices.Sort(allow)
			want := slices.Clone(c.allow)
			slices.Sort(want)
			if !slices.Equal(allow, want) {
				t.Errorf("%s %s: Allow = %v, want %v", c.method, c.path, allow, want)
			}
		}
	})
	t.Run("handler_panic_is_500_without_detail", func(t *testing.T) {
		h := newHarness(t, options{})
		h.srv.Handle("GET /api/test-panic", func(w http.ResponseWriter, r *http.Request) {
			panic("db password hunter2 leaked")
		}, true)
		resp, body := h.send(t, "GET", "/api/test-panic", mintToken(t, "alice"), nil, nil)
		checkComponentResponse(t, h.doc, "InternalError", resp, body)
		e := wantError(t, resp, body, 500, imaged.EInternal)
		if strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "panic") || e.Message != "Internal server error" {
			t.Errorf("the answer leaks detail: %s", body)
		}
		if !strings.Contains(h.logs.String(), "hunter2") {
			t.Errorf("the panic is not logged")
		}
		// The server keeps serving.
		resp, _ = h.send(t, "GET", "/healthz", "", nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("after a panic: %d", resp.StatusCode)
		}
	})
}

func TestGetImage(t *testing.T) {
	h := newHarness(t, options{})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	img := h.upload(t, alice, "sunset.png", pngBytes(t, 16, 9, 2))

	t.Run("owner_gets_the_contract_fields_and_additions", func(t *testing.T) {
		resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var fields map[string]any
		json.Unmarshal(decode(t, body).Data, &fields)
		for _, k := range []string{"id", "originalFilename", "url", "mediaType", "fileSize", "createdAt", "updatedAt", "width", "height", "sha256", "source"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("field %s is missing", k)
			}
		}
		for _, k := range []string{"prompt", "model", "provider", "seed", "owner", "blobKey"} {
			if _, ok := fields[k]; ok {
				t.Errorf("an upload has field %s", k)
			}
		}
		got := dataAs[apiImage](t, body)
		if got != img {
			t.Errorf("GET = %+v\nupload = %+v", got, img)
		}
		if got.Width != 16 || got.Height != 9 || got.Source != "upload" || got.OriginalFilename != "sunset.png" {
			t.Errorf("%+v", got)
		}
	})
	notFound := func(t *testing.T, tok, id string) envelope {
		resp, body := h.call(t, "GET", "/api/images/{id}", "/api/images/"+id, tok, nil, nil)
		return wantError(t, resp, body, 404, imaged.ENotFound)
	}
	t.Run("other_owner_gets_404_like_an_unknown_id", func(t *testing.T) {
		other := notFound(t, bob, img.ID)
		unknown := notFound(t, alice, imaged.NewID())
		malformed := notFound(t, alice, "not-an-id")
		sqlish := notFound(t, alice, "1'%20OR%20'1'='1")
		for _, e := range []envelope{unknown, malformed, sqlish} {
			if e.Message != other.Message || e.Code != other.Code {
				t.Errorf("answers differ: %+v vs %+v", e, other)
			}
		}
		if other.Message != "Image not found" {
			t.Errorf("message %q", other.Message)
		}
	})
}

func TestListImages(t *testing.T) {
	h := newHarness(t, options{})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	var uploaded []apiImage // oldest first
	for i, name := range []string{"Beach.png", "city.png", "beach-2.png", "forest.png", "BEACH-night.png"} {
		uploaded = append(uploaded, h.upload(t, alice, name, pngBytes(t, 4, 4, byte(i))))
	}
	h.upload(t, bob, "beach-bob.png", pngBytes(t, 4, 4, 99))
	gen := dataAs[[]apiImage](t, func() []byte {
		resp, body := h.call(t, "POST", "/api/images/generate", "/api/images/generate", alice, jsonBody(map[string]any{"prompt": "a beach"}), jsonHeader)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return body
	}())[0]

	ids := func(imgs []apiImage) []string {
		out := make([]string, len(imgs))
		for i, img := range imgs {
			out[i] = img.ID
		}
		return out
	}
	newestFirst := append([]string{gen.ID}, ids(uploaded)...)
	slices.Reverse(newestFirst[1:])
	uploadsNewestFirst := newestFirst[1:]

	list := func(t *testing.T, query string) ([]string, envelope) {
		t.Helper()
		resp, body := h.call(t, "GET", "/api/images", "/api/images"+query, alice, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		return ids(dataAs[[]apiImage](t, body)), decode(t, body)
	}
	cases := []struct {
		name, query string
		want        []string
		page, size  int
		total       int64
	}{
		{"default_is_newest_first_and_only_the_callers", "", newestFirst, 1, 20, 6},
		{"sort_asc_is_oldest_first", "?sort=asc", append(ids(uploaded), gen.ID), 1, 20, 6},
		{"sort_is_case_insensitive", "?sort=DESC", newestFirst, 1, 20, 6},
		{"page_and_pageSize_slice_the_listing", "?page=2&pageSize=2", newestFirst[2:4], 2, 2, 6},
		{"page_past_the_end_is_empty", "?page=9&pageSize=2", []string{}, 9, 2, 6},
		{"search_is_a_case_insensitive_substring_of_filename_or_prompt", "?search=beach", []string{gen.ID, uploaded[4].ID, uploaded[2].ID, uploaded[0].ID}, 1, 20, 4},
		{"search_finds_a_prompt", "?search=A%20BEA", []string{gen.ID}, 1, 20, 1},
		{"search_without_match_is_empty", "?search=zebra", []string{}, 1, 20, 0},
		{"search_treats_percent_literally", "?search=%25", []string{}, 1, 20, 0},
		{"search_treats_underscore_literally", "?search=h_2", []string{}, 1, 20, 0},
		{"search_matches_a_hyphen", "?search=h-2", []string{uploaded[2].ID}, 1, 20, 1},
		{"source_upload_lists_uploads_only", "?source=upload", uploadsNewestFirst, 1, 20, 5},
		{"source_generation_lists_generations_only", "?source=generation", []string{gen.ID}, 1, 20, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, e := list(t, c.query)
			if !slices.Equal(got, c.want) {
				t.Errorf("ids = %v\nwant  %v", got, c.want)
			}
			p := e.Pagination
			if p.CurrentPage != c.page || p.PageSize != c.size || p.TotalItems != c.total {
				t.Errorf("pagination = %+v", *p)
			}
			if wantPages := (c.total + int64(c.size) - 1) / int64(c.size); p.TotalPages != wantPages {
				t.Errorf("totalPages = %d, want %d", p.TotalPages, wantPages)
			}
		})
	}

	t.Run("cursor_walks_every_page_without_duplicates", func(t *testing.T) {
		for _, sort := range []string{"desc", "asc"} {
			var seen []string
			query := "?pageSize=2&sort=" + sort
			for page := 1; ; page++ {
				got, e := list(t, query)
				if e.Pagination.CurrentPage != page {
					t.Errorf("%s page %d: currentPage = %d", sort, page, e.Pagination.CurrentPage)
				}
				seen = append(seen, got...)
				if e.Pagination.NextCursor == nil {
					break
				}
				if page > 10 {
					t.Fatal("the cursor never ends")
				}
				query = "?pageSize=2&sort=" + sort + "&cursor=" + *e.Pagination.NextCursor
			}
			want := newestFirst
			if sort == "asc" {
				want = slices.Clone(newestFirst)
				slices.Reverse(want)
			}
			if !slices.Equal(seen, want) {
				t.Errorf("%s walk = %v\nwant %v", sort, seen, want)
			}
		}
	})
	t.Run("last_page_has_a_null_nextCursor", func(t *testing.T) {
		_, e := list(t, "?pageSize=100")
		if e.Pagination.NextCursor != nil {
			t.Errorf("nextCursor = %q", *e.Pagination.NextCursor)
		}
	})

	bad := []struct{ name, query string }{
		{"page_zero", "?page=0"},
		{"page_negative", "?page=-1"},
		{"page_not_a_number", "?page=two"},
		{"pageSize_zero", "?pageSize=0"},
		{"pageSize_over_100", "?pageSize=101"},
		{"sort_unknown", "?sort=newest"},
		{"source_unknown", "?source=camera"},
		{"search_too_long", "?search=" + strings.Repeat("a", 256)},
		{"cursor_not_base64", "?cursor=***"},
		{"cursor_not_a_cursor", "?cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"x":1}`))},
	}
	for _, c := range bad {
		t.Run("bad_params_are_400_VALIDATION_ERROR/"+c.name, func(t *testing.T) {
			resp, body := h.call(t, "GET", "/api/images", "/api/images"+c.query, alice, nil, nil)
			wantError(t, resp, body, 400, imaged.EValidation)
		})
	}
}

func TestDeleteImage(t *testing.T) {
	for _, route := range []string{"/api/images/{id}", "/api/media/{id}"} {
		t.Run(strings.ReplaceAll(strings.Trim(route, "/"), "/", "_"), func(t *testing.T) {
			h := newHarness(t, options{})
			alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
			img := h.upload(t, alice, "a.png", pngBytes(t, 4, 4, 1))
			keep := h.upload(t, alice, "b.png", pngBytes(t, 4, 4, 2))
			path := strings.Replace(route, "{id}", img.ID, 1)

			t.Run("other_owner_gets_404_and_the_image_stays", func(t *testing.T) {
				resp, body := h.call(t, "DELETE", route, path, bob, nil, nil)
				wantError(t, resp, body, 404, imaged.ENotFound)
				resp, _ = h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
				if resp.StatusCode != 200 {
					t.Errorf("after another owner's delete: %d", resp.StatusCode)
				}
			})
			t.Run("malformed_and_unknown_ids_are_404", func(t *testing.T) {
				for _, id := range []string{"nope", imaged.NewID()} {
					resp, body := h.call(t, "DELETE", route, strings.Replace(route, "{id}", id, 1), alice, nil, nil)
					wantError(t, resp, body, 404, imaged.ENotFound)
				}
			})
			t.Run("owner_deletes_then_id_and_url_are_404", func(t *testing.T) {
				resp, body := h.call(t, "DELETE", route, path, alice, nil, nil)
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				var d struct {
					ID      string `json:"id"`
					Deleted bool   `json:"deleted"`
				}
				d = dataAs[struct {
					ID      string `json:"id"`
					Deleted bool   `json:"deleted"`
				}](t, body)
				if d.ID != img.ID || !d.Deleted {
					t.Errorf("%s", body)
				}
				resp, body = h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
				wantError(t, resp, body, 404, imaged.ENotFound)
				resp, body = h.call(t, "GET", "/cdn/{key}", cdnPath(t, img.URL), "", nil, nil)
				wantError(t, resp, body, 404, imaged.ENotFound)
				resp, body = h.call(t, "DELETE", route, path, alice, nil, nil)
				wantError(t, resp, body, 404, imaged.ENotFound)
			})
			t.Run("other_images_are_untouched", func(t *testing.T) {
				resp, _ := h.call(t, "GET", "/cdn/{key}", cdnPath(t, keep.URL), "", nil, nil)
				if resp.StatusCode != 200 {
					t.Errorf("%d", resp.StatusCode)
				}
			})
		})
	}
}

// cdnPath is the path of an image URL on the test server.
func cdnPath(t testing.TB, url string) string {
	t.Helper()
	i := strings.Index(url, "/cdn/")
	if i < 0 || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q is not an absolute /cdn URL of the server", url)
	}
	return url[i:]
}

func TestErrorStatusMapping(t *testing.T) {
	// Every code the document describes maps to the status it names.
	desc := loadDoc(t).at("/components/schemas/ErrorCode/description").(string)
	for code, status := range statuses {
		if !strings.Contains(desc, fmt.Sprintf("%s %d", code, status)) {
			t.Errorf("the ErrorCode description does not say %s %d", code, status)
		}
	}
}
