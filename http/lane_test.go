package http

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/http/fastlane"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/telemetry"
)

// The fast lane answers a plain GET of stored bytes, or of an image object,
// exactly as net/http does (but Date and X-Request-Id, which differ per
// answer); a request that is not plain, whose bytes are not stored yet or
// that is not answered with a 200, is net/http's.
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
	// lane sends GET p (with token tok unless "") and says whether the
	// lane answered it.
	lane := func(t *testing.T, p, tok string, hdr http.Header) (*http.Response, []byte, bool) {
		t.Helper()
		before := h.srv.fastAnswers.Load()
		resp, body := h.sendOn(t, client, "GET", p, tok, nil, hdr)
		return resp, body, h.srv.fastAnswers.Load() > before
	}
	notPlain := http.Header{"X-Not-Plain": {"1"}}
	for name, p := range urls {
		t.Run(name, func(t *testing.T) {
			if _, _, fast := lane(t, p, "", nil); fast && name != "original" {
				t.Fatal("the lane answered a variant before it was stored")
			}
			want, wantBody, fast := lane(t, p, "", notPlain)
			if fast {
				t.Fatal("the lane answered a request with a header it does not know")
			}
			got, gotBody, fast := lane(t, p, "", nil)
			if !fast {
				t.Fatal("the lane left a plain GET of stored bytes to net/http")
			}
			if got.StatusCode != 200 || want.StatusCode != 200 || !bytes.Equal(gotBody, wantBody) || len(gotBody) == 0 {
				t.Fatalf("lane %d, %d bytes; net/http %d, %d bytes", got.StatusCode, len(gotBody), want.StatusCode, len(wantBody))
			}
			sameHeader(t, got.Header, want.Header)
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
				resp, _, fast := lane(t, p, "", c.hdr)
				if fast || resp.StatusCode != c.status {
					t.Errorf("%v: %d (lane: %v), want %d from net/http", c.hdr, resp.StatusCode, fast, c.status)
				}
				if c.hdr.Get("Origin") != "" && resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
					t.Errorf("CORS headers lost: %v", resp.Header)
				}
			}
			if resp, _, fast := lane(t, p+"?x=1", "", nil); fast || resp.StatusCode != 200 {
				t.Errorf("with a query: %d (lane: %v)", resp.StatusCode, fast)
			}
		})
	}
	t.Run("the image object", func(t *testing.T) {
		p := "/api/images/" + img.ID
		want, wantBody, fast := lane(t, p, alice, notPlain)
		if fast {
			t.Fatal("the lane answered a request with a header it does not know")
		}
		got, gotBody, fast := lane(t, p, alice, http.Header{"X-Request-Id": {"lane-api-1"}})
		if !fast {
			t.Fatal("the lane left a plain GET of an image to net/http")
		}
		if got.StatusCode != 200 || want.StatusCode != 200 || !bytes.Equal(gotBody, wantBody) || !strings.Contains(string(gotBody), img.ID) {
			t.Fatalf("lane %d %s\nnet/http %d %s", got.StatusCode, gotBody, want.StatusCode, wantBody)
		}
		if got.Header.Get("X-Request-Id") != "lane-api-1" {
			t.Errorf("X-Request-Id %q, want the caller's", got.Header.Get("X-Request-Id"))
		}
		sameHeader(t, got.Header, want.Header)
		line := h.waitLog(t, "lane-api-1")
		for _, want := range []string{"msg=request", "method=GET", "path=" + p, "status=200", "bytes=" + strconv.Itoa(len(gotBody))} {
			if !strings.Contains(line, want) {
				t.Errorf("access log line %q lacks %q", line, want)
			}
		}
		// Every answer but a 200 is net/http's, with its envelope.
		bob := mintToken(t, "bob")
		for _, c := range []struct {
			name   string
			tok    string
			hdr    http.Header
			status int
		}{
			{"no token", "", nil, 401},
			{"a forged token", alice[:len(alice)-2] + "xx", nil, 401},
			{"another scheme", "", http.Header{"Authorization": {"Basic YTpi"}}, 401},
			{"another owner", bob, nil, 404},
			{"a cross-origin call", alice, http.Header{"Origin": {"https://app.example"}}, 200},
		} {
			resp, body, fast := lane(t, p, c.tok, c.hdr)
			if fast || resp.StatusCode != c.status {
				t.Errorf("%s: %d (lane: %v), want %d from net/http", c.name, resp.StatusCode, fast, c.status)
			}
			if c.status != 200 && !strings.Contains(string(body), `"success":false`) {
				t.Errorf("%s: %s", c.name, body)
			}
		}
		for _, q := range []string{"/api/images/" + imaged.NewID(), "/api/images/models", "/api/images/generations", "/api/images/" + img.ID + "/variant", "/api/images"} {
			if resp, _, fast := lane(t, q, alice, nil); fast {
				t.Errorf("%s: answered in the lane (%d)", q, resp.StatusCode)
			}
		}
	})
	t.Run("unknown keys and presets are net/http's 404", func(t *testing.T) {
		for _, p := range []string{"/cdn/nope.png", urls["original"] + "/nope", urls["original"] + "/w=1/bad"} {
			resp, body, fast := lane(t, p, "", nil)
			if fast {
				t.Errorf("%s: answered in the lane", p)
			}
			if resp.StatusCode/100 != 4 || !strings.Contains(string(body), `"success":false`) {
				t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
	})
	t.Run("logged like any request", func(t *testing.T) {
		_, _, fast := lane(t, urls["original"], "", http.Header{"X-Request-Id": {"lane-log-1"}})
		if !fast {
			t.Fatal("not in the lane")
		}
		line := h.waitLog(t, "lane-log-1")
		for _, want := range []string{"msg=request", "method=GET", "path=" + urls["original"], "status=200", "bytes=" + strconv.Itoa(len(data))} {
			if !strings.Contains(line, want) {
				t.Errorf("access log line %q lacks %q", line, want)
			}
		}
	})
	t.Run("an API request after a fast answer on one connection", func(t *testing.T) {
		c, br := dialLane(t, h.ts.Listener.Addr().String())
		io.WriteString(c, "GET "+urls["original"]+" HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /api/images/"+img.ID+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+alice+"\r\n\r\n"+
			"GET "+urls["original"]+" HTTP/1.1\r\nHost: x\r\n\r\n")
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

// Without tracing the lane is in front, over any blob store; over a
// bucket it leaves /cdn to net/http, since a blob that is no local file
// would be opened twice (by the lane, then by net/http).
func TestFastLaneCDNOnlyOverLocalFiles(t *testing.T) {
	for _, local := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{LocalBlobs: local})
		l := s.Listen(ln)
		if _, lane := l.(moreListener).Listener.(*fastlane.Listener); !lane {
			t.Errorf("LocalBlobs %v: no fast lane", local)
		}
		l.Close()
		if !local {
			// The server has no image service: a lookup would panic.
			if a := (fastRoutes{s}).Answer(&fastlane.Request{Path: "/cdn/abc.png"}); a != nil {
				t.Error("over a bucket, the lane answered /cdn")
			}
		}
	}
}

// sameHeader checks that the lane's answer header (got) is net/http's
// (want) but for Date and X-Request-Id, which differ per answer; it
// removes those two.
func sameHeader(t *testing.T, got, want http.Header) {
	t.Helper()
	for _, h := range []http.Header{got, want} {
		if h.Get("Date") == "" || !validRequestID(h.Get("X-Request-Id")) {
			t.Errorf("Date %q, X-Request-Id %q", h.Get("Date"), h.Get("X-Request-Id"))
		}
		h.Del("Date")
		h.Del("X-Request-Id")
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("lane header:\n%v\nnet/http header:\n%v", got, want)
	}
}

// waitLog waits until the server's log has a line with s, and returns the
// last such line.
func (h *harness) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), s) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	line := ""
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, s) {
			line = l
		}
	}
	return line
}

