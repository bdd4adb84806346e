package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	iofs "io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/sqlite"
)

// fuzzServer is a Server over a SQLite file and a blob directory of the
// fuzz run, and a token of "fuzz".
type fuzzServer struct {
	srv   *Server
	db    *sqlite.DB
	blobs string
	token string
}

func newFuzzServer(f *testing.F) *fuzzServer {
	ctx := context.Background()
	dir := f.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := fsblob.Open(blobDir)
	if err != nil {
		f.Fatal(err)
	}
	auth, err := jwtauth.New(ctx, jwtauth.Config{HMACSecret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := images.New(db, blobs, images.Config{MaxFileSize: 1 << 20, Logger: log})
	srv := New(Config{Images: svc, Auth: auth, Logger: log, MaxFiles: 3, CursorKey: []byte("fuzz-cursor-key-of-32-bytes-long")})
	return &fuzzServer{srv: srv, db: db, blobs: blobDir, token: mintToken(f, "fuzz")}
}

// do serves one request and decodes its envelope.
func (fz *fuzzServer) do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+fz.token)
	w := httptest.NewRecorder()
	fz.srv.ServeHTTP(w, req)
	var env map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: status %d, the answer is not a JSON envelope: %v: %q", req.Method, req.URL, w.Code, err, w.Body.Bytes())
	}
	if w.Code >= 500 {
		t.Fatalf("%s %s: status %d: %s", req.Method, req.URL, w.Code, w.Body.Bytes())
	}
	if ok, _ := env["success"].(bool); ok != (w.Code < 300) {
		t.Fatalf("status %d with success %v", w.Code, env["success"])
	}
	if w.Code >= 400 {
		if code, _ := env["errorCode"].(string); code == "" {
			t.Fatalf("status %d without an errorCode: %s", w.Code, w.Body.Bytes())
		}
	}
	return w.Code, env
}

// count is how many images "fuzz" has and how many blob files there are.
func (fz *fuzzServer) count(t *testing.T) (imgs int64, blobs int) {
	t.Helper()
	p, err := fz.db.ListImages(context.Background(), imaged.ImageFilter{Owner: "fuzz", PageSize: 1, Page: 1})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(fz.blobs, func(_ string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			blobs++
		}
		return nil
	})
	return p.TotalItems, blobs
}

// FuzzListQuery sends GET /api/images with an arbitrary query string (page,
// pageSize, sort, source, search, cursor): the parsed filter stays within
// bounds, and the answer is 200 or a 400 envelope, never a 500, whatever
// the search text does to the store's query.
func FuzzListQuery(f *testing.F) {
	fz := newFuzzServer(f)
	ctx := context.Background()
	for i := range 3 {
		img := &imaged.Image{ID: imaged.NewID(), Owner: "fuzz", OriginalFilename: "seed-" + string(rune('a'+i)) + ".png",
			MediaType: "image/png", Size: 1, Width: 1, Height: 1, SHA256: strings.Repeat("0", 64),
			BlobKey: imaged.NewBlobKey("png"), Source: imaged.SourceUpload, CreatedAt: start.Add(time.Duration(i) * time.Second), UpdatedAt: start}
		if err := fz.db.CreateImage(ctx, img); err != nil {
			f.Fatal(err)
		}
	}
	cur := EncodeCursor(fz.srv.cursorKey, "fuzz", &imaged.Cursor{CreatedAt: start.Add(time.Second), ID: imaged.NewID(), Page: 2})
	for _, q := range []string{"", "page=2&pageSize=1", "sort=asc&source=upload", "search=seed", "search=%00", "search=%zz",
		"search=" + url.QueryEscape(`50%_\"'*`), "search=" + url.QueryEscape(`"a" OR b NEAR(c)`), "cursor=" + cur,
		"cursor=" + cur + "x", "pageSize=101", "page=-1", "a;b", "search=" + strings.Repeat("x", 300)} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/images", RawQuery: raw}, Header: http.Header{}}
		filter, err := fz.srv.parseListQuery(r, "fuzz")
		if err != nil {
			if imaged.ErrCode(err) != imaged.EValidation {
				t.Fatalf("query %q refused with %v, want a validation error", raw, err)
			}
		} else {
			if filter.Page < 0 || filter.Page > 1_000_000 || filter.PageSize < 0 || filter.PageSize > images.MaxPageSize {
				t.Fatalf("query %q: page %d, pageSize %d out of bounds", raw, filter.Page, filter.PageSize)
			}
			if len(filter.Search) > 255 || !utf8.ValidString(filter.Search) || strings.IndexFunc(filter.Search, unicode.IsControl) >= 0 {
				t.Fatalf("query %q: search %q accepted", raw, filter.Search)
			}
			if filter.Sort != imaged.SortAsc && filter.Sort != imaged.SortDesc {
				t.Fatalf("query %q: sort %q", raw, filter.Sort)
			}
		}
		req := httptest.NewRequest("GET", "/api/images", nil)
		req.URL.RawQuery = raw
		status, _ := fz.do(t, req)
		if (status == 200) != (err == nil) {
			t.Fatalf("query %q: status %d, but parsing said %v", raw, status, err)
		}
	})
}

