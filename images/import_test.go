package images_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
)

// secret is what the origin serves at /secret: no answer may ever carry it.
const secret = "metadata-token-7f3a9c"

// origin is an HTTP server on loopback serving the routes of the tests; it
// counts the requests each path received.
type origin struct {
	srv  *httptest.Server
	port string
	hits map[string]*atomic.Int64
}

func newOrigin(t *testing.T, routes map[string]http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{hits: map[string]*atomic.Int64{}}
	mux := http.NewServeMux()
	routes["/secret"] = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, secret) }
	for p, h := range routes {
		o.hits[p] = new(atomic.Int64)
		n := o.hits[p]
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) })
	}
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	_, o.port, _ = net.SplitHostPort(o.srv.Listener.Addr().String())
	return o
}

func (o *origin) hit(path string) int64 { return o.hits[path].Load() }

// allowLoopback is the test allow-list: exactly the origin's address.
var allowLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func TestImport(t *testing.T) {
	ctx := context.Background()
	png := pngBytes(t, 30, 20)
	o := newOrigin(t, map[string]http.HandlerFunc{
		"/img/sunset.png": func(w http.ResponseWriter, r *http.Request) { w.Write(png) },
		"/html": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><script>alert(1)</script></html>")
		},
		"/missing": http.NotFound,
		"/redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		},
		"/hop/": func(w http.ResponseWriter, r *http.Request) {
			// /hop/N redirects to /hop/N-1, and /hop/0 to the image.
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n == 0 {
				http.Redirect(w, r, "/img/sunset.png", http.StatusFound)
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
		},
	})
	base := "http://127.0.0.1:" + o.port

	t.Run("image_on_an_allowed_host_is_stored", func(t *testing.T) {
		f := newFixture(t, images.Config{ImportAllow: allowLoopback})
		img, err := f.svc.Import(ctx, "alice", base+"/img/sunset.png", "")
		if err != nil {
			t.Fatal(err)
		}
		if img.MediaType != "image/png" || img.Width != 30 || img.Height != 20 || img.Size != int64(len(png)) || img.Source != imaged.SourceUpload {
			t.Fatalf("stored %+v", img)
		}
		if img.OriginalFilename != "sunset.png" {
			t.Fatalf("filename %q, want the URL's last segment", img.OriginalFilename)
		}
		_, blob, err := f.svc.OpenBlob(ctx, img.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		defer blob.Close()
		if b, _ := io.ReadAll(blob); !bytes.Equal(b, png) {
			t.Fatal("stored bytes differ from the served ones")
		}
	})
	t.Run("filename_given_wins", func(t *testing.T) {
		f := newFixture(t, images.Config{ImportAllow: allowLoopback})
		img, err := f.svc.Import(ctx, "alice", base+"/img/sunset.png", "Mine.png")
		if err != nil || img.OriginalFilename != "Mine.png" {
			t.Fatalf("%+v, %v", img, err)
		}
	})
	t.Run("three_redirects_are_followed", func(t *testing.T) {
		f := newFixture(t, images.Config{ImportAllow: allowLoopback})
		img, err := f.svc.Import(ctx, "alice", base+"/hop/2", "")
		if err != nil || img.OriginalFilename != "sunset.png" {
			t.Fatalf("%+v, %v", img, err)
		}
	})

	for _, tc := range []struct {
		name  string
		allow []netip.Prefix
		url   string
		code  imaged.ErrorCode
	}{
		{"loopback_not_allow_listed", nil, base + "/secret", imaged.EImportRefused},
		{"localhost_by_name", nil, "http://localhost:" + o.port + "/secret", imaged.EImportRefused},
		{"ipv6_loopback", nil, "http://[::1]:" + o.port + "/secret", imaged.EImportRefused},
		{"unspecified_0.0.0.0", allowLoopback, "http://0.0.0.0:" + o.port + "/secret", imaged.EImportRefused},
		{"unspecified_ipv6", allowLoopback, "http://[::]:" + o.port + "/secret", imaged.EImportRefused},
		{"ipv4_mapped_loopback", nil, "http://[::ffff:127.0.0.1]:" + o.port + "/secret", imaged.EImportRefused},
		{"ipv4_mapped_unspecified", allowLoopback, "http://[::ffff:0.0.0.0]:" + o.port + "/secret", imaged.EImportRefused},
		{"cloud_metadata", allowLoopback, "http://169.254.169.254/latest/meta-data/", imaged.EImportRefused},
		{"cloud_metadata_ipv4_mapped", allowLoopback, "http://[::ffff:169.254.169.254]/latest/meta-data/", imaged.EImportRefused},
		{"aws_ipv6_metadata", allowLoopback, "http://[fd00:ec2::254]/latest/meta-data/", imaged.EImportRefused},
		{"private", allowLoopback, "http://10.0.0.1/", imaged.EImportRefused},
		{"redirect_to_unspecified", allowLoopback, base + "/redirect?to=" + "http://0.0.0.0:" + o.port + "/secret", imaged.EImportRefused},
		{"redirect_to_metadata", allowLoopback, base + "/redirect?to=http://169.254.169.254/latest/meta-data/", imaged.EImportRefused},
		{"redirect_to_mapped_metadata", allowLoopback, base + "/redirect?to=http://[::ffff:a9fe:a9fe]/", imaged.EImportRefused},
		{"redirect_to_file", allowLoopback, base + "/redirect?to=file:///etc/passwd", imaged.EImportRefused},
		{"four_redirects", allowLoopback, base + "/hop/3", imaged.EImportRefused},
		{"not_an_image", allowLoopback, base + "/html", imaged.EUnsupportedMedia},
		{"not_found", allowLoopback, base + "/missing", imaged.EImportFailed},
		{"nothing_listening", allowLoopback, "http://127.0.0.1:1/x.png", imaged.EImportFailed},
		{"empty", nil, "", imaged.EValidation},
		{"ftp", nil, "ftp://example.com/a.png", imaged.EValidation},
		{"file", nil, "file:///etc/passwd", imaged.EValidation},
		{"javascript", nil, "javascript:alert(1)", imaged.EValidation},
		{"relative", nil, "/img/sunset.png", imaged.EValidation},
		{"no_host", nil, "http:///a.png", imaged.EValidation},
		{"credentials", nil, "http://user:pw@example.com/a.png", imaged.EValidation},
		{"too_long", nil, "http://example.com/" + strings.Repeat("a", images.MaxImportURL), imaged.EValidation},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			f := newFixture(t, images.Config{ImportAllow: tc.allow})
			before := o.hit("/secret")
			_, err := f.svc.Import(ctx, "alice", tc.url, "")
			if imaged.ErrCode(err) != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			msg := imaged.ErrMessage(err)
			if strings.Contains(msg, secret) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "169.254") {
				t.Fatalf("the message %q tells what was at the address", msg)
			}
			if o.hit("/secret") != before {
				t.Fatal("a refused address was reached")
			}
			if n := blobCount(t, f.blobs); n != 0 {
				t.Fatalf("%d blobs left behind", n)
			}
		})
	}
}

