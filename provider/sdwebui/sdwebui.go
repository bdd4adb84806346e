// Package sdwebui generates images with a self-hosted AUTOMATIC1111 Stable
// Diffusion web UI started with --api.
//
// The adapter targets POST {BaseURL}/sdapi/v1/txt2img, with HTTP basic auth
// when the server runs with --api-auth. One call makes all N images as one
// batch (batch_size N, n_iter 1).
//
// An aspect ratio becomes a width and a height: the long side is
// Config.BaseSize (1024 by default, SDXL's native size; 512 suits SD 1.5) and
// the short side follows the ratio, rounded to a multiple of 8 as the latent
// space requires. At 1024, 16:9 is 1024x576, 4:3 is 1024x768 and 2:3 is
// 680x1024. Every ratio of imaged.AspectRatios is served.
//
// A model is a checkpoint title as the server's /sdapi/v1/sd-models lists it.
// Any model but "default" is sent as override_settings.sd_model_checkpoint;
// "default" keeps the checkpoint the server has loaded. The seeds the server
// used are read from the answer's info (all_seeds) and reported per image.
// The server has no content policy of its own, so this adapter never reports
// one.
package sdwebui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// providerName is the id of this provider in requests and errors.
const providerName = "sdwebui"

// DefaultModel is the model id that means the server's current checkpoint.
const DefaultModel = "default"

// Defaults for the zero values of Config.
const (
	DefaultMaxResponseBytes int64   = upstream.DefaultMaxResponseBytes
	DefaultBaseSize                 = 1024
	DefaultSteps                    = 25
	DefaultCFGScale         float64 = 7
	DefaultMaxImages                = 4
)

// The web UI splits long prompts into 75-token chunks, so it has no hard
// limit; this bound only keeps requests sane.
const maxPromptLength = 4000

// Config configures a Generator.
type Config struct {
	// APIKey must stay empty: the web UI has no API keys and authenticates
	// with Username and Password. It is here so that every provider shares
	// one configuration shape, and New refuses a key rather than ignore it.
	APIKey string
	// BaseURL is the web UI's address, such as http://127.0.0.1:7860. Required.
	BaseURL string
	// HTTPClient defaults to a client without a timeout: the request's
	// context bounds each call.
	HTTPClient *http.Client
	// MaxResponseBytes bounds an answer; it defaults to 64 MiB.
	MaxResponseBytes int64
	// Models are checkpoint titles, the first the default. Empty means
	// DefaultModel alone.
	Models []string

	// Username and Password are sent with HTTP basic auth when Username is
	// set, for a server started with --api-auth.
	Username string
	Password string
	// BaseSize is the long side of an image in pixels, a multiple of 8;
	// it defaults to 1024.
	BaseSize int
	// Steps are the sampling steps; they default to 25.
	Steps int
	// CFGScale is the classifier-free guidance scale; it defaults to 7.
	CFGScale float64
	// Sampler is sent as sampler_name when set, such as "DPM++ 2M".
	Sampler string
	// MaxImages is the largest batch the server is trusted with; it
	// defaults to 4.
	MaxImages int
}

// Generator makes images with a Stable Diffusion web UI. It is safe for
// concurrent use.
type Generator struct {
	endpoint string
	upstream *upstream.Client
	models   []imaged.Model
	username string
	password string
	baseSize int
	steps    int
	cfgScale float64
	sampler  string
}

var _ imaged.Generator = (*Generator)(nil)

