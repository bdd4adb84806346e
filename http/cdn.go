package http

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// immutable is the Cache-Control of image bytes: a key never changes content
// (a new upload gets a new key), so caches may keep it for a year.
const immutable = "public, max-age=31536000, immutable"

// prefetchSize is how much of a blob from a remote store is read before the
// answer's headers are written, so that a store failing at that point (an
// object store that answered the open but not the read) still gets a 503
// instead of a 200 cut short. Most images fit whole. Local files are not
// read ahead: the kernel sends them (sendfile).
const prefetchSize = 256 << 10

// prefetchBuffers recycles the read-ahead buffers.
var prefetchBuffers = sync.Pool{New: func() any { b := make([]byte, prefetchSize); return &b }}

// handleBlob serves an image's bytes like a CDN origin: no token (the key is
// unguessable), a strong ETag from the content hash, Range, HEAD and
// conditional requests. Only keys of existing images answer.
func (s *Server) handleBlob(w http.ResponseWriter, r *http.Request) {
	if err := laneLookupError(r, ""); err != nil {
		writeError(w, r, err) // the lane looked it up already
		return
	}
	img, blob, err := s.images.OpenBlob(r.Context(), r.PathValue("key"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer blob.Close()
	d := originalDelivery(img)
	if !checkRange(w, r, blob.Size(), d.etag) {
		return
	}
	serveBlob(w, r, blob, d)
}

// originalDelivery is what the answer of an image's own bytes says of them.
func originalDelivery(img *imaged.Image) delivery {
	return delivery{mediaType: img.MediaType, etag: `"` + img.SHA256 + `"`, modTime: img.CreatedAt, cacheControl: immutable}
}

// Header values the byte answers share (net/http only reads them; a
// handler that adds to one appends to a slice of capacity 1, which copies).
var (
	nosniff      = []string{"nosniff"}
	sandboxed    = []string{"default-src 'none'; sandbox"}
	acceptRanges = []string{"bytes"}
	sharedValues = func() map[string][]string {
		m := map[string][]string{}
		for _, v := range []string{immutable, "image/png", "image/jpeg", "image/webp", "image/avif", "image/gif", "Accept"} {
			m[v] = []string{v}
		}
		return m
	}()
)

// headerValue is v as a header value, shared when it is a common one.
func headerValue(v string) []string {
	if s, ok := sharedValues[v]; ok {
		return s
	}
	return []string{v}
}

// delivery is what the answer says about the bytes it serves.
type delivery struct {
	mediaType, etag string
	modTime         time.Time
	cacheControl    string
	vary            string // "" for none
}

// serveBlob answers b with d's headers (and any the caller set before),
// Range, HEAD and conditional requests. A local file goes out with
// sendfile, a plain GET of one without any of ServeContent's work (no seeks
// to learn the size, no read of its first bytes to sniff a type); a remote
// blob is read ahead first (see prefetchSize).
func serveBlob(w http.ResponseWriter, r *http.Request, b imaged.Blob, d delivery) {
	// Canonical keys set directly, constant values shared: this runs for
	// every byte served.
	h := w.Header()
	h["Content-Type"] = headerValue(d.mediaType)
	h["Etag"] = []string{d.etag}
	h["Cache-Control"] = headerValue(d.cacheControl)
	h["X-Content-Type-Options"] = nosniff
	h["Content-Security-Policy"] = sandboxed
	if d.vary != "" {
		h["Vary"] = headerValue(d.vary)
	}
	plain := r.Method == http.MethodGet && !conditional(r.Header)
	var content io.ReadSeeker = b
	if lb, ok := b.(imaged.LocalBlob); ok {
		// The file may be shared: read at explicit offsets (file_at.go).
		sr := io.NewSectionReader(lb.LocalFile(), 0, b.Size())
		if plain {
			sendFile(w, r, sr, d.modTime)
			return
		}
		content = sr
	} else if plain {
		buf := prefetchBuffers.Get().(*[]byte)
		defer prefetchBuffers.Put(buf)
		p, err := prefetch(b, (*buf)[:min(b.Size(), prefetchSize)])
		if err != nil {
			writeError(w, r, err)
			return
		}
		content = p
	}
	http.ServeContent(w, r, "", d.modTime, content)
}

// conditional reports whether a request asks for a part or sets a
// precondition, which http.ServeContent then handles.
func conditional(h http.Header) bool {
	for _, k := range [...]string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// sendFile answers the whole of f as http.ServeContent would for a plain
// GET: headers, then the file with sendfile, corked so that the headers
// leave in the body's first segment.
func sendFile(w http.ResponseWriter, r *http.Request, f *io.SectionReader, modTime time.Time) {
	size := f.Size()
	h := w.Header()
	if !modTime.IsZero() {
		h["Last-Modified"] = []string{modTime.UTC().Format(http.TimeFormat)}
	}
	h["Accept-Ranges"] = acceptRanges
	h["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	defer corked(r.Context())()
	w.WriteHeader(http.StatusOK)
	// Writing the headers out now (held back by the cork) lets the copy
	// below go to the kernel whole, without net/http reading its first
	// bytes to sniff a type.
	_ = http.NewResponseController(w).Flush()
	_, _ = io.CopyN(w, f, size)
}

// prefetched is a blob whose first bytes were read ahead.
type prefetched struct {
	head    []byte
	rest    imaged.Blob
	restPos int64 // where rest is positioned
	pos     int64
}

// prefetch reads len(head) bytes of b into head.
func prefetch(b imaged.Blob, head []byte) (*prefetched, error) {
	n := int64(len(head))
	if _, err := io.ReadFull(b, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &imaged.Error{Code: imaged.EInternal, Message: "Internal server error", Err: err}
		}
		return nil, err
	}
	return &prefetched{head: head, rest: b, restPos: n}, nil
}

func (p *prefetched) Read(buf []byte) (int, error) {
	if p.pos < int64(len(p.head)) {
		n := copy(buf, p.head[p.pos:])
		p.pos += int64(n)
		return n, nil
	}
	if p.restPos != p.pos {
		if _, err := p.rest.Seek(p.pos, io.SeekStart); err != nil {
			return 0, err
		}
		p.restPos = p.pos
	}
	n, err := p.rest.Read(buf)
	p.pos += int64(n)
	p.restPos = p.pos
	return n, err
}

func (p *prefetched) Seek(offset int64, whence int) (int64, error) {
	abs, err := seekPosition(p.pos, p.rest.Size(), offset, whence)
	if err != nil {
		return 0, err
	}
	p.pos = abs
	return abs, nil
}

// seekPosition is where a Seek(offset, whence) from pos goes in a reader
// of size bytes.
func seekPosition(pos, size, offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += pos
	case io.SeekEnd:
		offset += size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	return offset, nil
}
