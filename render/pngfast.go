//go:build (linux || darwin || freebsd) && !nodynamic

package render

import (
	"encoding/binary"
	"hash/crc32"
	"image"
	"runtime"
	"sync"

	"github.com/ebitengine/purego"
)

// deflate is the PNG fast path: the system's libdeflate, loaded at run time
// when present (Debian: libdeflate0), inflates a PNG's image data several
// times faster than compress/flate, which is most of a PNG source's decode
// time. The chunks, their CRCs and the row filters stay in Go. Only the
// common layouts take it (8-bit grey, RGB and RGBA, not interlaced, no
// palette or transparency key); anything else, and any file it finds
// wrong, goes to image/png, which decides.
type libDeflate struct {
	alloc      func() uintptr
	free       func(uintptr)
	decompress func(d uintptr, in *byte, inLen uint64, out *byte, outLen uint64, actual *uint64) int32
}

var deflate = loadDeflate()

func loadDeflate() *libDeflate {
	names := []string{"libdeflate.so.0", "libdeflate.so"}
	if runtime.GOOS == "darwin" {
		names = []string{"libdeflate.0.dylib", "libdeflate.dylib"}
	}
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			continue
		}
		d := &libDeflate{}
		ok := func() (ok bool) {
			defer func() {
				if recover() != nil {
					ok = false
				}
			}()
			purego.RegisterLibFunc(&d.alloc, h, "libdeflate_alloc_decompressor")
			purego.RegisterLibFunc(&d.free, h, "libdeflate_free_decompressor")
			purego.RegisterLibFunc(&d.decompress, h, "libdeflate_zlib_decompress")
			return true
		}()
		if ok {
			return d
		}
	}
	return nil
}

// inflated recycles the inflated image data between renders.
var inflated = sync.Pool{New: func() any { return new([]byte) }}

// decodePNGFast decodes b when the fast path is there and the file is of a
// layout it takes; ok is false otherwise (image/png decides).
func decodePNGFast(b []byte) (img image.Image, ok bool) {
	if deflate == nil || len(b) < 8+25 {
		return nil, false
	}
	// IHDR first: width, height, depth, colour type, compression, filter, interlace.
	ihdr, next, ok := idatChunk(b, 8)
	if !ok || ihdr.typ != "IHDR" || len(ihdr.data) != 13 {
		return nil, false
	}
	d := ihdr.data
	w, h := int(binary.BigEndian.Uint32(d[0:])), int(binary.BigEndian.Uint32(d[4:]))
	depth, ctype := d[8], d[9]
	if depth != 8 || d[10] != 0 || d[11] != 0 || d[12] != 0 || w <= 0 || h <= 0 {
		return nil, false
	}
	var bpp int
	switch ctype {
	case 0:
		bpp = 1
	case 2:
		bpp = 3
	case 6:
		bpp = 4
	default:
		return nil, false
	}
	// Gather the IDAT chunks (most encoders write many), checking every CRC.
	var idat []byte
	var single []byte
	n := 0
	for pos := next; ; {
		c, after, ok := idatChunk(b, pos)
		if !ok {
			return nil, false
		}
		switch c.typ {
		case "IDAT":
			if n == 0 {
				single = c.data
			} else {
				if n == 1 {
					idat = append(make([]byte, 0, len(b)-pos), single...)
				}
				idat = append(idat, c.data...)
			}
			n++
		case "tRNS", "PLTE":
			return nil, false
		case "IEND":
			if n == 1 {
				idat = single
			}
			if n == 0 {
				return nil, false
			}
			return unfilterPNG(idat, w, h, bpp)
		}
		pos = after
	}
}

// pngPart is one PNG chunk.
type pngPart struct {
	typ  string
	data []byte
}

