//go:build !(linux || darwin || freebsd) || nodynamic

package render

import "image"

// turboJPEG is left out of this build (see turbojpeg.go).
type turboJPEG struct{}

var turbo *turboJPEG

func (*turboJPEG) decode([]byte, int) (image.Image, error) { panic("unreachable") }
