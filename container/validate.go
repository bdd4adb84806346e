package container

import (
	"errors"
	"io"
)

// Info is what Validate learnt of a well-formed image.
type Info struct {
	Format        Format
	Width, Height int
	// Frames is the number of images in the file: the frames of an
	// animated GIF or WebP, 1 otherwise.
	Frames int
	// Metadata lists the metadata parts in file order.
	Metadata []Metadata

	vp8x        *Part // a WebP's VP8X chunk, whose flags follow the metadata
	vp8xPayload []byte
}

// Metadata is one metadata part of a file.
type Metadata struct {
	Part *Part
	// Kind is what the part holds: "exif", "xmp", "iptc" (a Photoshop
	// resource block), "icc", "c2pa" (JUMBF), "text" (PNG tEXt, zTXt or
	// iTXt other than XMP), "comment" (JPEG COM, GIF comment).
	Kind string
	// Key is a PNG text chunk's keyword.
	Key string
	// Payload is the part's payload, or nil when it is over MaxMetadata
	// bytes or the file's metadata is over MaxMetadataTotal in all.
	Payload []byte
}

// Bounds on the metadata Validate keeps in memory.
const (
	MaxMetadata      = 1 << 20
	MaxMetadataTotal = 4 << 20
)

// Options tune Validate.
type Options struct {
	// Header, when set, is called once the format and the dimensions are
	// known, before any pixel data is read. An error it returns ends the
	// validation and is returned as it is: this is where a pixel limit
	// refuses a decompression bomb early.
	Header func(Info) error
}

// Validate reads r to its end and checks that it is one well-formed PNG,
// JPEG, GIF or WebP image from its first byte to its last: the framing of
// every part (see Reader), the header fields, and the data inside:
//   - PNG: the zlib stream of the IDAT chunks inflated to its end (checksum
//     included) with exactly the bytes the header's size, depth, colour
//     type and interlacing call for, and a valid filter type on every row;
//     a palette where the colour type needs one;
//   - GIF: every frame within the logical screen, its LZW data decoded to
//     its end with exactly one index per pixel, each within the palette;
//   - JPEG: the frame header, quantisation and Huffman tables, scan headers
//     consistent with them, and the entropy-coded data of each scan
//     Huffman-decoded to the exact number of blocks (restart markers in
//     order and in the right number);
//   - WebP: the RIFF chunks, the VP8X flags, each VP8 or VP8L bitstream
//     header (key frame, start code, size within its chunk) matching its
//     canvas or its animation frame, animation frames within the canvas.
//
// Pixel data is streamed through small reused buffers, so memory does not
// grow with the image's dimensions. A malformed file is a *FormatError; a
// file of no known format is ErrUnknownFormat; errors of r are returned as
// they are.
func Validate(r io.Reader, opt Options) (*Info, error) {
	rd := NewReader(r)
	v := &validation{r: rd, opt: opt}
	if err := v.run(); err != nil {
		return nil, err
	}
	return &v.info, nil
}

// validation is the state of one Validate.
type validation struct {
	r       *Reader
	opt     Options
	info    Info
	kept    int // metadata bytes kept
	pending *Part
	header  bool
}

// next returns the next part, or the one a sub-reader looked at ahead.
func (v *validation) next() (*Part, error) {
	if p := v.pending; p != nil {
		v.pending = nil
		return p, nil
	}
	return v.r.Next()
}

// dimensions records the image size and calls the Header hook once.
func (v *validation) dimensions(p *Part, w, h int) error {
	if v.header {
		return nil
	}
	if w <= 0 || h <= 0 {
		return v.r.errorf(p.Offset, "image of %dx%d pixels", w, h)
	}
	v.header = true
	v.info.Width, v.info.Height = w, h
	if v.opt.Header != nil {
		return v.opt.Header(v.info)
	}
	return nil
}

// metadata records p as a metadata part, keeping its payload if small.
func (v *validation) metadata(p *Part, kind, key string) error {
	m := Metadata{Part: p, Kind: kind, Key: key}
	if p.Size <= MaxMetadata && v.kept+int(p.Size) <= MaxMetadataTotal {
		b, err := v.r.Payload(MaxMetadata)
		if err != nil && !errors.Is(err, ErrPayloadTooLong) {
			return err
		}
		m.Payload = b
		v.kept += len(b)
	}
	v.info.Metadata = append(v.info.Metadata, m)
	return nil
}

func (v *validation) run() error {
	first, err := v.r.Next()
	if err != nil {
		return err
	}
	v.info.Format = v.r.Format()
	v.info.Frames = 1
	v.pending = first
	switch v.info.Format {
	case PNG:
		err = v.png()
	case JPEG:
		err = v.jpeg()
	case GIF:
		err = v.gif()
	case WebP:
		err = v.webp()
	}
	if err != nil {
		return err
	}
	// Every format's check returns after its last part; the reader then
	// makes sure that nothing follows.
	if _, err := v.next(); err != io.EOF {
		if err == nil {
			err = v.r.errorf(v.r.Offset(), "data after the end of the image")
		}
		return err
	}
	return nil
}
