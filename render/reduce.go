package render

import (
	"image"
	"image/draw"
	"math"
)

// reduce averages boxes of k x k source pixels, k the shrink left halved
// and rounded (libvips' resize with its default gap of 2), so that the
// Catmull-Rom filter of resize (whose cost grows with the source) works on
// about twice the output size. A box filter at an integer factor keeps
// every source pixel's weight, so nothing aliases; the fine filter then
// gives the sharpness.
func reduce(s *state) error {
	k := int(math.Round(s.shrinkRatio() / float64(s.shrunkOnLoad) / 2))
	if k < 2 {
		return nil
	}
	s.img = boxReduce(s.img, k)
	s.shrunkOnLoad *= k
	return nil
}

// boxReduce divides img's size by k (rounding up; edge boxes average what
// they hold). Grey stays grey; anything else becomes premultiplied RGBA
// (YCbCr too: its chroma, at half the resolution, reduced apart from its
// luma would let luma detail leak into colour).
func boxReduce(img image.Image, k int) image.Image {
	switch m := img.(type) {
	case *image.Gray:
		b := m.Bounds()
		out := image.NewGray(image.Rect(0, 0, ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)))
		reducePlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 1, k, false)
		return out
	case *image.NRGBA:
		b := m.Bounds()
		out := image.NewRGBA(image.Rect(0, 0, ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)))
		reducePlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 4, k, true)
		return out
	}
	rgba := asRGBA(img)
	b := rgba.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)))
	reducePlane(out.Pix, out.Stride, rgba.Pix[rgba.PixOffset(b.Min.X, b.Min.Y):], rgba.Stride, b.Dx(), b.Dy(), 4, k, false)
	return out
}

// reducePlane box-averages a w x h plane of ch interleaved channels by k
// into dst. With premultiply, the fourth channel is alpha and the colour
// channels are weighted by it (non-premultiplied in, premultiplied out).
func reducePlane(dst []byte, dstStride int, src []byte, srcStride, w, h, ch, k int, premultiply bool) {
	dw := ceilDiv(w, k)
	sums := make([]uint32, dw*ch)
	for oy := 0; oy*k < h; oy++ {
		clear(sums)
		y1 := min(h, (oy+1)*k)
		for y := oy * k; y < y1; y++ {
			row := src[y*srcStride : y*srcStride+w*ch]
			if premultiply {
				for x := 0; x < w; x++ {
					p := row[4*x : 4*x+4 : 4*x+4]
					a := uint32(p[3])
					o := (x / k) * 4
					sums[o] += uint32(p[0]) * a
					sums[o+1] += uint32(p[1]) * a
					sums[o+2] += uint32(p[2]) * a
					sums[o+3] += a
				}
				continue
			}
			switch ch {
			case 4:
				for ox := 0; ox < dw; ox++ {
					var r, g, b, a uint32
					for x := ox * k; x < min(w, (ox+1)*k); x++ {
						p := row[4*x : 4*x+4 : 4*x+4]
						r, g, b, a = r+uint32(p[0]), g+uint32(p[1]), b+uint32(p[2]), a+uint32(p[3])
					}
					s := sums[4*ox : 4*ox+4 : 4*ox+4]
					s[0], s[1], s[2], s[3] = s[0]+r, s[1]+g, s[2]+b, s[3]+a
				}
			case 1:
				for ox := 0; ox < dw; ox++ {
					var v uint32
					for _, c := range row[ox*k : min(w, (ox+1)*k)] {
						v += uint32(c)
					}
					sums[ox] += v
				}
			default:
				for ox := 0; ox < dw; ox++ {
					x0, x1 := ox*k*ch, min(w, (ox+1)*k)*ch
					o := ox * ch
					for x := x0; x < x1; x += ch {
						for c := 0; c < ch; c++ {
							sums[o+c] += uint32(row[x+c])
						}
					}
				}
			}
		}
		rows := uint32(y1 - oy*k)
		out := dst[oy*dstStride : oy*dstStride+dw*ch]
		for ox := 0; ox < dw; ox++ {
			n := rows * uint32(min(w, (ox+1)*k)-ox*k)
			o := ox * ch
			if premultiply {
				out[o] = byte((sums[o] + n*255/2) / (n * 255))
				out[o+1] = byte((sums[o+1] + n*255/2) / (n * 255))
				out[o+2] = byte((sums[o+2] + n*255/2) / (n * 255))
				out[o+3] = byte((sums[o+3] + n/2) / n)
				continue
			}
			for c := 0; c < ch; c++ {
				out[o+c] = byte((sums[o+c] + n/2) / n)
			}
		}
	}
}

// chromaSize is the size of a YCbCr image's chroma planes.
func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return ceilDiv(w, 2), h
	case image.YCbCrSubsampleRatio420:
		return ceilDiv(w, 2), ceilDiv(h, 2)
	case image.YCbCrSubsampleRatio440:
		return w, ceilDiv(h, 2)
	case image.YCbCrSubsampleRatio411:
		return ceilDiv(w, 4), h
	case image.YCbCrSubsampleRatio410:
		return ceilDiv(w, 4), ceilDiv(h, 2)
	}
	return w, h
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// asRGBA returns img as premultiplied RGBA at the origin, converting when
// it is anything else.
func asRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok && m.Bounds().Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}
