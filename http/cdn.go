package http

import (
	"errors"
	"io"
	"net/http"

	"github.com/imaged/imaged"
)

// immutable is the Cache-Control of image bytes: a key never changes content
// (a new upload gets a new key), so caches may keep it for a year.
const immutable = "public, max-age=31536000, immutable"

// prefetchSize is how much of a blob is read before the answer's headers
// are written, so that a store failing at that point (an object store that
// answered the open but not the read) still gets a 503 instead of a 200 cut
// short. Most images fit whole.
const prefetchSize = 256 << 10

// handleBlob serves an image's bytes like a CDN origin: no token (the key is
// unguessable), a strong ETag from the content hash, Range, HEAD and
// conditional requests. Only keys of existing images answer.
func (s *Server) handleBlob(w http.ResponseWriter, r *http.Request) {
	img, blob, err := s.images.OpenBlob(r.Context(), r.PathValue("key"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer blob.Close()
	if !checkRange(w, r, blob.Size(), `"`+img.SHA256+`"`) {
		return
	}
	content := io.ReadSeeker(blob)
	if r.Method == http.MethodGet && r.Header.Get("Range") == "" && r.Header.Get("If-None-Match") == "" {
		p, err := prefetch(blob, min(blob.Size(), prefetchSize))
		if err != nil {
			writeError(w, r, err)
			return
		}
		content = p
	}
	h := w.Header()
	h.Set("Content-Type", img.MediaType)
	h.Set("ETag", `"`+img.SHA256+`"`)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", img.CreatedAt, content)
}

// prefetched is a blob whose first bytes were read ahead.
type prefetched struct {
	head    []byte
	rest    imaged.Blob
	restPos int64 // where rest is positioned
	pos     int64
}

func prefetch(b imaged.Blob, n int64) (*prefetched, error) {
	head := make([]byte, n)
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
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = p.pos + offset
	case io.SeekEnd:
		abs = p.rest.Size() + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	p.pos = abs
	return abs, nil
}
