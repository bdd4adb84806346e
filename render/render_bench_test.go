package render

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// The three cold-render cases of the benchmarks, in-process, one at a time.
// Beside the wall time it reports the CPU time per render (cpu-ms/op, this
// process's user and system time), which other work on a shared machine
// disturbs less.
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
		{"jpeg2048-webp520", jpg2048, Options{Width: 520, Height: 520, Format: WebP}},
		{"png1024-avif256", png1024, Options{Width: 256, Height: 256, Format: AVIF}},
	} {
		b.Run(c.name, func(b *testing.B) {
			start := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := renderBytes(context.Background(), c.src, c.opt, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
