package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/webp"

	"github.com/imaged/imaged"
)

// Format is an image format the service accepts.
type Format struct {
	MediaType    string
	Ext          string
	decodeConfig func(io.Reader) (image.Config, error)
}

// Formats are the accepted formats, keyed by the media type that
// http.DetectContentType sniffs from the first bytes.
var Formats = map[string]Format{
	"image/png":  {"image/png", "png", png.DecodeConfig},
	"image/jpeg": {"image/jpeg", "jpg", jpeg.DecodeConfig},
	"image/gif":  {"image/gif", "gif", gif.DecodeConfig},
	"image/webp": {"image/webp", "webp", webp.DecodeConfig},
}

// ExtMediaType maps a stored blob's extension back to its media type.
func ExtMediaType(ext string) string {
	for _, f := range Formats {
		if f.Ext == ext {
			return f.MediaType
		}
	}
	return ""
}

// maxHeaderBytes bounds what Inspect may read to find an image's header.
// Real headers (with EXIF and ICC segments before a JPEG's frame) fit easily.
const maxHeaderBytes = 1 << 20

// tailSize is how many final bytes complete() looks at.
const tailSize = 16

// tailWriter keeps the last tailSize bytes written to it.
type tailWriter struct {
	buf [tailSize]byte
	n   int64
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if len(p) >= tailSize {
		copy(t.buf[:], p[len(p)-tailSize:])
	} else {
		copy(t.buf[:], t.buf[len(p):])
		copy(t.buf[tailSize-len(p):], p)
	}
	t.n += int64(len(p))
	return len(p), nil
}

func (t *tailWriter) bytes() []byte {
	if t.n < tailSize {
		return t.buf[tailSize-t.n:]
	}
	return t.buf[:]
}

// complete checks the end of a stored image against its format, so that a
// file cut short (a header with no pixels) is refused: a PNG ends with its
// IEND chunk, a GIF with its trailer, a JPEG with an end-of-image marker
// (near the end: some writers pad), and a WebP's RIFF size covers the file.
func (in Inspection) complete(head, tail []byte, size int64) bool {
	switch in.MediaType {
	case "image/png":
		return bytes.HasSuffix(tail, []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82})
	case "image/gif":
		return bytes.HasSuffix(tail, []byte{0x3b})
	case "image/jpeg":
		return bytes.Contains(tail, []byte{0xff, 0xd9})
	case "image/webp":
		if len(head) < 8 {
			return false
		}
		riff := int64(binary.LittleEndian.Uint32(head[4:8]))
		return riff+8 == size || riff+8 == size-1 // odd sizes may carry a pad byte
	}
	return false
}

// Inspection is what the header of an image says.
type Inspection struct {
	Format
	Width, Height int
}

var errHeaderTooLong = errors.New("image header exceeds the inspection limit")

// Inspect reads just enough of r to decide what the bytes are: the format is
// sniffed from the magic bytes (never taken from a client's claim) and the
// header is decoded for the dimensions, without decoding pixels. It returns
// the bytes it consumed, which the caller must store ahead of the rest of r.
//
// Anything that is not a PNG, JPEG, GIF or WebP with a sound header is
// EUnsupportedMedia; an image of more than maxPixels pixels is ETooLarge
// (a decompression bomb has a small file and a huge canvas).
func Inspect(r io.Reader, maxPixels int64) (Inspection, []byte, error) {
	rec := &recorder{r: r, limit: maxHeaderBytes}
	var head [512]byte
	n, err := io.ReadFull(rec, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		var ierr *readError
		if errors.As(err, &ierr) {
			err = ierr.err
		}
		return Inspection{}, nil, err
	}
	f, ok := Formats[http.DetectContentType(head[:n])]
	if !ok {
		return Inspection{}, nil, unsupported()
	}
	cfg, err := f.decodeConfig(io.MultiReader(bytes.NewReader(head[:n]), rec))
	if err != nil {
		var ierr *readError
		if errors.As(err, &ierr) {
			return Inspection{}, nil, ierr.err
		}
		// A malformed header, or one longer than maxHeaderBytes.
		return Inspection{}, nil, unsupported()
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Inspection{}, nil, unsupported()
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return Inspection{}, nil, imaged.Errorf(imaged.ETooLarge,
			"Image dimensions %dx%d exceed the limit of %d pixels", cfg.Width, cfg.Height, maxPixels)
	}
	return Inspection{Format: f, Width: cfg.Width, Height: cfg.Height}, rec.buf.Bytes(), nil
}

func unsupported() *imaged.Error {
	return imaged.Errorf(imaged.EUnsupportedMedia, "The file is not a PNG, JPEG, GIF or WebP image")
}

// recorder keeps a copy of everything read through it, up to limit bytes.
type recorder struct {
	r     io.Reader
	buf   bytes.Buffer
	limit int
}

// readError marks a failure of the underlying reader (as opposed to a
// malformed header), so that size-limit and I/O errors keep their meaning.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

func (rc *recorder) Read(p []byte) (int, error) {
	if rc.buf.Len() >= rc.limit {
		return 0, errHeaderTooLong
	}
	if room := rc.limit - rc.buf.Len(); len(p) > room {
		p = p[:room]
	}
	n, err := rc.r.Read(p)
	rc.buf.Write(p[:n])
	if err != nil && err != io.EOF {
		return n, &readError{err}
	}
	return n, err
}
