package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"

	"github.com/imaged/imaged"
)

// Renderer renders variants.
type Renderer interface {
	// Render reads a stored source image (any accepted format) and returns the variant.
	// Errors are *imaged.Error: EUnavailable (queue full; RetryAfter set) at once,
	// EUnsupportedMedia / EValidation for a hostile or broken source, EInternal when a
	// render crashed or timed out (the caller answers an envelope; the next render works).
	Render(ctx context.Context, src io.Reader, opt Options) (*Result, error)
}

// Limits bound what one render may take on.
type Limits struct {
	// MaxSide is the largest output side (DefaultMaxSide when 0).
	MaxSide int
	// MaxPixels is the largest source canvas, width x height, checked from
	// the header before decoding (DefaultMaxPixels when 0).
	MaxPixels int64
	// MaxSourceBytes is the largest source file (DefaultMaxSourceBytes when 0).
	MaxSourceBytes int64
}

// Defaults of Limits: the upload limits of the service, so that anything
// it stored can be rendered.
const (
	DefaultMaxPixels      = 50_000_000
	DefaultMaxSourceBytes = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = DefaultMaxSourceBytes
	}
	return l
}

// readSource reads the whole source, refusing one over the limit. A source
// that knows its size (a blob, a file) is read into one buffer of that size
// instead of a growing one.
func readSource(src io.Reader, limit int64) ([]byte, error) {
	if n := sourceSize(src); n > 0 && n <= limit {
		b := make([]byte, n, n+1)
		_, err := io.ReadFull(src, b)
		if err == nil {
			// Nothing may follow the size it announced.
			var one [1]byte
			if m, _ := src.Read(one[:]); m == 0 {
				return b, nil
			}
			err = errors.New("the source is longer than its size")
		}
		var ie *imaged.Error
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, imaged.Unavailable("The image store", err)
	}
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		var ie *imaged.Error
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, imaged.Unavailable("The image store", err)
	}
	if int64(len(b)) > limit {
		return nil, imaged.Errorf(imaged.EUnsupportedMedia, "The source image is over the render limit of %d bytes", limit)
	}
	return b, nil
}

// sourceSize is the size src announces (what is left of an in-memory
// reader, an imaged.Blob's Size, a file's Stat), 0 when it announces none.
func sourceSize(src io.Reader) int64 {
	switch v := src.(type) {
	case interface{ Len() int }: // bytes.Reader, bytes.Buffer: what is left
		return int64(v.Len())
	case interface{ Size() int64 }:
		return v.Size()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

// renderBytes runs the pipeline on a source in memory. A panic in a decoder
// or an encoder (a bug, or a hostile file finding one) is a failed render,
// not a dead process.
func renderBytes(ctx context.Context, src []byte, opt Options, limits Limits) (res *Result, err error) {
	limits = limits.withDefaults()
	if err := opt.Validate(limits.MaxSide); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, &imaged.Error{Code: imaged.EInternal, Message: "The render failed",
				Err: fmt.Errorf("render panic: %v\n%s", r, debug.Stack())}
		}
	}()
	s := &state{ctx: ctx, src: src, opt: opt, limits: limits}
	if err := run(s); err != nil {
		return nil, asRenderError(err)
	}
	return s.result, nil
}

// asRenderError keeps application errors and turns anything else into
// EInternal (the cause only for the log).
func asRenderError(err error) error {
	var ie *imaged.Error
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return &imaged.Error{Code: imaged.EInternal, Message: "The render took too long", Err: err}
	case errors.Is(err, context.Canceled):
		return &imaged.Error{Code: imaged.EInternal, Message: "The render was cancelled", Err: err}
	}
	return &imaged.Error{Code: imaged.EInternal, Message: "The render failed", Err: err}
}
