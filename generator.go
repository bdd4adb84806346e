package imaged

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Generator makes images from a prompt. One package per provider under
// provider/ implements it; the builtin one is an offline procedural renderer.
type Generator interface {
	// Name is the provider id used in requests ("openai", "builtin", ...).
	Name() string
	// Models lists the models this provider serves, the first one the default.
	Models() []Model
	// Generate makes req.N images. It must honour ctx cancellation. Failures
	// are *Error values (EContentPolicy, EInvalidPrompt) or *UpstreamError.
	// A provider that knows how far it got tells ReportProgress(ctx, ...).
	Generate(ctx context.Context, req GenerateRequest) ([]GeneratedImage, error)
}

// Model describes one model of a provider, for clients to build their menu.
type Model struct {
	ID                     string   `json:"id"`
	Description            string   `json:"description"`
	AspectRatios           []string `json:"aspectRatios"`
	MaxImages              int      `json:"maxImages"`
	MaxPromptLength        int      `json:"maxPromptLength"`
	SupportsSeed           bool     `json:"supportsSeed"`
	SupportsNegativePrompt bool     `json:"supportsNegativePrompt"`
	// SupportsEdit says that the provider's Edit (see Editor) serves the
	// model; SupportsMask and SupportsStrength that an edit may carry a mask
	// and a strength.
	SupportsEdit     bool `json:"supportsEdit"`
	SupportsMask     bool `json:"supportsMask"`
	SupportsStrength bool `json:"supportsStrength"`
	// MaxOutputPixels is the width x height of the largest image the model
	// returns (at its largest ratio and setting), 0 when the adapter cannot
	// tell. The service stores nothing over its pixel limit, so it warns at
	// start when a model's is larger.
	MaxOutputPixels int64 `json:"maxOutputPixels,omitempty"`
	// Options are the provider-specific settings a request may pass in its
	// options object, each with the values the model accepts.
	Options []ModelOption `json:"options"`
}

// ModelOption is one setting of a model that the API passes through in a
// request's options object ("quality": "high"), checked against Values
// before any request goes out.
type ModelOption struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Values      []string `json:"values"`
	// Default is what the provider uses when the option is not given.
	Default string `json:"default,omitempty"`
}

// Option returns the model's option called name.
func (m Model) Option(name string) (ModelOption, bool) {
	for _, o := range m.Options {
		if o.Name == name {
			return o, true
		}
	}
	return ModelOption{}, false
}

// SupportsAspectRatio reports whether ar is one of the model's ratios.
func (m Model) SupportsAspectRatio(ar string) bool {
	for _, a := range m.AspectRatios {
		if a == ar {
			return true
		}
	}
	return false
}

// GenerateRequest is a validated request for one provider and model. The style
// fields of the API are already folded into Prompt by the service.
type GenerateRequest struct {
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negativePrompt,omitempty"`
	Model          string `json:"model"`
	AspectRatio    string `json:"aspectRatio"`
	N              int    `json:"n"`
	Seed           *int64 `json:"seed,omitempty"`
	// Options are checked against the model's: each name is one of
	// Model.Options and each value one of its Values.
	Options map[string]string `json:"options,omitempty"`
}

// GeneratedImage is one image as a provider returned it, before it is checked
// like an upload and stored.
type GeneratedImage struct {
	Data          []byte
	Seed          *int64 // the seed actually used, when the provider tells
	RevisedPrompt string // when the provider rewrote the prompt
	Usage         *Usage // what the provider counted for the request, when it tells
}

// Usage is what a provider reports having counted (and billed) for one
// request. A request that made several images shares one Usage among them;
// Images says how many.
type Usage struct {
	InputTokens      int64 `json:"inputTokens,omitempty"`
	InputTextTokens  int64 `json:"inputTextTokens,omitempty"`
	InputImageTokens int64 `json:"inputImageTokens,omitempty"`
	OutputTokens     int64 `json:"outputTokens,omitempty"`
	TotalTokens      int64 `json:"totalTokens,omitempty"`
	// Credits is what the provider billed in its own credits (Black Forest
	// Labs: 1 credit is 0.01 USD).
	Credits float64 `json:"credits,omitempty"`
	// Images is the number of images the request made.
	Images int `json:"images,omitempty"`
}

// UpstreamError is a provider failure. The service retries it with backoff
// when Retryable; its detail is logged, never shown to the caller.
type UpstreamError struct {
	Provider   string
	Status     int           // HTTP status from the provider, 0 if none
	Retryable  bool          // 429 and 5xx, network errors
	RetryAfter time.Duration // from the provider's Retry-After, if any
	Timeout    bool          // the provider did not answer in time
	Err        error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("provider %s: status %d: %v", e.Provider, e.Status, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// AspectRatios are the ratios the API accepts at all; each model lists the
// subset it supports.
var AspectRatios = []string{"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"}

// maxOptions bounds the options object of a request.
const maxOptions = 16

// CheckOptions checks a request's options against model m: every name must
// be one of its options and every value one of that option's values. The
// refusal is EInvalidPrompt naming the option and what is accepted.
func CheckOptions(m Model, options map[string]string) error {
	if len(options) > maxOptions {
		return Errorf(EInvalidPrompt, "options holds more than %d settings", maxOptions)
	}
	names := make([]string, 0, len(options))
	for name := range options {
		names = append(names, name)
	}
	slices.Sort(names) // the first problem reported is the same every time
	for _, name := range names {
		o, ok := m.Option(name)
		if !ok {
			known := make([]string, len(m.Options))
			for i, o := range m.Options {
				known[i] = o.Name
			}
			if len(known) == 0 {
				return Errorf(EInvalidPrompt, "model %q takes no options; %q is not one", m.ID, upTo(name, 40))
			}
			return Errorf(EInvalidPrompt, "model %q has no option %q; its options: %s", m.ID, upTo(name, 40), strings.Join(known, ", "))
		}
		if !slices.Contains(o.Values, options[name]) {
			return Errorf(EInvalidPrompt, "option %s of model %q must be one of %s, not %q", name, m.ID, strings.Join(o.Values, ", "), upTo(options[name], 40))
		}
	}
	return nil
}

// upTo bounds s for quoting in a message.
func upTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
