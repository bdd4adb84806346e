// Package container knows the four image containers the service accepts (PNG
// chunks, JPEG marker segments and entropy-coded data, GIF blocks and
// sub-blocks, WebP RIFF chunks) as streams of parts. A Reader walks a file
// part by part with offsets, checking the framing as it goes (lengths, CRCs,
// order, padding, what may follow the end); Validate adds the checks of the
// data inside (the zlib stream of a PNG, the LZW data of each GIF frame, the
// scans of a JPEG, the bitstream headers of a WebP) so that a file parses
// whole, from its first byte to its last, as one image of its type; Rewrite
// streams a file while dropping, replacing and inserting parts. Memory does
// not grow with the image: pixel data is read through small reused buffers
// and never decoded into a canvas.
//
// The package knows formats, not policy: what counts as private metadata is
// decided in privacy.go, and what to embed by the callers of the embedding
// functions (embed*.go).
package container

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Format is one of the containers the package knows.
type Format uint8

// The formats.
const (
	PNG Format = 1 + iota
	JPEG
	GIF
	WebP
)

// String is the format's usual name.
func (f Format) String() string {
	switch f {
	case PNG:
		return "PNG"
	case JPEG:
		return "JPEG"
	case GIF:
		return "GIF"
	case WebP:
		return "WebP"
	}
	return "unknown"
}

// MediaType is the format's IANA media type.
func (f Format) MediaType() string {
	switch f {
	case PNG:
		return "image/png"
	case JPEG:
		return "image/jpeg"
	case GIF:
		return "image/gif"
	case WebP:
		return "image/webp"
	}
	return ""
}

// Ext is the usual file extension, without the dot.
func (f Format) Ext() string {
	switch f {
	case PNG:
		return "png"
	case JPEG:
		return "jpg"
	case GIF:
		return "gif"
	case WebP:
		return "webp"
	}
	return ""
}

// SniffLen is how many leading bytes Sniff needs to tell every format.
const SniffLen = 12

// Sniff tells the format from a file's first bytes (SniffLen of them are
// enough), or 0 if they start none of the four.
func Sniff(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, pngSignature):
		return PNG
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return JPEG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP
	}
	return 0
}

// Part is one unit of a container, as it lies in the stream.
//
// Types, by format:
//   - PNG: "signature", then each chunk by its type ("IHDR", "PLTE", "IDAT",
//     "eXIf", "iTXt", "caBX", ..., "IEND").
//   - JPEG: each marker by name ("SOI", "APP0".."APP15", "DQT", "DHT", "DRI",
//     "SOF0".."SOF15", "SOS", "COM", "EOI", ...) and "ECS" for the
//     entropy-coded data that follows each SOS, restart markers included.
//   - GIF: "header" (signature and logical screen descriptor), "palette" (a
//     global or local colour table), "extension" (any extension; Label tells
//     which), "image" (an image descriptor), "pixels" (the LZW data of the
//     image before it), "trailer".
//   - WebP: "RIFF" (the 12-byte file header), then each chunk by its FourCC
//     ("VP8X", "ICCP", "ANIM", "ANMF", "ALPH", "VP8 ", "VP8L", "EXIF", "XMP ",
//     "C2PA", ...).
type Part struct {
	Format Format
	Type   string
	// Offset is where the part's first byte lies in the stream.
	Offset int64
	// Header holds the framing bytes before the payload, as they are in the
	// stream: a PNG chunk's length and type, a JPEG marker and its length, a
	// WebP chunk's FourCC and size, a GIF extension's introducer and label or
	// a GIF image's LZW minimum code size.
	Header []byte
	// Size is the payload's length when the framing says it, -1 when only
	// its end tells (JPEG entropy-coded data, GIF sub-blocks).
	Size int64
	// Label is a GIF extension's label (0xf9 graphic control, 0xfe comment,
	// 0xff application, 0x01 plain text).
	Label byte

	trailer int64 // framing bytes after the payload (CRC, padding)
	end     int64 // set once the reader has moved past the part
}

// End is the offset just past the part, once the reader has moved past it;
// parts are contiguous, so it is the next part's Offset. It is -1 while the
// length is not known yet.
func (p *Part) End() int64 {
	if p.end > 0 {
		return p.end
	}
	if p.Size < 0 {
		return -1
	}
	return p.Offset + int64(len(p.Header)) + p.Size + p.trailer
}

// FormatError says why bytes are not a well-formed image of their format.
type FormatError struct {
	Format Format
	Offset int64  // where in the stream the problem lies
	Reason string // what is wrong, for a person
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: %s (at byte %d)", e.Format, e.Reason, e.Offset)
}

// ErrUnknownFormat is returned for bytes that start none of the formats.
var ErrUnknownFormat = errors.New("container: not a PNG, JPEG, GIF or WebP file")

