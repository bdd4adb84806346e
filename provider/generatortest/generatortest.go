// Package generatortest is the conformance suite of imaged.Generator: every
// provider package runs Test from its own tests, so that the contract the
// service relies on is written once, not once per provider.
//
// The suite needs no provider account and no network. An adapter that talks
// HTTP is built with NoNetwork's client for it, so that a request the
// adapter must refuse by itself fails the test if it reaches the wire.
package generatortest

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// Test checks g against the contract of imaged.Generator:
//   - Name is a non-empty, lowercase provider id;
//   - Models lists at least one model, with unique non-empty ids, each with
//     aspect ratios drawn from imaged.AspectRatios and MaxImages of at least 1;
//   - a request for a model g does not offer, or for an aspect ratio a model
//     does not support, fails with imaged.EInvalidPrompt;
//   - a request under a cancelled context fails, without images, with an
//     error that wraps context.Canceled and is not worth retrying;
//   - edits (see imaged.Editor): a model with SupportsEdit is served by a
//     generator that implements Editor, and SupportsMask or SupportsStrength
//     come with SupportsEdit; Edit refuses, with imaged.EInvalidPrompt, an
//     unknown model, a model that cannot edit, a mask or a strength for a
//     model without them, and an unsupported aspect ratio; and an edit under
//     a cancelled context fails like a generation.
func Test(t *testing.T, g imaged.Generator) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.run(t, g) })
	}
}

// checks are the parts of Test, on testing.TB so that this package's own
// tests can watch them fail.
var checks = []struct {
	name string
	run  func(t testing.TB, g imaged.Generator)
}{
	{"name_is_a_lowercase_id", checkName},
	{"models_are_described", checkModels},
	{"unknown_model_is_an_invalid_prompt", checkUnknownModel},
	{"unsupported_aspect_ratio_is_an_invalid_prompt", checkUnsupportedRatio},
	{"cancelled_context_is_an_error", checkCancelled},
	{"edit_capabilities_are_consistent", checkEditCapabilities},
	{"edit_refuses_what_the_model_cannot_do", checkEditRefusals},
	{"edit_cancelled_context_is_an_error", checkEditCancelled},
}

func checkName(t testing.TB, g imaged.Generator) {
	name := g.Name()
	if name == "" || name != strings.ToLower(name) || strings.TrimSpace(name) != name {
		t.Errorf("Name() = %q, want a non-empty lowercase id", name)
	}
}

func checkModels(t testing.TB, g imaged.Generator) {
	models := g.Models()
	if len(models) == 0 {
		t.Fatalf("Models() is empty")
	}
	seen := map[string]bool{}
	for i, m := range models {
		if m.ID == "" {
			t.Errorf("model %d has an empty id", i)
		}
		if seen[m.ID] {
			t.Errorf("model id %q is listed twice", m.ID)
		}
		seen[m.ID] = true
		if len(m.AspectRatios) == 0 {
			t.Errorf("model %q lists no aspect ratio", m.ID)
		}
		for _, ar := range m.AspectRatios {
			if !slices.Contains(imaged.AspectRatios, ar) {
				t.Errorf("model %q lists aspect ratio %q, which is not one of %v", m.ID, ar, imaged.AspectRatios)
			}
		}
		if m.MaxImages < 1 {
			t.Errorf("model %q makes at most %d images, want at least 1", m.ID, m.MaxImages)
		}
	}
}

// validRequest is a request model m can serve, but for what a check changes.
func validRequest(m imaged.Model) imaged.GenerateRequest {
	ar := "1:1"
	if len(m.AspectRatios) > 0 {
		ar = m.AspectRatios[0]
	}
	return imaged.GenerateRequest{Prompt: "a red fox in the snow", Model: m.ID, AspectRatio: ar, N: 1}
}

func checkUnknownModel(t testing.TB, g imaged.Generator) {
	models := g.Models()
	if len(models) == 0 {
		t.Fatalf("Models() is empty")
	}
	req := validRequest(models[0])
	req.Model = "no-such-model-" + g.Name()
	wantInvalid(t, g, req)
}

func checkUnsupportedRatio(t testing.TB, g imaged.Generator) {
	for _, m := range g.Models() {
		// Every ratio of the API the model lacks, and one the API lacks.
		unsupported := []string{"5:4"}
		for _, ar := range imaged.AspectRatios {
			if !slices.Contains(m.AspectRatios, ar) {
				unsupported = append(unsupported, ar)
			}
		}
		for _, ar := range unsupported {
			req := validRequest(m)
			req.AspectRatio = ar
			wantInvalid(t, g, req)
		}
	}
}

// wantInvalid checks that g refuses req with imaged.EInvalidPrompt.
func wantInvalid(t testing.TB, g imaged.Generator, req imaged.GenerateRequest) {
	t.Helper()
	images, err := g.Generate(context.Background(), req)
	if code := imaged.ErrCode(err); code != imaged.EInvalidPrompt {
		t.Errorf("Generate(model %q, aspect ratio %q) = %d images, error %v (code %q); want %s",
			req.Model, req.AspectRatio, len(images), err, code, imaged.EInvalidPrompt)
	}
}

