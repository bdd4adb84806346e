// Package container knows the image containers the service stores (PNG
// chunks, JPEG segments, WebP RIFF chunks) as sequences of parts, and can
// read, drop and insert parts without touching the pixels.
package container

import (
	"errors"
	"fmt"
)

// Media types the embedding functions understand.
const (
	PNG  = "image/png"
	JPEG = "image/jpeg"
	WebP = "image/webp"
)

// ErrUnsupported is returned for a media type that has no place for a mark.
var ErrUnsupported = errors.New("container: no embedding for this media type")

// Range is a run of bytes in a file: what a C2PA hard binding excludes.
type Range struct {
	Start, Length int
}

func malformed(format, what string) error {
	return fmt.Errorf("container: malformed %s: %s", format, what)
}

// EmbedXMP returns data with xmp (a complete XMP packet) as its only XMP
// packet, placed where the format specifies: a PNG iTXt chunk with keyword
// XML:com.adobe.xmp, a JPEG APP1 segment named http://ns.adobe.com/xap/1.0/,
// a WebP "XMP " chunk in a VP8X container with its XMP flag set (a simple
// VP8/VP8L file is turned into a VP8X one). An existing packet is replaced.
func EmbedXMP(data []byte, mediaType string, xmp []byte) ([]byte, error) {
	switch mediaType {
	case PNG:
		return pngEmbedXMP(data, xmp)
	case JPEG:
		return jpegEmbedXMP(data, xmp)
	case WebP:
		return webpEmbedXMP(data, xmp)
	}
	return nil, ErrUnsupported
}

// EmbedC2PA returns data with store (a C2PA manifest store, a JUMBF box) as
// its only manifest store, in a PNG caBX chunk, JPEG APP11 segments (split
// as ISO 19566-5 says when larger than one segment) or a WebP C2PA chunk,
// and the range of bytes the store's parts take in the result: the
// exclusion of the hard binding. Where the range starts depends only on
// data and its length only on len(store), so a caller may embed a
// placeholder of the final size first, hash around the range, then embed
// the signed store.
func EmbedC2PA(data []byte, mediaType string, store []byte) ([]byte, Range, error) {
	switch mediaType {
	case PNG:
		return pngEmbedC2PA(data, store)
	case JPEG:
		return jpegEmbedC2PA(data, store)
	case WebP:
		return webpEmbedC2PA(data, store)
	}
	return nil, Range{}, ErrUnsupported
}

// Marks are the provenance parts found in a file.
type Marks struct {
	XMP  []byte // the XMP packet, nil if none
	C2PA []byte // the C2PA manifest store (JUMBF), nil if none
}

// ReadMarks returns the XMP packet and the C2PA manifest store of data, if
// it has them. A media type without embedding has no marks.
func ReadMarks(data []byte, mediaType string) (Marks, error) {
	switch mediaType {
	case PNG:
		return pngReadMarks(data)
	case JPEG:
		return jpegReadMarks(data)
	case WebP:
		return webpReadMarks(data)
	}
	return Marks{}, nil
}

// RemoveC2PA returns data without its C2PA manifest store, if it has one.
func RemoveC2PA(data []byte, mediaType string) ([]byte, error) {
	switch mediaType {
	case PNG:
		return pngRemoveC2PA(data)
	case JPEG:
		return jpegRemoveC2PA(data)
	case WebP:
		return webpRemoveC2PA(data)
	}
	return nil, ErrUnsupported
}
