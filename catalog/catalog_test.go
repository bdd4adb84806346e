package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/openai"
)

var known = []string{"builtin", "openai", "stability", "google", "sdwebui", "comfyui", "bfl"}

// recorder is a provider that records what reaches it.
type recorder struct {
	got []imaged.GenerateRequest
}

func (r *recorder) Name() string { return "fake" }
func (r *recorder) Models() []imaged.Model {
	return []imaged.Model{
		{ID: "big", AspectRatios: []string{"1:1", "16:9", "9:16"}, MaxImages: 4, MaxPromptLength: 1000, SupportsSeed: true, SupportsEdit: true, SupportsMask: true},
		{ID: "small", AspectRatios: []string{"1:1"}, MaxImages: 1, MaxPromptLength: 100},
	}
}
func (r *recorder) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.got = append(r.got, req)
	return []imaged.GeneratedImage{{Data: []byte("png")}}, nil
}
func (r *recorder) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	return r.Generate(ctx, req.GenerateRequest)
}

func apply(t *testing.T, file string, gens ...imaged.Generator) ([]imaged.Generator, []string, error) {
	t.Helper()
	f, err := catalog.Parse([]byte(file))
	if err != nil {
		return nil, nil, err
	}
	return f.Apply(gens, append(known, "fake"))
}

func ids(ms []imaged.Model) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.ID)
	}
	return s
}

