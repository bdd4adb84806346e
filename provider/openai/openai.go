// Package openai implements imaged.Generator with the OpenAI Images API
// (POST /v1/images/generations, JSON in and out, "Authorization: Bearer KEY").
// BaseURL is configurable, so any OpenAI-compatible server works too.
//
// Two models are offered, gpt-image-1 (the default) and dall-e-3. Neither
// takes an aspect ratio, only one of three sizes, so each ratio maps to the
// size of the same orientation: 1:1 to the square size, the landscape ratios
// (16:9, 3:2, 4:3) to the wide size (1536x1024, or 1792x1024 for dall-e-3) and
// the portrait ones (9:16, 2:3, 3:4) to the tall size (1024x1536, or
// 1024x1792). Images come back as base64 (b64_json), except that a dall-e-3
// answer with a URL is downloaded.
//
// gpt-image-1 makes several images in one request (n); dall-e-3 accepts only
// n=1, so N images are N sequential requests. Neither model takes a seed or a
// negative prompt. The adapter never retries: failures are *imaged.Error for
// refusals and invalid requests, *imaged.UpstreamError for everything else,
// and the service decides whether to try again.
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
	DefaultBaseURL          = "https://api.openai.com"
	DefaultMaxResponseBytes = upstream.DefaultMaxResponseBytes
)

// providerName is the id the service and its clients use for this provider.
const providerName = "openai"

// Config configures a Generator. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL is the scheme and host the API lives under, without /v1
	// (default DefaultBaseURL).
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
	sizes          map[string]string // aspect ratio -> size parameter
	oneImagePerRun bool              // the API accepts only n=1
	responseFormat string            // "" when the model rejects the parameter
	outputFormat   string            // "" when the model rejects the parameter
}

// catalogue lists the models this adapter knows, the default first. Facts
// from the API reference for POST /v1/images/generations.
func catalogue() []model {
	return []model{
		{
			Model: imaged.Model{
				ID:              "gpt-image-1",
				Description:     "OpenAI GPT Image 1",
				AspectRatios:    []string{"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"},
				MaxImages:       4, // the API allows 10; the service caps at 4
				MaxPromptLength: 32000,
			},
			sizes: map[string]string{
				"1:1":  "1024x1024",
				"16:9": "1536x1024", "4:3": "1536x1024", "3:2": "1536x1024",
				"9:16": "1024x1536", "3:4": "1024x1536", "2:3": "1024x1536",
			},
			outputFormat: "png",
		},
		{
			Model: imaged.Model{
				ID:              "dall-e-3",
				Description:     "OpenAI DALL·E 3",
				AspectRatios:    []string{"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"},
				MaxImages:       4, // one request per image
				MaxPromptLength: 4000,
			},
			sizes: map[string]string{
				"1:1":  "1024x1024",
				"16:9": "1792x1024", "4:3": "1792x1024", "3:2": "1792x1024",
				"9:16": "1024x1792", "3:4": "1024x1792", "2:3": "1024x1792",
			},
			oneImagePerRun: true,
			responseFormat: "b64_json",
		},
	}
}

// Generator makes images with the OpenAI Images API. It is safe for
// concurrent use.
type Generator struct {
	apiKey   string
	endpoint string // {BaseURL}/v1/images/generations
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
	g := &Generator{apiKey: cfg.APIKey, endpoint: base + "/v1/images/generations"}
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
// model when empty.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req)
	if err != nil {
		return nil, err
	}
	body := createRequest{
		Model:          m.ID,
		Prompt:         req.Prompt,
		N:              n,
		Size:           m.sizes[req.AspectRatio],
		ResponseFormat: m.responseFormat,
		OutputFormat:   m.outputFormat,
	}
	if !m.oneImagePerRun {
		return g.create(ctx, body)
	}
	body.N = 1
	images := make([]imaged.GeneratedImage, 0, n)
	for range n {
		got, err := g.create(ctx, body)
		if err != nil {
			return nil, err
		}
		images = append(images, got...)
	}
	return images, nil
}

// check resolves the model and rejects what it cannot serve, before any
// request is made; it returns the model and the image count.
func (g *Generator) check(req imaged.GenerateRequest) (model, int, error) {
	return upstream.Check(providerName, g.models, modelInfo, req)
}

// createRequest is the JSON body of POST /v1/images/generations.
type createRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              int    `json:"n"`
	Size           string `json:"size"`
	ResponseFormat string `json:"response_format,omitempty"` // dall-e-2/3 only
	OutputFormat   string `json:"output_format,omitempty"`   // GPT image models only
}

// imagesResponse is the JSON answer of a successful generation.
type imagesResponse struct {
	Created int64 `json:"created"`
	Data    []struct {
		B64JSON       string `json:"b64_json"`
		URL           string `json:"url"`
		RevisedPrompt string `json:"revised_prompt"`
	} `json:"data"`
}

// create makes one generation request and returns its images.
func (g *Generator) create(ctx context.Context, body createRequest) ([]imaged.GeneratedImage, error) {
	hreq, err := upstream.NewJSONRequest(ctx, g.endpoint, body)
	if err != nil {
		return nil, err
	}
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
		images = append(images, imaged.GeneratedImage{Data: data, RevisedPrompt: d.RevisedPrompt})
	}
	return images, nil
}

// download fetches an image the API answered with a URL. The URL is signed
// by the provider, so the API key is not sent along.
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
