//go:build !(linux || darwin || freebsd) || nodynamic

package render

import "image"

// libDeflate is left out of this build (see pngfast.go).
type libDeflate struct{}

var deflate *libDeflate

// decodePNGFast is left out of this build.
func decodePNGFast([]byte) (image.Image, bool) { return nil, false }
