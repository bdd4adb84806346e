package builtin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/generatortest"
)

const foxPrompt = "a red fox in a snowy forest at dawn"

func seed(v int64) *int64 { return &v }

func generate(t *testing.T, req imaged.GenerateRequest) []imaged.GeneratedImage {
	t.Helper()
	imgs, err := New().Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", req, err)
	}
	if len(imgs) != req.N {
		t.Fatalf("Generate returned %d images, want %d", len(imgs), req.N)
	}
	return imgs
}

func digest(b []byte) [32]byte { return sha256.Sum256(b) }

func TestGeneratorDescribesOneProceduralModel(t *testing.T) {
	g := New()
	if g.Name() != "builtin" {
		t.Errorf("Name() = %q, want builtin", g.Name())
	}
	models := g.Models()
	if len(models) != 1 {
		t.Fatalf("Models() has %d models, want 1", len(models))
	}
	m := models[0]
	if m.ID != "procedural-v1" {
		t.Errorf("ID = %q, want procedural-v1", m.ID)
	}
	if !strings.Contains(m.Description, "procedural placeholder") || !strings.Contains(m.Description, "Not an AI model") {
		t.Errorf("Description %q does not say it is a procedural placeholder, not an AI model", m.Description)
	}
	if !slices.Equal(m.AspectRatios, imaged.AspectRatios) {
		t.Errorf("AspectRatios = %v, want %v", m.AspectRatios, imaged.AspectRatios)
	}
	if m.MaxImages != 4 || m.MaxPromptLength != 4000 || !m.SupportsSeed || m.SupportsNegativePrompt {
		t.Errorf("model limits = %+v", m)
	}
	// The caller may not change the shared list of ratios through a model.
	m.AspectRatios[0] = "changed"
	if imaged.AspectRatios[0] == "changed" {
		t.Error("Models shares its AspectRatios slice with imaged.AspectRatios")
	}
}

var sizes = []struct {
	ratio string
	w, h  int
}{
	{"1:1", 1024, 1024},
	{"16:9", 1024, 576},
	{"9:16", 576, 1024},
	{"4:3", 1024, 768},
	{"3:4", 768, 1024},
	{"3:2", 1024, 683},
	{"2:3", 683, 1024},
}

func TestSize(t *testing.T) {
	for _, tc := range sizes {
		w, h, ok := Size(tc.ratio)
		if !ok || w != tc.w || h != tc.h {
			t.Errorf("Size(%q) = %d, %d, %v; want %d, %d, true", tc.ratio, w, h, ok, tc.w, tc.h)
		}
	}
	if len(sizes) != len(imaged.AspectRatios) {
		t.Errorf("test covers %d ratios, imaged.AspectRatios has %d", len(sizes), len(imaged.AspectRatios))
	}
	for _, bad := range []string{"", "5:4", "1:2", "16x9", "1:1 "} {
		if w, h, ok := Size(bad); ok {
			t.Errorf("Size(%q) = %d, %d, true; want not ok", bad, w, h)
		}
	}
}