// A lookupContext acts as a context.WithDeadline: it ends at its deadline
// or at stop, and so do the contexts derived from it; asking only for its
// deadline allocates nothing.
func TestLookupContext(t *testing.T) {
	c := &lookupContext{deadline: time.Now().Add(50 * time.Millisecond)}
	if n := testing.AllocsPerRun(10, func() { c.Deadline() }); n != 0 || c.ctx != nil {
		t.Errorf("Deadline made the context (%v allocations)", n)
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	// Children join the timed context: none needs a goroutine watching c.
	before := runtime.NumGoroutine()
	for range 100 {
		_, cancel := context.WithCancel(c)
		defer cancel()
	}
	if n := runtime.NumGoroutine() - before; n >= 50 {
		t.Errorf("%d goroutines more for 100 derived contexts", n)
	}
	if c.Err() != nil || child.Err() != nil {
		t.Fatal("done before its deadline")
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context outlived the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("Err %v, child's %v; want DeadlineExceeded", c.Err(), child.Err())
	}

	for _, used := range []bool{false, true} {
		c := &lookupContext{deadline: time.Now().Add(time.Hour)}
		var child context.Context = c
		if used {
			child, cancel = context.WithCancel(c)
			defer cancel()
		}
		c.stop()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("used %v: not done after stop", used)
		}
		if !errors.Is(child.Err(), context.Canceled) {
			t.Errorf("used %v: Err %v after stop, want Canceled", used, child.Err())
		}
	}
}

