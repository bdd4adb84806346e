package imaged

import (
	"context"
	"fmt"
	"time"
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
}

// GeneratedImage is one image as a provider returned it, before it is checked
// like an upload and stored.
type GeneratedImage struct {
	Data          []byte
	Seed          *int64 // the seed actually used, when the provider tells
	RevisedPrompt string // when the provider rewrote the prompt
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
