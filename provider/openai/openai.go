// Package openai implements imaged.Generator with the OpenAI Images API
// (POST {base}/images/generations, JSON in and out, "Authorization: Bearer
// KEY"). The base URL follows the OpenAI SDKs' convention: it includes the
// version, https://api.openai.com/v1 by default, so that an OpenAI-compatible
// server (LocalAI, vLLM, a LiteLLM proxy) works with the base URL it
// documents.
//
// The models are OpenAI's GPT Image family: gpt-image-1.5 (the default),
// gpt-image-1, gpt-image-1-mini and gpt-image-2. The first three take one of
// three sizes, so each aspect ratio maps to the size of the same orientation:
// 1:1 to 1024x1024, the landscape ratios (16:9, 3:2, 4:3) to 1536x1024 and
// the portrait ones to 1024x1536. gpt-image-2 takes free sizes (both sides
// multiples of 16, a ratio within 3:1, at most 3840 pixels a side and
// 8,294,400 pixels), so every ratio maps to an exact size, at the resolution
// its "resolution" option asks for (see freeSize).
//
// Edits go to POST {base}/images/edits (multipart/form-data, the source as
// image[], the mask as mask), with the same models, sizes and options.
//
// The API's own settings pass through a request's options: quality, background
// (transparent only where the output format has an alpha channel, and not on
// gpt-image-2) and output_format (png, jpeg, webp). Images come back as
// base64 (b64_json); a compatible server's URL answer is downloaded. The
// token usage of each answer is kept with its images. No model takes a seed
// or a negative prompt. The adapter never retries: failures are
// *imaged.Error for refusals and invalid requests, *imaged.UpstreamError for
// everything else, and the service decides whether to try again.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// Defaults for Config fields left empty.
const (
	DefaultBaseURL          = "https://api.openai.com/v1"
	DefaultMaxResponseBytes = upstream.DefaultMaxResponseBytes
)

// providerName is the id the service and its clients use for this provider.
const providerName = "openai"

// Config configures a Generator. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL is the API's base, version included, as the OpenAI SDKs take
	// it (default DefaultBaseURL): requests go to {BaseURL}/images/....
	BaseURL string
	// HTTPClient makes the requests (default: a client without timeout; the
	// caller's context bounds each call).
	HTTPClient *http.Client
	// MaxResponseBytes bounds every response body read, JSON answers and
	// downloaded images alike (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// Models, when not empty, enables only these model ids, in this order:
	// the first one becomes the default.
	Models []string
}

// model is one offered model and how requests for it are built.
type model struct {
	imaged.Model
	fixedSizes map[string]string // aspect ratio -> size; nil for free sizes
}

// Option names, as the API spells them.
const (
	optQuality    = "quality"
	optBackground = "background"
	optFormat     = "output_format"
	optResolution = "resolution" // ours: the size tier of free-size models
)

// options returns the options of a GPT Image model; transparent says
// whether it can make a transparent background, free whether it takes free
// sizes (and so a resolution).
func options(transparent, free bool) []imaged.ModelOption {
	bg := []string{"auto", "opaque"}
	if transparent {
		bg = append(bg, "transparent")
	}
	opts := []imaged.ModelOption{
		{Name: optQuality, Description: "rendering quality (and cost)", Values: []string{"auto", "low", "medium", "high"}, Default: "auto"},
		{Name: optBackground, Description: "background of the image; transparent needs output_format png or webp", Values: bg, Default: "auto"},
		{Name: optFormat, Description: "format of the returned image", Values: []string{"png", "jpeg", "webp"}, Default: "png"},
	}
	if free {
		opts = append(opts, imaged.ModelOption{Name: optResolution,
			Description: "size tier: 1k (about 1 megapixel), 2k (about 4), 4k (up to 3840x2160)", Values: []string{"1k", "2k", "4k"}, Default: "1k"})
	}
	return opts
}