func checkCancelled(t testing.TB, g imaged.Generator) {
	models := g.Models()
	if len(models) == 0 {
		t.Fatalf("Models() is empty")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	images, err := g.Generate(ctx, validRequest(models[0]))
	wantCancelled(t, images, err)
}

// wantCancelled checks the outcome of a call under a cancelled context.
func wantCancelled(t testing.TB, images []imaged.GeneratedImage, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Generate under a cancelled context returned %d images and no error", len(images))
	}
	if images != nil {
		t.Errorf("Generate under a cancelled context returned %d images with its error", len(images))
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	var ue *imaged.UpstreamError
	if errors.As(err, &ue) && ue.Retryable {
		t.Errorf("error %v is retryable: nobody is left to retry for", err)
	}
}

// NoNetwork returns an HTTP client for building the generator Test checks.
// A request under a live context fails t: the checks only ask for what a
// generator must refuse, or give up, before it reaches its provider. A
// request whose context is already done gets that context's error, as from
// any transport, without failing t.
func NoNetwork(t testing.TB) *http.Client {
	return &http.Client{Transport: noNetwork{t}}
}

type noNetwork struct{ t testing.TB }

func (n noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	// Without the query, where a key may travel.
	n.t.Errorf("the generator sent %s %s://%s%s to its provider; it should have refused the request by itself",
		r.Method, r.URL.Scheme, r.URL.Host, r.URL.Path)
	return nil, errors.New("generatortest: no network in the conformance suite")
}

func checkEditCapabilities(t testing.TB, g imaged.Generator) {
	_, isEditor := g.(imaged.Editor)
	for _, m := range g.Models() {
		if m.SupportsEdit && !isEditor {
			t.Errorf("model %q has SupportsEdit, but %T does not implement imaged.Editor", m.ID, g)
		}
		if (m.SupportsMask || m.SupportsStrength) && !m.SupportsEdit {
			t.Errorf("model %q takes a mask or a strength but has not SupportsEdit", m.ID)
		}
	}
}

// sourcePNG is the image edits are asked for: 64x48 pixels, and a mask of
// its size.
var sourcePNG, maskPNG = func() ([]byte, []byte) {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	mask := image.NewGray(img.Bounds())
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.NRGBA{uint8(4 * x), uint8(5 * y), 90, 255})
			if x < 32 {
				mask.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	var a, b bytes.Buffer
	_ = png.Encode(&a, img)
	_ = png.Encode(&b, mask)
	return a.Bytes(), b.Bytes()
}()

// editRequest is an edit model m can serve, but for what a check changes.
func editRequest(m imaged.Model) imaged.EditRequest {
	req := validRequest(m)
	if ar := imaged.NearestAspectRatio(64, 48, m.AspectRatios); ar != "" {
		req.AspectRatio = ar // the service's default for an edit
	}
	return imaged.EditRequest{
		GenerateRequest: req,
		Image:           imaged.InputImage{Data: sourcePNG, MediaType: "image/png", Width: 64, Height: 48},
	}
}

func checkEditRefusals(t testing.TB, g imaged.Generator) {
	e, ok := g.(imaged.Editor)
	if !ok {
		return // no edits: nothing to refuse
	}
	models := g.Models()
	if len(models) == 0 {
		t.Fatalf("Models() is empty")
	}
	want := func(what string, req imaged.EditRequest) {
		t.Helper()
		images, err := e.Edit(context.Background(), req)
		if code := imaged.ErrCode(err); code != imaged.EInvalidPrompt {
			t.Errorf("Edit(model %q, %s) = %d images, error %v (code %q); want %s", req.Model, what, len(images), err, code, imaged.EInvalidPrompt)
		}
	}
	req := editRequest(models[0])
	req.Model = "no-such-model-" + g.Name()
	want("an unknown model", req)
	strength := 0.5
	for _, m := range models {
		if !m.SupportsEdit {
			want("a model that cannot edit", editRequest(m))
			continue
		}
		if !m.SupportsMask {
			req := editRequest(m)
			req.Mask = &imaged.InputImage{Data: maskPNG, MediaType: "image/png", Width: 64, Height: 48}
			want("a mask", req)
		}
		if !m.SupportsStrength {
			req := editRequest(m)
			req.Strength = &strength
			want("a strength", req)
		}
		req := editRequest(m)
		req.AspectRatio = "5:4"
		want("aspect ratio 5:4", req)
	}
}

func checkEditCancelled(t testing.TB, g imaged.Generator) {
	e, ok := g.(imaged.Editor)
	if !ok {
		return
	}
	for _, m := range g.Models() {
		if !m.SupportsEdit {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		images, err := e.Edit(ctx, editRequest(m))
		wantCancelled(t, images, err)
		return
	}
}
