package http

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/http/fastlane"
)

// The fast lane answers a plain GET of stored bytes exactly as net/http
// does (but Date and X-Request-Id, which differ per answer); a request that
// is not plain, or whose bytes are not stored yet, is net/http's.
func TestFastLaneAnswersAsNetHTTP(t *testing.T) {
	cors, err := ParseCORSOrigins("https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{cors: cors})
	alice := mintToken(t, "alice")
	data := pngBytes(t, 300, 200, 7)
	img := h.uploadVariantImage(t, alice, "a.png", data)
	_, body := h.call(t, "GET", "/api/images/{id}/variant", "/api/images/"+img.ID+"/variant?width=120&format=auto", alice, nil, nil)
	signed := path(t, dataAs[signedVariant](t, body).URL)
	urls := map[string]string{"original": cdnPath(t, img.URL), "preset": path(t, img.Variants["thumb"]), "signed": signed}

	// A connection stays with net/http once it had a request that is not
	// plain: every request here goes on a connection of its own.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	lane := func(t *testing.T, p string, hdr http.Header) (*http.Response, []byte, bool) {
		t.Helper()
		before := h.srv.fastAnswers.Load()
		resp, body := h.sendOn(t, client, "GET", p, "", nil, hdr)
		return resp, body, h.srv.fastAnswers.Load() > before
	}
	notPlain := http.Header{"X-Not-Plain": {"1"}}
	for name, p := range urls {
		t.Run(name, func(t *testing.T) {
			if _, _, fast := lane(t, p, nil); fast && name != "original" {
				t.Fatal("the lane answered a variant before it was stored")
			}
			want, wantBody, fast := lane(t, p, notPlain)
			if fast {
				t.Fatal("the lane answered a request with a header it does not know")
			}
			got, gotBody, fast := lane(t, p, nil)
			if !fast {
				t.Fatal("the lane left a plain GET of stored bytes to net/http")
			}
			if got.StatusCode != 200 || want.StatusCode != 200 || !bytes.Equal(gotBody, wantBody) || len(gotBody) == 0 {
				t.Fatalf("lane %d, %d bytes; net/http %d, %d bytes", got.StatusCode, len(gotBody), want.StatusCode, len(wantBody))
			}
			for _, h := range []http.Header{got.Header, want.Header} {
				if h.Get("Date") == "" || !validRequestID(h.Get("X-Request-Id")) {
					t.Errorf("Date %q, X-Request-Id %q", h.Get("Date"), h.Get("X-Request-Id"))
				}
				h.Del("Date")
				h.Del("X-Request-Id")
			}
			if !maps.EqualFunc(got.Header, want.Header, slices.Equal) {
				t.Errorf("lane header:\n%v\nnet/http header:\n%v", got.Header, want.Header)
			}
			// Of the same URL, these are net/http's.
			etag := want.Header.Get("Etag")
			for _, c := range []struct {
				hdr    http.Header
				status int
			}{
				{http.Header{"Range": {"bytes=0-9"}}, 206},
				{http.Header{"If-None-Match": {etag}}, 304},
				{http.Header{"Origin": {"https://app.example"}}, 200},
			} {
				resp, _, fast := lane(t, p, c.hdr)
				if fast || resp.StatusCode != c.status {
					t.Errorf("%v: %d (lane: %v), want %d from net/http", c.hdr, resp.StatusCode, fast, c.status)
				}
				if c.hdr.Get("Origin") != "" && resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
					t.Errorf("CORS headers lost: %v", resp.Header)
				}
			}
			if resp, _, fast := lane(t, p+"?x=1", nil); fast || resp.StatusCode != 200 {
				t.Errorf("with a query: %d (lane: %v)", resp.StatusCode, fast)
			}
		})
	}
	t.Run("unknown keys and presets are net/http's 404", func(t *testing.T) {
		for _, p := range []string{"/cdn/nope.png", urls["original"] + "/nope", urls["original"] + "/w=1/bad"} {
			resp, body, fast := lane(t, p, nil)
			if fast {
				t.Errorf("%s: answered in the lane", p)
			}
			if resp.StatusCode/100 != 4 || !strings.Contains(string(body), `"success":false`) {
				t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
	})
	t.Run("logged like any request", func(t *testing.T) {
		_, _, fast := lane(t, urls["original"], http.Header{"X-Request-Id": {"lane-log-1"}})
		if !fast {
			t.Fatal("not in the lane")
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(h.logs.String(), "lane-log-1") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		line := ""
		for _, l := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(l, "lane-log-1") {
				line = l
			}
		}
		for _, want := range []string{"msg=request", "method=GET", "path=" + urls["original"], "status=200", "bytes=" + strconv.Itoa(len(data))} {
			if !strings.Contains(line, want) {
				t.Errorf("access log line %q lacks %q", line, want)
			}
		}
	})
	t.Run("an API request after a fast answer on one connection", func(t *testing.T) {
		c, err := net.Dial("tcp", h.ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET "+urls["original"]+" HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /api/images/"+img.ID+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+alice+"\r\n\r\n"+
			"GET "+urls["original"]+" HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		for i, want := range []string{string(data), img.ID, string(data)} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
				t.Errorf("answer %d: %d %.80q", i, resp.StatusCode, b)
			}
		}
	})
}

// Over a bucket, or with tracing on, the lane is not in front: a blob that
// is no local file would be opened twice (by the lane, then by net/http).
func TestFastLaneOnlyOverLocalFiles(t *testing.T) {
	for _, local := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := New(Config{LocalBlobs: local}).Listen(ln)
		_, lane := l.(moreListener).Listener.(*fastlane.Listener)
		if lane != local {
			t.Errorf("LocalBlobs %v: fast lane %v", local, lane)
		}
		l.Close()
	}
}
