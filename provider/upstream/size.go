package upstream

import (
	"strconv"
	"strings"
)

// SizeRule is what a provider that takes free sizes accepts: both sides
// multiples of Step, each side from MinSide to MaxSide, at most MaxPixels
// (and at least MinPixels) pixels, and the long side at most MaxRatio times
// the short one (0: any).
type SizeRule struct {
	Step                 int
	MinSide, MaxSide     int
	MinPixels, MaxPixels int
	MaxRatio             int
}

// ExactSize returns the largest w x h of exactly the ratio ar ("16:9") that
// rule accepts within budget pixels (rule.MaxPixels when budget is 0), so
// that an aspect ratio maps to a size with no distortion and no crop.
// ok is false when the ratio is malformed or has no such size.
func ExactSize(ar string, rule SizeRule, budget int) (w, h int, ok bool) {
	a, b, ok := parseRatio(ar)
	if !ok || rule.Step <= 0 || (rule.MaxRatio > 0 && max(a, b) > rule.MaxRatio*min(a, b)) {
		return 0, 0, false
	}
	if budget <= 0 || (rule.MaxPixels > 0 && budget > rule.MaxPixels) {
		budget = rule.MaxPixels
	}
	// w = a*u and h = b*u with u a multiple of Step keeps the ratio exact.
	for u := rule.Step * (rule.MaxSide / (rule.Step * max(a, b))); u >= rule.Step; u -= rule.Step {
		w, h = a*u, b*u
		if w*h <= budget && w*h >= rule.MinPixels && min(w, h) >= rule.MinSide {
			return w, h, true
		}
	}
	return 0, 0, false
}

// parseRatio reads "a:b" in lowest terms.
func parseRatio(ar string) (a, b int, ok bool) {
	x, y, found := strings.Cut(ar, ":")
	a, errA := strconv.Atoi(x)
	b, errB := strconv.Atoi(y)
	if !found || errA != nil || errB != nil || a <= 0 || b <= 0 || a > 1000 || b > 1000 {
		return 0, 0, false
	}
	for g, r := a, b; ; {
		if r == 0 {
			return a / g, b / g, true
		}
		g, r = r, g%r
	}
}
