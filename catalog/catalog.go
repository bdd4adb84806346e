// Package catalog applies the operator's models file (IMAGED_MODELS_FILE)
// over the providers' built-in model lists, so that a catalogue can change
// without a release: per provider, it restricts which models are offered
// and in which order, narrows what each one may be asked for (aspect
// ratios, images per request, seed, negative prompt, edits, masks,
// strengths), and adds models under names of the operator's, each served by
// a built-in model with limits of its own.
//
// A file may only narrow what an adapter can do: a ratio or a capability
// the built-in model lacks is an error at start, never a request the
// provider would refuse or silently ignore.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// maxFileSize bounds a models file.
const maxFileSize = 1 << 20

// File is a models file.
type File struct {
	// Providers maps a provider id ("openai") to what changes in its list.
	Providers map[string]Provider `json:"providers"`
}

// Provider is what a models file says of one provider.
type Provider struct {
	// Models change built-in models (by id) or add models (an id of the
	// operator's, with From).
	Models []Model `json:"models,omitempty"`
	// Only, when set, offers just these models (built-in or added), in this
	// order: the first becomes the provider's default. Without it the
	// built-in models stay, in their order, and added ones follow.
	Only []string `json:"only,omitempty"`
}

// Model changes or adds one model; fields left out keep the base model's.
type Model struct {
	ID string `json:"id"`
	// From names the built-in model an added one is served by; empty to
	// change the built-in model ID.
	From                   string   `json:"from,omitempty"`
	Description            *string  `json:"description,omitempty"`
	AspectRatios           []string `json:"aspectRatios,omitempty"`
	MaxImages              *int     `json:"maxImages,omitempty"`
	MaxPromptLength        *int     `json:"maxPromptLength,omitempty"`
	SupportsSeed           *bool    `json:"supportsSeed,omitempty"`
	SupportsNegativePrompt *bool    `json:"supportsNegativePrompt,omitempty"`
	SupportsEdit           *bool    `json:"supportsEdit,omitempty"`
	SupportsMask           *bool    `json:"supportsMask,omitempty"`
	SupportsStrength       *bool    `json:"supportsStrength,omitempty"`
}

// Load reads and parses a models file. Its errors name the file and, for
// malformed JSON, the line.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("models file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("models file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("models file %s: larger than %d bytes", path, maxFileSize)
	}
	file, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("models file %s: %w", path, err)
	}
	return file, nil
}

// Parse parses the JSON of a models file strictly: unknown fields are
// errors, so that a typo does not pass silently.
func Parse(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("line %d: malformed JSON: %v", lineOf(data, se.Offset), se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("line %d: %s must be %s, not %s", lineOf(data, te.Offset), fieldName(te), te.Type, te.Value)
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("holds more than one JSON value")
	}
	if f.Providers == nil {
		return nil, errors.New(`it must be an object with "providers"`)
	}
	return &f, nil
}

func fieldName(te *json.UnmarshalTypeError) string {
	if te.Field == "" {
		return "the file"
	}
	return te.Field
}

func lineOf(data []byte, offset int64) int {
	return bytes.Count(data[:min(int(offset), len(data))], []byte("\n")) + 1
}

// Apply returns the providers with the file's changes: a provider the file
// names gets a list of its own, the others are returned as they are. known
// lists every provider id imaged has (enabled or not): a provider of the
// file that is known but not enabled is reported in skipped, one that is
// not known is an error (a typo). Every inconsistency is an error naming
// the provider and the model.
func (f *File) Apply(gens []imaged.Generator, known []string) (out []imaged.Generator, skipped []string, err error) {
	byName := map[string]imaged.Generator{}
	for _, g := range gens {
		byName[g.Name()] = g
	}
	names := make([]string, 0, len(f.Providers))
	for name := range f.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	changed := map[string]imaged.Generator{}
	for _, name := range names {
		g, ok := byName[name]
		if !ok {
			if !slices.Contains(known, name) {
				return nil, nil, fmt.Errorf("provider %q is not one imaged has; providers: %s", name, strings.Join(known, ", "))
			}
			skipped = append(skipped, name)
			continue
		}
		w, err := wrap(g, f.Providers[name])
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: %w", name, err)
		}
		changed[name] = w
	}
	for _, g := range gens {
		if w, ok := changed[g.Name()]; ok {
			out = append(out, w)
		} else {
			out = append(out, g)
		}
	}
	return out, skipped, nil
}

// entry is one offered model: what clients see, and the built-in model
// that serves it.
type entry struct {
	imaged.Model
	base string
}

