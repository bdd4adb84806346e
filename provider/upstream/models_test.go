package upstream_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

var testModels = []imaged.Model{
	{ID: "a", AspectRatios: []string{"1:1", "16:9"}, MaxImages: 4, MaxPromptLength: 10, SupportsSeed: true},
	{ID: "b", AspectRatios: []string{"1:1"}, MaxImages: 1, MaxPromptLength: 100, SupportsNegativePrompt: true},
}

func same(m imaged.Model) imaged.Model { return m }
func id(m imaged.Model) string         { return m.ID }

func TestSelect(t *testing.T) {
	got, err := upstream.Select("p", testModels, []string{"b", "a", "b"}, id)
	if err != nil || !slices.Equal([]string{got[0].ID, got[1].ID}, []string{"b", "a"}) || len(got) != 2 {
		t.Fatalf("Select = %v, %v; want b then a, once each", got, err)
	}
	if all, _ := upstream.Select("p", testModels, nil, id); len(all) != 2 {
		t.Fatalf("no ids: %d models, want the whole catalogue", len(all))
	}
	if _, err := upstream.Select("p", testModels, []string{"c"}, id); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Fatalf("unknown id: err = %v", err)
	}
}

func TestModels_are_copies(t *testing.T) {
	out := upstream.Models(testModels, same)
	out[0].AspectRatios[0] = "changed"
	if testModels[0].AspectRatios[0] != "1:1" {
		t.Fatal("Models shares its aspect ratios with the adapter's list")
	}
}

func TestCheck(t *testing.T) {
	seed := int64(1)
	tests := []struct {
		name    string
		req     imaged.GenerateRequest
		model   string
		n       int
		message string // "" when accepted
	}{
		{"default_model_and_one_image", imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1"}, "a", 1, ""},
		{"named_model", imaged.GenerateRequest{Prompt: "x", Model: "b", AspectRatio: "1:1", N: 1}, "b", 1, ""},
		{"unknown_model", imaged.GenerateRequest{Prompt: "x", Model: "c", AspectRatio: "1:1"}, "", 0, `model "c" is not offered by provider p`},
		{"aspect_ratio", imaged.GenerateRequest{Prompt: "x", Model: "b", AspectRatio: "16:9"}, "", 0, `aspect ratio "16:9" is not supported by model "b"`},
		{"too_many_images", imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 5}, "", 0, "1 to 4 images"},
		{"negative_count", imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: -1}, "", 0, "1 to 4 images"},
		{"empty_prompt", imaged.GenerateRequest{Prompt: " ", AspectRatio: "1:1"}, "", 0, "prompt is empty"},
		{"long_prompt_in_characters", imaged.GenerateRequest{Prompt: strings.Repeat("é", 11), AspectRatio: "1:1"}, "", 0, "at most 10 characters"},
		{"prompt_at_the_limit", imaged.GenerateRequest{Prompt: strings.Repeat("é", 10), AspectRatio: "1:1"}, "a", 1, ""},
		{"negative_prompt_unsupported", imaged.GenerateRequest{Prompt: "x", NegativePrompt: "y", AspectRatio: "1:1"}, "", 0, "negative prompt"},
		{"seed_unsupported", imaged.GenerateRequest{Prompt: "x", Model: "b", Seed: &seed, AspectRatio: "1:1"}, "", 0, "seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, n, err := upstream.Check("p", testModels, same, tt.req)
			if tt.message != "" {
				if imaged.ErrCode(err) != imaged.EInvalidPrompt || !strings.Contains(imaged.ErrMessage(err), tt.message) {
					t.Fatalf("err = %v, want INVALID_IMAGE_PROMPT saying %q", err, tt.message)
				}
				return
			}
			if err != nil || m.ID != tt.model || n != tt.n {
				t.Fatalf("Check = %s, %d, %v; want %s, %d", m.ID, n, err, tt.model, tt.n)
			}
		})
	}
}
