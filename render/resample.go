package render

import (
	"image"
	"math"
	"sync"
)

// A separable resampler in fixed point: a horizontal pass over the source
// rows the output needs, into an 8-bit intermediate (as libvips' reduceh
// does), then a vertical pass. Each output sample's weights are computed
// once per axis, scaled to 1<<weightBits and summing to it exactly, so a
// flat area (opaque alpha above all) stays exactly what it was.
//
// The filter is Catmull-Rom (the cubic with B=0, C=1/2), its support
// widened by the shrink so that a reduction does not alias; with the box
// pre-reduction of reduce, it sees at most about two source pixels per
// output pixel, which is what libvips' thumbnail leaves to its Lanczos 3.

const weightBits = 14

// catmullRom is the filter's kernel, support 2.
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// axisWeights maps each output sample of one axis to its contiguous run
// of source samples and their weights.
type axisWeights struct {
	start []int   // first source sample of output i
	n     int     // taps per output sample (runs are padded with zero weights)
	w     []int32 // n weights per output sample
}

// newAxisWeights resamples the source span [off, off+length) of an axis of
// srcLen samples (pixel i covering [i, i+1)) to dstLen samples. Samples
// beyond the source's edges repeat the edge.
func newAxisWeights(srcLen int, off, length float64, dstLen int) *axisWeights {
	scale := length / float64(dstLen)
	fs := math.Max(scale, 1)
	support := 2 * fs
	n := min(int(math.Ceil(2*support))+1, srcLen)
	aw := &axisWeights{start: make([]int, dstLen), n: n, w: make([]int32, dstLen*n)}
	f := make([]float64, n)
	for i := 0; i < dstLen; i++ {
		center := off + (float64(i)+0.5)*scale
		lo := int(math.Floor(center - support))
		start := max(0, min(lo, srcLen-n))
		clear(f)
		var sum float64
		for j := lo; j <= int(math.Ceil(center+support)); j++ {
			v := catmullRom((float64(j) + 0.5 - center) / fs)
			if v == 0 {
				continue
			}
			k := max(0, min(j, srcLen-1)) - start
			if k < 0 || k >= n {
				continue
			}
			f[k] += v
			sum += v
		}
		w := aw.w[i*n : i*n+n]
		var isum, big int32
		bigAt := 0
		for k := range f {
			w[k] = int32(math.Round(f[k] / sum * (1 << weightBits)))
			isum += w[k]
			if w[k] > big {
				big, bigAt = w[k], k
			}
		}
		w[bigAt] += 1<<weightBits - isum // exact unit sum
		aw.start[i] = start
	}
	return aw
}

// rowRange is the source rows the vertical weights read.
func (a *axisWeights) rowRange() (lo, hi int) {
	lo, hi = a.start[0], a.start[len(a.start)-1]+a.n
	for _, s := range a.start {
		lo, hi = min(lo, s), max(hi, s+a.n)
	}
	return lo, hi
}