// New returns a Generator, or an error when cfg cannot work.
func New(cfg Config) (*Generator, error) {
	if cfg.APIKey != "" {
		return nil, errors.New("sdwebui: the web UI takes no API key; set Username and Password for --api-auth")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("sdwebui: a base URL is required, such as http://127.0.0.1:7860")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, "")
	if err != nil {
		return nil, fmt.Errorf("sdwebui: %w", err)
	}
	if u, _ := url.Parse(base); u.User != nil {
		return nil, errors.New("sdwebui: put credentials in Username and Password, not in the base URL")
	}
	g := &Generator{
		endpoint: base + "/sdapi/v1/txt2img",
		username: cfg.Username,
		password: cfg.Password,
		baseSize: cfg.BaseSize,
		steps:    cfg.Steps,
		cfgScale: cfg.CFGScale,
		sampler:  cfg.Sampler,
	}
	g.upstream = &upstream.Client{
		Provider: providerName,
		HTTP:     cfg.HTTPClient,
		MaxBytes: cfg.MaxResponseBytes,
		MapError: g.statusError,
	}
	if g.baseSize == 0 {
		g.baseSize = DefaultBaseSize
	}
	if g.baseSize < 64 || g.baseSize%8 != 0 {
		return nil, fmt.Errorf("sdwebui: base size %d is not a multiple of 8 of at least 64", g.baseSize)
	}
	if g.steps == 0 {
		g.steps = DefaultSteps
	}
	if g.steps < 1 {
		return nil, fmt.Errorf("sdwebui: %d steps is not positive", g.steps)
	}
	if g.cfgScale == 0 {
		g.cfgScale = DefaultCFGScale
	}
	if g.cfgScale < 0 {
		return nil, fmt.Errorf("sdwebui: CFG scale %v is negative", g.cfgScale)
	}
	maxImages := cfg.MaxImages
	if maxImages == 0 {
		maxImages = DefaultMaxImages
	}
	if maxImages < 1 {
		return nil, fmt.Errorf("sdwebui: max images %d is not positive", maxImages)
	}
	ids := cfg.Models
	if len(ids) == 0 {
		ids = []string{DefaultModel}
	}
	for _, id := range ids {
		if strings.TrimSpace(id) == "" {
			return nil, errors.New("sdwebui: a model name is empty")
		}
		if slices.ContainsFunc(g.models, func(m imaged.Model) bool { return m.ID == id }) {
			continue
		}
		desc := fmt.Sprintf("Stable Diffusion checkpoint %s on the web UI server", id)
		if id == DefaultModel {
			desc = "The checkpoint currently loaded on the Stable Diffusion web UI server"
		}
		g.models = append(g.models, imaged.Model{
			ID:                     id,
			Description:            desc,
			AspectRatios:           slices.Clone(imaged.AspectRatios),
			MaxImages:              maxImages,
			MaxPromptLength:        maxPromptLength,
			SupportsSeed:           true,
			SupportsNegativePrompt: true,
			MaxOutputPixels:        maxPixels(g.baseSize),
		})
	}
	return g, nil
}

// maxPixels is the largest width x height of the sizes base gives.
func maxPixels(base int) int64 {
	var most int64
	for _, ar := range imaged.AspectRatios {
		if w, h, err := size(ar, base); err == nil {
			most = max(most, int64(w)*int64(h))
		}
	}
	return most
}

// Name returns "sdwebui".
func (g *Generator) Name() string { return providerName }

// Models returns the configured checkpoints, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, sameModel) }

// size returns the width and height for an aspect ratio "W:H" whose long side
// is base pixels, the short side rounded to a multiple of 8.
func size(aspectRatio string, base int) (width, height int, err error) {
	ws, hs, ok := strings.Cut(aspectRatio, ":")
	w, errW := strconv.Atoi(ws)
	h, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || w < 1 || h < 1 {
		return 0, 0, fmt.Errorf("aspect ratio %q is not of the form W:H", aspectRatio)
	}
	short := func(small, large int) int {
		s := int(math.Round(float64(base)*float64(small)/float64(large)/8)) * 8
		return max(s, 8)
	}
	if w >= h {
		return base, short(h, w), nil
	}
	return short(w, h), base, nil
}

type txt2imgRequest struct {
	Prompt           string            `json:"prompt"`
	NegativePrompt   string            `json:"negative_prompt"`
	Width            int               `json:"width"`
	Height           int               `json:"height"`
	Steps            int               `json:"steps"`
	CFGScale         float64           `json:"cfg_scale"`
	Seed             int64             `json:"seed"`
	BatchSize        int               `json:"batch_size"`
	NIter            int               `json:"n_iter"`
	SamplerName      string            `json:"sampler_name,omitempty"`
	OverrideSettings map[string]string `json:"override_settings,omitempty"`
	SendImages       bool              `json:"send_images"`
	SaveImages       bool              `json:"save_images"`
}

type txt2imgResponse struct {
	Images []string `json:"images"`
	// Info is a JSON document in a string.
	Info string `json:"info"`
}

type generationInfo struct {
	Seed              *int64  `json:"seed"`
	AllSeeds          []int64 `json:"all_seeds"`
	IndexOfFirstImage int     `json:"index_of_first_image"`
}

