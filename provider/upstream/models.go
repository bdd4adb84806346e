package upstream

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// Select returns the entries of catalogue that ids name, in the order of ids
// (so the first becomes the default) and each once, or the whole catalogue
// when ids is empty. id reads an entry's model id. An id that is not in the
// catalogue is an error naming it.
func Select[M any](provider string, catalogue []M, ids []string, id func(M) string) ([]M, error) {
	if len(ids) == 0 {
		return slices.Clone(catalogue), nil
	}
	var out []M
	for _, want := range ids {
		i := slices.IndexFunc(catalogue, func(m M) bool { return id(m) == want })
		if i < 0 {
			return nil, fmt.Errorf("%s: model %q is not offered", provider, want)
		}
		if !slices.ContainsFunc(out, func(m M) bool { return id(m) == want }) {
			out = append(out, catalogue[i])
		}
	}
	return out, nil
}

// Models copies the imaged.Model of each entry, aspect ratios included, so
// that callers of Generator.Models cannot change the adapter's own lists.
func Models[M any](models []M, info func(M) imaged.Model) []imaged.Model {
	out := make([]imaged.Model, len(models))
	for i, m := range models {
		out[i] = info(m)
		out[i].AspectRatios = slices.Clone(out[i].AspectRatios)
	}
	return out
}

// Check validates req against the enabled models before any request goes
// out: it picks req.Model (the first model when empty) and checks the
// aspect ratio, the image count (N, 1 when zero), the prompt, and the
// negative prompt, seed and options against what the model supports. It returns the
// model and the image count; every refusal is EInvalidPrompt with a message
// that says what is wrong.
func Check[M any](provider string, models []M, info func(M) imaged.Model, req imaged.GenerateRequest) (M, int, error) {
	var zero M
	i := 0
	if req.Model != "" {
		i = slices.IndexFunc(models, func(m M) bool { return info(m).ID == req.Model })
		if i < 0 {
			return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "model %q is not offered by provider %s", req.Model, provider)
		}
	}
	m := info(models[i])
	n := req.N
	if n == 0 {
		n = 1
	}
	switch {
	case !m.SupportsAspectRatio(req.AspectRatio):
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "aspect ratio %q is not supported by model %q", req.AspectRatio, m.ID)
	case n < 1 || n > m.MaxImages:
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "model %q makes 1 to %d images per request (at most %d images), not %d", m.ID, m.MaxImages, m.MaxImages, req.N)
	case strings.TrimSpace(req.Prompt) == "":
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "the prompt is empty")
	case utf8.RuneCountInString(req.Prompt) > m.MaxPromptLength:
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "the prompt is longer than %d characters: model %q takes at most %d characters", m.MaxPromptLength, m.ID, m.MaxPromptLength)
	case req.NegativePrompt != "" && !m.SupportsNegativePrompt:
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a negative prompt", m.ID)
	case req.Seed != nil && !m.SupportsSeed:
		return zero, 0, imaged.Errorf(imaged.EInvalidPrompt, "model %q does not take a seed", m.ID)
	}
	if err := imaged.CheckOptions(m, req.Options); err != nil {
		return zero, 0, err
	}
	return models[i], n, nil
}
