package render

import (
	"bytes"
	"context"
	"testing"
)

// Probe gives the displayed size, so that Options.Size on it is the size
// a render really has, for rotated sources too.
func TestProbeMatchesRender(t *testing.T) {
	upright := jpegBytes(t, photo(300, 200), 90)
	rotated := withJPEGSegments(upright, exifSegment(6))
	for name, tc := range map[string]struct {
		src          []byte
		wantW, wantH int
	}{
		"upright":       {upright, 300, 200},
		"orientation_6": {rotated, 200, 300},
	} {
		t.Run(name, func(t *testing.T) {
			w, h, err := Probe(tc.src, Limits{})
			if err != nil || w != tc.wantW || h != tc.wantH {
				t.Fatalf("Probe = %dx%d, %v; want %dx%d", w, h, err, tc.wantW, tc.wantH)
			}
			opt := Options{Width: 100, Format: PNG}
			pw, ph := opt.Size(w, h)
			res, err := renderBytes(context.Background(), tc.src, opt, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != pw || res.Height != ph {
				t.Errorf("promised %dx%d, rendered %dx%d", pw, ph, res.Width, res.Height)
			}
		})
	}
	if _, _, err := Probe([]byte("not an image"), Limits{}); err == nil {
		t.Error("Probe accepted text")
	}
	if _, _, err := Probe(bytes.Repeat([]byte{0}, 10), Limits{}); err == nil {
		t.Error("Probe accepted zeros")
	}
}
