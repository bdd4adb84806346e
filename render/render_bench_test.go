package render

import (
	"context"
	"testing"
)

// The three cold-render cases of the benchmarks, in-process, one at a time.
func BenchmarkRender(b *testing.B) {
	png1024 := pngBytes(b, photo(1024, 1024))
	jpg2048 := jpegBytes(b, photo(2048, 2048), 90)
	for _, c := range []struct {
		name string
		src  []byte
		opt  Options
	}{
		{"png1024-webp256", png1024, Options{Width: 256, Height: 256, Format: WebP}},
		{"png1024-jpeg256", png1024, Options{Width: 256, Height: 256, Format: JPEG}},
		{"jpeg2048-webp512", jpg2048, Options{Width: 512, Height: 512, Format: WebP}},
		{"png1024-avif256", png1024, Options{Width: 256, Height: 256, Format: AVIF}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := renderBytes(context.Background(), c.src, c.opt, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
