// Package google generates images with Google's Imagen models through the
// Gemini API.
//
// The adapter targets POST {BaseURL}/v1beta/models/{model}:predict on
// generativelanguage.googleapis.com. The API key travels in the x-goog-api-key
// header, never in the URL, so that it cannot land in an access log. One call
// asks for all N images: instances[0].prompt carries the prompt and
// parameters.sampleCount the count (1 to 4).
//
// Aspect ratios map one to one: the request's ratio is sent unchanged as
// parameters.aspectRatio. Imagen draws 1:1, 3:4, 4:3, 9:16 and 16:9 and rejects
// anything else, so no model lists 3:2 or 2:3.
//
// Imagen's safety filters drop images after generation: the answer then holds
// fewer predictions, or predictions that carry a raiFilteredReason instead of
// bytes. Some prompts are refused before generation with a 400. An answer
// without a single image, and such a refusal, are reported as
// imaged.EContentPolicy. The Gemini API takes neither a seed nor a negative
// prompt for Imagen (only Vertex AI does), so no model claims either.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// providerName is the id of this provider in requests and errors.
const providerName = "google"

// DefaultBaseURL is the public Gemini API.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// DefaultMaxResponseBytes bounds an answer when Config.MaxResponseBytes is zero.
const DefaultMaxResponseBytes int64 = upstream.DefaultMaxResponseBytes

// Imagen takes prompts of up to 480 tokens; at roughly four characters a token
// that is about 1,920 characters.
const maxPromptLength = 1920

// imagenRatios are the ratios every Imagen model on the Gemini API serves.
var imagenRatios = []string{"1:1", "3:4", "4:3", "9:16", "16:9"}

// catalog lists the Imagen models of the Gemini API, the default first.
var catalog = []imaged.Model{
	{
		ID:              "imagen-4.0-generate-001",
		Description:     "Imagen 4: Google's standard text-to-image model, balancing quality and speed",
		AspectRatios:    imagenRatios,
		MaxImages:       4,
		MaxPromptLength: maxPromptLength,
	},
	{
		ID:              "imagen-4.0-ultra-generate-001",
		Description:     "Imagen 4 Ultra: the highest quality and prompt adherence, slower",
		AspectRatios:    imagenRatios,
		MaxImages:       4,
		MaxPromptLength: maxPromptLength,
	},
	{
		ID:              "imagen-4.0-fast-generate-001",
		Description:     "Imagen 4 Fast: lower latency and cost, for drafts",
		AspectRatios:    imagenRatios,
		MaxImages:       4,
		MaxPromptLength: maxPromptLength,
	},
}

// Config configures a Generator.
type Config struct {
	// APIKey is a Gemini API key. Required.
	APIKey string
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// HTTPClient defaults to a client without a timeout: the request's
	// context bounds each call.
	HTTPClient *http.Client
	// MaxResponseBytes bounds an answer; it defaults to 64 MiB.
	MaxResponseBytes int64
	// Models, when not empty, restricts the enabled models to these ids, in
	// this order; the first is the default.
	Models []string
	// PersonGeneration, when set, is sent as parameters.personGeneration:
	// "dont_allow", "allow_adult" or "allow_all". Empty leaves Google's default.
	PersonGeneration string
}

// Generator makes images with Imagen. It is safe for concurrent use.
type Generator struct {
	apiKey           string
	baseURL          string
	upstream         *upstream.Client
	models           []imaged.Model
	personGeneration string
}

var _ imaged.Generator = (*Generator)(nil)

// New returns a Generator, or an error when cfg cannot work.
func New(cfg Config) (*Generator, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("google: an API key is required")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("google: %w", err)
	}
	switch cfg.PersonGeneration {
	case "", "dont_allow", "allow_adult", "allow_all":
	default:
		return nil, fmt.Errorf("google: person generation %q is not one of dont_allow, allow_adult, allow_all", cfg.PersonGeneration)
	}
	models, err := upstream.Select(providerName, catalog, cfg.Models, func(m imaged.Model) string { return m.ID })
	if err != nil {
		return nil, err
	}
	g := &Generator{
		apiKey:           cfg.APIKey,
		baseURL:          base,
		models:           models,
		personGeneration: cfg.PersonGeneration,
	}
	g.upstream = &upstream.Client{
		Provider: providerName,
		HTTP:     cfg.HTTPClient,
		MaxBytes: cfg.MaxResponseBytes,
		MapError: g.statusError,
	}
	return g, nil
}

// Name returns "google".
func (g *Generator) Name() string { return providerName }

// Models returns the enabled Imagen models, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, sameModel) }

type predictRequest struct {
	Instances  []predictInstance `json:"instances"`
	Parameters predictParameters `json:"parameters"`
}

type predictInstance struct {
	Prompt string `json:"prompt"`
}

type predictParameters struct {
	SampleCount      int    `json:"sampleCount"`
	AspectRatio      string `json:"aspectRatio"`
	PersonGeneration string `json:"personGeneration,omitempty"`
	IncludeRAIReason bool   `json:"includeRaiReason"`
}

