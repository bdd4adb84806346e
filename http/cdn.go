package http

import (
	"net/http"
)

// immutable is the Cache-Control of image bytes: a key never changes content
// (a new upload gets a new key), so caches may keep it for a year.
const immutable = "public, max-age=31536000, immutable"

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
	h := w.Header()
	h.Set("Content-Type", img.MediaType)
	h.Set("ETag", `"`+img.SHA256+`"`)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", img.CreatedAt, blob)
}
