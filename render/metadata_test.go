package render

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// withJPEGSegments inserts marker segments (each complete: FF xx length data)
// right after a JPEG's start-of-image marker.
func withJPEGSegments(j []byte, segs ...[]byte) []byte {
	out := append([]byte{}, j[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, j[2:]...)
}

func segment(marker byte, data []byte) []byte {
	s := []byte{0xff, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(data)+2))
	return append(s, data...)
}

// tiffOrientation is a big-endian TIFF block with one IFD0 entry: the
// orientation.
func tiffOrientation(o int) []byte {
	b := []byte("MM\x00*\x00\x00\x00\x08\x00\x01")
	e := make([]byte, 12)
	binary.BigEndian.PutUint16(e[0:], 0x0112)
	binary.BigEndian.PutUint16(e[2:], 3)
	binary.BigEndian.PutUint32(e[4:], 1)
	binary.BigEndian.PutUint16(e[8:], uint16(o))
	return append(append(b, e...), 0, 0, 0, 0)
}

// exifSegment is a JPEG APP1 EXIF segment saying orientation o.
func exifSegment(o int) []byte {
	return segment(0xe1, append([]byte("Exif\x00\x00"), tiffOrientation(o)...))
}

// iccSegments splits a profile into APP2 ICC_PROFILE segments of at most
// 1000 bytes, in reverse order (readers must sort them by sequence number).
func iccSegments(p []byte) [][]byte {
	var parts [][]byte
	for len(p) > 0 {
		n := min(1000, len(p))
		parts = append(parts, p[:n])
		p = p[n:]
	}
	var segs [][]byte
	for i := len(parts) - 1; i >= 0; i-- {
		d := append([]byte("ICC_PROFILE\x00"), byte(i+1), byte(len(parts)))
		segs = append(segs, segment(0xe2, append(d, parts[i]...)))
	}
	return segs
}

// iccProfile builds a matrix/TRC RGB display profile with the given D50
// primaries and the sRGB tone curve (a parametric curve of type 3), as
// Display P3 is made.
func iccProfile(r, g, b [3]float64) []byte {
	fixed := func(v float64) []byte {
		x := make([]byte, 4)
		binary.BigEndian.PutUint32(x, uint32(int32(v*65536+0.5*sign(v))))
		return x
	}
	xyz := func(v [3]float64) []byte {
		t := []byte("XYZ \x00\x00\x00\x00")
		for _, c := range v {
			t = append(t, fixed(c)...)
		}
		return t
	}
	curve := []byte("para\x00\x00\x00\x00\x00\x03\x00\x00")
	for _, v := range []float64{2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045} {
		curve = append(curve, fixed(v)...)
	}
	tags := []struct {
		sig  string
		data []byte
	}{
		{"rXYZ", xyz(r)}, {"gXYZ", xyz(g)}, {"bXYZ", xyz(b)},
		{"wtpt", xyz([3]float64{0.9642, 1, 0.8249})},
		{"rTRC", curve}, {"gTRC", curve}, {"bTRC", curve},
	}
	hdr := make([]byte, 128)
	copy(hdr[4:], "test")
	binary.BigEndian.PutUint32(hdr[8:], 0x04300000)
	copy(hdr[12:], "mntr")
	copy(hdr[16:], "RGB ")
	copy(hdr[20:], "XYZ ")
	copy(hdr[36:], "acsp")
	copy(hdr[68:], xyz([3]float64{0.9642, 1, 0.8249})[8:])
	table := make([]byte, 4+12*len(tags))
	binary.BigEndian.PutUint32(table, uint32(len(tags)))
	var data []byte
	off := 128 + len(table)
	for i, t := range tags {
		e := table[4+12*i:]
		copy(e, t.sig)
		binary.BigEndian.PutUint32(e[4:], uint32(off+len(data)))
		binary.BigEndian.PutUint32(e[8:], uint32(len(t.data)))
		data = append(data, t.data...)
		for len(data)%4 != 0 {
			data = append(data, 0)
		}
	}
	p := append(append(hdr, table...), data...)
	binary.BigEndian.PutUint32(p, uint32(len(p)))
	return p
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// displayP3Profile is Display P3 (Apple's primaries, adapted to D50).
func displayP3Profile() []byte {
	return iccProfile([3]float64{0.515121, 0.241196, -0.001053}, [3]float64{0.291977, 0.692245, 0.041885}, [3]float64{0.157104, 0.066574, 0.784073})
}

// srgbProfile is sRGB described the same way.
func srgbProfile() []byte {
	return iccProfile([3]float64{0.436066, 0.222488, 0.013916}, [3]float64{0.385147, 0.716873, 0.097076}, [3]float64{0.143066, 0.060608, 0.714096})
}

func TestReadMetadata(t *testing.T) {
	j := jpegBytes(t, photo(64, 48), 90)
	p3 := displayP3Profile()
	t.Run("jpeg_exif_and_icc_in_several_segments", func(t *testing.T) {
		o, icc := readMetadata("jpeg", withJPEGSegments(j, append([][]byte{exifSegment(6)}, iccSegments(p3)...)...))
		if o != 6 || !bytes.Equal(icc, p3) {
			t.Fatalf("orientation %d, icc %d bytes (want 6, %d bytes in order)", o, len(icc), len(p3))
		}
	})
	t.Run("jpeg_without_metadata", func(t *testing.T) {
		if o, icc := readMetadata("jpeg", j); o != 1 || icc != nil {
			t.Fatalf("orientation %d, icc %v", o, icc != nil)
		}
	})
	t.Run("orientation_out_of_range_is_ignored", func(t *testing.T) {
		if o, _ := readMetadata("jpeg", withJPEGSegments(j, exifSegment(9))); o != 1 {
			t.Fatalf("orientation %d", o)
		}
	})
	t.Run("png_exif_and_iccp", func(t *testing.T) {
		png := withPNGChunks(pngBytes(t, photo(8, 8)), pngChunk("eXIf", tiffOrientation(3)), iccpChunk(p3))
		if o, icc := readMetadata("png", png); o != 3 || !bytes.Equal(icc, p3) {
			t.Fatalf("orientation %d, icc %d bytes", o, len(icc))
		}
	})
	t.Run("webp_exif_and_iccp", func(t *testing.T) {
		w := webpWithChunks(t, riffChunk{"ICCP", p3}, riffChunk{"EXIF", tiffOrientation(8)})
		if o, icc := readMetadata("webp", w); o != 8 || !bytes.Equal(icc, p3) {
			t.Fatalf("orientation %d, icc %d bytes", o, len(icc))
		}
	})
	t.Run("truncated_segments_are_ignored", func(t *testing.T) {
		src := withJPEGSegments(j, exifSegment(6))
		for n := 0; n < 40; n++ {
			readMetadata("jpeg", src[:n]) // must not panic
		}
	})
}
