// Package stability implements imaged.Generator with the Stability AI REST
// API v2beta "Stable Image" generate endpoints: multipart/form-data POSTs to
// /v2beta/stable-image/generate/core (model "core"), /ultra (model "ultra")
// and /sd3 (models "sd3.5-large", "sd3.5-large-turbo" and "sd3.5-medium",
// named in the form field model), with "Authorization: Bearer KEY" and
// "Accept: image/*" so that the answer is the PNG bytes themselves, the seed
// and the finish reason coming in the headers seed and finish-reason.
//
// The endpoints take the aspect ratio itself (aspect_ratio: 1:1, 16:9, 9:16,
// 3:2, 2:3, 4:5, 5:4, 21:9, 9:21), so a model offers the ratios the service
// and the API have in common, passed through unchanged: 1:1, 16:9, 9:16, 3:2
// and 2:3. There is no 4:3 nor 3:4.
//
// Edits of model core repaint the masked part of the source through
// /v2beta/stable-image/edit/inpaint (see Edit).
//
// One request makes one image; N images are N sequential requests, with
// seeds seed, seed+1, ... when a seed is given (0 asks the API for a random
// seed each time). The adapter never retries: failures are *imaged.Error for
// refusals and invalid requests, *imaged.UpstreamError for everything else,
// and the service decides whether to try again.
package stability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// Defaults for Config fields left empty.
const (
	DefaultBaseURL          = "https://api.stability.ai"
	DefaultMaxResponseBytes = upstream.DefaultMaxResponseBytes
)

// maxSeed is the largest seed the API accepts.
const maxSeed = 4294967294

// providerName is the id the service and its clients use for this provider.
const providerName = "stability"

// Config configures a Generator. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL is the scheme and host the API lives under, without /v2beta
	// (default DefaultBaseURL).
	BaseURL string
	// HTTPClient makes the requests (default: a client without timeout; the
	// caller's context bounds each call).
	HTTPClient *http.Client
	// MaxResponseBytes bounds every response body read (default
	// DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// Models, when not empty, enables only these model ids, in this order:
	// the first one becomes the default.
	Models []string
}

// model is one offered model and where its requests go.
type model struct {
	imaged.Model
	path      string // under {BaseURL}
	formModel string // the model form field, "" when the endpoint has none
}

// ratios are the aspect ratios both imaged and the API know.
var ratios = []string{"1:1", "16:9", "9:16", "3:2", "2:3"}

// catalogue lists the models this adapter knows, the default first. Facts
// from the API reference for the v2beta generate endpoints.
func catalogue() []model {
	m := func(id, desc, path, formModel string, negative bool) model {
		return model{
			Model: imaged.Model{
				ID:                     id,
				Description:            desc,
				AspectRatios:           ratios,
				MaxImages:              4, // one request per image
				MaxPromptLength:        10000,
				SupportsSeed:           true,
				SupportsNegativePrompt: negative,
			},
			path:      path,
			formModel: formModel,
		}
	}
	core := m("core", "Stable Image Core; edits with a mask through the inpaint service", "/v2beta/stable-image/generate/core", "", true)
	core.SupportsEdit, core.SupportsMask = true, true
	return []model{
		core,
		m("ultra", "Stable Image Ultra", "/v2beta/stable-image/generate/ultra", "", true),
		m("sd3.5-large", "Stable Diffusion 3.5 Large", "/v2beta/stable-image/generate/sd3", "sd3.5-large", true),
		// The turbo model runs without guidance: the API documents that a
		// negative prompt does not work with it.
		m("sd3.5-large-turbo", "Stable Diffusion 3.5 Large Turbo", "/v2beta/stable-image/generate/sd3", "sd3.5-large-turbo", false),
		m("sd3.5-medium", "Stable Diffusion 3.5 Medium", "/v2beta/stable-image/generate/sd3", "sd3.5-medium", true),
	}
}

// Generator makes images with the Stability AI API. It is safe for
// concurrent use.
type Generator struct {
	apiKey   string
	baseURL  string
	upstream *upstream.Client
	models   []model
}

var _ imaged.Generator = (*Generator)(nil)

// New returns a Generator for cfg. It fails without an API key, with a
// BaseURL that is not an http(s) URL, or when cfg.Models names a model this
// adapter does not offer.
func New(cfg Config) (*Generator, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("stability: an API key is required")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("stability: %w", err)
	}
	g := &Generator{apiKey: cfg.APIKey, baseURL: base}
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

// Name returns "stability".
func (g *Generator) Name() string { return providerName }

// Models lists the enabled models, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, modelInfo) }

