//go:build (linux || darwin || freebsd) && !nodynamic

package render

import (
	"fmt"
	"image"
	"runtime"

	"github.com/ebitengine/purego"
)

// turboJPEG is the JPEG fast path: the system's libturbojpeg, loaded at run
// time when present (Debian: libturbojpeg0), decodes straight into YCbCr
// planes and scales by 1/2, 1/4 or 1/8 inside the inverse DCT, which is
// most of libvips' lead on large JPEG sources. Without the library the
// standard decoder runs; build with -tags nodynamic to leave it out.
type turboJPEG struct {
	initDecompress  func() uintptr
	destroy         func(uintptr) int32
	decompressHdr3  func(h uintptr, buf *byte, size uint64, w, ht, subsamp, cs *int32) int32
	decompressToYUV func(h uintptr, buf *byte, size uint64, dst *byte, w, pad, ht, flags int32) int32
}

var turbo = loadTurbo()

// TurboJPEG constants (turbojpeg.h).
const (
	tjFlagStopOnWarning = 8192
	tjCSYCbCr           = 1
	tjCSGray            = 2
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
			purego.RegisterLibFunc(&t.decompressToYUV, h, "tjDecompressToYUV2")
			return true
		}()
		if ok {
			return t
		}
	}
	return nil
}

// decode decodes b at 1/k of its size (k = 1, 2, 4 or 8) into YCbCr or Gray.
// CMYK, YCCK and RGB-coded JPEGs, unusual subsamplings and any warning
// (a truncated file) are refused, for the standard decoder to judge.
func (t *turboJPEG) decode(b []byte, k int) (image.Image, error) {
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
	sw, sh := ceilDiv(int(w), k), ceilDiv(int(ht), k)
	if cs == tjCSGray {
		ss = tjSampGray
	} else if cs != tjCSYCbCr {
		return nil, fmt.Errorf("turbojpeg: colour space %d", cs)
	}
	layout, ok := yuvLayouts[ss]
	if !ok {
		return nil, fmt.Errorf("turbojpeg: subsampling %d", ss)
	}
	// tjDecompressToYUV2 (pad 1) writes the planes one after the other, the
	// luma plane padded to whole chroma blocks.
	yw, yh := roundUp(sw, layout.bw), roundUp(sh, layout.bh)
	cw, ch := yw/layout.bw, yh/layout.bh
	if cs == tjCSGray {
		cw, ch = 0, 0
	}
	buf := make([]byte, yw*yh+2*cw*ch)
	if t.decompressToYUV(h, &b[0], uint64(len(b)), &buf[0], int32(sw), 1, int32(sh), tjFlagStopOnWarning) != 0 {
		return nil, fmt.Errorf("turbojpeg: decode failed")
	}
	r := image.Rect(0, 0, sw, sh)
	if cs == tjCSGray {
		return &image.Gray{Pix: buf, Stride: yw, Rect: r}, nil
	}
	return &image.YCbCr{
		Y: buf[:yw*yh], Cb: buf[yw*yh : yw*yh+cw*ch], Cr: buf[yw*yh+cw*ch:],
		YStride: yw, CStride: cw, SubsampleRatio: layout.ratio, Rect: r,
	}, nil
}

// yuvLayout is a TurboJPEG subsampling: Go's ratio and the chroma block
// (tjMCUWidth/8 x tjMCUHeight/8 luma pixels per chroma sample).
type yuvLayout struct {
	ratio  image.YCbCrSubsampleRatio
	bw, bh int
}

const tjSampGray = 3

var yuvLayouts = map[int32]yuvLayout{
	0:          {image.YCbCrSubsampleRatio444, 1, 1},
	1:          {image.YCbCrSubsampleRatio422, 2, 1},
	2:          {image.YCbCrSubsampleRatio420, 2, 2},
	tjSampGray: {0, 1, 1},
	4:          {image.YCbCrSubsampleRatio440, 1, 2},
	5:          {image.YCbCrSubsampleRatio411, 4, 1},
}

func roundUp(n, m int) int { return ceilDiv(n, m) * m }
