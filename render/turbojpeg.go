//go:build (linux || darwin || freebsd) && !nodynamic

package render

import (
	"fmt"
	"image"
	"runtime"

	"github.com/ebitengine/purego"
)

// turboJPEG is the JPEG fast path: the system's libturbojpeg, loaded at run
// time when present (Debian: libturbojpeg0), decodes with its SIMD code and
// scales by 1/2, 1/4 or 1/8 inside the inverse DCT, which is most of
// libvips' lead on large JPEG sources. It decodes to RGBA (grey to grey):
// libjpeg then scales each component's inverse DCT so that the chroma is
// reconstructed at the output's resolution, where planar YCbCr at 1/k would
// keep the chroma at half of it and blur colour edges. Without the library the
// standard decoder runs; build with -tags nodynamic to leave it out.
type turboJPEG struct {
	initDecompress func() uintptr
	destroy        func(uintptr) int32
	decompressHdr3 func(h uintptr, buf *byte, size uint64, w, ht, subsamp, cs *int32) int32
	decompress2    func(h uintptr, buf *byte, size uint64, dst *byte, w, pitch, ht, pixelFormat, flags int32) int32
}

var turbo = loadTurbo()

// TurboJPEG constants (turbojpeg.h).
const (
	tjFlagStopOnWarning = 8192
	tjCSYCbCr           = 1
	tjCSGray            = 2
	tjPFGray            = 6
	tjPFRGBA            = 7
)

func loadTurbo() *turboJPEG {
	names := []string{"libturbojpeg.so.0", "libturbojpeg.so"}
	if runtime.GOOS == "darwin" {
		names = []string{"libturbojpeg.0.dylib", "libturbojpeg.dylib"}
	}
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			continue
		}
		t := &turboJPEG{}
		ok := func() (ok bool) {
			defer func() {
				if recover() != nil {
					ok = false
				}
			}()
			purego.RegisterLibFunc(&t.initDecompress, h, "tjInitDecompress")
			purego.RegisterLibFunc(&t.destroy, h, "tjDestroy")
			purego.RegisterLibFunc(&t.decompressHdr3, h, "tjDecompressHeader3")
			purego.RegisterLibFunc(&t.decompress2, h, "tjDecompress2")
			return true
		}()
		if ok {
			return t
		}
	}
	return nil
}

// decode decodes b at eighths/8 of its size (1 to 8 eighths) into RGBA (opaque) or
// Gray. CMYK, YCCK and RGB-coded JPEGs and any warning (a truncated file)
// are refused, for the standard decoder to judge.
func (t *turboJPEG) decode(b []byte, eighths int) (image.Image, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("turbojpeg: empty")
	}
	h := t.initDecompress()
	if h == 0 {
		return nil, fmt.Errorf("turbojpeg: init failed")
	}
	defer t.destroy(h)
	var w, ht, ss, cs int32
	if t.decompressHdr3(h, &b[0], uint64(len(b)), &w, &ht, &ss, &cs) != 0 {
		return nil, fmt.Errorf("turbojpeg: bad header")
	}
	if cs != tjCSYCbCr && cs != tjCSGray {
		return nil, fmt.Errorf("turbojpeg: colour space %d", cs)
	}
	// TJSCALED: the scaled size rounds up, as libjpeg's output does.
	sw, sh := ceilDiv(int(w)*eighths, 8), ceilDiv(int(ht)*eighths, 8)
	r := image.Rect(0, 0, sw, sh)
	if cs == tjCSGray {
		m := image.NewGray(r)
		if t.decompress2(h, &b[0], uint64(len(b)), &m.Pix[0], int32(sw), int32(m.Stride), int32(sh), tjPFGray, tjFlagStopOnWarning) != 0 {
			return nil, fmt.Errorf("turbojpeg: decode failed")
		}
		return m, nil
	}
	m := image.NewRGBA(r)
	if t.decompress2(h, &b[0], uint64(len(b)), &m.Pix[0], int32(sw), int32(m.Stride), int32(sh), tjPFRGBA, tjFlagStopOnWarning) != 0 {
		return nil, fmt.Errorf("turbojpeg: decode failed")
	}
	return m, nil
}
