package container

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"io"
	"slices"
	"strings"
)

// Scrub returns the edits that remove private metadata from a file that
// Validate described, losslessly (the pixel data is not touched):
//   - EXIF (JPEG APP1, PNG eXIf, WebP EXIF): the GPS IFD, the maker note,
//     owner names, body and lens serial numbers, the image unique id and
//     the host computer are removed and the TIFF structure rebuilt without
//     the thumbnail; Orientation and the rest are kept.
//   - XMP (JPEG APP1 and its extension, PNG iTXt, WebP "XMP "): GPS and
//     location properties (exif:GPS*, photoshop:City/State/Country,
//     Iptc4xmpCore:Location/CountryCode/CreatorContactInfo,
//     Iptc4xmpExt:LocationCreated/LocationShown), serial numbers and owner
//     names (exifEX, aux) and face regions (mwg-rs) are removed; the rest,
//     Iptc4xmpExt:DigitalSourceType among it, is kept.
//   - IPTC-IIM (JPEG APP13): city, sub-location, province, country, content
//     location and contact datasets.
//   - PNG text chunks holding raw EXIF, XMP or IPTC profiles (ImageMagick's
//     "Raw profile type ...") are dropped.
//
// Metadata that cannot be parsed, or is over the size Validate keeps, is
// dropped whole (for WebP, with its VP8X flag). ICC profiles, comments and
// C2PA manifests are kept, and a file that carries a C2PA manifest is left
// as it is: any change would break the manifest's hash binding (see
// ScrubSigned for a caller that signs such a file again).
func Scrub(info *Info) []Edit {
	if HasC2PA(info) {
		return nil
	}
	return ScrubSigned(info)
}

// HasC2PA tells whether the file Validate described carries a C2PA
// manifest store.
func HasC2PA(info *Info) bool {
	for _, m := range info.Metadata {
		if m.Kind == "c2pa" {
			return true
		}
	}
	return false
}

// ScrubSigned is Scrub for a file whose C2PA manifest the caller signs
// again after the edits: the same edits, made also when the file carries a
// manifest (which they leave in place, its hard binding broken).
func ScrubSigned(info *Info) []Edit {
	var edits []Edit
	var clearFlags byte
	var extended []Metadata
	for _, m := range info.Metadata {
		drop := func() {
			edits = append(edits, Drop(m.Part))
			switch m.Kind {
			case "exif":
				clearFlags |= vp8xEXIF
			case "xmp":
				clearFlags |= vp8xXMP
			}
		}
		replace := func(payload []byte) {
			framed, err := Frame(info.Format, m.Part.Type, payload)
			if err != nil {
				drop()
				return
			}
			edits = append(edits, Replace(m.Part, framed))
		}
		switch m.Kind {
		case "exif", "xmp", "iptc":
			if info.Format == GIF {
				continue // GIF's XMP application extension is left alone
			}
			if m.Key == "extension" {
				extended = append(extended, m)
				continue
			}
			if m.Payload == nil {
				drop()
				continue
			}
			clean, changed, ok := scrubPayload(info.Format, m)
			switch {
			case !ok:
				drop()
			case changed:
				replace(clean)
			}
		case "text":
			if strings.HasPrefix(strings.ToLower(m.Key), "raw profile type ") {
				edits = append(edits, Drop(m.Part))
			}
		}
	}
	if len(extended) > 0 && !extendedXMPClean(extended) {
		for _, m := range extended {
			edits = append(edits, Drop(m.Part))
		}
	}
	if v := info.vp8x; v != nil && info.vp8xPayload[0]&clearFlags != 0 {
		p := bytes.Clone(info.vp8xPayload)
		p[0] &^= clearFlags
		framed, _ := Frame(WebP, "VP8X", p)
		edits = append(edits, Replace(v, framed))
	}
	return edits
}

const (
	jpegEXIFPrefix = "Exif\x00\x00"
	jpegXMPPrefix  = "http://ns.adobe.com/xap/1.0/\x00"
	jpegXMPExt     = "http://ns.adobe.com/xmp/extension/\x00"
	pngXMPKey      = "XML:com.adobe.xmp"
)

// scrubPayload cleans one metadata payload; ok is false when it cannot be
// parsed.
func scrubPayload(f Format, m Metadata) (clean []byte, changed, ok bool) {
	b := m.Payload
	var prefix []byte
	var err error
	switch m.Kind {
	case "exif":
		if bytes.HasPrefix(b, []byte(jpegEXIFPrefix)) {
			prefix, b = b[:len(jpegEXIFPrefix)], b[len(jpegEXIFPrefix):]
		}
		b, changed, err = scrubEXIF(b)
	case "iptc":
		b, changed, err = scrubPhotoshop(b)
	case "xmp":
		switch f {
		case JPEG:
			prefix, b = b[:len(jpegXMPPrefix)], b[len(jpegXMPPrefix):]
		case PNG:
			return scrubPNGXMP(m.Part.Type, b)
		}
		b, changed, err = scrubXMP(b)
	}
	if err != nil {
		return nil, false, false
	}
	return append(bytes.Clone(prefix), b...), changed, true
}

// scrubPNGXMP cleans the XMP of an iTXt chunk, which may be compressed; a
// changed packet is written back uncompressed.
func scrubPNGXMP(typ string, b []byte) ([]byte, bool, bool) {
	// keyword \0 compression-flag method language \0 translated \0 text
	if typ != "iTXt" || len(b) < len(pngXMPKey)+3 {
		return nil, false, false
	}
	rest := b[len(pngXMPKey)+1:]
	compressed := rest[0] == 1
	rest = rest[2:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return nil, false, false
	}
	j := bytes.IndexByte(rest[i+1:], 0)
	if j < 0 {
		return nil, false, false
	}
	text := rest[i+1+j+1:]
	if compressed {
		zr, err := zlib.NewReader(bytes.NewReader(text))
		if err != nil {
			return nil, false, false
		}
		text, err = io.ReadAll(io.LimitReader(zr, 4*MaxMetadata))
		if err != nil {
			return nil, false, false
		}
	}
	clean, changed, err := scrubXMP(text)
	if err != nil {
		return nil, false, false
	}
	if !changed {
		return b, false, true
	}
	out := append([]byte(pngXMPKey), 0, 0, 0)
	out = append(out, rest[:i+1+j+1]...)
	return append(out, clean...), true, true
}

// extendedXMPClean tells whether the extended XMP of a JPEG, put back
// together from its segments, holds no private property.
func extendedXMPClean(parts []Metadata) bool {
	type piece struct {
		off  uint32
		data []byte
	}
	var pieces []piece
	for _, m := range parts {
		b := m.Payload
		// signature, 32-byte GUID, full length, offset
		if len(b) < len(jpegXMPExt)+40 {
			return false
		}
		b = b[len(jpegXMPExt)+32:]
		off := uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
		pieces = append(pieces, piece{off, b[8:]})
	}
	slices.SortFunc(pieces, func(a, b piece) int { return cmp.Compare(a.off, b.off) })
	var whole []byte
	for _, p := range pieces {
		whole = append(whole, p.data...)
	}
	_, changed, err := scrubXMP(whole)
	return err == nil && !changed
}
