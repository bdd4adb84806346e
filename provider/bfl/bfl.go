// Package bfl implements imaged.Generator and imaged.Editor with the Black
// Forest Labs FLUX API: POST {base}/v1/{model} with the key in the x-key
// header submits a task and answers its id and polling_url; the adapter then
// polls the polling_url exactly as returned (the API may route a task to a
// regional host, and the docs require polling there), with the key, until
// the task's status is Ready, and fetches the result's sample URL at once:
// it is signed and expires after 10 minutes.
//
// Models: flux-2-pro (the default) and flux-2-flex take a width and height,
// multiples of 16 up to 4 megapixels; flux-pro-1.1 multiples of 32 from 256
// to 1440; each aspect ratio maps to the exact size of about a megapixel
// (upstream.ExactSize). flux-pro-1.1-ultra and flux-kontext-pro take the
// aspect ratio itself. Edits send the source as input_image (base64):
// flux-kontext-pro is the editing model, flux-2-pro and flux-2-flex edit
// too. One task makes one image; N images are N tasks run together, seeds
// seed, seed+1, ... when a seed is given.
//
// Statuses: Pending (polled again), Ready, Request Moderated and Content
// Moderated (400 CONTENT_POLICY_VIOLATION), Error and Task not found
// (failures that a retry would not mend). The concurrency limit's 429 is
// retried by the service like any rate limit. The credits a task cost are
// kept as its usage.
package bfl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// providerName is the id the service and its clients use for this provider.
const providerName = "bfl"

// Defaults for Config fields left empty.
const (
	DefaultBaseURL          = "https://api.bfl.ai"
	DefaultMaxResponseBytes = upstream.DefaultMaxResponseBytes
	DefaultPollInterval     = 500 * time.Millisecond
	maxSeed                 = 4294967295
)

// Config configures a Generator. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL is where tasks are submitted (default DefaultBaseURL; a
	// regional one such as https://api.eu.bfl.ai keeps data in a region).
	BaseURL string
	// HTTPClient makes the requests (default: a client without timeout; the
	// caller's context bounds each call).
	HTTPClient *http.Client
	// MaxResponseBytes bounds every body read (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// PollInterval is the wait between two polls of a task (default
	// DefaultPollInterval).
	PollInterval time.Duration
	// Models, when not empty, enables only these model ids, in this order.
	Models []string
}

// model is one offered model and how its requests are built.
type model struct {
	imaged.Model
	sizes     *upstream.SizeRule // nil: the API takes aspect_ratio
	inputName string             // the edit's image field, "" when it cannot edit
}

var (
	flux2Sizes  = upstream.SizeRule{Step: 16, MinSide: 64, MaxSide: 2048, MaxPixels: 2048 * 2048}
	flux11Sizes = upstream.SizeRule{Step: 32, MinSide: 256, MaxSide: 1440, MaxPixels: 1440 * 1440}
)

// megapixel is the budget of the sizes chosen for a ratio.
const megapixel = 1024 * 1024

func options(safetyMax int, extra ...imaged.ModelOption) []imaged.ModelOption {
	levels := make([]string, safetyMax+1)
	for i := range levels {
		levels[i] = strconv.Itoa(i)
	}
	return append([]imaged.ModelOption{
		{Name: "output_format", Description: "format of the returned image", Values: []string{"jpeg", "png"}, Default: "jpeg"},
		{Name: "safety_tolerance", Description: "moderation of input and output, 0 the strictest", Values: levels, Default: "2"},
	}, extra...)
}

// catalogue lists the models this adapter knows, the default first. Facts
// from the API reference at docs.bfl.ai.
func catalogue() []model {
	m := func(id, desc string, sizes *upstream.SizeRule, input string, opts []imaged.ModelOption) model {
		// The largest output: of the sizes chosen for the ratios, or what
		// the API documents for a model that takes the ratio (Ultra: 4
		// megapixels; Kontext: about 1).
		most := int64(megapixel)
		if id == "flux-pro-1.1-ultra" {
			most = 4 * megapixel
		}
		if sizes != nil {
			most = 0
			for _, ar := range imaged.AspectRatios {
				w, h, _ := upstream.ExactSize(ar, *sizes, megapixel)
				most = max(most, int64(w)*int64(h))
			}
		}
		return model{Model: imaged.Model{
			MaxOutputPixels: most,
			ID:              id, Description: desc,
			AspectRatios: []string{"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"},
			MaxImages:    4, MaxPromptLength: 10000, SupportsSeed: true,
			SupportsEdit: input != "", Options: opts,
		}, sizes: sizes, inputName: input}
	}
	return []model{
		m("flux-2-pro", "FLUX.2 [pro]: text to image and editing", &flux2Sizes, "input_image", options(6)),
		m("flux-2-flex", "FLUX.2 [flex]: typography and fine control", &flux2Sizes, "input_image", options(6)),
		m("flux-pro-1.1", "FLUX1.1 [pro]", &flux11Sizes, "", options(6)),
		m("flux-pro-1.1-ultra", "FLUX1.1 [pro] Ultra: up to 4 megapixels", nil, "", options(6,
			imaged.ModelOption{Name: "raw", Description: "less processed, more natural images", Values: []string{"false", "true"}, Default: "false"})),
		m("flux-kontext-pro", "FLUX.1 Kontext [pro]: edits an image as the prompt says", nil, "input_image", options(6)),
	}
}

