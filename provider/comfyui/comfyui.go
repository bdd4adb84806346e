// Package comfyui implements imaged.Generator and imaged.Editor with a
// ComfyUI server, the node-based Stable Diffusion (and FLUX, SD3...) runner
// that self-hosters use. The operator gives one workflow template per model
// in ComfyUI's API format ("Save (API Format)"): a directory of NAME.json
// files (IMAGED_COMFYUI_WORKFLOWS), NAME.edit.json beside one for its edits.
// Without a directory, the template shipped in workflows/ serves
// "sdxl-base" (Stable Diffusion XL base 1.0, text to image and image to
// image).
//
// Templates hold placeholders as JSON strings: {{prompt}}, {{negative_prompt}},
// {{seed}}, {{width}}, {{height}}, {{batch_size}} and, in edit templates,
// {{image}}, {{mask}} and {{strength}}. A model supports a negative prompt,
// a mask or a strength exactly when its template has the placeholder. An
// optional top-level "imaged" object tells the model's description, its
// sizes per aspect ratio (SDXL's by default) and its largest batch.
//
// One generation is: open the /ws WebSocket with a client_id of its own,
// POST /prompt with that client_id and a prompt_id chosen here, follow the
// progress messages (reported through imaged.ReportProgress), and on
// execution_success read the outputs from /history/{prompt_id} and fetch
// each image from /view. Without the WebSocket (a proxy that drops it, a
// connection lost midway), it polls /history/{prompt_id}. A request that is
// cancelled or times out deletes the prompt from the queue and interrupts it
// (POST /queue, POST /interrupt with the prompt_id). A POST /prompt whose
// answer is lost is looked up by its prompt_id before anyone retries, so that
// a retry never runs the workflow twice. A workflow that ComfyUI refuses
// (node_errors) is an error naming the node: INVALID_IMAGE_PROMPT when it
// refused a value of the request (a size, a seed), GENERATION_ERROR when the
// template or the server is at fault (a missing checkpoint).
package comfyui

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// providerName is the id the service and its clients use for this provider.
const providerName = "comfyui"

// Defaults for Config fields left empty.
const (
	DefaultMaxResponseBytes = upstream.DefaultMaxResponseBytes
	DefaultPollInterval     = time.Second
	defaultStrength         = 0.6
	maxSeed                 = 1<<53 - 1 // ComfyUI's seeds are JSON numbers
)

// Config configures a Generator. Only BaseURL is required.
type Config struct {
	// BaseURL is where ComfyUI listens, e.g. http://127.0.0.1:8188.
	BaseURL string
	// Token, when set, is sent as "Authorization: Bearer TOKEN" on every
	// request and the WebSocket: for a reverse proxy in front of ComfyUI.
	Token string
	// Workflows is the directory of templates (NAME.json, NAME.edit.json);
	// empty for the shipped sdxl-base template.
	Workflows string
	// HTTPClient makes the requests and the WebSocket handshake (default: a
	// client without timeout; the caller's context bounds each call).
	HTTPClient *http.Client
	// MaxResponseBytes bounds every body read (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// PollInterval is how often /history is polled without the WebSocket
	// (default DefaultPollInterval).
	PollInterval time.Duration
	// Models, when not empty, enables only these model ids, in this order.
	Models []string
}

// model is one template-backed model.
type model struct {
	imaged.Model
	gen, edit *template
}

// Generator runs workflow templates on a ComfyUI server. It is safe for
// concurrent use.
type Generator struct {
	base     string
	token    string
	hc       *http.Client
	upstream *upstream.Client
	poll     time.Duration
	models   []model
}

var (
	_ imaged.Generator = (*Generator)(nil)
	_ imaged.Editor    = (*Generator)(nil)
)

// New returns a Generator for cfg. It fails on a BaseURL that is not an
// http(s) URL, on a template that is not a valid API-format workflow with
// known placeholders, or when cfg.Models names a model without a template.
func New(cfg Config) (*Generator, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("comfyui: the server URL is required")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, "")
	if err != nil {
		return nil, fmt.Errorf("comfyui: %w", err)
	}
	gen, edit, err := loadTemplates(cfg.Workflows)
	if err != nil {
		return nil, fmt.Errorf("comfyui: %w", err)
	}
	ids := make([]string, 0, len(gen))
	for id := range gen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var catalogue []model
	for _, id := range ids {
		catalogue = append(catalogue, newModel(id, gen[id], edit[id]))
	}
	g := &Generator{base: base, token: cfg.Token, hc: cfg.HTTPClient, poll: cfg.PollInterval}
	if g.hc == nil {
		g.hc = &http.Client{}
	}
	if g.poll <= 0 {
		g.poll = DefaultPollInterval
	}
	g.upstream = &upstream.Client{Provider: providerName, HTTP: g.hc, MaxBytes: cfg.MaxResponseBytes, MapError: g.statusError}
	if g.models, err = upstream.Select(providerName, catalogue, cfg.Models, func(m model) string { return m.ID }); err != nil {
		return nil, err
	}
	return g, nil
}

