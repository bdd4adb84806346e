package render

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"encoding/binary"
	"io"
	"slices"
)

// maxICCSize bounds an embedded colour profile (real ones are a few KiB;
// the largest LUT profiles about 1 MiB).
const maxICCSize = 4 << 20

// readMetadata finds, in the container's header, the EXIF orientation (1
// when absent or unreadable) and the embedded ICC profile (nil when none).
// It walks the container's parts without decoding pixels; a malformed part
// is ignored here (the decoder judges the file).
func readMetadata(format string, b []byte) (orientation int, icc []byte) {
	var exif []byte
	switch format {
	case "jpeg":
		exif, icc = jpegMetadata(b)
	case "png":
		exif, icc = pngMetadata(b)
	case "webp":
		exif, icc = webpMetadata(b)
	}
	return exifOrientation(exif), icc
}

// jpegMetadata walks the marker segments before the first scan.
func jpegMetadata(b []byte) (exif, icc []byte) {
	type iccChunk struct {
		seq  byte
		data []byte
	}
	var chunks []iccChunk
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			break
		}
		marker := b[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01 {
			i += 2
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			break
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			break
		}
		seg := b[i+4 : i+2+n]
		switch {
		case marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) && exif == nil:
			exif = seg[6:]
		case marker == 0xe2 && bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) && len(seg) > 14:
			chunks = append(chunks, iccChunk{seq: seg[12], data: seg[14:]})
		}
		i += 2 + n
	}
	if len(chunks) > 0 {
		slices.SortStableFunc(chunks, func(a, b iccChunk) int { return cmp.Compare(a.seq, b.seq) })
		for _, c := range chunks {
			if len(icc)+len(c.data) > maxICCSize {
				return exif, nil
			}
			icc = append(icc, c.data...)
		}
	}
	return exif, icc
}

// pngMetadata walks the chunks before the first IDAT.
func pngMetadata(b []byte) (exif, icc []byte) {
	for i := 8; i+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || n > len(b)-i-12 || typ == "IDAT" {
			break
		}
		data := b[i+8 : i+8+n]
		switch typ {
		case "eXIf":
			exif = data
		case "iCCP":
			// profile name, NUL, compression method (0: zlib), zlib stream
			if k := bytes.IndexByte(data, 0); k >= 0 && k+2 <= len(data) && data[k+1] == 0 {
				if zr, err := zlib.NewReader(bytes.NewReader(data[k+2:])); err == nil {
					p, err := io.ReadAll(io.LimitReader(zr, maxICCSize+1))
					if err == nil && len(p) <= maxICCSize {
						icc = p
					}
				}
			}
		}
		i += 12 + n
	}
	return exif, icc
}

// webpMetadata walks the RIFF chunks.
func webpMetadata(b []byte) (exif, icc []byte) {
	for _, c := range riffChunks(b) {
		switch c.fourCC {
		case "ICCP":
			icc = c.data
		case "EXIF":
			exif = bytes.TrimPrefix(c.data, []byte("Exif\x00\x00"))
		}
	}
	return exif, icc
}

// riffChunk is one chunk of a WebP file.
type riffChunk struct {
	fourCC string
	data   []byte
}

// riffChunks lists the top-level chunks of a WebP file, stopping at the
// first malformed one.
func riffChunks(b []byte) []riffChunk {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil
	}
	var out []riffChunk
	for i := 12; i+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n < 0 || n > len(b)-i-8 {
			break
		}
		out = append(out, riffChunk{string(b[i : i+4]), b[i+8 : i+8+n]})
		i += 8 + n + n&1
	}
	return out
}

// exifOrientation reads tag 0x0112 of IFD0 from a TIFF-structured EXIF
// block; 1 (as stored) when absent or out of range.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[ifd:]))
	for k := 0; k < n; k++ {
		e := ifd + 2 + 12*k
		if e+12 > len(t) {
			break
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 {
			if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}
