// Package e2e tests imaged from the outside, as a user does: it builds the
// real binary, starts it on a loopback port with a temporary data directory,
// mints tokens with `imaged token` and speaks HTTP to it. It imports nothing
// from the project.
//
// By default each server keeps its data in SQLite and a local directory;
// IMAGED_E2E_DATABASE_URL and IMAGED_E2E_S3_* run the same tests against
// PostgreSQL and an S3 bucket.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUpload(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)

	pngData := pngImage(t, 64, 48, 1)
	jpegData := jpegImage(t, 80, 60, 2)

	cases := []struct {
		name          string
		file          file
		wantMediaType string
		wantW, wantH  int
	}{
		// The client's Content-Type is a lie; the bytes decide.
		{"png_is_sniffed", file{"Sunset über Berlin.png", "application/octet-stream", pngData}, "image/png", 64, 48},
		{"jpeg_is_sniffed", file{"photo.jpeg", "image/jpeg", jpegData}, "image/jpeg", 80, 60},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().UTC().Truncate(time.Second)
			r := s.postFiles(t, "/api/media/upload", token, "file", tc.file)
			e := wantOK(t, r, http.StatusCreated)
			img := decodeImage(t, s, e.Data)
			after := time.Now().UTC()

			if loc := r.Header.Get("Location"); loc != "/api/images/"+img.ID && loc != s.Base+"/api/images/"+img.ID {
				t.Errorf("Location = %q, want /api/images/%s", loc, img.ID)
			}
			if img.OriginalFilename != tc.file.Name {
				t.Errorf("originalFilename = %q, want %q", img.OriginalFilename, tc.file.Name)
			}
			if img.MediaType != tc.wantMediaType {
				t.Errorf("mediaType = %q, want %q", img.MediaType, tc.wantMediaType)
			}
			if img.FileSize != int64(len(tc.file.Data)) {
				t.Errorf("fileSize = %d, want %d", img.FileSize, len(tc.file.Data))
			}
			if img.Width != tc.wantW || img.Height != tc.wantH {
				t.Errorf("size = %dx%d, want %dx%d", img.Width, img.Height, tc.wantW, tc.wantH)
			}
			if img.Source != "upload" {
				t.Errorf("source = %q, want upload", img.Source)
			}
			created, _ := time.Parse(time.RFC3339, img.CreatedAt)
			if created.Before(before) || created.After(after) {
				t.Errorf("createdAt = %s, want between %s and %s", img.CreatedAt, before.Format(time.RFC3339), after.Format(time.RFC3339))
			}

			t.Run("get_returns_the_same_object", func(t *testing.T) {
				got := s.getImage(t, token, img.ID)
				if got != img {
					t.Errorf("GET /api/images/%s =\n%+v\nupload answered\n%+v", img.ID, got, img)
				}
			})
			t.Run("url_serves_the_bytes", func(t *testing.T) {
				checkDownload(t, s, img, tc.file.Data)
			})
		})
	}

	t.Run("upload_multiple_keeps_order", func(t *testing.T) {
		files := []file{
			{"first.png", "image/png", pngImage(t, 10, 10, 3)},
			{"second.jpg", "image/jpeg", jpegImage(t, 12, 12, 4)},
			{"third.png", "image/png", pngImage(t, 14, 10, 5)},
		}
		r := s.postFiles(t, "/api/media/upload-multiple", token, "files", files...)
		got := dataList(t, s, wantOK(t, r, http.StatusCreated))
		if len(got) != len(files) {
			t.Fatalf("got %d images, want %d", len(got), len(files))
		}
		for i, img := range got {
			if img.OriginalFilename != files[i].Name || img.FileSize != int64(len(files[i].Data)) {
				t.Errorf("image %d = %q (%d bytes), want %q (%d bytes)", i, img.OriginalFilename, img.FileSize, files[i].Name, len(files[i].Data))
			}
			checkDownload(t, s, img, files[i].Data)
		}
	})
}