// threeSizes is how the fixed-size models map the ratios.
var threeSizes = map[string]string{
	"1:1":  "1024x1024",
	"16:9": "1536x1024", "4:3": "1536x1024", "3:2": "1536x1024",
	"9:16": "1024x1536", "3:4": "1024x1536", "2:3": "1024x1536",
}

// catalogue lists the models this adapter knows, the default first. Facts
// from the API reference for POST /v1/images/generations.
func catalogue() []model {
	m := func(id, desc string, transparent bool, sizes map[string]string) model {
		return model{
			Model: imaged.Model{
				ID:              id,
				Description:     desc,
				AspectRatios:    []string{"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"},
				MaxImages:       4, // the API allows 10; the service caps at 4
				MaxPromptLength: 32000,
				SupportsEdit:    true,
				SupportsMask:    true,
				Options:         options(transparent, sizes == nil),
				MaxOutputPixels: int64(freeSizes.MaxPixels), // gpt-image-2 at 4k
			},
			fixedSizes: sizes,
		}
	}
	fixed := func(mm model) model {
		mm.MaxOutputPixels = 1536 * 1024
		return mm
	}
	return []model{
		fixed(m("gpt-image-1.5", "OpenAI GPT Image 1.5", true, threeSizes)),
		fixed(m("gpt-image-1", "OpenAI GPT Image 1", true, threeSizes)),
		fixed(m("gpt-image-1-mini", "OpenAI GPT Image 1 mini: faster and cheaper", true, threeSizes)),
		m("gpt-image-2", "OpenAI GPT Image 2: free sizes up to 3840x2160, no transparent background", false, nil),
	}
}

// size returns the size parameter for ratio ar under options opts.
func (m model) size(ar string, opts map[string]string) string {
	if m.fixedSizes != nil {
		return m.fixedSizes[ar]
	}
	w, h := freeSize(ar, opts[optResolution])
	return fmt.Sprintf("%dx%d", w, h)
}

// Generator makes images with the OpenAI Images API. It is safe for
// concurrent use.
type Generator struct {
	apiKey   string
	base     string // {BaseURL}, version included
	upstream *upstream.Client
	models   []model
}

var _ imaged.Generator = (*Generator)(nil)

// New returns a Generator for cfg. It fails without an API key, with a
// BaseURL that is not an http(s) URL, or when cfg.Models names a model this
// adapter does not offer.
func New(cfg Config) (*Generator, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("openai: an API key is required")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	g := &Generator{apiKey: cfg.APIKey, base: base}
	g.upstream = &upstream.Client{
		Provider: providerName,
		HTTP:     cfg.HTTPClient,
		MaxBytes: cfg.MaxResponseBytes,
		MapError: g.statusError,
	}
	if g.models, err = upstream.Select(providerName, catalogue(), cfg.Models, modelID); err != nil {
		return nil, err
	}
	return g, nil
}

func modelID(m model) string         { return m.ID }
func modelInfo(m model) imaged.Model { return m.Model }

// Name returns "openai".
func (g *Generator) Name() string { return providerName }

// Models lists the enabled models, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, modelInfo) }

// Generate makes req.N images (at least one) with req.Model, the default
// model when empty, in one request.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req)
	if err != nil {
		return nil, err
	}
	body := createRequest{
		Model:        m.ID,
		Prompt:       req.Prompt,
		N:            n,
		Size:         m.size(req.AspectRatio, req.Options),
		Quality:      req.Options[optQuality],
		Background:   req.Options[optBackground],
		OutputFormat: req.Options[optFormat],
	}
	hreq, err := upstream.NewJSONRequest(ctx, g.base+"/images/generations", body)
	if err != nil {
		return nil, err
	}
	return g.send(ctx, hreq)
}

