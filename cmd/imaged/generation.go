package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/bfl"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/provider/comfyui"
	"github.com/imaged/imaged/provider/google"
	"github.com/imaged/imaged/provider/openai"
	"github.com/imaged/imaged/provider/sdwebui"
	"github.com/imaged/imaged/provider/stability"
)

// providerEnv lists the variables that enable each provider. Keys are read
// from the environment only, never from flags (which show in ps), and never
// logged.
var providerEnv = []struct {
	name, key, baseURL, models string
}{
	{"openai", "IMAGED_OPENAI_API_KEY", "IMAGED_OPENAI_BASE_URL", "IMAGED_OPENAI_MODELS"},
	{"stability", "IMAGED_STABILITY_API_KEY", "IMAGED_STABILITY_BASE_URL", "IMAGED_STABILITY_MODELS"},
	{"google", "IMAGED_GOOGLE_API_KEY", "IMAGED_GOOGLE_BASE_URL", "IMAGED_GOOGLE_MODELS"},
	{"sdwebui", "", "IMAGED_SDWEBUI_URL", "IMAGED_SDWEBUI_MODELS"},
	{"comfyui", "", "IMAGED_COMFYUI_URL", "IMAGED_COMFYUI_MODELS"},
	{"bfl", "IMAGED_BFL_API_KEY", "IMAGED_BFL_BASE_URL", "IMAGED_BFL_MODELS"},
}

// providers returns the builtin renderer and every provider whose
// configuration is present.
func providers(getenv func(string) string, log *slog.Logger) ([]imaged.Generator, error) {
	out := []imaged.Generator{builtin.New()}
	list := func(v string) []string {
		var l []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				l = append(l, s)
			}
		}
		return l
	}
	for _, p := range providerEnv {
		key := ""
		if p.key != "" {
			key = getenv(p.key)
		}
		base := getenv(p.baseURL)
		models := list(getenv(p.models))
		var g imaged.Generator
		var err error
		switch p.name {
		case "openai":
			if key == "" {
				continue
			}
			g, err = openai.New(openai.Config{APIKey: key, BaseURL: base, Models: models})
		case "stability":
			if key == "" {
				continue
			}
			g, err = stability.New(stability.Config{APIKey: key, BaseURL: base, Models: models})
		case "google":
			if key == "" {
				continue
			}
			g, err = google.New(google.Config{APIKey: key, BaseURL: base, Models: models})
		case "sdwebui":
			if base == "" {
				continue
			}
			g, err = sdwebui.New(sdwebui.Config{BaseURL: base, Models: models,
				Username: getenv("IMAGED_SDWEBUI_USERNAME"), Password: getenv("IMAGED_SDWEBUI_PASSWORD")})
		case "bfl":
			if key == "" {
				continue
			}
			g, err = bfl.New(bfl.Config{APIKey: key, BaseURL: base, Models: models})
		case "comfyui":
			if base == "" {
				continue
			}
			g, err = comfyui.New(comfyui.Config{BaseURL: base, Models: models,
				Token: getenv("IMAGED_COMFYUI_TOKEN"), Workflows: getenv("IMAGED_COMFYUI_WORKFLOWS")})
		}
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", p.name, err)
		}
		log.Info("provider enabled", "provider", p.name)
		out = append(out, g)
	}
	return out, nil
}