// checkDownload fetches an image's url without a token the ways a browser
// or CDN does: GET, HEAD, a range and a conditional request.
func checkDownload(t *testing.T, s *server, img imageObject, want []byte) {
	t.Helper()
	r := s.get(t, img.URL, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET url: status %d, want 200: %s", r.Status, r.Body)
	}
	if !bytes.Equal(r.Body, want) {
		t.Errorf("GET url: %d bytes differ from the %d uploaded", len(r.Body), len(want))
	}
	if ct := r.Header.Get("Content-Type"); ct != img.MediaType {
		t.Errorf("GET url: Content-Type = %q, want %q", ct, img.MediaType)
	}
	if cl := r.Header.Get("Content-Length"); cl != strconv.FormatInt(img.FileSize, 10) {
		t.Errorf("GET url: Content-Length = %q, want %d", cl, img.FileSize)
	}
	etag := r.Header.Get("ETag")
	if len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Errorf("GET url: ETag = %q, want a strong entity tag", etag)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("GET url: Cache-Control = %q, want immutable", cc)
	}

	head := s.send(t, request{Method: http.MethodHead, Target: img.URL})
	if head.Status != http.StatusOK || len(head.Body) != 0 {
		t.Errorf("HEAD url: status %d with %d body bytes, want 200 and none", head.Status, len(head.Body))
	}
	if cl := head.Header.Get("Content-Length"); cl != strconv.FormatInt(img.FileSize, 10) {
		t.Errorf("HEAD url: Content-Length = %q, want %d", cl, img.FileSize)
	}
	if ct := head.Header.Get("Content-Type"); ct != img.MediaType {
		t.Errorf("HEAD url: Content-Type = %q, want %q", ct, img.MediaType)
	}

	part := s.send(t, request{Method: http.MethodGet, Target: img.URL, Header: map[string]string{"Range": "bytes=0-9"}})
	if part.Status != http.StatusPartialContent || !bytes.Equal(part.Body, want[:10]) {
		t.Errorf("GET url with Range bytes=0-9: status %d, body %x; want 206 and %x", part.Status, part.Body, want[:10])
	}
	if cr := part.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 0-9/%d", len(want)) {
		t.Errorf("Content-Range = %q, want bytes 0-9/%d", cr, len(want))
	}

	if etag != "" {
		cond := s.send(t, request{Method: http.MethodGet, Target: img.URL, Header: map[string]string{"If-None-Match": etag}})
		if cond.Status != http.StatusNotModified || len(cond.Body) != 0 {
			t.Errorf("GET url with If-None-Match: status %d with %d body bytes, want 304 and none", cond.Status, len(cond.Body))
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)

	names := []string{"beach.png", "Sunset-hill.png", "forest.png", "city.png", "sunset_sea.png", "desert.png", "snow.png"}
	var uploaded []imageObject // oldest first
	for i, name := range names {
		uploaded = append(uploaded, s.upload(t, token, file{name, "image/png", pngImage(t, 8, 8, uint64(i))}))
	}
	newestFirst := slices.Clone(ids(uploaded))
	slices.Reverse(newestFirst)

	list := func(t *testing.T, query string) (envelope, []imageObject) {
		t.Helper()
		e := wantOK(t, s.get(t, "/api/images?"+query, token), http.StatusOK)
		if e.Pagination == nil {
			t.Fatalf("GET /api/images?%s has no pagination: %s", query, e.Data)
		}
		return e, dataList(t, s, e)
	}

	t.Run("pages_by_number_newest_first", func(t *testing.T) {
		var seen []string
		for page := 1; page <= 3; page++ {
			e, imgs := list(t, fmt.Sprintf("pageSize=3&page=%d", page))
			p := e.Pagination
			if p.CurrentPage != page || p.PageSize != 3 || p.TotalItems != 7 || p.TotalPages != 3 {
				t.Errorf("page %d: pagination = %+v, want currentPage %d, pageSize 3, totalItems 7, totalPages 3", page, *p, page)
			}
			seen = append(seen, ids(imgs)...)
		}
		if !slices.Equal(seen, newestFirst) {
			t.Errorf("pages 1-3 list\n%v\nwant newest first\n%v", seen, newestFirst)
		}
		_, beyond := list(t, "pageSize=3&page=4")
		if len(beyond) != 0 {
			t.Errorf("page 4 of 3 lists %d images, want none", len(beyond))
		}
	})

	t.Run("pages_by_cursor", func(t *testing.T) {
		var seen []string
		query := "pageSize=3"
		for i := 0; ; i++ {
			if i > 5 {
				t.Fatalf("the cursor did not end after %d pages", i)
			}
			e, imgs := list(t, query)
			if e.Pagination.TotalItems != 7 {
				t.Errorf("totalItems = %d, want 7", e.Pagination.TotalItems)
			}
			seen = append(seen, ids(imgs)...)
			next := e.Pagination.NextCursor
			if next == nil || *next == "" {
				break
			}
			query = "pageSize=3&cursor=" + url.QueryEscape(*next)
		}
		if !slices.Equal(seen, newestFirst) {
			t.Errorf("following nextCursor lists\n%v\nwant newest first, no duplicates\n%v", seen, newestFirst)
		}
	})

	t.Run("sort_asc_is_oldest_first", func(t *testing.T) {
		_, imgs := list(t, "sort=asc&pageSize=100")
		if !slices.Equal(ids(imgs), ids(uploaded)) {
			t.Errorf("sort=asc lists\n%v\nwant oldest first\n%v", ids(imgs), ids(uploaded))
		}
	})

	t.Run("search_by_filename", func(t *testing.T) {
		e, imgs := list(t, "search=sunset")
		want := []string{uploaded[4].ID, uploaded[1].ID} // case-insensitive, newest first
		if !slices.Equal(ids(imgs), want) || e.Pagination.TotalItems != 2 {
			t.Errorf("search=sunset lists %v (totalItems %d), want %v", ids(imgs), e.Pagination.TotalItems, want)
		}
	})

	t.Run("search_wildcards_are_literal", func(t *testing.T) {
		for _, q := range []string{"%", "s_n"} {
			_, imgs := list(t, "search="+url.QueryEscape(q))
			if len(imgs) != 0 {
				t.Errorf("search=%s lists %d images, want none (no filename contains it)", q, len(imgs))
			}
		}
		_, imgs := list(t, "search=_")
		if !slices.Equal(ids(imgs), []string{uploaded[4].ID}) {
			t.Errorf("search=_ lists %v, want only sunset_sea.png %s", ids(imgs), uploaded[4].ID)
		}
	})
}