func TestGenerate(t *testing.T) {
	t.Run("each_aspect_ratio_has_its_size", func(t *testing.T) {
		for _, tc := range sizes {
			img := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: tc.ratio, N: 1, Seed: seed(7)})[0]
			cfg, format, err := image.DecodeConfig(bytes.NewReader(img.Data))
			if err != nil {
				t.Fatalf("%s: DecodeConfig: %v", tc.ratio, err)
			}
			if format != "png" || cfg.Width != tc.w || cfg.Height != tc.h {
				t.Errorf("%s: got %s %dx%d, want png %dx%d", tc.ratio, format, cfg.Width, cfg.Height, tc.w, tc.h)
			}
		}
	})

	t.Run("empty_model_and_ratio_mean_the_defaults", func(t *testing.T) {
		a := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, N: 1, Seed: seed(3)})[0]
		b := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, Model: "procedural-v1", AspectRatio: "1:1", N: 1, Seed: seed(3)})[0]
		if !bytes.Equal(a.Data, b.Data) {
			t.Error("empty model and aspect ratio render differently from procedural-v1 at 1:1")
		}
	})

	t.Run("output_is_a_decodable_png", func(t *testing.T) {
		data := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "4:3", N: 1})[0].Data
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("data does not start with the PNG signature: % x", data[:min(8, len(data))])
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("png.Decode: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1024 || b.Dy() != 768 {
			t.Fatalf("bounds = %v, want 1024x768", b)
		}
		// Not a flat fill: many distinct colours, and every pixel opaque.
		colours := map[[3]uint32]bool{}
		for y := 0; y < 768; y += 7 {
			for x := 0; x < 1024; x += 7 {
				r, g, b, a := img.At(x, y).RGBA()
				if a != 0xffff {
					t.Fatalf("pixel (%d,%d) has alpha %#x, want opaque", x, y, a)
				}
				colours[[3]uint32{r, g, b}] = true
			}
		}
		if len(colours) < 100 {
			t.Errorf("image has only %d distinct colours in a sample; expected a gradient with shapes", len(colours))
		}
	})

	t.Run("same_input_gives_same_bytes", func(t *testing.T) {
		req := imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "16:9", N: 2, Seed: seed(42)}
		a, b := generate(t, req), generate(t, req)
		for i := range a {
			if digest(a[i].Data) != digest(b[i].Data) {
				t.Errorf("image %d differs between two identical requests", i)
			}
		}
	})

	t.Run("different_seed_gives_different_bytes", func(t *testing.T) {
		a := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "16:9", N: 1, Seed: seed(42)})[0]
		b := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "16:9", N: 1, Seed: seed(43)})[0]
		if digest(a.Data) == digest(b.Data) {
			t.Error("seeds 42 and 43 gave identical images")
		}
	})

	t.Run("different_prompt_gives_different_bytes", func(t *testing.T) {
		a := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, N: 1, Seed: seed(1)})[0]
		b := generate(t, imaged.GenerateRequest{Prompt: "a blue whale", N: 1, Seed: seed(1)})[0]
		if digest(a.Data) == digest(b.Data) {
			t.Error("two prompts with the same seed gave identical images")
		}
	})

	t.Run("n_images_are_distinct_and_use_consecutive_seeds", func(t *testing.T) {
		imgs := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "1:1", N: 4, Seed: seed(100)})
		seen := map[[32]byte]int{}
		for i, img := range imgs {
			if img.Seed == nil || *img.Seed != 100+int64(i) {
				t.Errorf("image %d reports seed %v, want %d", i, img.Seed, 100+i)
			}
			d := digest(img.Data)
			if j, dup := seen[d]; dup {
				t.Errorf("images %d and %d are identical", j, i)
			}
			seen[d] = i
		}
		// Image i of N is the image that seed+i renders alone.
		third := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "1:1", N: 1, Seed: seed(102)})[0]
		if !bytes.Equal(third.Data, imgs[2].Data) {
			t.Error("image 2 of a batch seeded 100 differs from a single image seeded 102")
		}
	})

	t.Run("without_seed_the_prompt_picks_one_and_reports_it", func(t *testing.T) {
		req := imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "3:2", N: 2}
		a, b := generate(t, req), generate(t, req)
		if a[0].Seed == nil || a[1].Seed == nil {
			t.Fatal("generated images do not report the seed used")
		}
		if *a[1].Seed != *a[0].Seed+1 {
			t.Errorf("seeds %d, %d are not consecutive", *a[0].Seed, *a[1].Seed)
		}
		for i := range a {
			if !bytes.Equal(a[i].Data, b[i].Data) || *a[i].Seed != *b[i].Seed {
				t.Errorf("image %d differs between two unseeded requests for the same prompt", i)
			}
		}
		// Passing the reported seed back reproduces the image.
		again := generate(t, imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "3:2", N: 1, Seed: seed(*a[0].Seed)})[0]
		if !bytes.Equal(again.Data, a[0].Data) {
			t.Error("the reported seed does not reproduce the image")
		}
		other := generate(t, imaged.GenerateRequest{Prompt: "a blue whale", AspectRatio: "3:2", N: 1})[0]
		if *other.Seed == *a[0].Seed {
			t.Errorf("two prompts derived the same seed %d", *other.Seed)
		}
	})

	t.Run("long_prompts_render", func(t *testing.T) {
		words := strings.Repeat("lorem ipsum dolor sit amet ", 160)[:4000]
		oneWord := strings.Repeat("x", 4000)
		for _, p := range []string{words, oneWord, "  tabs\tand\nnewlines  ", "日本語のプロンプト 🦊"} {
			generate(t, imaged.GenerateRequest{Prompt: p, AspectRatio: "9:16", N: 1})
		}
	})
}