// countingAuth counts token checks.
type countingAuth struct {
	imaged.Authenticator
	n atomic.Int64
}

func (a *countingAuth) Authenticate(ctx context.Context, token string) (string, error) {
	a.n.Add(1)
	return a.Authenticator.Authenticate(ctx, token)
}

// countingStore counts lookups by id.
type countingStore struct {
	imaged.ImageStore
	n atomic.Int64
}

func (s *countingStore) FindImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	s.n.Add(1)
	return s.ImageStore.FindImage(ctx, owner, id)
}

func (s *countingStore) FindImageByBlobKey(ctx context.Context, key string) (*imaged.Image, error) {
	s.n.Add(1)
	return s.ImageStore.FindImageByBlobKey(ctx, key)
}

// A GET /api/images/{id} the lane leaves to net/http for a refused token,
// an unknown id or another owner's image, and a GET of an unknown key
// under /cdn, are answered from the lane's verdict: the token is checked
// once, the image looked up once. The verdict is for that request only:
// the next one on the connection is checked again.
func TestLaneVerdictIsNotWorkedOutTwice(t *testing.T) {
	h := newHarness(t, options{})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	img := h.upload(t, alice, "a.png", pngBytes(t, 8, 8, 1))

	auth := &countingAuth{Authenticator: h.srv.auth}
	store := &countingStore{ImageStore: h.db} // no DeletionFeed: no cache, every Get asks the store
	srv := New(Config{Telemetry: telemetry.New(), Images: images.New(store, h.blobs, images.Config{}), Auth: auth, Logger: h.srv.log, LocalBlobs: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(srv)
	go hs.Serve(srv.Listen(ln))
	t.Cleanup(func() { hs.Close() })

	forged := alice[:len(alice)-2] + "xx"
	for _, c := range []struct {
		name        string
		path, tok   string
		status      int
		auths, gets int64 // per request
	}{
		{"a forged token", "/api/images/" + img.ID, forged, 401, 1, 0},
		{"an unknown id", "/api/images/" + imaged.NewID(), alice, 404, 1, 1},
		{"another owner's image", "/api/images/" + img.ID, bob, 404, 1, 1},
		{"an unknown key", "/cdn/" + imaged.NewBlobKey("png"), "", 404, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, br := dialLane(t, ln.Addr().String())
			auths, gets := auth.n.Load(), store.n.Load()
			req := "GET " + c.path + " HTTP/1.1\r\nHost: x\r\n"
			if c.tok != "" {
				req += "Authorization: Bearer " + c.tok + "\r\n"
			}
			req += "\r\n"
			for i := range 2 { // the second on the same connection, now net/http's
				io.WriteString(conn, req)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != c.status || !strings.Contains(string(body), `"success":false`) {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
				if a, g := auth.n.Load()-auths, store.n.Load()-gets; a != c.auths || g != c.gets {
					t.Errorf("request %d: %d token checks and %d lookups, want %d and %d", i, a, g, c.auths, c.gets)
				}
				auths, gets = auth.n.Load(), store.n.Load()
			}
		})
	}
}

// dialLane connects to addr, with a deadline of 10 s for the whole test.
func dialLane(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}