func TestOwnership(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, bob := users(t)
	aliceToken, bobToken := s.Token(alice), s.Token(bob)
	img := s.upload(t, aliceToken, file{"private.png", "image/png", pngImage(t, 16, 16, 9)})

	// withoutVolatile drops what legitimately differs between two answers.
	withoutVolatile := func(m map[string]any) map[string]any {
		delete(m, "timestamp")
		delete(m, "requestId")
		return m
	}
	unknown := withoutVolatile(wantError(t, s.get(t, "/api/images/0190c3f2-6a4b-7cde-8f01-23456789abcd", bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND"))
	malformed := withoutVolatile(wantError(t, s.get(t, "/api/images/not-an-id", bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND"))
	if fmt.Sprint(unknown) != fmt.Sprint(malformed) {
		t.Errorf("an unknown id answers %v, a malformed id %v; want the same", unknown, malformed)
	}

	t.Run("get_is_404_like_an_unknown_id", func(t *testing.T) {
		got := withoutVolatile(wantError(t, s.get(t, "/api/images/"+img.ID, bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND"))
		if fmt.Sprint(got) != fmt.Sprint(unknown) {
			t.Errorf("bob's GET of alice's image answers %v, an unknown id %v; want the same", got, unknown)
		}
	})
	t.Run("delete_is_404_like_an_unknown_id", func(t *testing.T) {
		got := withoutVolatile(wantError(t, s.delete(t, "/api/images/"+img.ID, bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND"))
		unknownDelete := withoutVolatile(wantError(t, s.delete(t, "/api/images/0190c3f2-6a4b-7cde-8f01-23456789abcd", bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND"))
		if fmt.Sprint(got) != fmt.Sprint(unknownDelete) {
			t.Errorf("bob's DELETE of alice's image answers %v, an unknown id %v; want the same", got, unknownDelete)
		}
		wantError(t, s.delete(t, "/api/media/"+img.ID, bobToken), http.StatusNotFound, "MEDIA_NOT_FOUND")
		if got := s.getImage(t, aliceToken, img.ID); got.ID != img.ID {
			t.Errorf("alice's image is gone after bob's DELETE")
		}
	})
	t.Run("list_does_not_show_it", func(t *testing.T) {
		e := wantOK(t, s.get(t, "/api/images", bobToken), http.StatusOK)
		if imgs := dataList(t, s, e); len(imgs) != 0 || e.Pagination == nil || e.Pagination.TotalItems != 0 {
			t.Errorf("bob's list = %d images, pagination %+v; want none", len(imgs), e.Pagination)
		}
		e = wantOK(t, s.get(t, "/api/images?search=private", bobToken), http.StatusOK)
		if imgs := dataList(t, s, e); len(imgs) != 0 {
			t.Errorf("bob's search finds %d of alice's images", len(imgs))
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)

	for _, route := range []string{"/api/images/", "/api/media/"} {
		t.Run("via_"+strings.Trim(strings.ReplaceAll(route, "/", "_"), "_"), func(t *testing.T) {
			img := s.upload(t, token, file{"doomed.png", "image/png", pngImage(t, 20, 20, 7)})
			wantOK(t, s.delete(t, route+img.ID, token), http.StatusOK)

			wantError(t, s.get(t, "/api/images/"+img.ID, token), http.StatusNotFound, "MEDIA_NOT_FOUND")
			if r := s.get(t, img.URL, ""); r.Status != http.StatusNotFound {
				t.Errorf("GET url after delete: status %d, want 404", r.Status)
			}
			wantError(t, s.delete(t, route+img.ID, token), http.StatusNotFound, "MEDIA_NOT_FOUND")
			e := wantOK(t, s.get(t, "/api/images", token), http.StatusOK)
			if slices.Contains(ids(dataList(t, s, e)), img.ID) {
				t.Errorf("the list still shows the deleted image")
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)
	img := s.upload(t, token, file{"kept.png", "image/png", pngImage(t, 8, 8, 1)})
	secret := dataDirSecret(t, s.DataDir)
	now := time.Now().Unix()

	t.Run("hand_signed_token_is_accepted", func(t *testing.T) {
		// The control for the refusals below: a token crafted here with the
		// data directory's secret works.
		tok := signHS256(t, secret, map[string]any{"sub": alice, "iat": now, "exp": now + 3600})
		wantOK(t, s.get(t, "/api/images/"+img.ID, tok), http.StatusOK)
	})

	other := bytes.Repeat([]byte{0x42}, 32)
	unauthorized := []struct{ name, header string }{
		{"no_token", ""},
		{"garbage_token", "Bearer not.a.token"},
		{"token_signed_with_another_secret", "Bearer " + signHS256(t, other, map[string]any{"sub": alice, "iat": now, "exp": now + 3600})},
		{"expired_token", "Bearer " + signHS256(t, secret, map[string]any{"sub": alice, "iat": now - 7200, "exp": now - 3600})},
		{"basic_scheme", "Basic YWxpY2U6c2VjcmV0"},
	}
	for _, tc := range unauthorized {
		t.Run(tc.name+"_is_401", func(t *testing.T) {
			h := map[string]string{}
			if tc.header != "" {
				h["Authorization"] = tc.header
			}
			for _, target := range []string{"/api/images/" + img.ID, "/api/images"} {
				r := s.send(t, request{Method: http.MethodGet, Target: target, Header: h})
				wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("GET %s: no WWW-Authenticate header", target)
				}
			}
		})
	}

	t.Run("non_image_posing_as_png_is_415", func(t *testing.T) {
		r := s.postFiles(t, "/api/media/upload", token, "file", file{"fake.png", "image/png", []byte("this is plain text, not a picture at all\n")})
		wantError(t, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	})

	t.Run("upload_without_file_is_400", func(t *testing.T) {
		r := s.postFiles(t, "/api/media/upload", token, "other", file{"x.png", "image/png", pngImage(t, 4, 4, 1)})
		wantError(t, r, http.StatusBadRequest, "VALIDATION_ERROR")
	})

	for _, q := range []string{"pageSize=0", "sort=sideways", "page=abc", "page=0", "pageSize=-1", "cursor=%21%21"} {
		t.Run("bad_query_"+q+"_is_400", func(t *testing.T) {
			wantError(t, s.get(t, "/api/images?"+q, token), http.StatusBadRequest, "VALIDATION_ERROR")
		})
	}

	t.Run("unknown_route_is_404", func(t *testing.T) {
		for _, target := range []string{"/api/nothing-here", "/nowhere"} {
			wantError(t, s.get(t, target, token), http.StatusNotFound, "NOT_FOUND")
		}
	})

	t.Run("wrong_method_is_405_with_allow", func(t *testing.T) {
		r := s.send(t, request{Method: http.MethodPut, Target: "/api/images/" + img.ID, Token: token,
			Header: map[string]string{"Content-Type": "application/json"}, Body: strings.NewReader("{}")})
		wantError(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		allow := r.Header.Get("Allow")
		for _, m := range []string{"GET", "DELETE"} {
			if !strings.Contains(allow, m) {
				t.Errorf("Allow = %q, want it to list %s", allow, m)
			}
		}
		if strings.Contains(allow, "PUT") {
			t.Errorf("Allow = %q lists PUT", allow)
		}
	})
}

func TestUploadLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_MAX_FILE_SIZE": "100000"}})
	alice, _ := users(t)
	token := s.Token(alice)

	big := noisyPNG(t, 200, 200) // about 160 kB
	if len(big) <= 100000 {
		t.Fatalf("test image is %d bytes, want more than 100000", len(big))
	}
	t.Run("oversized_upload_is_413", func(t *testing.T) {
		r := s.postFiles(t, "/api/media/upload", token, "file", file{"huge.png", "image/png", big})
		wantError(t, r, http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		e := wantOK(t, s.get(t, "/api/images", token), http.StatusOK)
		if n := len(dataList(t, s, e)); n != 0 {
			t.Errorf("after a refused upload the list has %d images, want none", n)
		}
	})
	t.Run("oversized_file_in_upload_multiple_stores_none", func(t *testing.T) {
		r := s.postFiles(t, "/api/media/upload-multiple", token, "files",
			file{"small.png", "image/png", pngImage(t, 8, 8, 1)},
			file{"huge.png", "image/png", big})
		wantError(t, r, http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		e := wantOK(t, s.get(t, "/api/images", token), http.StatusOK)
		if n := len(dataList(t, s, e)); n != 0 {
			t.Errorf("after a refused upload the list has %d images, want none", n)
		}
	})
	t.Run("declared_length_over_the_limit_is_413", func(t *testing.T) {
		// A body whose Content-Length already exceeds any acceptable
		// request is refused before it is read.
		head := pngImage(t, 8, 8, 1)
		huge := append(head, make([]byte, 1500000)...)
		var buf bytes.Buffer
		body, ct := multipartBody("file", file{"declared.png", "image/png", huge})
		if _, err := buf.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		r := s.send(t, request{Method: http.MethodPost, Target: "/api/media/upload", Token: token,
			Header: map[string]string{"Content-Type": ct}, Body: bytes.NewReader(buf.Bytes())})
		wantError(t, r, http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
	})
	t.Run("file_under_the_limit_is_stored", func(t *testing.T) {
		data := pngImage(t, 32, 32, 3)
		img := s.upload(t, token, file{"small.png", "image/png", data})
		if img.FileSize != int64(len(data)) {
			t.Errorf("fileSize = %d, want %d", img.FileSize, len(data))
		}
	})
}

// generated is one image of a generation answer.
type generated struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	MimeType string `json:"mimeType"`
	Prompt   string `json:"prompt"`
	Created  string `json:"created"`
}

func decodeGenerated(t *testing.T, e envelope) []generated {
	t.Helper()
	var out []generated
	if err := json.Unmarshal(e.Data, &out); err != nil {
		t.Fatalf("data is not an array of images: %v: %s", err, e.Data)
	}
	if len(out) == 0 {
		t.Fatalf("generation made no image: %s", e.Data)
	}
	for _, g := range out {
		if g.ID == "" || g.URL == "" || g.MimeType == "" || g.Prompt == "" {
			t.Errorf("generated image lacks id, url, mimeType or prompt: %+v", g)
		}
		checkTimestamp(t, "created", g.Created)
	}
	return out
}

func countImages(t *testing.T, s *server, token string) int {
	t.Helper()
	e := wantOK(t, s.get(t, "/api/images?pageSize=1", token), http.StatusOK)
	if e.Pagination == nil {
		t.Fatalf("list has no pagination")
	}
	return e.Pagination.TotalItems
}

func TestGeneration(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	token := s.Token(alice)
	const prompt = "a lighthouse at dusk"

	t.Run("generate_with_builtin", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", token, map[string]string{"prompt": prompt, "aspectRatio": "16:9"})
		gens := decodeGenerated(t, wantOK(t, r, http.StatusOK))
		g := gens[0]
		if g.Prompt != prompt || g.MimeType != "image/png" {
			t.Errorf("generated = %+v, want prompt %q and mimeType image/png", g, prompt)
		}
		img := s.getImage(t, token, g.ID)
		if img.Source != "generation" || img.Prompt != prompt || img.Provider != "builtin" || img.Model == "" {
			t.Errorf("image = source %q, prompt %q, provider %q, model %q; want generation, %q, builtin and a model",
				img.Source, img.Prompt, img.Provider, img.Model, prompt)
		}
		if img.URL != g.URL {
			t.Errorf("image url %q differs from the generation's %q", img.URL, g.URL)
		}
		dl := s.get(t, g.URL, "")
		if dl.Status != http.StatusOK || dl.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET url: status %d, Content-Type %q", dl.Status, dl.Header.Get("Content-Type"))
		}
		if int64(len(dl.Body)) != img.FileSize {
			t.Errorf("GET url: %d bytes, fileSize says %d", len(dl.Body), img.FileSize)
		}
		decoded, err := png.Decode(bytes.NewReader(dl.Body))
		if err != nil {
			t.Fatalf("the generated image is not a PNG: %v", err)
		}
		if b := decoded.Bounds(); b.Dx() != 1024 || b.Dy() != 576 {
			t.Errorf("the 16:9 image is %dx%d, want 1024x576", b.Dx(), b.Dy())
		}
		if img.Width != 1024 || img.Height != 576 {
			t.Errorf("the image object says %dx%d, want 1024x576", img.Width, img.Height)
		}
	})

	t.Run("async_job", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", token, map[string]string{"prompt": "a quiet harbour"}, "Prefer", "respond-async")
		wantOK(t, r, http.StatusAccepted)
		loc := r.Header.Get("Location")
		if loc == "" {
			t.Fatalf("202 without Location")
		}
		var job struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Images []struct {
				ID string `json:"id"`
			} `json:"images"`
			Error json.RawMessage `json:"error"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			e := wantOK(t, s.get(t, loc, token), http.StatusOK)
			if err := json.Unmarshal(e.Data, &job); err != nil {
				t.Fatalf("job: %v: %s", err, e.Data)
			}
			if job.Status == "succeeded" {
				break
			}
			if job.Status != "queued" && job.Status != "running" {
				t.Fatalf("job status %q, want queued, running or succeeded: %s", job.Status, e.Data)
			}
			if time.Now().After(deadline) {
				t.Fatalf("job still %q after 30s", job.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(job.Images) != 1 {
			t.Fatalf("succeeded job has %d images, want 1", len(job.Images))
		}
		img := s.getImage(t, token, job.Images[0].ID)
		if img.Prompt != "a quiet harbour" || img.Source != "generation" {
			t.Errorf("job image = prompt %q, source %q", img.Prompt, img.Source)
		}
		if img.Width != 1024 || img.Height != 1024 {
			t.Errorf("the default 1:1 image is %dx%d, want 1024x1024", img.Width, img.Height)
		}
	})

	t.Run("idempotent_replay", func(t *testing.T) {
		body := map[string]string{"prompt": "a red bicycle"}
		before := countImages(t, s, token)
		first := s.postJSON(t, "/api/images/generate-with-idempotency", token, body, "Idempotency-Key", `"k1"`)
		firstGens := decodeGenerated(t, wantOK(t, first, http.StatusOK))
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("the first answer says Idempotent-Replayed: %q", first.Header.Get("Idempotent-Replayed"))
		}
		second := s.postJSON(t, "/api/images/generate-with-idempotency", token, body, "Idempotency-Key", `"k1"`)
		secondGens := decodeGenerated(t, wantOK(t, second, http.StatusOK))
		if second.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("the replay says Idempotent-Replayed: %q, want true", second.Header.Get("Idempotent-Replayed"))
		}
		if a, b := fmt.Sprint(firstGens), fmt.Sprint(secondGens); a != b {
			t.Errorf("replay answered\n%s\nthe first answer was\n%s", b, a)
		}
		if after := countImages(t, s, token); after != before+1 {
			t.Errorf("the list grew from %d to %d images, want one more", before, after)
		}

		t.Run("same_key_other_body_is_422", func(t *testing.T) {
			r := s.postJSON(t, "/api/images/generate-with-idempotency", token, map[string]string{"prompt": "a blue bicycle"}, "Idempotency-Key", `"k1"`)
			wantError(t, r, http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_MISMATCH")
		})
		t.Run("missing_key_is_400", func(t *testing.T) {
			r := s.postJSON(t, "/api/images/generate-with-idempotency", token, body)
			wantError(t, r, http.StatusBadRequest, "IDEMPOTENCY_KEY_MISSING")
		})
		if after := countImages(t, s, token); after != before+1 {
			t.Errorf("after the refusals the list has %d images, want %d", after, before+1)
		}
	})

	t.Run("invalid_prompt_is_400", func(t *testing.T) {
		for _, body := range []any{
			map[string]string{"prompt": "   "},
			map[string]string{},
			map[string]string{"prompt": "ok", "aspectRatio": "5:7"},
		} {
			r := s.postJSON(t, "/api/images/generate", token, body)
			wantError(t, r, http.StatusBadRequest, "INVALID_IMAGE_PROMPT")
		}
	})

	t.Run("models_lists_builtin", func(t *testing.T) {
		e := wantOK(t, s.get(t, "/api/images/models", token), http.StatusOK)
		var providers []struct {
			Provider string `json:"provider"`
			Models   []struct {
				ID string `json:"id"`
			} `json:"models"`
		}
		if err := json.Unmarshal(e.Data, &providers); err != nil {
			t.Fatalf("models: %v: %s", err, e.Data)
		}
		found := false
		for _, p := range providers {
			if p.Provider == "builtin" && len(p.Models) > 0 && p.Models[0].ID != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("models does not list builtin with a model: %s", e.Data)
		}
	})

	t.Run("needs_a_token", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", "", map[string]string{"prompt": prompt})
		wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	})
}

func TestGenerationQuota(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_QUOTA_IMAGES_PER_DAY": "2"}})
	alice, bob := users(t)
	token := s.Token(alice)

	for i := 1; i <= 2; i++ {
		r := s.postJSON(t, "/api/images/generate", token, map[string]string{"prompt": fmt.Sprintf("kite number %d", i)})
		decodeGenerated(t, wantOK(t, r, http.StatusOK))
	}
	t.Run("third_generation_is_429", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", token, map[string]string{"prompt": "kite number 3"})
		wantError(t, r, http.StatusTooManyRequests, "IMAGE_GENERATION_QUOTA_EXCEEDED")
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || ra <= 0 {
			t.Errorf("Retry-After = %q, want a positive number of seconds", r.Header.Get("Retry-After"))
		}
		if n := countImages(t, s, token); n != 2 {
			t.Errorf("alice has %d images, want 2", n)
		}
	})
	t.Run("async_over_quota_is_429_now", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", token, map[string]string{"prompt": "kite number 4"}, "Prefer", "respond-async")
		wantError(t, r, http.StatusTooManyRequests, "IMAGE_GENERATION_QUOTA_EXCEEDED")
	})
	t.Run("quota_is_per_owner", func(t *testing.T) {
		r := s.postJSON(t, "/api/images/generate", s.Token(bob), map[string]string{"prompt": "bob's kite"})
		decodeGenerated(t, wantOK(t, r, http.StatusOK))
	})
}

func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startServer(t, serverOpts{DataDir: dir})
	alice, _ := users(t)
	token := first.Token(alice)
	data := jpegImage(t, 40, 30, 8)
	img := first.upload(t, token, file{"persistent.jpg", "image/jpeg", data})
	first.Stop()

	info, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("jwt-secret has mode %v, want 0600", fs.FileMode(mode))
	}

	second := startServer(t, serverOpts{DataDir: dir})
	t.Run("old_token_and_image_survive", func(t *testing.T) {
		got := second.getImage(t, token, img.ID)
		// The url follows the host the request reached, a new port here.
		want := img
		want.URL = strings.Replace(img.URL, first.Base, second.Base, 1)
		if got != want {
			t.Errorf("after a restart the image is\n%+v\nwant\n%+v", got, want)
		}
		checkDownload(t, second, got, data)
	})
	t.Run("old_url_keeps_its_path", func(t *testing.T) {
		u, err := url.Parse(img.URL)
		if err != nil {
			t.Fatal(err)
		}
		r := second.get(t, u.Path, "")
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, data) {
			t.Errorf("GET %s after a restart: status %d, %d bytes", u.Path, r.Status, len(r.Body))
		}
	})
}

func TestServiceEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(strings.TrimPrefix(path, "/")+"_is_200", func(t *testing.T) {
			wantOK(t, s.get(t, path, ""), http.StatusOK)
		})
	}
	t.Run("openapi_is_3_1", func(t *testing.T) {
		r := s.get(t, "/api/openapi.json", "")
		if r.Status != http.StatusOK {
			t.Fatalf("status %d, want 200", r.Status)
		}
		checkJSONContentType(t, r)
		var doc struct {
			OpenAPI string         `json:"openapi"`
			Paths   map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
			t.Errorf(`"openapi" = %q, want 3.1.x`, doc.OpenAPI)
		}
		for _, p := range []string{"/images/{id}", "/images"} {
			if _, ok := doc.Paths[p]; !ok {
				if _, ok := doc.Paths["/api"+p]; !ok {
					t.Errorf("paths has no %s", p)
				}
			}
		}
	})
	t.Run("start_banner_token_works", func(t *testing.T) {
		out := s.waitOutput(t, "export TOKEN=")
		_, after, ok := strings.Cut(out, "export TOKEN=")
		if !ok || len(strings.Fields(after)) == 0 {
			t.Fatalf("the start banner gives no token:\n%s", out)
		}
		wantOK(t, s.get(t, "/api/images", strings.Fields(after)[0]), http.StatusOK)
	})
	t.Run("request_id_is_echoed", func(t *testing.T) {
		r := s.send(t, request{Method: http.MethodGet, Target: "/healthz", Header: map[string]string{"X-Request-Id": "e2e-123"}})
		if got := r.Header.Get("X-Request-Id"); got != "e2e-123" {
			t.Errorf("X-Request-Id = %q, want e2e-123", got)
		}
	})
}
