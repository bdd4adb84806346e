// Package generation turns prompts into stored images: it validates a request
// against the enabled providers and their models, enforces the per-owner
// quotas kept in the database, calls the provider with bounded retries, and
// stores every image it returns through the images service, which checks it
// like an upload. Asynchronous requests become persisted jobs that workers on
// any replica claim and run.
package generation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
)

// Config tunes the service; zero values take the defaults noted.
type Config struct {
	Providers       []imaged.Generator
	DefaultProvider string             // "builtin" if empty
	Quota           imaged.QuotaLimits // 0 means unlimited
	Timeout         time.Duration      // one generation, retries included; 2 minutes
	MaxAttempts     int                // calls to the provider per generation; 3
	Backoff         time.Duration      // first retry delay, doubled each time; 500ms
	Workers         int                // async jobs run at once by this process; 2
	WorkerID        string             // unique per process; random if empty
	PollInterval    time.Duration      // how often idle workers look for jobs; 1s
	MaxJobAttempts  int                // runs of one job before it fails; 3
	JobLease        time.Duration      // how long a claimed job stays a dead worker's; 30s
	Marker          Marker             // marks every image before it is stored; nil stores them as they came
	// JobProgress, when set, hears how far a running job has got as its
	// provider reports it (imaged.ReportProgress): each percentage once, in
	// increasing order. It must return quickly.
	JobProgress func(ctx context.Context, jobID string, percent int)
	// CheckWebhookURL, when set, enables the webhook field of requests:
	// it refuses a URL the outbound rules would refuse (an *imaged.Error
	// saying why). See CheckWebhook.
	CheckWebhookURL func(ctx context.Context, url string) error
	// JobChanged, when set, hears the id of every job this process
	// changed, once the change (and its webhook delivery) is recorded: a
	// webhook sender wakes up on it instead of waiting for its next poll.
	JobChanged func(jobID string)
	// EventPoll is how often event streams look in the database for the
	// events of jobs that other replicas run; 500ms.
	EventPoll time.Duration
	// MaxStream bounds one event stream; the client resumes with
	// Last-Event-ID. 1 hour.
	MaxStream time.Duration
	// Observer, when set, hears of every generation and provider retry
	// (for metrics: package telemetry implements it).
	Observer Observer
	Now      func() time.Time
	Logger   *slog.Logger
}

// Observer hears what generations do; it must return quickly.
type Observer interface {
	// Generated is called once per generation run (a synchronous request,
	// or one run of a job) with the provider and model asked for, the
	// outcome (nil or the error the caller sees) and how long it took,
	// retries and storing included.
	Generated(provider, model string, err error, d time.Duration)
	// ProviderRetried is called before each retry of a provider call.
	ProviderRetried(provider string)
}

// Marker marks a generated image as AI-generated (package provenance): it
// returns the bytes to store and what they say of their origin.
type Marker interface {
	MarkGenerated(data []byte, provider, model string) ([]byte, *imaged.Provenance, error)
}

// EditMarker is a Marker that also marks edits, as made from an existing
// image with a trained model (the IPTC digital source type
// compositeWithTrainedAlgorithmicMedia): source is the image edited and
// sourceData its stored bytes, the ones sent to the provider, which the
// marks name as the edit's ingredient. A Marker without it marks edits as
// generated images.
type EditMarker interface {
	MarkEdited(data []byte, source *imaged.Image, sourceData []byte, provider, model string) ([]byte, *imaged.Provenance, error)
}

// Service generates images.
type Service struct {
	images          *images.Service
	quota           imaged.QuotaStore
	jobs            imaged.JobStore
	providers       map[string]imaged.Generator
	order           []string
	defaultProvider string
	cfg             Config
	log             *slog.Logger
	wake            chan struct{}
	watch           *watchers
}

// New returns a Service. The default provider must be among cfg.Providers.
func New(imgs *images.Service, quota imaged.QuotaStore, jobs imaged.JobStore, cfg Config) (*Service, error) {
	if cfg.DefaultProvider == "" {
		cfg.DefaultProvider = "builtin"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "worker-" + imaged.NewBlobKey("")[:12]
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.JobLease <= 0 {
		cfg.JobLease = 30 * time.Second
	}
	if cfg.MaxJobAttempts <= 0 {
		cfg.MaxJobAttempts = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventPoll <= 0 {
		cfg.EventPoll = 500 * time.Millisecond
	}
	if cfg.MaxStream <= 0 {
		cfg.MaxStream = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		images:          imgs,
		quota:           quota,
		jobs:            jobs,
		providers:       map[string]imaged.Generator{},
		defaultProvider: cfg.DefaultProvider,
		cfg:             cfg,
		log:             cfg.Logger,
		wake:            make(chan struct{}, 1),
	}
	s.watch = newWatchers(s)
	for _, p := range cfg.Providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, errors.New("provider " + p.Name() + " configured twice")
		}
		s.providers[p.Name()] = p
		s.order = append(s.order, p.Name())
	}
	if _, ok := s.providers[cfg.DefaultProvider]; !ok {
		return nil, errors.New("default provider " + cfg.DefaultProvider + " is not enabled")
	}
	return s, nil
}

