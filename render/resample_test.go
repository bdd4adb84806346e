package render

import (
	"image"
	"testing"
)

// The resampler alone on the JPEG case's heavy step: 768x768 RGBA (a 2048
// source decoded at 3/8) to 520x520, opaque and with alpha.
func BenchmarkResample(b *testing.B) {
	for _, opaque := range []bool{true, false} {
		name := "opaque"
		if !opaque {
			name = "alpha"
		}
		b.Run(name, func(b *testing.B) {
			src := image.NewRGBA(image.Rect(0, 0, 768, 768))
			for i := range src.Pix {
				src.Pix[i] = byte(i*7 + i/3)
			}
			for i := 3; i < len(src.Pix); i += 4 {
				src.Pix[i] = 255
				if !opaque && i%40 == 3 {
					src.Pix[i] = 128
					src.Pix[i-1], src.Pix[i-2], src.Pix[i-3] = 100, 50, 25
				}
			}
			dst := image.NewRGBA(image.Rect(0, 0, 520, 520))
			for b.Loop() {
				resampleInto(dst, dst.Rect, src, [4]float64{0, 0, 768, 768})
			}
		})
	}
}

// The resampler's fast loops (horizontalOpaque, horizontalRGBA, dot3, dot4,
// verticalTaps) give exactly the bytes of the plain loops they replaced,
// for grey and RGBA, opaque or not, at reductions and enlargements whose
// tap counts take every branch of verticalTaps.
func TestResampleMatchesPlainLoops(t *testing.T) {
	seed := uint32(1)
	rnd := func() byte { seed = seed*1664525 + 1013904223; return byte(seed >> 24) }
	for _, sz := range [][4]int{{768, 768, 520, 520}, {100, 80, 37, 61}, {64, 64, 64, 64}, {50, 40, 90, 70}, {300, 200, 41, 23}, {33, 17, 8, 5}, {60, 60, 50, 50}} {
		sw, sh, dw, dh := sz[0], sz[1], sz[2], sz[3]
		for _, ch := range []int{1, 4} {
			for _, opaque := range []bool{true, false} {
				if ch == 1 && opaque {
					continue
				}
				src := make([]byte, sw*sh*ch)
				for i := range src {
					src[i] = rnd()
				}
				if opaque {
					for i := 3; i < len(src); i += 4 {
						src[i] = 255
					}
				}
				xs := [2]float64{0.5, float64(sw) - 1}
				ys := [2]float64{0, float64(sh)}
				got := make([]byte, dw*dh*ch)
				want := make([]byte, dw*dh*ch)
				resamplePlaneOpaque(got, dw*ch, dw, dh, src, sw*ch, sw, sh, ch, xs, ys, opaque)
				plainResample(want, dw*ch, dw, dh, src, sw*ch, sw, sh, ch, xs, ys, opaque)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%dx%d -> %dx%d, %d channels, opaque %v: byte %d is %d, want %d", sw, sh, dw, dh, ch, opaque, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// plainResample is the resampler written with the plainest loops: a tap at
// a time, accumulators cleared and updated per tap.
func plainResample(dst []byte, dstride, dw, dh int, src []byte, sstride, sw, sh, ch int, xs, ys [2]float64, opaque bool) {
	hx := newAxisWeights(sw, xs[0], xs[1], dw)
	vy := newAxisWeights(sh, ys[0], ys[1], dh)
	rowLen := dw * ch
	mid := make([]byte, sh*rowLen)
	for y := 0; y < sh; y++ {
		for x := 0; x < dw; x++ {
			for c := 0; c < ch; c++ {
				var a int32
				for k := 0; k < hx.n; k++ {
					a += int32(src[y*sstride+(hx.start[x]+k)*ch+c]) * hx.w[x*hx.n+k]
				}
				v := clampShift(a)
				if opaque && c == 3 {
					v = 255
				}
				mid[y*rowLen+x*ch+c] = v
			}
		}
	}
	for y := 0; y < dh; y++ {
		for i := 0; i < rowLen; i++ {
			var a int32
			for k := 0; k < vy.n; k++ {
				a += int32(mid[(vy.start[y]+k)*rowLen+i]) * vy.w[y*vy.n+k]
			}
			dst[y*dstride+i] = clampShift(a)
		}
	}
}

// opaqueRow finds a transparent pixel wherever it is (in a pair read as
// one word or in the odd pixel after the last pair), and only alpha counts.
func TestOpaqueRow(t *testing.T) {
	for pixels := 0; pixels <= 5; pixels++ {
		row := make([]byte, 4*pixels)
		for i := 3; i < len(row); i += 4 {
			row[i] = 255 // colour 0, opaque
		}
		if !opaqueRow(row) {
			t.Fatalf("%d opaque pixels: not opaque", pixels)
		}
		for p := 0; p < pixels; p++ {
			row[4*p+3] = 254
			if opaqueRow(row) {
				t.Fatalf("%d pixels, pixel %d at alpha 254: opaque", pixels, p)
			}
			row[4*p+3] = 255
			row[4*p] = 7 // colour never counts
		}
	}
}
