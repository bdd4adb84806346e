package generation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// Request is a generation request as the API receives it.
type Request struct {
	Prompt           string `json:"prompt"`
	AspectRatio      string `json:"aspectRatio,omitempty"`
	ArtStyle         string `json:"artStyle,omitempty"`
	ArtDescription   string `json:"artDescription,omitempty"`
	ThemeStyle       string `json:"themeStyle,omitempty"`
	ThemeDescription string `json:"themeDescription,omitempty"`
	Model            string `json:"model,omitempty"`
	Provider         string `json:"provider,omitempty"`
	// N is how many images, 1 when absent; an explicit 0 is refused like
	// any other count outside 1-4.
	N              *int   `json:"n,omitempty"`
	Seed           *int64 `json:"seed,omitempty"`
	NegativePrompt string `json:"negativePrompt,omitempty"`
	// Options are the model's own settings (see imaged.Model.Options).
	Options map[string]string `json:"options,omitempty"`
	// Webhook, on an asynchronous request, is told when the job starts
	// and ends (see CheckWebhook).
	Webhook *Webhook `json:"webhook,omitempty"`
}

// Webhook is the webhook field of a request that creates a job (a
// generation, an edit): where to POST the job's events, and which.
type Webhook struct {
	URL string `json:"url"`
	// Events are "started" and "completed"; both when empty.
	Events []string `json:"events,omitempty"`
}

// maxWebhookURL bounds a webhook URL.
const maxWebhookURL = 2048

// ParseWebhook reads a webhook field sent as JSON text (a form field of a
// multipart request), strictly like the JSON body's; "" is no webhook.
func ParseWebhook(text string) (*Webhook, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var w Webhook
	if err := dec.Decode(&w); err != nil || dec.More() {
		return nil, imaged.Errorf(imaged.EValidation, "webhook must be a JSON object {\"url\": ..., \"events\": [...]}")
	}
	return &w, nil
}

