package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpClient talks to the servers; its timeout only stops a hung test.
var httpClient = &http.Client{Timeout: 60 * time.Second}

// response is an answer read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// request is one call to a server. Target is a path on the server or an
// absolute URL.
type request struct {
	Method string
	Target string
	Token  string
	Header map[string]string
	Body   io.Reader
}

func (s *server) url(target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target
	}
	return s.Base + target
}

func (s *server) send(t *testing.T, r request) *response {
	t.Helper()
	req, err := http.NewRequest(r.Method, s.url(r.Target), r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", r.Method, r.Target, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func (s *server) get(t *testing.T, target, token string) *response {
	t.Helper()
	return s.send(t, request{Method: http.MethodGet, Target: target, Token: token})
}

func (s *server) delete(t *testing.T, target, token string) *response {
	t.Helper()
	return s.send(t, request{Method: http.MethodDelete, Target: target, Token: token})
}

// postJSON posts body as JSON; header holds name, value pairs.
func (s *server) postJSON(t *testing.T, target, token string, body any, header ...string) *response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/json"}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return s.send(t, request{Method: http.MethodPost, Target: target, Token: token, Header: h, Body: bytes.NewReader(b)})
}

// envelope is the JSON answer of every API operation.
type envelope struct {
	Success    bool            `json:"success"`
	Code       int             `json:"code"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
	Pagination *pagination     `json:"pagination"`
	ErrorCode  string          `json:"errorCode"`
	Timestamp  string          `json:"timestamp"`
}

type pagination struct {
	CurrentPage int     `json:"currentPage"`
	PageSize    int     `json:"pageSize"`
	TotalItems  int     `json:"totalItems"`
	TotalPages  int     `json:"totalPages"`
	NextCursor  *string `json:"nextCursor"`
}

func checkJSONContentType(t *testing.T, r *response) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// wantOK checks a success envelope with the given status and returns it.
func wantOK(t *testing.T, r *response, status int) envelope {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	checkJSONContentType(t, r)
	var e envelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.Body)
	}
	if !e.Success || e.Code != status || e.Message == "" || len(e.Data) == 0 || string(e.Data) == "null" {
		t.Fatalf("envelope = success %v, code %d, message %q, data %s; want success true, code %d, a message and data",
			e.Success, e.Code, e.Message, e.Data, status)
	}
	return e
}

// wantError checks an error envelope with the given status and errorCode
// and returns the body as a map.
func wantError(t *testing.T, r *response, status int, errorCode string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	checkJSONContentType(t, r)
	var e envelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.Body)
	}
	if e.Success || e.Code != status || e.ErrorCode != errorCode || e.Message == "" {
		t.Errorf("envelope = success %v, code %d, errorCode %q, message %q; want success false, code %d, errorCode %q and a message",
			e.Success, e.Code, e.ErrorCode, e.Message, status, errorCode)
	}
	checkTimestamp(t, "timestamp", e.Timestamp)
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["data"]; ok {
		t.Errorf("error envelope has data: %s", r.Body)
	}
	return m
}

// checkTimestamp checks an RFC 3339 date-time in UTC with the Z suffix.
func checkTimestamp(t *testing.T, name, v string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, v)
	if err != nil || !strings.HasSuffix(v, "Z") {
		t.Errorf("%s = %q, want RFC 3339 UTC with Z", name, v)
	}
	return ts
}

// imageObject is the contract's image object and the additions this
// service makes.
type imageObject struct {
	ID               string `json:"id"`
	OriginalFilename string `json:"originalFilename"`
	URL              string `json:"url"`
	MediaType        string `json:"mediaType"`
	FileSize         int64  `json:"fileSize"`
	CreatedAt        string `json:"createdAt"`
	UpdatedAt        string `json:"updatedAt"`

	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Source   string `json:"source"`
	Prompt   string `json:"prompt"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// contractFields are the image object's seven fields and their JSON kinds.
var contractFields = map[string]byte{
	"id": '"', "originalFilename": '"', "url": '"', "mediaType": '"',
	"fileSize": '0', "createdAt": '"', "updatedAt": '"',
}

// decodeImage checks that raw is an image object whose seven contract
// fields are present, typed and well-formed, and that url points at s.
func decodeImage(t *testing.T, s *server, raw json.RawMessage) imageObject {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("image is not a JSON object: %v: %s", err, raw)
	}
	for name, kind := range contractFields {
		v, ok := fields[name]
		switch {
		case !ok:
			t.Errorf("image has no %q: %s", name, raw)
		case kind == '"' && (len(v) == 0 || v[0] != '"'):
			t.Errorf("image %q = %s, want a string", name, v)
		case kind == '0' && (len(v) == 0 || v[0] < '0' || v[0] > '9'):
			t.Errorf("image %q = %s, want a non-negative number", name, v)
		}
	}
	var img imageObject
	if err := json.Unmarshal(raw, &img); err != nil {
		t.Fatalf("image: %v: %s", err, raw)
	}
	if img.ID == "" {
		t.Errorf("image id is empty")
	}
	u, err := url.Parse(img.URL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		t.Errorf("image url = %q, want an absolute URL", img.URL)
	} else if !strings.HasPrefix(img.URL, s.Base+"/") {
		t.Errorf("image url = %q, want one on %s (the host the request reached)", img.URL, s.Base)
	}
	if img.FileSize <= 0 {
		t.Errorf("image fileSize = %d, want > 0", img.FileSize)
	}
	created := checkTimestamp(t, "createdAt", img.CreatedAt)
	updated := checkTimestamp(t, "updatedAt", img.UpdatedAt)
	if updated.Before(created) {
		t.Errorf("updatedAt %s is before createdAt %s", img.UpdatedAt, img.CreatedAt)
	}
	return img
}