type predictResponse struct {
	Predictions []prediction `json:"predictions"`
}

type prediction struct {
	BytesBase64Encoded string `json:"bytesBase64Encoded"`
	MIMEType           string `json:"mimeType"`
	RAIFilteredReason  string `json:"raiFilteredReason"`
	// Prompt is the rewritten prompt when Imagen's prompt enhancer ran.
	Prompt string `json:"prompt"`
}

// Generate makes req.N images (one when N is zero) with req.Model, or the
// default model when it is empty.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.validate(req)
	if err != nil {
		return nil, err
	}
	httpReq, err := upstream.NewJSONRequest(ctx, g.baseURL+"/v1beta/models/"+m.ID+":predict", predictRequest{
		Instances: []predictInstance{{Prompt: req.Prompt}},
		Parameters: predictParameters{
			SampleCount:      n,
			AspectRatio:      req.AspectRatio,
			PersonGeneration: g.personGeneration,
			IncludeRAIReason: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("google: %w", err)
	}
	httpReq.Header.Set("x-goog-api-key", g.apiKey)

	answer, err := g.upstream.Do(httpReq)
	if err != nil {
		return nil, err
	}
	return g.decodeImages(answer)
}

func (g *Generator) validate(req imaged.GenerateRequest) (imaged.Model, int, error) {
	return upstream.Check(providerName, g.models, sameModel, req)
}

func sameModel(m imaged.Model) imaged.Model { return m }

// decodeImages turns a 200 answer into images. Filtered predictions are
// skipped; an answer without any image is a content-policy refusal.
func (g *Generator) decodeImages(r *upstream.Response) ([]imaged.GeneratedImage, error) {
	var answer predictResponse
	if err := json.Unmarshal(r.Body, &answer); err != nil {
		return nil, g.upstream.Malformed(r, fmt.Errorf("decode answer: %w", err))
	}
	var images []imaged.GeneratedImage
	var filtered []string
	for i, p := range answer.Predictions {
		if p.BytesBase64Encoded == "" {
			if p.RAIFilteredReason != "" {
				filtered = append(filtered, p.RAIFilteredReason)
			}
			continue
		}
		raw, err := upstream.DecodeBase64(p.BytesBase64Encoded)
		if err != nil {
			return nil, g.upstream.Malformed(r, fmt.Errorf("prediction %d: image is %w", i, err))
		}
		images = append(images, imaged.GeneratedImage{Data: raw, RevisedPrompt: p.Prompt})
	}
	if len(images) == 0 {
		cause := errors.New("the answer holds no image")
		if len(filtered) > 0 {
			cause = fmt.Errorf("every image was filtered: %s", upstream.Truncate(filtered[0], detailLimit))
		}
		return nil, upstream.ContentPolicy(cause)
	}
	return images, nil
}

// detailLimit bounds the provider text kept in an error.
const detailLimit = 500

// apiError is Google's error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

// statusError classifies a non-2xx answer. The detail it keeps is Google's
// status and message, with the API key cut out: Google echoes a rejected key
// in its debug details.
func (g *Generator) statusError(r *upstream.Response) error {
	var body apiError
	_ = json.Unmarshal(r.Body, &body) // a proxy may answer with anything; the status still counts
	e := body.Error
	msg := e.Message
	if msg == "" {
		msg = strings.TrimSpace(string(r.Body))
	}
	msg = upstream.Truncate(upstream.Redact(msg, g.apiKey), detailLimit)
	var reason string
	var retryDelay time.Duration
	for _, d := range e.Details {
		if d.Reason != "" && reason == "" {
			reason = d.Reason
		}
		if d.RetryDelay != "" {
			retryDelay, _ = time.ParseDuration(d.RetryDelay)
		}
	}
	status := e.Status
	if status == "" {
		status = http.StatusText(r.Status)
	}
	cause := fmt.Errorf("%s: %s", status, msg)
	if reason != "" {
		cause = fmt.Errorf("%s (%s): %s", status, reason, msg)
	}
	if r.Status == http.StatusBadRequest && refusedByPolicy(e.Message) {
		return upstream.ContentPolicy(cause)
	}
	// 429 and 5xx are retryable; anything else is for the operator or the
	// caller to fix, not for a retry: a bad key (400 with reason
	// API_KEY_INVALID), 401, 403 PERMISSION_DENIED, 404 NOT_FOUND, other 400s.
	ue := g.upstream.StatusError(r, cause)
	if r.Status == http.StatusTooManyRequests && ue.RetryAfter == 0 {
		// Quota errors say how long to wait in a RetryInfo detail.
		ue.RetryAfter = retryDelay
	}
	return ue
}

// refusedByPolicy reports whether a 400 message is Imagen refusing the prompt
// itself, as in "This prompt contains sensitive words that violate Google's
// Responsible AI practices".
func refusedByPolicy(message string) bool {
	m := strings.ToLower(message)
	for _, s := range []string{"responsible ai", "sensitive words", "violate", "usage guidelines", "prohibited"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
