package fastlane

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"testing"
)

// Whatever the lane takes as a plain GET, net/http reads the same way: the
// same method, path and headers the lane looked at (Host, Accept,
// Authorization, X-Request-Id), no body, one Host. So the lane never
// answers a request that net/http would refuse or read as something else
// (request smuggling through a disagreement).
func FuzzParseRequestAgreesWithNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET /cdn/abc.png HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /cdn/k/w=1/s HTTP/1.1\r\nHost: [::1]:8080\r\nAccept: image/webp\r\nX-Request-Id: a\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb\r\n\r\n",
		"GET /a HTTP/1.1\r\nhOsT: x\r\nCONNECTION: Keep-Alive\r\n\r\n",
		"GET /api/images/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n",
		"GET /api/images/x HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer  t \t\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		end, ok := headEnd(head)
		if !ok || end == 0 {
			return
		}
		got, plain := parseRequest(head[:end])
		if !plain {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head[:end])))
		if err != nil {
			t.Fatalf("plain to the lane, refused by net/http: %v\n%q", err, head[:end])
		}
		if req.Method != "GET" || req.RequestURI != got.Path || req.URL.Path != got.Path || req.URL.RawQuery != "" ||
			req.ContentLength != 0 || len(req.TransferEncoding) != 0 || req.Close != got.close || req.ProtoMinor != 1 {
			t.Fatalf("the lane read %+v, net/http %s %q %q len=%d te=%v close=%v\n%q",
				got, req.Method, req.RequestURI, req.URL.Path, req.ContentLength, req.TransferEncoding, req.Close, head[:end])
		}
		lane := []string{got.Host, got.Accept, got.Authorization, got.RequestID}
		std := []string{req.Host, req.Header.Get("Accept"), req.Header.Get("Authorization"), req.Header.Get("X-Request-Id")}
		if !slices.Equal(lane, std) {
			t.Fatalf("Host, Accept, Authorization, X-Request-Id: lane %q, net/http %q\n%q", lane, std, head[:end])
		}
	})
}
