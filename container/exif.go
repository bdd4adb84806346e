package container

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// EXIF tags that locate a person or identify their device. The GPS IFD goes
// whole; the maker note goes too, since it holds serial numbers (and, for
// some makers, locations) in a private layout that cannot be moved safely.
var privateEXIFTags = map[uint16]string{
	0x8825: "GPSInfo",
	0x927c: "MakerNote",
	0xa430: "CameraOwnerName",
	0xa431: "BodySerialNumber",
	0xa435: "LensSerialNumber",
	0xa420: "ImageUniqueID",
	0xc62f: "CameraSerialNumber",
	0x013c: "HostComputer",
	0x9c9c: "XPComment",
	// Pointers into data this rewrite would not carry along.
	0x014a: "SubIFDs",
	0xc634: "DNGPrivateData",
}

// Sub-IFD pointers that are rebuilt rather than dropped.
const (
	tagExifIFD    = 0x8769
	tagInteropIFD = 0xa005
)

var errEXIF = errors.New("container: malformed EXIF")

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	value    []byte // the value bytes, whatever their size
	sub      *tiffIFD
	off      uint32 // where the value goes when it is over 4 bytes (layout)
}

type tiffIFD struct {
	entries []tiffEntry
	off     uint32
}

var tiffTypeSize = [14]uint32{0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4}

// scrubEXIF returns a TIFF (EXIF) structure without the private tags and
// without the thumbnail IFD (a thumbnail can show what a crop removed), and
// whether anything was removed. Orientation and every other tag of IFD0,
// the Exif IFD and the interoperability IFD are kept as they were.
func scrubEXIF(tiff []byte) ([]byte, bool, error) {
	if len(tiff) < 8 {
		return nil, false, errEXIF
	}
	var bo binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return nil, false, errEXIF
	}
	removed := false
	ifd0, next, err := parseIFD(tiff, bo, bo.Uint32(tiff[4:]), 0, &removed)
	if err != nil {
		return nil, false, err
	}
	if next != 0 {
		removed = true // the thumbnail IFD
	}
	if !removed {
		return tiff, false, nil
	}
	out := make([]byte, 8, len(tiff))
	copy(out, tiff[:4])
	end := layoutIFD(ifd0, 8)
	bo.PutUint32(out[4:], 8)
	out = append(out, make([]byte, end-8)...)
	writeIFD(out, bo, ifd0)
	return out, true, nil
}

func parseIFD(b []byte, bo binary.ByteOrder, off uint32, depth int, removed *bool) (*tiffIFD, uint32, error) {
	if depth > 2 || off < 8 || uint64(off)+2 > uint64(len(b)) {
		return nil, 0, errEXIF
	}
	n := uint32(bo.Uint16(b[off:]))
	if uint64(off)+2+12*uint64(n)+4 > uint64(len(b)) {
		return nil, 0, errEXIF
	}
	ifd := &tiffIFD{}
	for i := uint32(0); i < n; i++ {
		e := b[off+2+12*i:]
		t := tiffEntry{tag: bo.Uint16(e), typ: bo.Uint16(e[2:]), count: bo.Uint32(e[4:])}
		if _, private := privateEXIFTags[t.tag]; private {
			*removed = true
			continue
		}
		if t.typ == 0 || int(t.typ) >= len(tiffTypeSize) {
			return nil, 0, errEXIF
		}
		size := uint64(tiffTypeSize[t.typ]) * uint64(t.count)
		if size <= 4 {
			t.value = bytes.Clone(e[8 : 8+size])
		} else {
			vo := uint64(bo.Uint32(e[8:]))
			if vo+size > uint64(len(b)) {
				return nil, 0, errEXIF
			}
			t.value = bytes.Clone(b[vo : vo+size])
		}
		if (t.tag == tagExifIFD && depth == 0) || (t.tag == tagInteropIFD && depth == 1) {
			if len(t.value) != 4 {
				return nil, 0, errEXIF
			}
			sub, _, err := parseIFD(b, bo, bo.Uint32(t.value), depth+1, removed)
			if err != nil {
				return nil, 0, err
			}
			t.sub = sub
		}
		ifd.entries = append(ifd.entries, t)
	}
	return ifd, bo.Uint32(b[off+2+12*n:]), nil
}

// layoutIFD places ifd at off, its values after it and its sub-IFDs after
// those, word-aligned, and returns the end.
func layoutIFD(ifd *tiffIFD, off uint32) uint32 {
	ifd.off = off
	end := off + 2 + 12*uint32(len(ifd.entries)) + 4
	for i := range ifd.entries {
		if e := &ifd.entries[i]; len(e.value) > 4 {
			e.off = end
			end += uint32(len(e.value))
			end += end & 1
		}
	}
	for i := range ifd.entries {
		if e := &ifd.entries[i]; e.sub != nil {
			end = layoutIFD(e.sub, end)
		}
	}
	return end
}

func writeIFD(out []byte, bo binary.ByteOrder, ifd *tiffIFD) {
	bo.PutUint16(out[ifd.off:], uint16(len(ifd.entries)))
	for i, e := range ifd.entries {
		p := out[ifd.off+2+12*uint32(i):]
		bo.PutUint16(p, e.tag)
		bo.PutUint16(p[2:], e.typ)
		bo.PutUint32(p[4:], e.count)
		switch {
		case e.sub != nil:
			bo.PutUint32(p[8:], e.sub.off)
			writeIFD(out, bo, e.sub)
		case len(e.value) > 4:
			bo.PutUint32(p[8:], e.off)
			copy(out[e.off:], e.value)
		default:
			copy(p[8:12], e.value)
		}
	}
	// The next-IFD offset stays 0: no thumbnail IFD.
}