// file is one part of a multipart upload.
type file struct {
	Name        string
	ContentType string
	Data        []byte
}

// multipartBody streams files as the multipart field named field, the way a
// browser sends them (raw UTF-8 filename). The body has no known length, so
// it is sent chunked.
func multipartBody(field string, files ...file) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		var err error
		defer func() { pw.CloseWithError(err) }()
		for _, f := range files {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="%s"`, field, f.Name))
			if f.ContentType != "" {
				h.Set("Content-Type", f.ContentType)
			}
			var part io.Writer
			if part, err = mw.CreatePart(h); err != nil {
				return
			}
			if _, err = io.Copy(part, bytes.NewReader(f.Data)); err != nil {
				return
			}
		}
		err = mw.Close()
	}()
	return pr, mw.FormDataContentType()
}

func (s *server) postFiles(t *testing.T, target, token, field string, files ...file) *response {
	t.Helper()
	body, ct := multipartBody(field, files...)
	return s.send(t, request{Method: http.MethodPost, Target: target, Token: token,
		Header: map[string]string{"Content-Type": ct}, Body: body})
}

// upload stores one file and returns its image object.
func (s *server) upload(t *testing.T, token string, f file) imageObject {
	t.Helper()
	r := s.postFiles(t, "/api/media/upload", token, "file", f)
	return decodeImage(t, s, wantOK(t, r, http.StatusCreated).Data)
}

// getImage returns GET /api/images/{id} as the given caller.
func (s *server) getImage(t *testing.T, token, id string) imageObject {
	t.Helper()
	return decodeImage(t, s, wantOK(t, s.get(t, "/api/images/"+id, token), http.StatusOK).Data)
}

// pngImage encodes a w x h PNG whose pixels depend on seed.
func pngImage(t *testing.T, w, h int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, gradient(w, h, seed)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jpegImage encodes a w x h JPEG whose pixels depend on seed.
func jpegImage(t *testing.T, w, h int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, gradient(w, h, seed), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gradient(w, h int, seed uint64) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x + int(seed)*37), uint8(y * 3), uint8(seed * 91), 255})
		}
	}
	return img
}

// noisyPNG is a PNG that hardly compresses: about 4*w*h bytes.
func noisyPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signHS256 builds a JWT by hand, independently of the service's code.
func signHS256(t *testing.T, secret []byte, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := header + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// dataDirSecret reads the hex-encoded HS256 secret the service keeps in its
// data directory.
func dataDirSecret(t *testing.T, dataDir string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(secret) < 32 {
		t.Fatalf("jwt-secret holds %q, want at least 32 hex-encoded bytes", raw)
	}
	return secret
}

// dataList decodes a success envelope whose data is an array of images.
func dataList(t *testing.T, s *server, e envelope) []imageObject {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(e.Data, &raws); err != nil {
		t.Fatalf("data is not an array: %v: %s", err, e.Data)
	}
	out := make([]imageObject, len(raws))
	for i, raw := range raws {
		out[i] = decodeImage(t, s, raw)
	}
	return out
}

func ids(imgs []imageObject) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}