func TestGenerateRejectsInvalidRequests(t *testing.T) {
	valid := imaged.GenerateRequest{Prompt: foxPrompt, Model: "procedural-v1", AspectRatio: "1:1", N: 1}
	tests := []struct {
		name    string
		change  func(*imaged.GenerateRequest)
		message string // a part of the caller-safe message
	}{
		{"unknown_aspect_ratio", func(r *imaged.GenerateRequest) { r.AspectRatio = "5:4" }, `"5:4"`},
		{"unknown_model", func(r *imaged.GenerateRequest) { r.Model = "dall-e-3" }, `"dall-e-3"`},
		{"zero_images", func(r *imaged.GenerateRequest) { r.N = 0 }, "between 1 and 4"},
		{"too_many_images", func(r *imaged.GenerateRequest) { r.N = 5 }, "between 1 and 4"},
		{"empty_prompt", func(r *imaged.GenerateRequest) { r.Prompt = " \n " }, "empty"},
		{"prompt_too_long", func(r *imaged.GenerateRequest) { r.Prompt = strings.Repeat("é", 4001) }, "4000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := valid
			tc.change(&req)
			imgs, err := New().Generate(context.Background(), req)
			if code := imaged.ErrCode(err); code != imaged.EInvalidPrompt {
				t.Fatalf("error code = %q (%v), want %s", code, err, imaged.EInvalidPrompt)
			}
			if msg := imaged.ErrMessage(err); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q does not mention %s", msg, tc.message)
			}
			if imgs != nil {
				t.Errorf("got %d images with the error", len(imgs))
			}
		})
	}
}

func TestGenerateHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	imgs, err := New().Generate(ctx, imaged.GenerateRequest{Prompt: foxPrompt, N: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if imgs != nil {
		t.Errorf("got %d images from a cancelled request", len(imgs))
	}

	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if _, err := New().Generate(ctx, imaged.GenerateRequest{Prompt: foxPrompt, N: 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestWrap(t *testing.T) {
	f, err := regular()
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 20, DPI: 72})
	if err != nil {
		t.Fatal(err)
	}
	width := fixed.I(200)
	tests := []struct {
		name     string
		text     string
		maxLines int
		want     []string // nil: only check the invariants
		ellipsis bool
	}{
		{"short_text_is_one_line", "a red fox", 3, []string{"a red fox"}, false},
		{"whitespace_collapses", "  a\tred\n\nfox ", 3, []string{"a red fox"}, false},
		{"breaks_at_spaces", strings.Repeat("fox ", 30), 10, nil, false},
		{"breaks_inside_a_long_word", strings.Repeat("x", 100), 10, nil, false},
		{"too_much_text_ends_with_ellipsis", strings.Repeat("snowy forest ", 100), 3, nil, true},
		{"too_long_word_ends_with_ellipsis", strings.Repeat("y", 1000), 2, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := wrap(face, tc.text, width, tc.maxLines)
			if tc.want != nil && !slices.Equal(lines, tc.want) {
				t.Fatalf("wrap = %q, want %q", lines, tc.want)
			}
			if len(lines) == 0 || len(lines) > tc.maxLines {
				t.Fatalf("wrap gave %d lines, want 1..%d", len(lines), tc.maxLines)
			}
			for _, l := range lines {
				if font.MeasureString(face, l) > width {
					t.Errorf("line %q is wider than %v", l, width)
				}
			}
			last := lines[len(lines)-1]
			if got := strings.HasSuffix(last, "…"); got != tc.ellipsis {
				t.Errorf("last line %q: ellipsis = %v, want %v", last, got, tc.ellipsis)
			}
			if !tc.ellipsis {
				joined := strings.Join(lines, " ")
				if tc.name == "breaks_inside_a_long_word" {
					joined = strings.Join(lines, "")
				}
				if joined != strings.Join(strings.Fields(tc.text), " ") {
					t.Errorf("wrapping lost text: %q", lines)
				}
			}
		})
	}
}

func BenchmarkGenerate1x1(b *testing.B) {
	g := New()
	req := imaged.GenerateRequest{Prompt: foxPrompt, AspectRatio: "1:1", N: 1, Seed: seed(1)}
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if _, err := g.Generate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

func TestConformance(t *testing.T) {
	generatortest.Test(t, New())
}
