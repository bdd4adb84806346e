package imaged

import "context"

// ProgressFunc receives how far a running generation has got, a percentage
// from 0 to 100. It must return quickly: a provider calls it from the loop
// that reads its upstream's progress.
type ProgressFunc func(percent int)

type progressKey struct{}

// WithProgress returns a context under which ReportProgress calls fn.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells whoever watches the generation running under ctx
// (see WithProgress) how far it has got; percent is clamped to [0, 100]. A
// provider that knows its progress (ComfyUI streams it) calls it as it goes;
// nothing happens when nobody watches.
func ReportProgress(ctx context.Context, percent int) {
	if fn, ok := ctx.Value(progressKey{}).(ProgressFunc); ok && fn != nil {
		fn(min(max(percent, 0), 100))
	}
}
