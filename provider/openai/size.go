package openai

import "github.com/imaged/imaged/provider/upstream"

// freeSizes is what gpt-image-2 accepts, from the API reference: both sides
// multiples of 16, the long side at most 3840, a ratio within 3:1, and from
// 655,360 to 8,294,400 (3840x2160) pixels.
var freeSizes = upstream.SizeRule{Step: 16, MaxSide: 3840, MinPixels: 655_360, MaxPixels: 8_294_400, MaxRatio: 3}

// tierPixels is the pixel budget of each resolution option.
var tierPixels = map[string]int{"1k": 1024 * 1024, "2k": 2048 * 2048, "4k": freeSizes.MaxPixels}

// freeSize returns the exact size of ratio ar for gpt-image-2 at a
// resolution tier (1k when empty): every ratio of imaged.AspectRatios has
// one in every tier.
func freeSize(ar, tier string) (w, h int) {
	budget, ok := tierPixels[tier]
	if !ok {
		budget = tierPixels["1k"]
	}
	w, h, _ = upstream.ExactSize(ar, freeSizes, budget)
	return w, h
}