// idatChunk reads the chunk at pos (any type); ok is false when it is cut short or its
// CRC is wrong.
func idatChunk(b []byte, pos int) (c pngPart, next int, ok bool) {
	if pos+12 > len(b) {
		return c, 0, false
	}
	n := int(binary.BigEndian.Uint32(b[pos:]))
	if n < 0 || n > len(b)-pos-12 {
		return c, 0, false
	}
	body := b[pos+4 : pos+8+n]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(b[pos+8+n:]) {
		return c, 0, false
	}
	return pngPart{typ: string(b[pos+4 : pos+8]), data: b[pos+8 : pos+8+n]}, pos + 12 + n, true
}

// unfilterPNG inflates z (the zlib stream of the image data) and undoes each
// row's filter into the image: Gray, RGBA (opaque, from RGB, as image/png
// gives) or NRGBA.
func unfilterPNG(z []byte, w, h, bpp int) (image.Image, bool) {
	stride := 1 + w*bpp
	size := h * stride
	bp := inflated.Get().(*[]byte)
	defer inflated.Put(bp)
	if cap(*bp) < size {
		*bp = make([]byte, size)
	}
	raw := (*bp)[:size]
	dec := deflate.alloc()
	if dec == 0 {
		return nil, false
	}
	var got uint64
	res := deflate.decompress(dec, &z[0], uint64(len(z)), &raw[0], uint64(size), &got)
	deflate.free(dec)
	if res != 0 || got != uint64(size) {
		return nil, false
	}
	r := image.Rect(0, 0, w, h)
	var pix []byte
	var out image.Image
	var ostride int
	switch bpp {
	case 1:
		m := image.NewGray(r)
		pix, ostride, out = m.Pix, m.Stride, m
	case 3:
		m := image.NewRGBA(r)
		pix, ostride, out = m.Pix, m.Stride, m
	default:
		m := image.NewNRGBA(r)
		pix, ostride, out = m.Pix, m.Stride, m
	}
	var prev []byte
	for y := 0; y < h; y++ {
		row := raw[y*stride+1 : (y+1)*stride]
		if !unfilterRow(raw[y*stride], row, prev, bpp) {
			return nil, false
		}
		prev = row
		dst := pix[y*ostride:]
		if bpp == 3 {
			for x, i := 0, 0; x < w; x, i = x+1, i+3 {
				p := dst[4*x : 4*x+4 : 4*x+4]
				p[0], p[1], p[2], p[3] = row[i], row[i+1], row[i+2], 255
			}
			continue
		}
		copy(dst[:len(row)], row)
	}
	return out, true
}

// unfilterRow undoes one of PNG's five row filters in place; prev is the
// previous row, unfiltered (nil for the first).
func unfilterRow(filter byte, row, prev []byte, bpp int) bool {
	switch filter {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(row); i++ {
			row[i] += row[i-bpp]
		}
	case 2: // Up
		if prev != nil {
			for i, p := range prev[:len(row)] {
				row[i] += p
			}
		}
	case 3: // Average
		if prev == nil {
			for i := bpp; i < len(row); i++ {
				row[i] += row[i-bpp] / 2
			}
			break
		}
		for i := 0; i < bpp; i++ {
			row[i] += prev[i] / 2
		}
		for i := bpp; i < len(row); i++ {
			row[i] += uint8((int(row[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		if prev == nil {
			for i := bpp; i < len(row); i++ { // Paeth of (a, 0, 0) is a
				row[i] += row[i-bpp]
			}
			break
		}
		for i := 0; i < bpp; i++ { // Paeth of (0, b, 0) is b
			row[i] += prev[i]
		}
		for i := bpp; i < len(row); i++ {
			a, b, c := int(row[i-bpp]), int(prev[i]), int(prev[i-bpp])
			pa, pb, pc := b-c, a-c, a+b-2*c
			if pa < 0 {
				pa = -pa
			}
			if pb < 0 {
				pb = -pb
			}
			if pc < 0 {
				pc = -pc
			}
			switch {
			case pa <= pb && pa <= pc:
				row[i] += uint8(a)
			case pb <= pc:
				row[i] += uint8(b)
			default:
				row[i] += uint8(c)
			}
		}
	default:
		return false
	}
	return true
}
