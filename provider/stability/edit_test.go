package stability_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// edit reproduces POST /v2beta/stable-image/edit/inpaint as the API
// reference documents it: multipart/form-data with the image (a PNG, JPEG
// or WebP file), prompt, an optional mask (grayscale; white is repainted;
// without one the image's alpha channel says what to repaint), and the
// optional negative_prompt, seed, grow_mask, style_preset and
// output_format. Other services of /edit are not served by the fake.
func (f *fakeStability) edit(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.PathValue("service") != "inpaint" {
		t.Errorf("unexpected edit service %s", r.PathValue("service"))
		writeError(w, http.StatusNotFound, "not_found", "resource not found")
		return
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+testKey; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
		writeError(w, http.StatusUnauthorized, "unauthorized", "authorization: invalid or missing header value")
		return
	}
	if got := r.Header.Get("Accept"); got != "image/*" {
		t.Errorf("Accept = %q, want image/*", got)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		writeError(w, http.StatusBadRequest, "bad_request", "content-type: must be multipart/form-data")
		return
	}
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "could not parse the form")
		return
	}
	s := sent{Path: r.URL.Path, Fields: map[string]string{}}
	files := map[string][]byte{}
	for k, v := range r.MultipartForm.Value {
		s.Fields[k] = v[0]
		if !slices.Contains([]string{"prompt", "negative_prompt", "seed", "grow_mask", "style_preset", "output_format"}, k) {
			t.Errorf("inpaint got the undocumented field %q", k)
		}
	}
	for k, fhs := range r.MultipartForm.File {
		fh, _ := fhs[0].Open()
		files[k], _ = io.ReadAll(fh)
		fh.Close()
		if ct := fhs[0].Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/") {
			t.Errorf("file %s sent as %q", k, ct)
		}
	}
	f.mu.Lock()
	f.sent = append(f.sent, s)
	f.files = append(f.files, files)
	f.mu.Unlock()
	switch {
	case files["image"] == nil:
		writeError(w, http.StatusBadRequest, "bad_request", "image: is required")
	case strings.TrimSpace(s.Fields["prompt"]) == "":
		writeError(w, http.StatusBadRequest, "bad_request", "prompt: is required")
	case s.Fields["seed"] != "" && !validSeed(s.Fields["seed"]):
		writeError(w, http.StatusBadRequest, "bad_request", "seed: must be between 0 and 4294967294")
	default:
		f.answer(w, r, s)
	}
}

func grayMask(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	m.SetGray(0, 0, color.Gray{Y: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEdit(t *testing.T) {
	src := testPNG(t, 10) // 2x3
	out := [][]byte{testPNG(t, 100), testPNG(t, 101)}
	mask := grayMask(t, 2, 3)
	edit := func(ar string, n int, seed *int64) imaged.EditRequest {
		return imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "a red scarf", NegativePrompt: "blur", Model: "core", AspectRatio: ar, N: n, Seed: seed},
			Image:           imaged.InputImage{Data: src, MediaType: "image/png", Width: 2, Height: 3},
			Mask:            &imaged.InputImage{Data: mask, MediaType: "image/png", Width: 2, Height: 3},
		}
	}

	t.Run("inpaints_with_the_documented_request", func(t *testing.T) {
		f := newFake(t)
		f.answer = answerPNGs(out)
		seed := int64(41)
		images, err := f.generator(t).Edit(context.Background(), edit("2:3", 2, &seed))
		if err != nil {
			t.Fatal(err)
		}
		if len(images) != 2 || !bytes.Equal(images[1].Data, out[1]) || images[1].Seed == nil || *images[1].Seed != 42 {
			t.Fatalf("%d images", len(images))
		}
		reqs := f.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		for i, r := range reqs {
			want := map[string]string{"prompt": "a red scarf", "negative_prompt": "blur", "seed": []string{"41", "42"}[i], "output_format": "png"}
			if r.Path != "/v2beta/stable-image/edit/inpaint" || !equalFields(r.Fields, want) {
				t.Errorf("request %d: %s %v", i, r.Path, r.Fields)
			}
			if files := f.files[i]; !bytes.Equal(files["image"], src) || !bytes.Equal(files["mask"], mask) {
				t.Errorf("request %d: image or mask is not what was given", i)
			}
		}
	})

	t.Run("refused_before_the_wire", func(t *testing.T) {
		f := newFake(t)
		f.answer = answerPNGs(out)
		g := f.generator(t)
		noMask := edit("2:3", 1, nil)
		noMask.Mask = nil
		strength := 0.5
		withStrength := edit("2:3", 1, nil)
		withStrength.Strength = &strength
		otherModel := edit("2:3", 1, nil)
		otherModel.Model = "ultra"
		for name, req := range map[string]imaged.EditRequest{
			"another_shape": edit("16:9", 1, nil), "no_mask": noMask, "strength": withStrength, "model_without_edits": otherModel,
		} {
			if _, err := g.Edit(context.Background(), req); imaged.ErrCode(err) != imaged.EInvalidPrompt {
				t.Errorf("%s: %v", name, err)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests reached the API", n)
		}
	})

	t.Run("content_filtered", func(t *testing.T) {
		f := newFake(t)
		f.answer = func(w http.ResponseWriter, _ *http.Request, _ sent) { writeImage(w, out[0], "1", "CONTENT_FILTERED") }
		if _, err := f.generator(t).Edit(context.Background(), edit("2:3", 1, nil)); imaged.ErrCode(err) != imaged.EContentPolicy {
			t.Errorf("%v", err)
		}
	})
}

func equalFields(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
