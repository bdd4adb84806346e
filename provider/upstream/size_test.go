package upstream_test

import (
	"testing"

	"github.com/imaged/imaged/provider/upstream"
)

func TestExactSize(t *testing.T) {
	rule := upstream.SizeRule{Step: 32, MinSide: 256, MaxSide: 1440, MaxPixels: 1440 * 1440}
	tests := []struct {
		ar     string
		budget int
		w, h   int
		ok     bool
	}{
		{"1:1", 1 << 20, 1024, 1024, true},
		{"16:9", 1 << 20, 1024, 576, true},
		{"4:3", 1 << 20, 1152, 864, true},
		{"3:2", 1 << 20, 1248, 832, true},
		{"2:3", 0, 960, 1440, true}, // the rule's own budget
		{"16:9", 0, 1024, 576, true},
		{"21:9", 1 << 20, 1344, 576, true},
		{"100:1", 1 << 20, 0, 0, false},
		{"x:1", 1 << 20, 0, 0, false},
		{"1:0", 1 << 20, 0, 0, false},
	}
	for _, tt := range tests {
		w, h, ok := upstream.ExactSize(tt.ar, rule, tt.budget)
		if w != tt.w || h != tt.h || ok != tt.ok {
			t.Errorf("ExactSize(%s, %d) = %dx%d %v, want %dx%d %v", tt.ar, tt.budget, w, h, ok, tt.w, tt.h, tt.ok)
		}
		if ok && (w%32 != 0 || h%32 != 0 || w*tt.h != h*tt.w) {
			t.Errorf("%s: %dx%d breaks the rule", tt.ar, w, h)
		}
	}
	if _, _, ok := upstream.ExactSize("3:1", upstream.SizeRule{Step: 16, MaxSide: 3840, MaxPixels: 1 << 22, MaxRatio: 2}, 0); ok {
		t.Error("a ratio beyond MaxRatio was given a size")
	}
}