// Generator makes images with the BFL API. It is safe for concurrent use.
type Generator struct {
	apiKey   string
	base     string
	upstream *upstream.Client
	poll     time.Duration
	models   []model
}

var (
	_ imaged.Generator = (*Generator)(nil)
	_ imaged.Editor    = (*Generator)(nil)
)

// New returns a Generator for cfg. It fails without an API key, with a
// BaseURL that is not an http(s) URL, or when cfg.Models names a model this
// adapter does not offer.
func New(cfg Config) (*Generator, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("bfl: an API key is required")
	}
	base, err := upstream.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("bfl: %w", err)
	}
	g := &Generator{apiKey: cfg.APIKey, base: base, poll: cfg.PollInterval}
	if g.poll <= 0 {
		g.poll = DefaultPollInterval
	}
	g.upstream = &upstream.Client{Provider: providerName, HTTP: cfg.HTTPClient, MaxBytes: cfg.MaxResponseBytes, MapError: g.statusError}
	if g.models, err = upstream.Select(providerName, catalogue(), cfg.Models, func(m model) string { return m.ID }); err != nil {
		return nil, err
	}
	return g, nil
}

func modelInfo(m model) imaged.Model { return m.Model }

// Name returns "bfl".
func (g *Generator) Name() string { return providerName }

// Models lists the enabled models, the default first.
func (g *Generator) Models() []imaged.Model { return upstream.Models(g.models, modelInfo) }

// Generate makes req.N images, one task each.
func (g *Generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req)
	if err != nil {
		return nil, err
	}
	return g.runAll(ctx, m, req, n, nil)
}

// Edit makes req.N images from req.Image with an editing model.
func (g *Generator) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	m, n, err := g.check(req.GenerateRequest)
	switch {
	case err != nil:
		return nil, err
	case m.inputName == "":
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not edit images; %s", m.ID, "use flux-kontext-pro or flux-2-pro")
	case req.Mask != nil:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a mask: the prompt says what to change", m.ID)
	case req.Strength != nil:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a strength", m.ID)
	}
	input := map[string]any{m.inputName: base64.StdEncoding.EncodeToString(req.Image.Data)}
	return g.runAll(ctx, m, req.GenerateRequest, n, input)
}

func (g *Generator) check(req imaged.GenerateRequest) (model, int, error) {
	m, n, err := upstream.Check(providerName, g.models, modelInfo, req)
	if err == nil && req.Seed != nil && (*req.Seed < 0 || *req.Seed+int64(n-1) > maxSeed) {
		err = imaged.Errorf(imaged.EInvalidPrompt, "the seed must be between 0 and %d, one more for each further image", maxSeed)
	}
	return m, n, err
}

