package openai

import (
	"strconv"
	"strings"
)

// Limits of gpt-image-2's free sizes, from the API reference.
const (
	sizeStep      = 16        // both sides are multiples of 16
	maxSide       = 3840      // the longer side
	maxSizePixels = 8_294_400 // 3840x2160
	minSizePixels = 655_360
	maxRatio      = 3 // long side over short side
)

// tierPixels is the pixel budget of each resolution option.
var tierPixels = map[string]int{"1k": 1024 * 1024, "2k": 2048 * 2048, "4k": maxSizePixels}

// freeSize returns the exact size of ratio ar ("16:9") for a free-size model:
// the largest w x h with w:h exactly the ratio, both multiples of 16, within
// the tier's pixel budget (1k when tier is empty) and the API's limits. Every
// ratio of imaged.AspectRatios has one in every tier; 0, 0 for a ratio that
// is malformed or beyond 3:1.
func freeSize(ar, tier string) (w, h int) {
	a, b, ok := parseRatio(ar)
	if !ok || max(a, b) > maxRatio*min(a, b) {
		return 0, 0
	}
	budget, ok := tierPixels[tier]
	if !ok {
		budget = tierPixels["1k"]
	}
	// w = a*u and h = b*u with u a multiple of 16 keeps the ratio exact.
	for u := sizeStep * (maxSide / (sizeStep * max(a, b))); u >= sizeStep; u -= sizeStep {
		if w, h = a*u, b*u; w*h <= budget && w*h >= minSizePixels {
			return w, h
		}
	}
	return 0, 0
}

// parseRatio reads "a:b" in lowest terms.
func parseRatio(ar string) (a, b int, ok bool) {
	x, y, found := strings.Cut(ar, ":")
	a, errA := strconv.Atoi(x)
	b, errB := strconv.Atoi(y)
	if !found || errA != nil || errB != nil || a <= 0 || b <= 0 {
		return 0, 0, false
	}
	for g, r := a, b; ; {
		if r == 0 {
			return a / g, b / g, true
		}
		g, r = r, g%r
	}
}