func newModel(id string, gen, edit *template) model {
	desc := gen.meta.Description
	if desc == "" {
		desc = "ComfyUI workflow " + id
	}
	m := model{gen: gen, edit: edit, Model: imaged.Model{
		ID:                     id,
		Description:            desc,
		AspectRatios:           gen.ratios(),
		MaxImages:              min(gen.meta.MaxImages, 4),
		MaxPromptLength:        10000,
		SupportsSeed:           gen.placeholders[phSeed],
		SupportsNegativePrompt: gen.placeholders[phNegative],
	}}
	for _, t := range []*template{gen, edit} {
		if t == nil {
			continue
		}
		for _, s := range t.sizes {
			m.MaxOutputPixels = max(m.MaxOutputPixels, int64(s[0])*int64(s[1]))
		}
	}
	if edit != nil {
		m.SupportsEdit = true
		m.SupportsMask = edit.placeholders[phMask]
		m.SupportsStrength = edit.placeholders[phStrength]
	}
	return m
}

func modelInfo(m model) imaged.Model { return m.Model }

// Name returns "comfyui".
func (g *Generator) Name() string { return providerName }

// Models lists the enabled models, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, modelInfo) }

// Generate runs the model's text-to-image workflow once, for a batch of
// req.N images.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := upstream.Check(providerName, g.models, modelInfo, req)
	if err != nil {
		return nil, err
	}
	values, seed := g.values(m.gen, req, n)
	return g.run(ctx, m, m.gen, values, seed, n)
}

// Edit uploads the source (and the mask) and runs the model's edit workflow.
func (g *Generator) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := upstream.Check(providerName, g.models, modelInfo, req.GenerateRequest)
	if err != nil {
		return nil, err
	}
	switch {
	case m.edit == nil:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q has no edit workflow", m.ID)
	case req.Mask != nil && !m.SupportsMask:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a mask", m.ID)
	case req.Strength != nil && !m.SupportsStrength:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a strength", m.ID)
	}
	if _, ok := m.edit.sizes[req.AspectRatio]; !ok {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "aspect ratio %q is not supported by the edit workflow of model %q", req.AspectRatio, m.ID)
	}
	values, seed := g.values(m.edit, req.GenerateRequest, n)
	if values[phImage], err = g.upload(ctx, req.Image, "source"); err != nil {
		return nil, err
	}
	if req.Mask != nil {
		if values[phMask], err = g.upload(ctx, *req.Mask, "mask"); err != nil {
			return nil, err
		}
	}
	values[phStrength] = defaultStrength
	if req.Strength != nil {
		values[phStrength] = *req.Strength
	}
	return g.run(ctx, m, m.edit, values, seed, n)
}

// values are the placeholder values of a request; the seed is the
// request's or a random one (ComfyUI's samplers need one).
func (g *Generator) values(t *template, req imaged.GenerateRequest, n int) (map[string]any, int64) {
	var seed int64
	if req.Seed != nil {
		seed = *req.Seed
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.BigEndian.Uint64(b[:]) % (1 << 32))
	}
	size := t.sizes[req.AspectRatio]
	return map[string]any{
		phPrompt:    req.Prompt,
		phNegative:  req.NegativePrompt,
		phSeed:      seed,
		phWidth:     size[0],
		phHeight:    size[1],
		phBatchSize: n,
	}, seed
}

// statusError maps a non-2xx answer: a refused workflow (400 with
// node_errors) is a *refusal for submit to map, the rest maps by status.
func (g *Generator) statusError(r *upstream.Response) error {
	if ref := parseRefusal(r); ref != nil {
		return ref
	}
	detail := http.StatusText(r.Status)
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		if s := strings.TrimSpace(string(r.Body)); s != "" {
			detail += ": " + upstream.Truncate(upstream.Redact(s, g.token), 300)
		}
	}
	return g.upstream.StatusError(r, errors.New(detail))
}

// header adds the proxy token, when there is one.
func (g *Generator) header(h http.Header) {
	if g.token != "" {
		h.Set("Authorization", "Bearer "+g.token)
	}
}