// Timeout is the bound on one generation.
func (s *Service) Timeout() time.Duration { return s.cfg.Timeout }

// ProviderInfo describes an enabled provider for the models listing.
type ProviderInfo struct {
	Name    string         `json:"provider"`
	Default bool           `json:"default"`
	Models  []imaged.Model `json:"models"`
}

// Providers lists the enabled providers and their models, the default first.
func (s *Service) Providers() []ProviderInfo {
	out := []ProviderInfo{{Name: s.defaultProvider, Default: true, Models: s.models(s.defaultProvider)}}
	for _, n := range s.order {
		if n != s.defaultProvider {
			out = append(out, ProviderInfo{Name: n, Models: s.models(n)})
		}
	}
	return out
}

// models lists a provider's models for clients: lists are never null.
func (s *Service) models(provider string) []imaged.Model {
	models := s.providers[provider].Models()
	for i := range models {
		if models[i].Options == nil {
			models[i].Options = []imaged.ModelOption{}
		}
	}
	return models
}

// Validate checks a request without running it.
func (s *Service) Validate(r Request) error {
	_, err := s.resolve(r)
	return err
}

// Generate runs a request now and returns the stored images. Quota is
// reserved first (429 when over) and charged only for images stored.
func (s *Service) Generate(ctx context.Context, owner string, r Request) ([]*imaged.Image, error) {
	res, err := s.resolve(r)
	if err != nil {
		return nil, err
	}
	if err := syncWithoutWebhook(r); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	reservation, err := s.quota.ReserveQuota(ctx, owner, res.req.N, s.cfg.Quota, now, now.Add(s.cfg.Timeout+time.Minute))
	if err != nil {
		return nil, err
	}
	imgs, err := s.run(ctx, owner, res)
	s.finishQuota(ctx, reservation, len(imgs))
	return imgs, err
}

// syncWithoutWebhook refuses a webhook on a request answered at once.
func syncWithoutWebhook(r Request) error {
	if r.Webhook != nil {
		return imaged.Errorf(imaged.EValidation, "webhook needs an asynchronous request (Prefer: respond-async): a synchronous one answers with the images")
	}
	return nil
}

func (s *Service) finishQuota(ctx context.Context, reservation string, n int) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.quota.FinishQuota(fctx, reservation, n); err != nil {
		s.log.ErrorContext(ctx, "quota reservation not finished", "reservation", reservation, "err", err)
	}
}

// run calls the provider (bounded by the timeout, with retries) and stores
// what it returns; on any failure, the images already stored are removed.
func (s *Service) run(ctx context.Context, owner string, res *resolved) (imgs []*imaged.Image, err error) {
	if o := s.cfg.Observer; o != nil {
		start := time.Now()
		defer func() { o.Generated(res.provider.Name(), res.model.ID, err, time.Since(start)) }()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	made, err := s.callProvider(ctx, res)
	if err != nil {
		return nil, err
	}
	if len(made) == 0 {
		return nil, imaged.Errorf(imaged.EGeneration, "The provider returned no image")
	}
	if len(made) > res.req.N {
		made = made[:res.req.N] // only what was asked (and reserved) is kept
	}
	var stored []*imaged.Image
	for _, g := range made {
		gen := &imaged.Generation{
			Prompt:         res.original.Prompt,
			NegativePrompt: res.original.NegativePrompt,
			Provider:       res.provider.Name(),
			Model:          res.model.ID,
			AspectRatio:    res.req.AspectRatio,
			Seed:           g.Seed,
			RevisedPrompt:  g.RevisedPrompt,
			Options:        res.req.Options,
			Usage:          g.Usage,
			// Kept as given; the provider saw them folded into its prompt.
			ArtStyle:         res.original.ArtStyle,
			ArtDescription:   res.original.ArtDescription,
			ThemeStyle:       res.original.ThemeStyle,
			ThemeDescription: res.original.ThemeDescription,
		}
		if res.edit != nil {
			gen.Strength, gen.MaskID = res.edit.strength, res.edit.maskID
		}
		img, err := s.store(ctx, owner, res, gen, g.Data)
		if err != nil {
			s.discard(ctx, owner, stored)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &imaged.Error{Code: imaged.EGenerationTimeout, Message: "The generation did not finish in time", Err: err}
			}
			if c := imaged.ErrCode(err); c == imaged.EUnsupportedMedia || c == imaged.ETooLarge {
				return nil, &imaged.Error{Code: imaged.EGeneration, Message: "The provider returned an image the service cannot accept", Err: err}
			}
			return nil, err
		}
		stored = append(stored, img)
	}
	return stored, nil
}