// pngStart is the start of a well-formed PNG whose next chunk, an ancillary
// private one, is announced as n bytes long: a validator reads on for n
// bytes before it can tell anything is wrong.
func pngStart(t *testing.T, n uint32) []byte {
	b := pngBytes(t, 30, 20)[:8+25] // signature, IHDR
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 'p', 'r', 'V', 't')
}

// TestImportOfOddSpellings: numeric spellings of loopback that some
// resolvers read as addresses (octal, a single decimal number, hex) either
// do not resolve or resolve to what is refused; none reaches the origin.
func TestImportOfOddSpellings(t *testing.T) {
	o := newOrigin(t, map[string]http.HandlerFunc{})
	for _, host := range []string{"0177.0.0.1", "2130706433", "0x7f000001", "127.1", "localhost.", "[0:0:0:0:0:ffff:7f00:1]"} {
		t.Run(host, func(t *testing.T) {
			f := newFixture(t, images.Config{})
			_, err := f.svc.Import(context.Background(), "alice", "http://"+host+":"+o.port+"/secret", "")
			if c := imaged.ErrCode(err); c != imaged.EImportRefused && c != imaged.EImportFailed {
				t.Fatalf("err = %v", err)
			}
			if o.hit("/secret") != 0 {
				t.Fatal("the origin was reached")
			}
		})
	}
}

func TestImportIsBounded(t *testing.T) {
	ctx := context.Background()
	start := pngStart(t, 200<<20)
	png := pngBytes(t, 30, 20)
	var sent atomic.Int64
	o := newOrigin(t, map[string]http.HandlerFunc{
		// The image's start, then a trickle that never ends.
		"/endless": func(w http.ResponseWriter, r *http.Request) {
			w.Write(start)
			for {
				if _, err := w.Write([]byte{0}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
		// Headers, then nothing.
		"/silent": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
		// A whole image, but fewer bytes than announced: the connection
		// dropped.
		"/short": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(png)+100))
			w.Write(png)
		},
		// 100 MiB, announced or chunked.
		"/huge": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("announce") != "" {
				w.Header().Set("Content-Length", strconv.Itoa(100<<20))
			}
			chunk := make([]byte, 64<<10)
			copy(chunk, start)
			for i := 0; i < 100<<20/len(chunk); i++ {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
				chunk = make([]byte, len(chunk))
			}
		},
	})
	base := "http://127.0.0.1:" + o.port
	for _, tc := range []struct {
		name string
		path string
		code imaged.ErrorCode
	}{
		{"body_that_never_ends", "/endless", imaged.EImportTimeout},
		{"headers_then_silence", "/silent", imaged.EImportTimeout},
		{"fewer_bytes_than_announced", "/short", imaged.EImportFailed},
		{"100_MiB_announced", "/huge?announce=1", imaged.ETooLarge},
		{"100_MiB_chunked", "/huge", imaged.ETooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent.Store(0)
			f := newFixture(t, images.Config{ImportAllow: allowLoopback, ImportTimeout: 700 * time.Millisecond, MaxFileSize: 1 << 20})
			start := time.Now()
			_, err := f.svc.Import(ctx, "alice", base+tc.path, "")
			if imaged.ErrCode(err) != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("the import took %s", d)
			}
			if n := sent.Load(); n > 32<<20 {
				t.Fatalf("the origin could send %d bytes: the body was not cut off at the limit", n)
			}
			if n := blobCount(t, f.blobs); n != 0 {
				t.Fatalf("%d blobs left behind", n)
			}
		})
	}
}
