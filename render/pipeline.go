package render

import (
	"context"
	"image"
)

// state is what the steps of one render share: the input, what the steps
// learn about the source, the image being worked on, and the result.
type state struct {
	ctx    context.Context
	src    []byte
	opt    Options
	limits Limits

	format       string // the source's format: "jpeg", "png", "gif", "webp"
	srcW, srcH   int    // the source's stored size, from its header
	orientation  int    // EXIF orientation, 1-8
	icc          []byte // the embedded colour profile, if any
	dispW, dispH int    // the displayed size (after orientation)
	geom         geometry
	img          image.Image // the image being worked on
	shrunkOnLoad float64     // the factor the decoder already divided the size by
	outW, outH   int
	result       *Result
}

// step is one stage of a render. Options are validated before the pipeline
// runs, so steps never re-check them.
type step func(*state) error

// pipeline is what a render does, in order. Each step is in the file named
// after it, with its test.
var pipeline = []step{
	sniff,    // format and declared size from the header; the pixel limit
	readMeta, // EXIF orientation and ICC profile, from the container's parts
	plan,     // the geometry of the fit, in displayed pixels
	decode,   // pixels, shrunk on load where the decoder can (JPEG fast path)
	reduce,   // box pre-reduction of large shrinks, before the fine filter
	orient,   // EXIF orientation applied
	toSRGB,   // the embedded profile's colours converted to sRGB
	resize,   // crop and scale to the output with Catmull-Rom
	pad,      // the background around a contained image
	flatten,  // transparency onto the background, for JPEG
	encode,   // the output format; no metadata is written
}

// run runs the pipeline on s, stopping at the first error or when the
// render's context ends.
func run(s *state) error {
	for _, st := range pipeline {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if err := st(s); err != nil {
			return err
		}
	}
	return nil
}