func clampShift(v int32) uint8 {
	v = (v + 1<<(weightBits-1)) >> weightBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// scratch recycles the intermediate rows between renders.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// resamplePlane resamples a plane of ch interleaved 8-bit channels (src,
// stride sstride, sw x sh samples) into dst (stride dstride, dw x dh), the
// source span being xs, ys.
func resamplePlane(dst []byte, dstride, dw, dh int, src []byte, sstride, sw, sh, ch int, xs, ys [2]float64) {
	resamplePlaneOpaque(dst, dstride, dw, dh, src, sstride, sw, sh, ch, xs, ys, false)
}

// resamplePlaneOpaque is resamplePlane; with opaque, a 4-channel source's
// alpha is known to be 255 everywhere and is not filtered.
func resamplePlaneOpaque(dst []byte, dstride, dw, dh int, src []byte, sstride, sw, sh, ch int, xs, ys [2]float64, opaque bool) {
	hx := newAxisWeights(sw, xs[0], xs[1], dw)
	vy := newAxisWeights(sh, ys[0], ys[1], dh)
	lo, hi := vy.rowRange()
	// mid holds the horizontal pass's rows: RGB only for an opaque RGBA
	// source, whose alpha needs no filtering.
	midCh := ch
	if ch == 4 && opaque {
		midCh = 3
	}
	rowLen := dw * midCh
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	if need := (hi - lo) * rowLen; cap(*bp) < need {
		*bp = make([]byte, need)
	}
	mid := (*bp)[:(hi-lo)*rowLen]

	// Horizontal: source rows lo..hi into mid.
	n := hx.n
	for y := lo; y < hi; y++ {
		row := src[y*sstride : y*sstride+sw*ch]
		out := mid[(y-lo)*rowLen : (y-lo+1)*rowLen]
		switch ch {
		case 1:
			for x := 0; x < dw; x++ {
				w := hx.w[x*n : x*n+n]
				s := row[hx.start[x] : hx.start[x]+n]
				var a int32
				for k, wk := range w {
					a += int32(s[k]) * wk
				}
				out[x] = clampShift(a)
			}
		case 4:
			if opaque {
				horizontalOpaque(out, row, hx)
				continue
			}
			horizontalRGBA(out, row, hx)
		}
	}

	// Vertical: mid into dst, a row of accumulators at a time.
	n = vy.n
	acc := make([]int32, rowLen)
	for y := 0; y < dh; y++ {
		w := vy.w[y*n : y*n+n]
		row := func(k int) []byte {
			r := vy.start[y] + k - lo
			return mid[r*rowLen : (r+1)*rowLen]
		}
		verticalTaps(acc, w, row)
		if midCh == 3 {
			out := dst[y*dstride : y*dstride+4*dw]
			for x := 0; x < dw; x++ {
				a, o := acc[3*x:3*x+3:3*x+3], out[4*x:4*x+4:4*x+4]
				o[0], o[1], o[2], o[3] = clampShift(a[0]), clampShift(a[1]), clampShift(a[2]), 255
			}
			continue
		}
		out := dst[y*dstride : y*dstride+rowLen]
		for i, a := range acc {
			out[i] = clampShift(a)
		}
	}
}

// horizontalOpaque filters one row of opaque RGBA pixels into out, RGB
// only (3 bytes a pixel).
func horizontalOpaque(out, row []byte, hx *axisWeights) {
	n := hx.n
	for x, st := range hx.start {
		r, g, b := dot3(row[4*st:4*(st+n)], hx.w[x*n:x*n+n])
		o := out[3*x : 3*x+3 : 3*x+3]
		o[0], o[1], o[2] = clampShift(r), clampShift(g), clampShift(b)
	}
}

// horizontalRGBA filters one row of RGBA pixels into out.
func horizontalRGBA(out, row []byte, hx *axisWeights) {
	n := hx.n
	for x, st := range hx.start {
		r, g, b, a := dot4(row[4*st:4*(st+n)], hx.w[x*n:x*n+n])
		o := out[4*x : 4*x+4 : 4*x+4]
		o[0], o[1], o[2], o[3] = clampShift(r), clampShift(g), clampShift(b), clampShift(a)
	}
}

// dot4 is dot3 with alpha.
//
//go:noinline
func dot4(s []byte, w []int32) (r, g, b, a int32) {
	s = s[:4*len(w)]
	for k, wk := range w {
		p := s[4*k : 4*k+4 : 4*k+4]
		r += int32(p[0]) * wk
		g += int32(p[1]) * wk
		b += int32(p[2]) * wk
		a += int32(p[3]) * wk
	}
	return r, g, b, a
}

// dot3 is the weighted sum of the RGB of the pixels of s (RGBA, 4 bytes a
// pixel, len(w) pixels). Not inlined: in a loop of its own its accumulators
// stay in registers, where inlined into horizontalOpaque they were spilled
// to the stack and each tap waited for their store and reload.
//
//go:noinline
func dot3(s []byte, w []int32) (r, g, b int32) {
	s = s[:4*len(w)]
	for k, wk := range w {
		p := s[4*k : 4*k+3 : 4*k+3]
		r += int32(p[0]) * wk
		g += int32(p[1]) * wk
		b += int32(p[2]) * wk
	}
	return r, g, b
}

// verticalTaps sets acc to the sum over k of row(k) weighted by w[k],
// four rows at a time: one pass over acc per four taps instead of one per
// tap (the accumulators' loads and stores were most of the vertical pass).
// Every row is len(acc) long.
func verticalTaps(acc []int32, w []int32, row func(k int) []byte) {
	n := len(acc)
	k := 0
	for ; k+4 <= len(w); k += 4 {
		w0, w1, w2, w3 := w[k], w[k+1], w[k+2], w[k+3]
		r0, r1, r2, r3 := row(k), row(k+1), row(k+2), row(k+3)
		r0, r1, r2, r3 = r0[:n], r1[:n], r2[:n], r3[:n]
		if k == 0 {
			for i := range acc {
				acc[i] = int32(r0[i])*w0 + int32(r1[i])*w1 + int32(r2[i])*w2 + int32(r3[i])*w3
			}
			continue
		}
		for i := range acc {
			acc[i] += int32(r0[i])*w0 + int32(r1[i])*w1 + int32(r2[i])*w2 + int32(r3[i])*w3
		}
	}
	if k == 0 {
		clear(acc)
	}
	switch len(w) - k {
	case 3:
		w0, w1, w2 := w[k], w[k+1], w[k+2]
		r0, r1, r2 := row(k), row(k+1), row(k+2)
		r0, r1, r2 = r0[:n], r1[:n], r2[:n]
		for i := range acc {
			acc[i] += int32(r0[i])*w0 + int32(r1[i])*w1 + int32(r2[i])*w2
		}
	case 2:
		w0, w1 := w[k], w[k+1]
		r0, r1 := row(k), row(k+1)
		r0, r1 = r0[:n], r1[:n]
		for i := range acc {
			acc[i] += int32(r0[i])*w0 + int32(r1[i])*w1
		}
	case 1:
		w0, r0 := w[k], row(k)[:n]
		for i := range acc {
			acc[i] += int32(r0[i]) * w0
		}
	}
}

// resampleInto scales the part span (x0, y0, x1, y1, in src's pixels,
// fractions allowed) of src into dst's rectangle dr. Grey stays one
// channel until the output; RGBA is scaled premultiplied, opaque NRGBA as
// it is, anything else (YCbCr included, so that its chroma is upsampled
// before it is filtered, as libvips does) converted to RGBA first.
func resampleInto(dst *image.RGBA, dr image.Rectangle, src image.Image, span [4]float64) {
	b := src.Bounds()
	dw, dh := dr.Dx(), dr.Dy()
	out := dst.Pix[dst.PixOffset(dr.Min.X, dr.Min.Y):]
	xs := [2]float64{span[0] - float64(b.Min.X), span[2] - span[0]}
	ys := [2]float64{span[1] - float64(b.Min.Y), span[3] - span[1]}
	switch m := src.(type) {
	case *image.Gray:
		g := make([]byte, dw*dh)
		resamplePlane(g, dw, dw, dh, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 1, xs, ys)
		for j := 0; j < dh; j++ {
			row := out[j*dst.Stride : j*dst.Stride+4*dw]
			for i := 0; i < dw; i++ {
				v := g[j*dw+i]
				p := row[4*i : 4*i+4 : 4*i+4]
				p[0], p[1], p[2], p[3] = v, v, v, 255
			}
		}
		return
	case *image.NRGBA:
		if opaqueNRGBA(m) {
			resamplePlaneOpaque(out, dst.Stride, dw, dh, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 4, xs, ys, true)
			return
		}
	case *image.RGBA:
		op := opaque(m)
		resamplePlaneOpaque(out, dst.Stride, dw, dh, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 4, xs, ys, op)
		if !op {
			premultipliedClamp(dst, dr)
		}
		return
	}
	rgba := asRGBA(src)
	resamplePlane(out, dst.Stride, dw, dh, rgba.Pix, rgba.Stride, b.Dx(), b.Dy(), 4, xs, ys)
	premultipliedClamp(dst, dr)
}

// premultipliedClamp keeps every colour at most its alpha, which the
// filter's negative lobes can break near sharp alpha edges.
func premultipliedClamp(m *image.RGBA, r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := m.Pix[m.PixOffset(r.Min.X, y) : m.PixOffset(r.Min.X, y)+4*r.Dx()]
		for i := 0; i < len(row); i += 4 {
			p := row[i : i+4 : i+4]
			a := p[3]
			p[0], p[1], p[2] = min(p[0], a), min(p[1], a), min(p[2], a)
		}
	}
}

// opaqueNRGBA reports whether every pixel of m is opaque.
func opaqueNRGBA(m *image.NRGBA) bool {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		if !opaqueRow(m.Pix[m.PixOffset(b.Min.X, y) : m.PixOffset(b.Min.X, y)+4*b.Dx()]) {
			return false
		}
	}
	return true
}

// ycbcrToRGB is JFIF's conversion, as image/color's YCbCrToRGB.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy + 91881*cr1
	g := yy - 22554*cb1 - 46802*cr1
	b := yy + 116130*cb1
	clamp := func(v int32) uint8 {
		if uint32(v)&0xff000000 == 0 {
			return uint8(v >> 16)
		}
		return uint8(^(v >> 31))
	}
	return clamp(r), clamp(g), clamp(b)
}
