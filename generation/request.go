package generation

import (
	"fmt"
	"sort"
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
	sort.Strings(names)
	return names
}