// CheckWebhook validates a request's webhook and turns it into the job's:
// an absolute http or https URL of at most 2048 bytes, without credentials,
// that the outbound rules allow now (Config.CheckWebhookURL; they are
// applied again at every delivery), and events among "started" and
// "completed", each once. Every refusal is VALIDATION_ERROR naming the
// field. Any request that creates a job calls it, so that webhooks mean the
// same on all of them.
func (s *Service) CheckWebhook(ctx context.Context, w *Webhook) (*imaged.JobWebhook, error) {
	if w == nil {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return imaged.Errorf(imaged.EValidation, format, args...)
	}
	if w.URL == "" {
		return nil, bad("webhook.url is required")
	}
	if len(w.URL) > maxWebhookURL {
		return nil, bad("webhook.url is longer than %d bytes", maxWebhookURL)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return nil, bad("webhook.url must be an absolute http or https URL")
	}
	if u.User != nil {
		return nil, bad("webhook.url must not carry credentials; verify deliveries by their signature")
	}
	if u.Fragment != "" {
		return nil, bad("webhook.url must not have a fragment")
	}
	out := &imaged.JobWebhook{URL: w.URL}
	events := w.Events
	if len(events) == 0 {
		events = []string{imaged.WebhookStarted, imaged.WebhookCompleted}
	}
	for _, e := range events {
		if e != imaged.WebhookStarted && e != imaged.WebhookCompleted {
			return nil, bad("webhook.events may hold \"started\" and \"completed\", not %q", upTo(e, 40))
		}
		if slices.Contains(out.Events, e) {
			return nil, bad("webhook.events holds %q twice", e)
		}
		out.Events = append(out.Events, e)
	}
	if s.cfg.CheckWebhookURL == nil {
		return nil, bad("webhooks are not enabled on this service")
	}
	if err := s.cfg.CheckWebhookURL(ctx, w.URL); err != nil {
		if imaged.ErrCode(err) == imaged.EUnavailable {
			return nil, err
		}
		return nil, &imaged.Error{Code: imaged.EValidation, Message: "webhook.url is refused: " + imaged.ErrMessage(err), Err: err}
	}
	return out, nil
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

// Count returns a pointer to n, for Request.N.
func Count(n int) *int { return &n }

// Limits on the free-text fields, whatever the model accepts.
const (
	maxStyleField       = 500
	maxNegativePrompt   = 2000
	maxImagesPerRequest = 4
)

// resolved is a request checked against the provider and model it names.
type resolved struct {
	provider imaged.Generator
	model    imaged.Model
	req      imaged.GenerateRequest
	original Request
	// editor and edit are set for an edit: the provider as an Editor and
	// what the edit sends it.
	editor imaged.Editor
	edit   *editInputs
}

func invalid(format string, args ...any) error {
	return imaged.Errorf(imaged.EInvalidPrompt, format, args...)
}

// resolve validates r and picks its provider and model. Every refusal is
// INVALID_IMAGE_PROMPT with a message that says what is wrong.
func (s *Service) resolve(r Request) (*resolved, error) {
	prompt := strings.TrimSpace(r.Prompt)
	if prompt == "" {
		return nil, invalid("prompt is required")
	}
	p, m, err := s.pick(r.Provider, r.Model)
	if err != nil {
		return nil, err
	}
	name := p.Name()
	ar := r.AspectRatio
	if ar == "" {
		ar = "1:1"
	}
	if !m.SupportsAspectRatio(ar) {
		return nil, invalid("aspectRatio %q is not supported by model %q; supported: %s", ar, m.ID, strings.Join(m.AspectRatios, ", "))
	}
	n := 1
	if r.N != nil {
		n = *r.N
	}
	maxN := min(maxImagesPerRequest, max(m.MaxImages, 1))
	if n < 1 || n > maxN {
		return nil, invalid("n must be from 1 to %d for model %q", maxN, m.ID)
	}
	if m.MaxPromptLength > 0 && utf8.RuneCountInString(prompt) > m.MaxPromptLength {
		return nil, invalid("prompt is longer than %d characters, the limit of model %q", m.MaxPromptLength, m.ID)
	}
	for field, v := range map[string]string{"artStyle": r.ArtStyle, "artDescription": r.ArtDescription, "themeStyle": r.ThemeStyle, "themeDescription": r.ThemeDescription} {
		if utf8.RuneCountInString(v) > maxStyleField {
			return nil, invalid("%s is longer than %d characters", field, maxStyleField)
		}
	}
	if r.NegativePrompt != "" {
		if !m.SupportsNegativePrompt {
			return nil, invalid("model %q does not support negativePrompt", m.ID)
		}
		if utf8.RuneCountInString(r.NegativePrompt) > maxNegativePrompt {
			return nil, invalid("negativePrompt is longer than %d characters", maxNegativePrompt)
		}
	}
	if r.Seed != nil {
		if !m.SupportsSeed {
			return nil, invalid("model %q does not support seed", m.ID)
		}
		if *r.Seed < 0 || *r.Seed > 4294967295 {
			return nil, invalid("seed must be from 0 to 4294967295")
		}
	}
	if err := imaged.CheckOptions(m, r.Options); err != nil {
		return nil, err
	}
	full := composePrompt(prompt, r)
	if m.MaxPromptLength > 0 && utf8.RuneCountInString(full) > m.MaxPromptLength {
		return nil, invalid("prompt with its style and theme is longer than %d characters, the limit of model %q", m.MaxPromptLength, m.ID)
	}
	r.Provider, r.Model, r.AspectRatio, r.N, r.Prompt = name, m.ID, ar, &n, prompt
	return &resolved{
		provider: p,
		model:    m,
		original: r,
		req: imaged.GenerateRequest{
			Prompt:         full,
			NegativePrompt: r.NegativePrompt,
			Model:          m.ID,
			AspectRatio:    ar,
			N:              n,
			Seed:           r.Seed,
			Options:        r.Options,
		},
	}, nil
}

// pick returns the provider called provider (the default one when empty)
// and its model called model (its first when empty).
func (s *Service) pick(provider, model string) (imaged.Generator, imaged.Model, error) {
	name := provider
	if name == "" {
		name = s.defaultProvider
	}
	p, ok := s.providers[name]
	if !ok {
		return nil, imaged.Model{}, invalid("provider %q is not enabled; enabled providers: %s", provider, strings.Join(s.providerNames(), ", "))
	}
	models := p.Models()
	if len(models) == 0 {
		return nil, imaged.Model{}, invalid("provider %q offers no model", name)
	}
	if model == "" {
		return p, models[0], nil
	}
	for _, cand := range models {
		if cand.ID == model {
			return p, cand, nil
		}
	}
	ids := make([]string, len(models))
	for i, cand := range models {
		ids[i] = cand.ID
	}
	return nil, imaged.Model{}, invalid("model %q is not offered by provider %q; its models: %s", model, name, strings.Join(ids, ", "))
}

// composePrompt folds the style and theme fields of the original API into
// the prompt the provider sees.
func composePrompt(prompt string, r Request) string {
	var b strings.Builder
	b.WriteString(prompt)
	add := func(label, style, desc string) {
		style, desc = strings.TrimSpace(style), strings.TrimSpace(desc)
		switch {
		case style != "" && desc != "":
			fmt.Fprintf(&b, "\n%s: %s (%s)", label, style, desc)
		case style != "":
			fmt.Fprintf(&b, "\n%s: %s", label, style)
		case desc != "":
			fmt.Fprintf(&b, "\n%s: %s", label, desc)
		}
	}
	add("Art style", r.ArtStyle, r.ArtDescription)
	add("Theme", r.ThemeStyle, r.ThemeDescription)
	return b.String()
}

func (s *Service) providerNames() []string {
	names := make([]string, 0, len(s.providers))
	for n := range s.providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
