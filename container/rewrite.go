package container

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Edit changes a stream: the bytes [Offset, Offset+Length) are replaced by
// Data. Length 0 inserts Data at Offset; empty Data drops the range. Offsets
// are those of the source, as Part.Offset and Part.End give them.
type Edit struct {
	Offset, Length int64
	Data           []byte
}

// Drop is the edit that removes a part the reader has moved past.
func Drop(p *Part) Edit { return Edit{Offset: p.Offset, Length: p.End() - p.Offset} }

// Replace is the edit that puts data (a framed part) in the place of p.
func Replace(p *Part, data []byte) Edit {
	return Edit{Offset: p.Offset, Length: p.End() - p.Offset, Data: data}
}

// Insert is the edit that puts data (a framed part) at offset.
func Insert(offset int64, data []byte) Edit { return Edit{Offset: offset, Data: data} }

// Delta is how much longer the edits make a stream.
func Delta(edits []Edit) int64 {
	var d int64
	for _, e := range edits {
		d += int64(len(e.Data)) - e.Length
	}
	return d
}

// Rewrite streams src, a file of format f, to dst with the edits applied,
// and returns the number of bytes written. Edits may come in any order but
// must not overlap. A WebP's RIFF size is corrected by the edits' change in
// length, so edits of a WebP must leave its first 12 bytes alone; anything
// else in the file that depends on what was edited (a VP8X chunk's flags)
// is the caller's edit to make. Rewrite does not validate: walk the source
// with a Reader (or Validate it) to find the parts first.
func Rewrite(dst io.Writer, src io.Reader, f Format, edits []Edit) (int64, error) {
	edits = append([]Edit(nil), edits...)
	slices.SortStableFunc(edits, func(a, b Edit) int { return cmp.Compare(a.Offset, b.Offset) })
	var pos, written int64
	for i, e := range edits {
		if e.Offset < 0 || e.Length < 0 || (i > 0 && e.Offset < edits[i-1].Offset+edits[i-1].Length) {
			return written, errors.New("container: overlapping or negative edits")
		}
		if f == WebP && e.Offset < 12 {
			return written, errors.New("container: an edit of a WebP's RIFF header")
		}
	}
	if f == WebP {
		var h [12]byte
		if _, err := io.ReadFull(src, h[:]); err != nil {
			return 0, err
		}
		size := int64(binary.LittleEndian.Uint32(h[4:8])) + Delta(edits)
		if size < 4 || size > 1<<32-1 {
			return 0, fmt.Errorf("container: RIFF size %d after the edits", size)
		}
		binary.LittleEndian.PutUint32(h[4:8], uint32(size))
		n, err := dst.Write(h[:])
		written += int64(n)
		if err != nil {
			return written, err
		}
		pos = 12
	}
	for _, e := range edits {
		n, err := io.CopyN(dst, src, e.Offset-pos)
		written += n
		if err != nil {
			return written, err
		}
		if _, err := io.CopyN(io.Discard, src, e.Length); err != nil {
			return written, err
		}
		pos = e.Offset + e.Length
		m, err := dst.Write(e.Data)
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
	n, err := io.Copy(dst, src)
	return written + n, err
}

// Frame returns a new part of format f: a PNG chunk (typ is its type; length
// and CRC added), a JPEG marker segment (typ "APP0".."APP15" or "COM";
// marker and length added; at most 65533 bytes of payload) or a WebP chunk
// (typ is its FourCC; size and padding added). GIF parts are not framed
// here.
func Frame(f Format, typ string, payload []byte) ([]byte, error) {
	switch f {
	case PNG:
		if len(typ) != 4 || int64(len(payload)) > maxPNGChunk {
			return nil, fmt.Errorf("container: PNG chunk %q of %d bytes", typ, len(payload))
		}
		b := make([]byte, 8, 12+len(payload))
		binary.BigEndian.PutUint32(b, uint32(len(payload)))
		copy(b[4:], typ)
		b = append(b, payload...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:])), nil
	case JPEG:
		var m byte
		switch {
		case typ == "COM":
			m = 0xfe
		case strings.HasPrefix(typ, "APP"):
			n, err := strconv.Atoi(typ[3:])
			if err != nil || n < 0 || n > 15 {
				return nil, fmt.Errorf("container: JPEG marker %q", typ)
			}
			m = 0xe0 + byte(n)
		default:
			return nil, fmt.Errorf("container: JPEG marker %q cannot be framed", typ)
		}
		if len(payload) > 65533 {
			return nil, fmt.Errorf("container: JPEG segment of %d bytes over 65533", len(payload))
		}
		b := []byte{0xff, m, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(payload)+2))
		return append(b, payload...), nil
	case WebP:
		if len(typ) != 4 || int64(len(payload)) > 1<<32-2 {
			return nil, fmt.Errorf("container: WebP chunk %q of %d bytes", typ, len(payload))
		}
		b := make([]byte, 8, 9+len(payload))
		copy(b, typ)
		binary.LittleEndian.PutUint32(b[4:], uint32(len(payload)))
		b = append(b, payload...)
		if len(payload)%2 == 1 {
			b = append(b, 0)
		}
		return b, nil
	}
	return nil, fmt.Errorf("container: cannot frame a %s part", f)
}