// check resolves the model and rejects what it cannot serve, before any
// request is made; it returns the model and the image count. Beyond the
// shared checks, a transparent background needs a format with alpha.
func (g *Generator) check(req imaged.GenerateRequest) (model, int, error) {
	m, n, err := upstream.Check(providerName, g.models, modelInfo, req)
	if err != nil {
		return model{}, 0, err
	}
	if req.Options[optBackground] == "transparent" && req.Options[optFormat] == "jpeg" {
		return model{}, 0, imaged.Errorf(imaged.EInvalidPrompt, "background transparent needs output_format png or webp: JPEG has no alpha channel")
	}
	return m, n, nil
}

// createRequest is the JSON body of POST /v1/images/generations. Options
// left out take the API's defaults.
type createRequest struct {
	Model        string `json:"model"`
	Prompt       string `json:"prompt"`
	N            int    `json:"n"`
	Size         string `json:"size"`
	Quality      string `json:"quality,omitempty"`
	Background   string `json:"background,omitempty"`
	OutputFormat string `json:"output_format,omitempty"`
}

// imagesResponse is the JSON answer of a successful generation or edit.
type imagesResponse struct {
	Created int64 `json:"created"`
	Data    []struct {
		B64JSON       string `json:"b64_json"`
		URL           string `json:"url"`
		RevisedPrompt string `json:"revised_prompt"`
	} `json:"data"`
	Usage *struct {
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		TotalTokens        int64 `json:"total_tokens"`
		InputTokensDetails struct {
			TextTokens  int64 `json:"text_tokens"`
			ImageTokens int64 `json:"image_tokens"`
		} `json:"input_tokens_details"`
	} `json:"usage"`
}

// send makes one generation or edit request and returns its images, each
// carrying the answer's usage.
func (g *Generator) send(ctx context.Context, hreq *http.Request) ([]imaged.GeneratedImage, error) {
	hreq.Header.Set("Authorization", "Bearer "+g.apiKey)
	answer, err := g.upstream.Do(hreq)
	if err != nil {
		return nil, err
	}
	var resp imagesResponse
	if err := json.Unmarshal(answer.Body, &resp); err != nil {
		return nil, g.upstream.Malformed(answer, fmt.Errorf("decoding the answer: %w", err))
	}
	if len(resp.Data) == 0 {
		return nil, g.upstream.Malformed(answer, errors.New("the answer holds no image"))
	}
	var usage *imaged.Usage
	if u := resp.Usage; u != nil {
		usage = &imaged.Usage{
			InputTokens:      u.InputTokens,
			InputTextTokens:  u.InputTokensDetails.TextTokens,
			InputImageTokens: u.InputTokensDetails.ImageTokens,
			OutputTokens:     u.OutputTokens,
			TotalTokens:      u.TotalTokens,
			Images:           len(resp.Data),
		}
	}
	images := make([]imaged.GeneratedImage, 0, len(resp.Data))
	for i, d := range resp.Data {
		var data []byte
		switch {
		case d.B64JSON != "":
			data, err = upstream.DecodeBase64(d.B64JSON)
			if err != nil {
				return nil, g.upstream.Malformed(answer, fmt.Errorf("image %d: b64_json is %w", i, err))
			}
		case d.URL != "":
			data, err = g.download(ctx, answer, d.URL)
			if err != nil {
				return nil, err
			}
		default:
			return nil, g.upstream.Malformed(answer, fmt.Errorf("image %d has neither b64_json nor url", i))
		}
		images = append(images, imaged.GeneratedImage{Data: data, RevisedPrompt: d.RevisedPrompt, Usage: usage})
	}
	return images, nil
}

// download fetches an image a compatible server answered with a URL. The URL
// is signed by the server, so the API key is not sent along.
func (g *Generator) download(ctx context.Context, answer *upstream.Response, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, g.upstream.Malformed(answer, errors.New("the answer holds an image URL that is not http(s)"))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	got, err := g.upstream.Do(hreq)
	if err != nil {
		return nil, err
	}
	return got.Body, nil
}