// runAll runs n tasks at once and returns their images in order; the first
// failure cancels the others.
func (g *Generator) runAll(ctx context.Context, m model, req imaged.GenerateRequest, n int, extra map[string]any) ([]imaged.GeneratedImage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	images := make([]imaged.GeneratedImage, n)
	errs := make([]error, n)
	progress := newProgress(ctx, n)
	var wg sync.WaitGroup
	for i := range n {
		body := g.body(m, req, extra)
		if req.Seed != nil {
			body["seed"] = *req.Seed + int64(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			images[i], errs[i] = g.task(ctx, m, body, func(p float64) { progress.set(i, p) })
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// The first error that is not the cancellation it caused in the others.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return images, nil
}

// body is the JSON of one task.
func (g *Generator) body(m model, req imaged.GenerateRequest, extra map[string]any) map[string]any {
	body := map[string]any{"prompt": req.Prompt}
	if m.sizes != nil {
		w, h, _ := upstream.ExactSize(req.AspectRatio, *m.sizes, megapixel)
		body["width"], body["height"] = w, h
	} else {
		body["aspect_ratio"] = req.AspectRatio
	}
	for k, v := range req.Options {
		switch k {
		case "safety_tolerance":
			n, _ := strconv.Atoi(v)
			body[k] = n
		case "raw":
			body[k] = v == "true"
		default:
			body[k] = v
		}
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// submitted is the answer of a submission.
type submitted struct {
	ID         string  `json:"id"`
	PollingURL string  `json:"polling_url"`
	Cost       float64 `json:"cost"`
}

// result is the answer of a poll.
type result struct {
	ID       string  `json:"id"`
	Status   string  `json:"status"`
	Progress float64 `json:"progress"`
	Result   *struct {
		Sample string `json:"sample"`
		Seed   *int64 `json:"seed"`
	} `json:"result"`
}

// task submits one task, polls it until it ends and fetches its image.
func (g *Generator) task(ctx context.Context, m model, body map[string]any, progress func(float64)) (imaged.GeneratedImage, error) {
	hreq, err := upstream.NewJSONRequest(ctx, g.base+"/v1/"+m.ID, body)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	hreq.Header.Set("x-key", g.apiKey)
	answer, err := g.upstream.Do(hreq)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	var sub submitted
	if err := json.Unmarshal(answer.Body, &sub); err != nil || sub.ID == "" {
		return imaged.GeneratedImage{}, g.upstream.Malformed(answer, fmt.Errorf("the answer names no task (%v)", err))
	}
	poll, err := url.Parse(sub.PollingURL)
	if err != nil || (poll.Scheme != "http" && poll.Scheme != "https") || poll.Host == "" {
		return imaged.GeneratedImage{}, g.upstream.Malformed(answer, errors.New("the answer's polling_url is not an http(s) URL"))
	}
	res, err := g.wait(ctx, poll.String(), progress)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	img, err := g.fetch(ctx, res)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	img.Seed = res.Result.Seed
	if img.Seed == nil {
		if s, ok := body["seed"].(int64); ok {
			img.Seed = &s
		}
	}
	if sub.Cost > 0 {
		img.Usage = &imaged.Usage{Credits: sub.Cost, Images: 1}
	}
	return img, nil
}

// wait polls the task until it is Ready, or a status that ends it.
func (g *Generator) wait(ctx context.Context, pollingURL string, progress func(float64)) (*result, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, g.upstream.TransportError(ctx, 0, ctx.Err())
		case <-t.C:
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, pollingURL, nil)
		if err != nil {
			return nil, err
		}
		hreq.Header.Set("x-key", g.apiKey)
		hreq.Header.Set("Accept", "application/json")
		answer, err := g.upstream.Do(hreq)
		if err != nil {
			var ue *imaged.UpstreamError
			if errors.As(err, &ue) && ue.Retryable && ctx.Err() == nil {
				t.Reset(g.poll) // a passing failure of one poll: the task goes on
				continue
			}
			return nil, err
		}
		var res result
		if err := json.Unmarshal(answer.Body, &res); err != nil {
			return nil, g.upstream.Malformed(answer, fmt.Errorf("decoding a poll: %w", err))
		}
		switch res.Status {
		case "Pending", "Queued", "Processing":
			progress(res.Progress)
			t.Reset(g.poll)
		case "Ready":
			if res.Result == nil || res.Result.Sample == "" {
				return nil, g.upstream.Malformed(answer, errors.New("a Ready task without a sample"))
			}
			progress(1)
			return &res, nil
		case "Request Moderated", "Content Moderated":
			return nil, upstream.ContentPolicy(fmt.Errorf("bfl: task %s: %s", res.ID, res.Status))
		case "Task not found":
			return nil, &imaged.UpstreamError{Provider: providerName, Status: answer.Status, Err: fmt.Errorf("task %s: Task not found", res.ID)}
		case "Error":
			return nil, &imaged.UpstreamError{Provider: providerName, Status: answer.Status, Err: fmt.Errorf("task %s ended with status Error", res.ID)}
		default:
			return nil, g.upstream.Malformed(answer, fmt.Errorf("unknown task status %q", upstream.Truncate(res.Status, 40)))
		}
	}
}

// fetch downloads the result's sample at once: the signed URL expires ten
// minutes after the task ends. The key is not sent to the delivery host.
func (g *Generator) fetch(ctx context.Context, res *result) (imaged.GeneratedImage, error) {
	u, err := url.Parse(res.Result.Sample)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return imaged.GeneratedImage{}, &imaged.UpstreamError{Provider: providerName, Status: http.StatusOK, Err: errors.New("the sample is not an http(s) URL")}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	got, err := g.upstream.Do(hreq)
	if err != nil {
		return imaged.GeneratedImage{}, err
	}
	return imaged.GeneratedImage{Data: got.Body}, nil
}

// errorBody is the API's error answer: FastAPI's detail, a string or a
// list of field errors.
type errorBody struct {
	Detail any `json:"detail"`
}

// statusError maps a non-2xx answer. 429 (too many active tasks) and 5xx
// are retryable; 402 (no credits left), 403 and 422 are not.
func (g *Generator) statusError(r *upstream.Response) error {
	var eb errorBody
	_ = json.Unmarshal(r.Body, &eb)
	detail := http.StatusText(r.Status)
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden && eb.Detail != nil {
		b, _ := json.Marshal(eb.Detail)
		detail += ": " + upstream.Truncate(upstream.Redact(string(b), g.apiKey), 300)
	}
	return g.upstream.StatusError(r, errors.New(detail))
}

// progressOf tracks the tasks of one call and reports their mean.
type progressOf struct {
	ctx  context.Context
	mu   sync.Mutex
	each []float64
}

func newProgress(ctx context.Context, n int) *progressOf {
	return &progressOf{ctx: ctx, each: make([]float64, n)}
}

func (p *progressOf) set(i int, v float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.each[i] = min(max(v, 0), 1)
	sum := 0.0
	for _, e := range p.each {
		sum += e
	}
	imaged.ReportProgress(p.ctx, int(sum*100/float64(len(p.each))))
}
