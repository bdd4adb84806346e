package main

import (
	"fmt"
	"log/slog"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
)

// applyModelsFile applies the models file at path (none when empty) over
// the providers' built-in models.
func applyModelsFile(path string, provs []imaged.Generator, log *slog.Logger) ([]imaged.Generator, error) {
	if path == "" {
		return provs, nil
	}
	f, err := catalog.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	known := []string{"builtin"}
	for _, p := range providerEnv {
		known = append(known, p.name)
	}
	out, skipped, err := f.Apply(provs, known)
	if err != nil {
		return nil, usageError{fmt.Errorf("models file %s: %w", path, err)}
	}
	for _, name := range skipped {
		log.Warn("the models file names a provider that is not enabled; its entry is skipped", "provider", name, "file", path)
	}
	log.Info("models file applied", "file", path)
	return out, nil
}

// maxPixelsWarnings says which models make images larger than the pixel
// limit: the service refuses to store them, so every such generation would
// fail.
func maxPixelsWarnings(provs []imaged.Generator, maxPixels int64) []string {
	var out []string
	for _, p := range provs {
		for _, m := range p.Models() {
			if m.MaxOutputPixels > maxPixels {
				out = append(out, fmt.Sprintf("--max-pixels (IMAGED_MAX_PIXELS) is %d, but provider %s model %s makes images of up to %d pixels, which the service would refuse to store: raise the limit, or narrow the model in IMAGED_MODELS_FILE",
					maxPixels, p.Name(), m.ID, m.MaxOutputPixels))
			}
		}
	}
	return out
}