func TestApply(t *testing.T) {
	t.Run("restricts_reorders_narrows_and_adds", func(t *testing.T) {
		rec := &recorder{}
		out, _, err := apply(t, `{"providers": {"fake": {
			"models": [
				{"id": "big", "aspectRatios": ["16:9", "1:1"], "maxImages": 2, "supportsSeed": false},
				{"id": "square", "from": "big", "description": "big, square only", "aspectRatios": ["1:1"], "supportsEdit": false}
			],
			"only": ["square", "big"]}}}`, rec, builtin.New())
		if err != nil {
			t.Fatal(err)
		}
		if out[1].Name() != "builtin" || len(out[1].Models()) != 1 {
			t.Errorf("builtin changed: %v", ids(out[1].Models()))
		}
		g := out[0]
		ms := g.Models()
		if !slices.Equal(ids(ms), []string{"square", "big"}) {
			t.Fatalf("models %v", ids(ms))
		}
		if sq := ms[0]; sq.Description != "big, square only" || !slices.Equal(sq.AspectRatios, []string{"1:1"}) || sq.SupportsEdit || sq.SupportsMask || !sq.SupportsSeed || sq.MaxImages != 4 {
			t.Errorf("square %+v", sq)
		}
		if big := ms[1]; big.MaxImages != 2 || big.SupportsSeed || !big.SupportsEdit || !slices.Equal(big.AspectRatios, []string{"16:9", "1:1"}) {
			t.Errorf("big %+v", big)
		}
		// The added model is served by its base; the default is the first.
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if len(rec.got) != 1 || rec.got[0].Model != "big" {
			t.Errorf("reached the provider: %+v", rec.got)
		}
		// What the file narrowed away is refused before the provider.
		seed := int64(1)
		for name, req := range map[string]imaged.GenerateRequest{
			"dropped_model":   {Prompt: "x", Model: "small", AspectRatio: "1:1", N: 1},
			"narrowed_ratio":  {Prompt: "x", Model: "big", AspectRatio: "9:16", N: 1},
			"narrowed_n":      {Prompt: "x", Model: "big", AspectRatio: "1:1", N: 3},
			"narrowed_seed":   {Prompt: "x", Model: "big", AspectRatio: "1:1", N: 1, Seed: &seed},
			"ratio_of_square": {Prompt: "x", Model: "square", AspectRatio: "16:9", N: 1},
		} {
			if _, err := g.Generate(context.Background(), req); imaged.ErrCode(err) != imaged.EInvalidPrompt {
				t.Errorf("%s: %v", name, err)
			}
		}
		e := g.(imaged.Editor)
		if _, err := e.Edit(context.Background(), imaged.EditRequest{GenerateRequest: imaged.GenerateRequest{Prompt: "x", Model: "square", AspectRatio: "1:1", N: 1}}); imaged.ErrCode(err) != imaged.EInvalidPrompt {
			t.Errorf("edit with square: %v", err)
		}
		if len(rec.got) != 1 {
			t.Errorf("%d requests reached the provider, want 1", len(rec.got))
		}
		generatortest.Test(t, g)
	})

	t.Run("without_only_built_ins_stay_and_additions_follow", func(t *testing.T) {
		out, _, err := apply(t, `{"providers": {"fake": {"models": [{"id": "one", "from": "small"}]}}}`, &recorder{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(out[0].Models()); !slices.Equal(got, []string{"big", "small", "one"}) {
			t.Errorf("models %v", got)
		}
	})

	t.Run("a_known_provider_not_enabled_is_skipped", func(t *testing.T) {
		out, skipped, err := apply(t, `{"providers": {"bfl": {"only": ["flux-2-pro"]}}}`, builtin.New())
		if err != nil || !slices.Equal(skipped, []string{"bfl"}) || len(out) != 1 {
			t.Errorf("%v %v %d", err, skipped, len(out))
		}
	})

	t.Run("a_real_adapter_keeps_conforming", func(t *testing.T) {
		g, err := openai.New(openai.Config{APIKey: "sk-test", HTTPClient: generatortest.NoNetwork(t)})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := apply(t, `{"providers": {"openai": {"models": [{"id": "gpt-image-2", "aspectRatios": ["16:9"], "supportsMask": false}], "only": ["gpt-image-2", "gpt-image-1"]}}}`, g)
		if err != nil {
			t.Fatal(err)
		}
		generatortest.Test(t, out[0])
	})
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, says string
	}{
		{"malformed_json", "{\"providers\": {\n\"fake\": }}", "line 2"},
		{"not_an_object", `[]`, "must be"},
		{"no_providers", `{}`, `"providers"`},
		{"unknown_field", `{"providers": {"fake": {"model": []}}}`, `unknown field "model"`},
		{"wrong_type", `{"providers": {"fake": {"models": [{"id": "big", "maxImages": "2"}]}}}`, "maxImages"},
		{"unknown_provider", `{"providers": {"opena1": {}}}`, `provider "opena1" is not one`},
		{"unknown_model", `{"providers": {"fake": {"models": [{"id": "huge"}]}}}`, `"huge" is not built in`},
		{"unknown_from", `{"providers": {"fake": {"models": [{"id": "x", "from": "huge"}]}}}`, `from "huge"`},
		{"added_with_a_built_in_name", `{"providers": {"fake": {"models": [{"id": "small", "from": "big"}]}}}`, "name of its own"},
		{"twice", `{"providers": {"fake": {"models": [{"id": "big"}, {"id": "big"}]}}}`, "twice"},
		{"wider_ratio", `{"providers": {"fake": {"models": [{"id": "small", "aspectRatios": ["16:9"]}]}}}`, `"16:9"`},
		{"ratio_outside_the_api", `{"providers": {"fake": {"models": [{"id": "big", "aspectRatios": ["21:9"]}]}}}`, `"21:9"`},
		{"more_images", `{"providers": {"fake": {"models": [{"id": "small", "maxImages": 2}]}}}`, "maxImages must be from 1 to 1"},
		{"zero_images", `{"providers": {"fake": {"models": [{"id": "big", "maxImages": 0}]}}}`, "maxImages"},
		{"a_capability_the_model_lacks", `{"providers": {"fake": {"models": [{"id": "small", "supportsSeed": true}]}}}`, "supportsSeed cannot be true"},
		{"only_unknown", `{"providers": {"fake": {"only": ["nope"]}}}`, `"nope"`},
		{"only_empty", `{"providers": {"fake": {"only": []}}}`, "only is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := apply(t, tc.file, &recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v, want it to say %q", err, tc.says)
			}
		})
	}

	t.Run("load_names_the_file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "models.json")
		os.WriteFile(p, []byte("{"), 0o600)
		if _, err := catalog.Load(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%v", err)
		}
		if _, err := catalog.Load(p + ".missing"); err == nil || !strings.Contains(err.Error(), "models file") {
			t.Errorf("%v", err)
		}
	})
}

// The example in the README parses and applies to the built-in providers.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- models-file-example -->\n```json\n")
	if !ok {
		t.Fatal("README has no models file example")
	}
	example, _, _ := strings.Cut(rest, "```")
	f, err := catalog.Parse([]byte(example))
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	g, err := openai.New(openai.Config{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := f.Apply([]imaged.Generator{builtin.New(), g}, known)
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	if len(out) != 2 {
		t.Fatalf("%d providers", len(out))
	}
}