// store marks (when a Marker is set) and stores one generated or edited
// image.
func (s *Service) store(ctx context.Context, owner string, res *resolved, gen *imaged.Generation, data []byte) (*imaged.Image, error) {
	n := images.NewImage{Owner: owner, Source: imaged.SourceGeneration, Generation: gen}
	if res.edit != nil {
		n.Source, n.ParentID = imaged.SourceEdit, res.edit.source.ID
	}
	if s.cfg.Marker != nil {
		var err error
		if em, ok := s.cfg.Marker.(EditMarker); ok && res.edit != nil {
			data, n.Provenance, err = em.MarkEdited(data, res.edit.source, res.edit.image.Data, gen.Provider, gen.Model)
		} else {
			data, n.Provenance, err = s.cfg.Marker.MarkGenerated(data, gen.Provider, gen.Model)
		}
		if err != nil {
			return nil, err
		}
	}
	return s.images.Store(ctx, n, bytes.NewReader(data))
}

func (s *Service) discard(ctx context.Context, owner string, imgs []*imaged.Image) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, img := range imgs {
		if err := s.images.Delete(dctx, owner, img.ID); err != nil {
			s.log.ErrorContext(ctx, "partial generation not cleaned up", "id", img.ID, "err", err)
		}
	}
}

// callProvider calls the provider, retrying retryable upstream failures
// (429, 5xx, network) with exponential backoff and jitter, honouring the
// provider's Retry-After, within ctx's deadline.
func (s *Service) callProvider(ctx context.Context, res *resolved) ([]imaged.GeneratedImage, error) {
	delay := s.cfg.Backoff
	for attempt := 1; ; attempt++ {
		out, err := call(ctx, res)
		if err == nil {
			return out, nil
		}
		var up *imaged.UpstreamError
		if ctx.Err() != nil {
			return nil, ended(ctx, err)
		}
		if !errors.As(err, &up) || !up.Retryable || attempt >= s.cfg.MaxAttempts {
			return nil, providerFailure(err)
		}
		wait := delay + rand.N(delay/2+1)
		if up.RetryAfter > wait {
			wait = min(up.RetryAfter, 30*time.Second)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, providerFailure(err)
		}
		s.log.WarnContext(ctx, "provider failed, retrying", "provider", up.Provider, "status", up.Status, "attempt", attempt, "wait", wait)
		if o := s.cfg.Observer; o != nil {
			o.ProviderRetried(res.provider.Name())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ended(ctx, err)
		case <-t.C:
		}
		delay *= 2
	}
}

// call makes one call to the provider: Edit for an edit, Generate otherwise.
func call(ctx context.Context, res *resolved) ([]imaged.GeneratedImage, error) {
	if res.edit == nil {
		return res.provider.Generate(ctx, res.req)
	}
	return res.editor.Edit(ctx, imaged.EditRequest{
		GenerateRequest: res.req,
		Image:           res.edit.image,
		Mask:            res.edit.mask,
		Strength:        res.edit.strength,
	})
}

// providerFailure turns a provider's failure into the application error the
// caller sees (GENERATION_ERROR, or GENERATION_TIMEOUT when it did not answer
// in time), the provider's detail kept as the cause for the log only.
// Application errors (a content-policy refusal, say) pass unchanged.
func providerFailure(err error) error {
	var up *imaged.UpstreamError
	if errors.As(err, &up) && !errors.As(err, new(*imaged.Error)) {
		if up.Timeout {
			return &imaged.Error{Code: imaged.EGenerationTimeout, Message: "The image provider did not answer in time", Err: err}
		}
		return &imaged.Error{Code: imaged.EGeneration, Message: "The image provider failed to generate the image", Err: err}
	}
	return err
}

// ended is the error of a provider call cut short by the end of ctx: a
// timeout when the deadline passed, the cancellation otherwise. last is the
// provider's last failure, kept as the cause.
func ended(ctx context.Context, last error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &imaged.Error{Code: imaged.EGenerationTimeout, Message: "The image provider did not answer in time", Err: last}
	}
	return ctx.Err()
}