// FuzzCursor decodes arbitrary cursor text: only what the server signed for
// that owner is accepted (never for another owner), and what is accepted
// is a well-formed position that encodes back to an equal one.
func FuzzCursor(f *testing.F) {
	fz := newFuzzServer(f)
	key := fz.srv.cursorKey
	valid := EncodeCursor(key, "fuzz", &imaged.Cursor{CreatedAt: start, ID: imaged.NewID(), Page: 7})
	payload, _, _ := strings.Cut(valid, ".")
	for _, s := range []string{valid, payload, payload + ".", valid + "=", strings.ToUpper(valid), "e30.AAAA",
		EncodeCursor(key, "other", &imaged.Cursor{CreatedAt: start, ID: "x", Page: 1})} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := fz.srv.decodeCursor("fuzz", text)
		if err != nil {
			if imaged.ErrCode(err) != imaged.EValidation {
				t.Fatalf("cursor %q refused with %v, want a validation error", text, err)
			}
			return
		}
		if c.ID == "" || c.CreatedAt.IsZero() {
			t.Fatalf("cursor %q accepted as %+v", text, c)
		}
		if _, err := fz.srv.decodeCursor("someone-else", text); err == nil {
			t.Fatalf("cursor %q of fuzz accepted for another owner", text)
		}
		again, err := fz.srv.decodeCursor("fuzz", fz.srv.encodeCursor("fuzz", c))
		if err != nil || !again.CreatedAt.Equal(c.CreatedAt) || again.ID != c.ID || again.Page != c.Page {
			t.Fatalf("cursor %q: %+v re-encoded decodes to %+v, %v", text, c, again, err)
		}
	})
}

const fuzzBoundary = "fuzzboundary"

// fuzzMultipart is a well-formed upload of files under field.
func fuzzMultipart(f *testing.F, field string, parts ...[]byte) []byte {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.SetBoundary(fuzzBoundary)
	for i, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="f`+string(rune('0'+i))+`.png"`)
		h.Set("Content-Type", "image/png")
		w, err := mw.CreatePart(h)
		if err != nil {
			f.Fatal(err)
		}
		w.Write(p)
	}
	mw.Close()
	return b.Bytes()
}

// FuzzUpload sends arbitrary multipart bodies to both upload routes: the
// answer is 201 or a 4xx envelope, never a 500; a refusal leaves neither
// metadata nor bytes behind, and what is accepted is stored, once, and
// served.
func FuzzUpload(f *testing.F) {
	fz := newFuzzServer(f)
	png := pngBytes(f, 3, 2, 1)
	f.Add(fuzzMultipart(f, "file", png), false)
	f.Add(fuzzMultipart(f, "files", png, png), true)
	f.Add(fuzzMultipart(f, "files", png, []byte("not an image")), true)
	f.Add(fuzzMultipart(f, "file", png[:len(png)-5]), false)
	f.Add(bytes.Replace(fuzzMultipart(f, "file", png), []byte("Content-Type: image/png"),
		[]byte("Content-Type: image/png\r\nContent-Transfer-Encoding: quoted-printable"), 1), false)
	f.Add([]byte("--"+fuzzBoundary+"\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"), false)
	f.Add([]byte("--"+fuzzBoundary+"--\r\n"), true)
	f.Fuzz(func(t *testing.T, body []byte, multiple bool) {
		path, want := "/api/media/upload", 1
		if multiple {
			path = "/api/media/upload-multiple"
		}
		imgsBefore, blobsBefore := fz.count(t)
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+fuzzBoundary)
		status, env := fz.do(t, req)
		imgsAfter, blobsAfter := fz.count(t)
		if status != http.StatusCreated {
			if imgsAfter != imgsBefore || blobsAfter != blobsBefore {
				t.Fatalf("status %d left %d images and %d blobs behind", status, imgsAfter-imgsBefore, blobsAfter-blobsBefore)
			}
			return
		}
		var ids []string
		switch d := env["data"].(type) {
		case map[string]any:
			ids = append(ids, d["id"].(string))
		case []any:
			for _, x := range d {
				ids = append(ids, x.(map[string]any)["id"].(string))
			}
			want = len(d)
		}
		if len(ids) == 0 || imgsAfter-imgsBefore != int64(want) || blobsAfter-blobsBefore != want {
			t.Fatalf("201 with %d images in the answer, %d stored, %d blobs written", len(ids), imgsAfter-imgsBefore, blobsAfter-blobsBefore)
		}
		for _, id := range ids {
			if status, _ := fz.do(t, httptest.NewRequest("GET", "/api/images/"+id, nil)); status != 200 {
				t.Fatalf("GET the uploaded image: %d", status)
			}
		}
	})
}
