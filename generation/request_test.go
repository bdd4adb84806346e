package generation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
)

func int64p(v int64) *int64 { return &v }

func TestValidate(t *testing.T) {
	f := newFixture(t)
	fake, other := newFake("fake", nil), newFake("other", nil)
	svc := f.service(t, generation.Config{Providers: []imaged.Generator{other, fake}})
	const cat = "a cat"
	tests := []struct {
		name string
		req  generation.Request
		want []string // substrings of the refusal; nil when accepted
	}{
		{"minimal_request_is_accepted", generation.Request{Prompt: cat}, nil},
		{"blank_prompt_is_refused", generation.Request{Prompt: " \t\n"}, []string{"prompt is required"}},
		{"unknown_provider_lists_enabled_ones", generation.Request{Prompt: cat, Provider: "dalle"},
			[]string{`"dalle"`, "enabled providers: fake, other"}},
		{"unknown_model_lists_the_default_provider_models", generation.Request{Prompt: cat, Model: "sdxl"},
			[]string{`"sdxl"`, `"fake"`, "its models: fake-1, fake-small"}},
		{"unknown_model_lists_the_named_provider_models", generation.Request{Prompt: cat, Provider: "other", Model: "fake-1"},
			[]string{`"fake-1"`, `"other"`, "its models: other-1, other-small"}},
		{"model_of_the_named_provider_is_accepted", generation.Request{Prompt: cat, Provider: "other", Model: "other-small"}, nil},
		{"supported_aspect_ratio_is_accepted", generation.Request{Prompt: cat, AspectRatio: "16:9"}, nil},
		{"unsupported_aspect_ratio_names_the_supported_ones", generation.Request{Prompt: cat, AspectRatio: "9:16"},
			[]string{`"9:16"`, `"fake-1"`, "supported: 1:1, 16:9"}},
		{"aspect_ratio_unknown_to_the_api_is_refused", generation.Request{Prompt: cat, AspectRatio: "5:4"},
			[]string{`"5:4"`, "supported: 1:1, 16:9"}},
		{"aspect_ratio_of_another_model_is_refused", generation.Request{Prompt: cat, Model: "fake-small", AspectRatio: "16:9"},
			[]string{`"fake-small"`, "supported: 1:1"}},
		{"n_of_4_is_accepted", generation.Request{Prompt: cat, N: generation.Count(4)}, nil},
		{"n_of_5_is_refused", generation.Request{Prompt: cat, N: generation.Count(5)}, []string{"n must be from 1 to 4"}},
		{"negative_n_is_refused", generation.Request{Prompt: cat, N: generation.Count(-1)}, []string{"n must be from 1 to 4"}},
		{"n_of_0_is_refused_not_defaulted", generation.Request{Prompt: cat, N: generation.Count(0)}, []string{"n must be from 1 to 4"}},
		{"option_of_the_model_is_accepted", generation.Request{Prompt: cat, Options: map[string]string{"quality": "high"}}, nil},
		{"unknown_option_names_the_known_ones", generation.Request{Prompt: cat, Options: map[string]string{"qualty": "high"}},
			[]string{`no option "qualty"`, "its options: quality"}},
		{"option_value_outside_the_list_names_the_values", generation.Request{Prompt: cat, Options: map[string]string{"quality": "ultra"}},
			[]string{"option quality", "must be one of low, high", `"ultra"`}},
		{"options_on_a_model_without_any_are_refused", generation.Request{Prompt: cat, Model: "fake-small", Options: map[string]string{"quality": "high"}},
			[]string{`model "fake-small" takes no options`}},
		{"n_up_to_model_max_images_is_accepted", generation.Request{Prompt: cat, Model: "fake-small", N: generation.Count(2)}, nil},
		{"n_over_model_max_images_is_refused", generation.Request{Prompt: cat, Model: "fake-small", N: generation.Count(3)},
			[]string{"n must be from 1 to 2", `"fake-small"`}},
		{"prompt_at_the_limit_in_runes_is_accepted", generation.Request{Prompt: strings.Repeat("é", 20), Model: "fake-small"}, nil},
		{"prompt_over_the_limit_in_runes_is_refused", generation.Request{Prompt: strings.Repeat("é", 21), Model: "fake-small"},
			[]string{"longer than 20 characters", `"fake-small"`}},
		{"surrounding_spaces_do_not_count_against_the_limit", generation.Request{Prompt: "  " + strings.Repeat("a", 20) + "  ", Model: "fake-small"}, nil},
		{"prompt_with_style_over_the_limit_is_refused", generation.Request{Prompt: strings.Repeat("a", 15), Model: "fake-small", ArtStyle: "Noir"},
			[]string{"with its style and theme is longer than 20 characters"}},
		{"prompt_with_theme_over_the_model_limit_is_refused", generation.Request{Prompt: cat, ThemeDescription: strings.Repeat("é", 190)},
			[]string{"with its style and theme is longer than 200 characters"}},
		{"style_field_over_500_runes_is_refused", generation.Request{Prompt: cat, ArtDescription: strings.Repeat("é", 501)},
			[]string{"artDescription is longer than 500 characters"}},
		{"negative_prompt_is_accepted_when_supported", generation.Request{Prompt: cat, NegativePrompt: "blur"}, nil},
		{"negative_prompt_is_refused_when_the_model_lacks_it", generation.Request{Prompt: cat, Model: "fake-small", NegativePrompt: "blur"},
			[]string{`model "fake-small" does not support negativePrompt`}},
		{"negative_prompt_over_2000_runes_is_refused", generation.Request{Prompt: cat, NegativePrompt: strings.Repeat("é", 2001)},
			[]string{"negativePrompt is longer than 2000 characters"}},
		{"seed_is_refused_when_the_model_lacks_it", generation.Request{Prompt: cat, Model: "fake-small", Seed: int64p(1)},
			[]string{`model "fake-small" does not support seed`}},
		{"seed_0_is_accepted", generation.Request{Prompt: cat, Seed: int64p(0)}, nil},
		{"seed_4294967295_is_accepted", generation.Request{Prompt: cat, Seed: int64p(4294967295)}, nil},
		{"negative_seed_is_refused", generation.Request{Prompt: cat, Seed: int64p(-1)}, []string{"seed must be from 0 to 4294967295"}},
		{"seed_over_32_bits_is_refused", generation.Request{Prompt: cat, Seed: int64p(4294967296)}, []string{"seed must be from 0 to 4294967295"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := svc.Validate(tc.req)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantCode(t, err, imaged.EInvalidPrompt)
			for _, w := range tc.want {
				if msg := imaged.ErrMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
	if n := fake.callCount() + other.callCount(); n != 0 {
		t.Errorf("Validate called the providers %d times", n)
	}
}

// TestGenerateResolvesTheRequest checks what the provider is asked for and
// what the stored images record.
func TestGenerateResolvesTheRequest(t *testing.T) {
	tests := []struct {
		name                       string
		req                        generation.Request
		provider, model, ratio     string
		n                          int
		providerPrompt, userPrompt string
	}{
		{"defaults_are_the_default_provider_its_first_model_1_1_and_one_image",
			generation.Request{Prompt: "a cat"}, "fake", "fake-1", "1:1", 1, "a cat", "a cat"},
		{"named_provider_defaults_to_its_first_model",
			generation.Request{Prompt: "a cat", Provider: "other"}, "other", "other-1", "1:1", 1, "a cat", "a cat"},
		{"named_model_ratio_and_n_are_kept",
			generation.Request{Prompt: "a cat", Model: "fake-1", AspectRatio: "16:9", N: generation.Count(3)}, "fake", "fake-1", "16:9", 3, "a cat", "a cat"},
		{"prompt_is_trimmed",
			generation.Request{Prompt: "  a cat \n"}, "fake", "fake-1", "1:1", 1, "a cat", "a cat"},
		{"art_style_and_description_are_folded_into_the_provider_prompt",
			generation.Request{Prompt: "a cat", ArtStyle: "Watercolour", ArtDescription: "soft edges"}, "fake", "fake-1", "1:1", 1,
			"a cat\nArt style: Watercolour (soft edges)", "a cat"},
		{"theme_description_alone_is_folded",
			generation.Request{Prompt: "a cat", ThemeDescription: " autumn leaves "}, "fake", "fake-1", "1:1", 1,
			"a cat\nTheme: autumn leaves", "a cat"},
		{"art_and_theme_are_folded_in_that_order",
			generation.Request{Prompt: "a cat", ThemeStyle: "Noir", ArtDescription: "charcoal"}, "fake", "fake-1", "1:1", 1,
			"a cat\nArt style: charcoal\nTheme: Noir", "a cat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			fakes := map[string]*fakeGenerator{"fake": newFake("fake", nil), "other": newFake("other", nil)}
			svc := f.service(t, generation.Config{Providers: []imaged.Generator{fakes["fake"], fakes["other"]}})
			imgs, err := svc.Generate(context.Background(), alice, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got := fakes[tc.provider].lastRequest(t)
			if got.Prompt != tc.providerPrompt || got.Model != tc.model || got.AspectRatio != tc.ratio || got.N != tc.n {
				t.Errorf("provider got %+v, want prompt %q, model %s, ratio %s, n %d", got, tc.providerPrompt, tc.model, tc.ratio, tc.n)
			}
			if len(imgs) != tc.n {
				t.Fatalf("%d images, want %d", len(imgs), tc.n)
			}
			for _, img := range imgs {
				g := img.Generation
				if g == nil || g.Prompt != tc.userPrompt || g.Provider != tc.provider || g.Model != tc.model || g.AspectRatio != tc.ratio {
					t.Errorf("stored generation %+v, want prompt %q, provider %s, model %s, ratio %s", g, tc.userPrompt, tc.provider, tc.model, tc.ratio)
				}
			}
		})
	}
}