// wrap builds the list p says for g, checking it against g's own.
func wrap(g imaged.Generator, p Provider) (imaged.Generator, error) {
	builtin := g.Models()
	find := func(id string) (imaged.Model, bool) {
		i := slices.IndexFunc(builtin, func(m imaged.Model) bool { return m.ID == id })
		if i < 0 {
			return imaged.Model{}, false
		}
		return builtin[i], true
	}
	ids := func() string {
		var s []string
		for _, m := range builtin {
			s = append(s, m.ID)
		}
		return strings.Join(s, ", ")
	}
	var list []entry
	for _, m := range builtin {
		list = append(list, entry{Model: m, base: m.ID})
	}
	seen := map[string]bool{}
	for _, c := range p.Models {
		if c.ID == "" {
			return nil, errors.New("a model without an id")
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("model %q is listed twice", c.ID)
		}
		seen[c.ID] = true
		baseID := c.ID
		if c.From != "" {
			if _, clash := find(c.ID); clash {
				return nil, fmt.Errorf("model %q: an added model needs a name of its own, %q is built in", c.ID, c.ID)
			}
			baseID = c.From
		}
		base, ok := find(baseID)
		if !ok {
			if c.From != "" {
				return nil, fmt.Errorf("model %q: from %q is not a built-in model; built in: %s", c.ID, c.From, ids())
			}
			return nil, fmt.Errorf("model %q is not built in (built in: %s); to add a model, give the built-in one that serves it as from", c.ID, ids())
		}
		m, err := narrow(base, c)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", c.ID, err)
		}
		if c.From == "" {
			i := slices.IndexFunc(list, func(e entry) bool { return e.ID == c.ID })
			list[i].Model = m
		} else {
			list = append(list, entry{Model: m, base: base.ID})
		}
	}
	if p.Only != nil {
		if len(p.Only) == 0 {
			return nil, errors.New("only is empty: a provider must offer a model (leave it out of the file to keep its list)")
		}
		var kept []entry
		for _, id := range p.Only {
			i := slices.IndexFunc(list, func(e entry) bool { return e.ID == id })
			if i < 0 {
				return nil, fmt.Errorf("only names %q, which is neither built in nor added", id)
			}
			if slices.ContainsFunc(kept, func(e entry) bool { return e.ID == id }) {
				return nil, fmt.Errorf("only names %q twice", id)
			}
			kept = append(kept, list[i])
		}
		list = kept
	}
	c := &catalogued{Generator: g, models: list}
	if _, ok := g.(imaged.Editor); ok {
		return &catalogEditor{c}, nil
	}
	for _, e := range list {
		if e.SupportsEdit {
			return nil, fmt.Errorf("model %q: the provider does not edit", e.ID)
		}
	}
	return c, nil
}

// narrow applies a change to base, refusing any widening.
func narrow(base imaged.Model, c Model) (imaged.Model, error) {
	m := base
	m.ID = c.ID
	m.AspectRatios = slices.Clone(base.AspectRatios)
	if c.Description != nil {
		m.Description = *c.Description
	}
	if c.AspectRatios != nil {
		if len(c.AspectRatios) == 0 {
			return m, errors.New("aspectRatios is empty")
		}
		for _, ar := range c.AspectRatios {
			if !slices.Contains(base.AspectRatios, ar) {
				return m, fmt.Errorf("aspect ratio %q is not one of %s, those model %q supports", ar, strings.Join(base.AspectRatios, ", "), base.ID)
			}
		}
		m.AspectRatios = slices.Clone(c.AspectRatios)
	}
	if c.MaxImages != nil {
		if *c.MaxImages < 1 || *c.MaxImages > base.MaxImages {
			return m, fmt.Errorf("maxImages must be from 1 to %d (model %q)", base.MaxImages, base.ID)
		}
		m.MaxImages = *c.MaxImages
	}
	if c.MaxPromptLength != nil {
		if *c.MaxPromptLength < 1 || (base.MaxPromptLength > 0 && *c.MaxPromptLength > base.MaxPromptLength) {
			return m, fmt.Errorf("maxPromptLength must be from 1 to %d (model %q)", base.MaxPromptLength, base.ID)
		}
		m.MaxPromptLength = *c.MaxPromptLength
	}
	for _, b := range []struct {
		name string
		set  *bool
		has  bool
		dst  *bool
	}{
		{"supportsSeed", c.SupportsSeed, base.SupportsSeed, &m.SupportsSeed},
		{"supportsNegativePrompt", c.SupportsNegativePrompt, base.SupportsNegativePrompt, &m.SupportsNegativePrompt},
		{"supportsEdit", c.SupportsEdit, base.SupportsEdit, &m.SupportsEdit},
		{"supportsMask", c.SupportsMask, base.SupportsMask, &m.SupportsMask},
		{"supportsStrength", c.SupportsStrength, base.SupportsStrength, &m.SupportsStrength},
	} {
		if b.set == nil {
			continue
		}
		if *b.set && !b.has {
			return m, fmt.Errorf("%s cannot be true: model %q does not support it", b.name, base.ID)
		}
		*b.dst = *b.set
	}
	if !m.SupportsEdit {
		m.SupportsMask, m.SupportsStrength = false, false
	}
	return m, nil
}

// catalogued is a provider behind the file's list: requests are checked
// against that list, then passed on for the built-in model that serves
// them.
type catalogued struct {
	imaged.Generator
	models []entry
}

func info(e entry) imaged.Model { return e.Model }

// Models lists the file's models, the default first.
func (c *catalogued) Models() []imaged.Model { return upstream.Models(c.models, info) }

// Generate checks req against the listed model and passes it on.
func (c *catalogued) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	e, _, err := upstream.Check(c.Name(), c.models, info, req)
	if err != nil {
		return nil, err
	}
	req.Model = e.base
	return c.Generator.Generate(ctx, req)
}

// catalogEditor is a catalogued provider that edits.
type catalogEditor struct{ *catalogued }

// Edit checks req against the listed model, its edit capabilities
// included, and passes it on.
func (c *catalogEditor) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	e, _, err := upstream.Check(c.Name(), c.models, info, req.GenerateRequest)
	switch {
	case err != nil:
		return nil, err
	case !e.SupportsEdit:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not edit images", e.ID)
	case req.Mask != nil && !e.SupportsMask:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a mask", e.ID)
	case req.Strength != nil && !e.SupportsStrength:
		return nil, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a strength", e.ID)
	}
	req.Model = e.base
	return c.Generator.(imaged.Editor).Edit(ctx, req)
}
