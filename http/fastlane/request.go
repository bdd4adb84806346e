package fastlane

import (
	"bytes"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// plainRequest is a parsed request head.
type plainRequest struct {
	Request
	close bool // Connection: close
}

// headEnd is the length of the request head at the start of b (through its
// blank line), or 0 when b does not hold all of it yet; ok is false when b
// has a line ending in a bare LF, which net/http reads and the lane does
// not.
func headEnd(b []byte) (end int, ok bool) {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return 0, false
		}
		if i >= 3 && b[i-3] == '\r' && b[i-2] == '\n' {
			return i + 1, true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return 0, true
}

// parseRequest reads a request head and reports whether it is plain: a
// request line "GET <path> HTTP/1.1" whose path is made of segments of
// unreserved and sub-delimiter characters (no query, no percent-escape, no
// dot segment, nothing net/http would clean or redirect), and header lines
// that are well formed and all known here, with exactly one Host and at
// most one each of Accept, Authorization and X-Request-Id. Anything
// else is for net/http, which answers it as always (400, 404, ranges...).
func parseRequest(head []byte) (plainRequest, bool) {
	var r plainRequest
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	path, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return r, false
	}
	path, ok = bytes.CutSuffix(path, []byte(" HTTP/1.1"))
	if !ok || !plainPath(path) {
		return r, false
	}
	r.Path = string(path)
	hosts := 0
	var seen uint8 // the headers read once
	for {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !token(name) {
			return r, false
		}
		value = bytes.Trim(value, " \t")
		if !fieldValue(value) {
			return r, false
		}
		var lower [32]byte
		h := lowerName(&lower, name)
		switch string(h) {
		case "host":
			if !hostValue(value) {
				return r, false // net/http answers 400
			}
			r.Host = string(value)
			hosts++
		// Of a header given several times net/http's Header.Get is the
		// first: such a request is net/http's.
		case "accept":
			if !once(&seen, seenAccept) {
				return r, false
			}
			r.Accept = string(value)
		case "authorization":
			if !once(&seen, seenAuthorization) {
				return r, false
			}
			r.Authorization = string(value)
		case "x-request-id":
			if !once(&seen, seenRequestID) {
				return r, false
			}
			r.RequestID = string(value)
		case "connection":
			switch {
			case bytes.EqualFold(value, []byte("close")):
				r.close = true
			case bytes.EqualFold(value, []byte("keep-alive")):
			default:
				return r, false
			}
		default:
			if !ignored[string(h)] {
				return r, false
			}
		}
	}
	return r, hosts == 1
}

// The headers a request may give once, as bits of parseRequest's seen.
const (
	seenAccept uint8 = 1 << iota
	seenAuthorization
	seenRequestID
)

// once sets bit in seen and reports whether it was not set before.
func once(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// ignored are the request headers that do not change a plain GET's answer
// (here or in net/http). Any other header sends the request to net/http:
// Range, If-*, Origin (CORS), Content-Length, Transfer-Encoding, Expect,
// Upgrade, traceparent...
var ignored = map[string]bool{
	"user-agent": true, "accept-encoding": true, "accept-language": true,
	"cache-control": true, "pragma": true, "referer": true, "dnt": true,
	"via": true, "forwarded": true, "x-forwarded-for": true, "x-forwarded-proto": true,
	"x-forwarded-host": true, "x-real-ip": true, "cdn-loop": true, "true-client-ip": true,
	"sec-fetch-site": true, "sec-fetch-mode": true, "sec-fetch-dest": true, "sec-fetch-user": true,
	"sec-ch-ua": true, "sec-ch-ua-mobile": true, "sec-ch-ua-platform": true,
	"upgrade-insecure-requests": true, "priority": true, "cookie": true,
}

// lowerName is name in lower case, in buf; nil when it is longer than any
// name the lane knows.
func lowerName(buf *[32]byte, name []byte) []byte {
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(name)]
}

// plainPath reports whether p is a path net/http takes as it is: "/" then
// segments of unreserved and sub-delimiter characters (and ':' '@'), none
// empty, "." or "..".
func plainPath(p []byte) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	for rest := p[1:]; ; {
		seg, after, more := bytes.Cut(rest, []byte("/"))
		if len(seg) == 0 || string(seg) == "." || string(seg) == ".." || !allIn(seg, &pathChar) {
			return false
		}
		if !more {
			return true
		}
		rest = after
	}
}

// pathChar holds the characters of plainPath's segments: unreserved and
// sub-delimiters, ':' and '@'.
var pathChar = asciiSet("-._~!$&'()*+,;=:@")

// hostValue reports whether b is made of the characters of a host and
// port (a reg-name, an IPv4 or a bracketed IPv6 address).
func hostValue(b []byte) bool { return allIn(b, &hostChar) }

var hostChar = asciiSet("-._~!$&'()*+,;=:@[]")

// token reports whether b is an RFC 9110 token (a header name).
func token(b []byte) bool { return len(b) > 0 && allIn(b, &tokenChar) }

// tokenChar holds the characters of an RFC 9110 token.
var tokenChar = asciiSet("!#$%&'*+-.^_`|~")

// asciiSet is the set of ASCII letters and digits and of the bytes of
// extra.
func asciiSet(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for i := range len(extra) {
		t[extra[i]] = true
	}
	return t
}

// allIn reports whether every byte of b is in set.
func allIn(b []byte, set *[256]bool) bool {
	for _, c := range b {
		if !set[c] {
			return false
		}
	}
	return true
}

// fieldValue reports whether b is a header value without control
// characters (tabs aside) or bytes beyond ASCII.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendHead appends a's status line and header to b.
func appendHead(b []byte, a *Answer, close bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	b = append(b, a.Header...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, a.length(), 10)
	b = append(b, "\r\nDate: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\n"...)
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// dateCache is the Date header's value for the current second.
type dateCache struct {
	sec  int64
	text []byte
}

var date atomic.Pointer[dateCache]

// httpDate is the current time as a Date header says it, formatted once a
// second.
func httpDate() []byte {
	now := time.Now()
	if d := date.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateCache{sec: now.Unix(), text: AppendHTTPDate(nil, now)}
	date.Store(d)
	return d.text
}

// AppendHTTPDate appends t as HTTP dates are written (http.TimeFormat, in
// UTC): what t.UTC().AppendFormat(b, http.TimeFormat) appends, without
// parsing the layout each time.
func AppendHTTPDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	yy, mm, dd := t.Date()
	hh, mi, ss := t.Clock()
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = append(b, days[t.Weekday()]...)
	b = append(b, ", "...)
	b = two(b, dd)
	b = append(b, ' ')
	b = append(b, months[mm-1]...)
	b = append(b, ' ')
	if yy < 0 || yy > 9999 {
		return t.AppendFormat(b[:len(b)-len("Mon, 02 Jan ")], http.TimeFormat)
	}
	b = two(b, yy/100)
	b = two(b, yy%100)
	b = append(b, ' ')
	b = two(b, hh)
	b = append(b, ':')
	b = two(b, mi)
	b = append(b, ':')
	b = two(b, ss)
	return append(b, " GMT"...)
}

var (
	days   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)