// Reader walks a container part by part. Next moves to the next part and
// checks its framing; Read yields the current part's payload. Errors of the
// underlying reader are returned as they are; anything wrong with the bytes
// is a *FormatError.
type Reader struct {
	src    *sourceReader
	br     *bufio.Reader
	format Format
	off    int64 // stream offset of the next byte br yields
	cur    *Part
	left   int64 // payload bytes of cur not read yet; -1 when cur's payload ends by its content
	walker walker
	sum    io.Writer // sees the payload as it is read (a PNG chunk's CRC)
	done   bool
	err    error
}

// walker is a format's part of the Reader.
type walker interface {
	// next reads the framing of the next part, after the previous one was
	// wholly consumed; it returns io.EOF after the last part.
	next(r *Reader) (*Part, error)
	// read yields payload bytes of a part whose size the framing does not
	// give (left == -1).
	read(r *Reader, p []byte) (int, error)
	// finish consumes what follows a payload (a CRC, padding, a terminator)
	// and checks it.
	finish(r *Reader, p *Part) error
}

// NewReader returns a Reader of r. The format is sniffed from the first
// bytes at the first call to Next.
func NewReader(r io.Reader) *Reader {
	src := &sourceReader{r: r}
	return &Reader{src: src, br: bufio.NewReaderSize(src, 32<<10)}
}

// Format is the format of the stream, known after the first Next.
func (r *Reader) Format() Format { return r.format }

// Offset is the stream offset of the next byte to be read.
func (r *Reader) Offset() int64 { return r.off }

// Next skips what is left of the current part, checks its trailer, and
// returns the next part. It returns io.EOF after the last part, once it has
// made sure nothing follows the end of the image.
func (r *Reader) Next() (*Part, error) {
	if r.err != nil {
		return nil, r.err
	}
	p, err := r.next()
	if err != nil {
		r.err = err
	}
	return p, err
}

func (r *Reader) next() (*Part, error) {
	if r.walker == nil {
		head, err := r.br.Peek(SniffLen)
		if err != nil && len(head) == 0 {
			if r.src.err != nil {
				return nil, r.src.err
			}
			return nil, ErrUnknownFormat
		}
		r.format = Sniff(head)
		switch r.format {
		case PNG:
			r.walker = &pngWalker{}
		case JPEG:
			r.walker = &jpegWalker{}
		case GIF:
			r.walker = &gifWalker{}
		case WebP:
			r.walker = &webpWalker{}
		default:
			if r.src.err != nil {
				return nil, r.src.err
			}
			return nil, ErrUnknownFormat
		}
	}
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		if err := r.walker.finish(r, r.cur); err != nil {
			return nil, err
		}
		r.cur.end = r.off
		r.cur = nil
	}
	if r.done {
		return nil, io.EOF
	}
	r.sum = nil
	p, err := r.walker.next(r)
	if err == io.EOF {
		r.done = true
		// Nothing may follow the end of the image.
		if _, perr := r.br.Peek(1); perr == nil {
			return nil, r.errorf(r.off, "data after the end of the image")
		} else if r.src.err != nil {
			return nil, r.src.err
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	p.Format = r.format
	r.cur = p
	r.left = p.Size
	return p, nil
}

// Read reads the current part's payload.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur == nil {
		return 0, io.EOF
	}
	if r.left < 0 {
		return r.walker.read(r, p)
	}
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.br.Read(p)
	r.off += int64(n)
	r.left -= int64(n)
	if r.sum != nil {
		r.sum.Write(p[:n])
	}
	if err != nil {
		return n, r.readErr(err)
	}
	return n, nil
}

// Payload reads what is left of the current part's payload whole, if it is
// at most max bytes; a longer payload is ErrPayloadTooLong, and the part
// can still be skipped with Next.
func (r *Reader) Payload(max int) ([]byte, error) {
	if r.cur != nil && r.left > int64(max) {
		return nil, ErrPayloadTooLong
	}
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(max) {
		return nil, ErrPayloadTooLong
	}
	return b.Bytes(), nil
}

// ErrPayloadTooLong is Payload's answer for a payload over its bound.
var ErrPayloadTooLong = errors.New("container: payload longer than the bound")

// errorf returns a *FormatError at the given offset.
func (r *Reader) errorf(off int64, format string, args ...any) error {
	return &FormatError{Format: r.format, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// readErr turns an error of br into the source's error or, for an early
// end, a FormatError.
func (r *Reader) readErr(err error) error {
	if r.src.err != nil {
		return r.src.err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return r.errorf(r.off, "the file ends before the image does")
	}
	return err
}

// full reads exactly len(b) bytes of framing.
func (r *Reader) full(b []byte) error {
	n, err := io.ReadFull(r.br, b)
	r.off += int64(n)
	if err != nil {
		return r.readErr(err)
	}
	return nil
}

// byte1 reads one byte of framing.
func (r *Reader) byte1() (byte, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		return 0, r.readErr(err)
	}
	r.off++
	return c, nil
}

// sourceReader remembers the underlying reader's first real error, so that
// it is told apart from the end of the stream.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