// Generate makes req.N images (at least one) with req.Model, the default
// model when empty, one request each.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req)
	if err != nil {
		return nil, err
	}
	return eachImage(n, req.Seed, func(seed *int64) (imaged.GeneratedImage, error) {
		return g.generateOne(ctx, m, req, seed)
	})
}

// eachImage makes n images one request each, the i-th with seed+i when a
// seed other than 0 (random) was asked for.
func eachImage(n int, seed *int64, one func(seed *int64) (imaged.GeneratedImage, error)) ([]imaged.GeneratedImage, error) {
	images := make([]imaged.GeneratedImage, 0, n)
	for i := range n {
		var s *int64
		if seed != nil && *seed != 0 {
			v := *seed + int64(i)
			s = &v
		}
		img, err := one(s)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return images, nil
}

// check resolves the model and rejects what it cannot serve, before any
// request is made; it returns the model and the image count. Beyond the
// shared checks, the negative prompt has the prompt's limit and every seed
// of the batch must be in the API's range.
func (g *Generator) check(req imaged.GenerateRequest) (model, int, error) {
	m, n, err := upstream.Check(providerName, g.models, modelInfo, req)
	switch {
	case err != nil:
		return model{}, 0, err
	case utf8.RuneCountInString(req.NegativePrompt) > m.MaxPromptLength:
		return model{}, 0, imaged.Errorf(imaged.EInvalidPrompt, "model %q takes negative prompts of at most %d characters", m.ID, m.MaxPromptLength)
	case req.Seed != nil && (*req.Seed < 0 || *req.Seed+int64(n-1) > maxSeed):
		return model{}, 0, imaged.Errorf(imaged.EInvalidPrompt, "the seed must be between 0 and %d, one more for each further image", maxSeed)
	}
	return m, n, nil
}

// generateOne makes one request for one image.
func (g *Generator) generateOne(ctx context.Context, m model, req imaged.GenerateRequest, seed *int64) (imaged.GeneratedImage, error) {
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	fields := [][2]string{{"prompt", req.Prompt}}
	if req.NegativePrompt != "" {
		fields = append(fields, [2]string{"negative_prompt", req.NegativePrompt})
	}
	if m.formModel != "" {
		fields = append(fields, [2]string{"model", m.formModel})
	}
	fields = append(fields, [2]string{"aspect_ratio", req.AspectRatio})
	if seed != nil {
		fields = append(fields, [2]string{"seed", strconv.FormatInt(*seed, 10)})
	}
	fields = append(fields, [2]string{"output_format", "png"})
	for _, f := range fields {
		if err := form.WriteField(f[0], f[1]); err != nil {
			return imaged.GeneratedImage{}, err
		}
	}
	if err := form.Close(); err != nil {
		return imaged.GeneratedImage{}, err
	}

	answer, err := g.post(ctx, m.path, form.FormDataContentType(), &body)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	return g.image(answer, seed)
}

// post sends one multipart request and returns its answer.
func (g *Generator) post(ctx context.Context, path, contentType string, body io.Reader) (*upstream.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+path, body)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+g.apiKey)
	hreq.Header.Set("Content-Type", contentType)
	hreq.Header.Set("Accept", "image/*")
	return g.upstream.Do(hreq)
}

// image reads the image an answer holds: its bytes, the seed in its seed
// header (else the one sent), a finish-reason of CONTENT_FILTERED as a
// content-policy refusal.
func (g *Generator) image(answer *upstream.Response, seed *int64) (imaged.GeneratedImage, error) {
	switch reason := answer.Header.Get("finish-reason"); reason {
	case "", "SUCCESS":
	case "CONTENT_FILTERED":
		return imaged.GeneratedImage{}, errContentPolicy("finish-reason " + reason)
	default:
		return imaged.GeneratedImage{}, g.upstream.Malformed(answer, fmt.Errorf("unknown finish-reason %q", g.redact(reason)))
	}
	if ct := answer.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasPrefix(mt, "image/") {
			return imaged.GeneratedImage{}, g.upstream.Malformed(answer, fmt.Errorf("the answer is %q, not an image", g.redact(ct)))
		}
	}
	if len(answer.Body) == 0 {
		return imaged.GeneratedImage{}, g.upstream.Malformed(answer, errors.New("the answer holds no image"))
	}
	img := imaged.GeneratedImage{Data: answer.Body}
	if s, err := strconv.ParseInt(strings.TrimSpace(answer.Header.Get("seed")), 10, 64); err == nil {
		img.Seed = &s
	} else if seed != nil {
		img.Seed = seed
	}
	return img, nil
}
