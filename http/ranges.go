package http

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// maxRanges is the most ranges one request may ask for. A Range header with
// more is ignored and the whole representation is sent: thousands of tiny
// ranges would make a multipart answer many times larger than the file.
const maxRanges = 16

// byteRange is one satisfiable range: first and last byte, inclusive.
type byteRange struct{ first, last int64 }

// checkRange reads the request's Range header against a representation of
// size bytes before http.ServeContent sees it (RFC 9110 section 14):
//
//   - a header that is not a valid "bytes=" ranges-specifier, that names
//     more than maxRanges ranges, or whose ranges overlap or add up to more
//     than the file, is dropped: the whole file is sent (200);
//   - ranges that cannot be satisfied are left out; when none is left
//     ("bytes=-0", "bytes=size-"), the answer is a 416 envelope with
//     Content-Range: bytes */size, and checkRange returns false;
//   - otherwise the header is rewritten to the satisfiable ranges, in
//     canonical form, for ServeContent.
//
// An If-Range that does not match etag drops the header too (the whole new
// representation is what the client needs).
func checkRange(w http.ResponseWriter, r *http.Request, size int64, etag string) bool {
	spec := r.Header.Get("Range")
	if spec == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return true
	}
	if ir := r.Header.Get("If-Range"); ir != "" && ir != etag {
		r.Header.Del("Range")
		return true
	}
	ranges, valid := parseRanges(spec, size)
	if !valid {
		r.Header.Del("Range")
		return true
	}
	if len(ranges) == 0 {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		writeError(w, r, imaged.Errorf(imaged.ERangeNotSatisfiable, "No requested range lies within the %d bytes", size))
		return false
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, rg := range ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(rg.first, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(rg.last, 10))
	}
	r.Header.Set("Range", b.String())
	return true
}

// parseRanges returns the satisfiable ranges of spec for size bytes. valid
// is false when the header is to be ignored: not a bytes ranges-specifier,
// too many ranges, overlapping ranges, or more bytes asked than there are.
func parseRanges(spec string, size int64) (ranges []byteRange, valid bool) {
	unit, set, ok := strings.Cut(spec, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, false
	}
	parts := strings.Split(set, ",")
	if len(parts) > maxRanges {
		return nil, false
	}
	var total int64
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue // RFC 9110 allows empty list elements
		}
		first, last, ok := strings.Cut(p, "-")
		if !ok {
			return nil, false
		}
		var rg byteRange
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 || !digits(last) {
				return nil, false
			}
			if n == 0 || size == 0 {
				continue // unsatisfiable
			}
			rg = byteRange{max(0, size-n), size - 1}
		} else {
			f, err := strconv.ParseInt(first, 10, 64)
			if err != nil || !digits(first) {
				return nil, false
			}
			l := size - 1
			if last != "" {
				if l, err = strconv.ParseInt(last, 10, 64); err != nil || !digits(last) || l < f {
					return nil, false
				}
			}
			if f >= size {
				continue // unsatisfiable
			}
			rg = byteRange{f, min(l, size-1)}
		}
		for _, o := range ranges {
			if rg.first <= o.last && o.first <= rg.last {
				return nil, false // overlapping
			}
		}
		total += rg.last - rg.first + 1
		ranges = append(ranges, rg)
	}
	if len(parts) > 0 && total > size {
		return nil, false
	}
	return ranges, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