// Generate makes req.N images (one when N is zero) with req.Model, or the
// default model when it is empty.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.validate(req)
	if err != nil {
		return nil, err
	}
	width, height, err := size(req.AspectRatio, g.baseSize)
	if err != nil {
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "aspect ratio %q is not supported by model %q", req.AspectRatio, m.ID)
	}
	seed := int64(-1)
	if req.Seed != nil {
		seed = *req.Seed
	}
	body := txt2imgRequest{
		Prompt:         req.Prompt,
		NegativePrompt: req.NegativePrompt,
		Width:          width,
		Height:         height,
		Steps:          g.steps,
		CFGScale:       g.cfgScale,
		Seed:           seed,
		BatchSize:      n,
		NIter:          1,
		SamplerName:    g.sampler,
		SendImages:     true,
	}
	if m.ID != DefaultModel {
		body.OverrideSettings = map[string]string{"sd_model_checkpoint": m.ID}
	}
	httpReq, err := upstream.NewJSONRequest(ctx, g.endpoint, body)
	if err != nil {
		return nil, fmt.Errorf("sdwebui: %w", err)
	}
	if g.username != "" {
		httpReq.SetBasicAuth(g.username, g.password)
	}

	answer, err := g.upstream.Do(httpReq)
	if err != nil {
		return nil, err
	}
	return g.decodeImages(answer, n)
}

func (g *Generator) validate(req imaged.GenerateRequest) (imaged.Model, int, error) {
	return upstream.Check(providerName, g.models, sameModel, req)
}

func sameModel(m imaged.Model) imaged.Model { return m }

// decodeImages turns a 200 answer into at most n images with their seeds.
// A grid, which the server puts first when asked to save one, is skipped
// with info's index_of_first_image; images that scripts append after the
// batch (ControlNet's detected maps, for one) are dropped.
func (g *Generator) decodeImages(r *upstream.Response, n int) ([]imaged.GeneratedImage, error) {
	var answer txt2imgResponse
	if err := json.Unmarshal(r.Body, &answer); err != nil {
		return nil, g.upstream.Malformed(r, fmt.Errorf("decode answer: %w", err))
	}
	var info generationInfo
	if answer.Info != "" {
		// info only adds seeds: an answer whose info does not parse still
		// carries its images.
		_ = json.Unmarshal([]byte(answer.Info), &info)
	}
	first := info.IndexOfFirstImage
	if first < 0 || first > len(answer.Images) {
		first = 0
	}
	batch := answer.Images[first:]
	if len(batch) > n {
		batch = batch[:n]
	}
	if len(batch) == 0 {
		return nil, g.upstream.Malformed(r, errors.New("the answer holds no image"))
	}
	images := make([]imaged.GeneratedImage, 0, len(batch))
	for i, b64 := range batch {
		raw, err := upstream.DecodeBase64(b64)
		if err != nil {
			return nil, g.upstream.Malformed(r, fmt.Errorf("image %d is %w", i, err))
		}
		img := imaged.GeneratedImage{Data: raw}
		switch {
		case i < len(info.AllSeeds):
			s := info.AllSeeds[i]
			img.Seed = &s
		case len(batch) == 1 && info.Seed != nil:
			s := *info.Seed
			img.Seed = &s
		}
		images = append(images, img)
	}
	return images, nil
}

// errorBody is the web UI's error answer. Its own errors carry error,
// detail and errors; FastAPI's request validation (422) carries detail as a
// list of {loc, msg, type}.
type errorBody struct {
	Error  string          `json:"error"`
	Detail json.RawMessage `json:"detail"`
	Errors string          `json:"errors"`
}

type validationIssue struct {
	Loc []any  `json:"loc"`
	Msg string `json:"msg"`
}

// statusError classifies a non-2xx answer. 5xx (out of GPU memory, a
// checkpoint still loading, a proxy in front) and 429 may pass and are
// retried; the server's own words go to the log without the password.
func (g *Generator) statusError(r *upstream.Response) error {
	detail := upstream.Truncate(upstream.Redact(describe(r.Body), g.password), 500)
	return g.upstream.StatusError(r, fmt.Errorf("%s: %s", http.StatusText(r.Status), detail))
}

// describe summarises an error body for the log.
func describe(data []byte) string {
	var body errorBody
	if err := json.Unmarshal(data, &body); err != nil {
		return strings.TrimSpace(string(data))
	}
	var parts []string
	if body.Error != "" {
		parts = append(parts, body.Error)
	}
	var detail string
	var issues []validationIssue
	if json.Unmarshal(body.Detail, &detail) == nil && detail != "" {
		parts = append(parts, detail)
	} else if json.Unmarshal(body.Detail, &issues) == nil {
		for _, is := range issues {
			loc := make([]string, len(is.Loc))
			for i, l := range is.Loc {
				loc[i] = fmt.Sprint(l)
			}
			parts = append(parts, strings.Join(loc, ".")+": "+is.Msg)
		}
	}
	if body.Errors != "" {
		parts = append(parts, body.Errors)
	}
	if len(parts) == 0 {
		return strings.TrimSpace(string(data))
	}
	return strings.Join(parts, "; ")
}
