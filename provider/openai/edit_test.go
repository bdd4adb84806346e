package openai_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// editForm is what one POST /v1/images/edits carried.
type editForm struct {
	fields map[string]string
	images [][]byte // image[] files, in order
	mask   []byte
}

// edits reproduces POST /v1/images/edits as the API reference documents it:
// multipart/form-data with model, prompt, n, size and the optional quality,
// background and output_format; the source images as image[] (PNG, JPEG or
// WebP files); an optional mask, a PNG with an alpha channel of the first
// image's size whose fully transparent pixels are those to edit. What the
// real API refuses, the fake refuses the same way.
func (f *fakeOpenAI) edits(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if !f.authorized(w, r) {
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		t.Errorf("the edit is not multipart/form-data: %v", err)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid multipart body.")
		return
	}
	form := editForm{fields: map[string]string{}}
	body := map[string]any{}
	for k, v := range r.MultipartForm.Value {
		if len(v) != 1 {
			t.Errorf("field %s sent %d times", k, len(v))
		}
		form.fields[k] = v[0]
		body[k] = v[0]
	}
	if n, err := strconv.Atoi(form.fields["n"]); err == nil {
		body["n"] = float64(n)
	}
	for name, files := range r.MultipartForm.File {
		switch name {
		case "image[]":
			for _, fh := range files {
				data := readFile(t, fh.Open)
				if ct := fh.Header.Get("Content-Type"); ct != "image/png" && ct != "image/jpeg" && ct != "image/webp" {
					t.Errorf("image[] sent as %q", ct)
				}
				form.images = append(form.images, data)
			}
		case "mask":
			form.mask = readFile(t, files[0].Open)
		default:
			t.Errorf("unexpected file field %q", name)
			writeError(w, http.StatusBadRequest, "invalid_request_error", "unknown_parameter", "Unknown parameter: '"+name+"'.")
			return
		}
	}
	f.mu.Lock()
	f.edited = append(f.edited, form)
	f.mu.Unlock()
	if len(form.images) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Missing required parameter: 'image'.")
		return
	}
	if form.fields["prompt"] == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Missing required parameter: 'prompt'.")
		return
	}
	if form.mask != nil {
		m, err := png.Decode(bytes.NewReader(form.mask))
		src, _, serr := image.DecodeConfig(bytes.NewReader(form.images[0]))
		if err != nil || serr != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_image_format", "Invalid mask image format - mask must be a PNG.")
			return
		}
		if _, ok := m.(*image.NRGBA); !ok {
			if _, ok := m.(*image.RGBA); !ok {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid mask: it must have an alpha channel.")
				return
			}
		}
		if m.Bounds().Dx() != src.Width || m.Bounds().Dy() != src.Height {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid mask: it must have the same dimensions as the image.")
			return
		}
	}
	if rejectParams(w, body) {
		return
	}
	f.answer(w, r, body)
}

func readFile(t *testing.T, open func() (multipart.File, error)) []byte {
	t.Helper()
	fh, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	data, err := io.ReadAll(fh)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (f *fakeOpenAI) editForms() []editForm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]editForm(nil), f.edited...)
}

// grayMask is imaged's form of a mask: white on the left half.
func grayMask(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w / 2 {
			m.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEdit(t *testing.T) {
	src := testPNG(t, 30) // 3x2
	out := [][]byte{testPNG(t, 200), testPNG(t, 201)}

	t.Run("sends_the_documented_multipart_request", func(t *testing.T) {
		f := newFake(t, answerPNGs(out, ""))
		images, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "add a hat", Model: "gpt-image-1", AspectRatio: "3:2", N: 2,
				Options: map[string]string{"quality": "high", "output_format": "webp"}},
			Image: imaged.InputImage{Data: src, MediaType: "image/png", Width: 3, Height: 2},
			Mask:  &imaged.InputImage{Data: grayMask(t, 3, 2), MediaType: "image/png", Width: 3, Height: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(images) != 2 || !bytes.Equal(images[0].Data, out[0]) || images[0].Usage == nil || images[0].Usage.TotalTokens != 4210 {
			t.Errorf("images %d, usage %+v", len(images), images[0].Usage)
		}
		forms := f.editForms()
		if len(forms) != 1 {
			t.Fatalf("%d edit requests, want 1", len(forms))
		}
		got := forms[0]
		want := map[string]string{"model": "gpt-image-1", "prompt": "add a hat", "n": "2", "size": "1536x1024", "quality": "high", "output_format": "webp"}
		if fmt.Sprint(got.fields) != fmt.Sprint(want) {
			t.Errorf("fields %v, want %v", got.fields, want)
		}
		if len(got.images) != 1 || !bytes.Equal(got.images[0], src) {
			t.Errorf("image[] is not the source as stored")
		}
		m, err := png.Decode(bytes.NewReader(got.mask))
		if err != nil {
			t.Fatal(err)
		}
		// White (edit) became transparent, black (keep) opaque.
		if _, _, _, a := m.At(0, 0).RGBA(); a != 0 {
			t.Errorf("alpha at the edited pixel = %d, want 0", a)
		}
		if _, _, _, a := m.At(2, 1).RGBA(); a != 0xffff {
			t.Errorf("alpha at the kept pixel = %d, want opaque", a)
		}
	})

	t.Run("without_a_mask_sends_none", func(t *testing.T) {
		f := newFake(t, answerPNGs(out, ""))
		_, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1},
			Image:           imaged.InputImage{Data: src, MediaType: "image/png"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.editForms()[0]; got.mask != nil || got.fields["model"] != "gpt-image-1.5" || got.fields["size"] != "1024x1024" {
			t.Errorf("%+v", got.fields)
		}
	})

	t.Run("refusals_before_the_wire", func(t *testing.T) {
		f := newFake(t, answerPNGs(out, ""))
		strength := 0.3
		for name, req := range map[string]imaged.EditRequest{
			"strength": {GenerateRequest: imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1}, Image: imaged.InputImage{Data: src, MediaType: "image/png"}, Strength: &strength},
			"gif":      {GenerateRequest: imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1}, Image: imaged.InputImage{Data: []byte("GIF89a"), MediaType: "image/gif"}},
		} {
			if _, err := f.generator(t).Edit(context.Background(), req); imaged.ErrCode(err) != imaged.EInvalidPrompt {
				t.Errorf("%s: %v", name, err)
			}
		}
		if n := len(f.editForms()); n != 0 {
			t.Errorf("%d requests reached the API", n)
		}
	})

	t.Run("a_moderated_edit_is_a_content_policy_refusal", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			writeError(w, http.StatusBadRequest, "image_generation_user_error", "moderation_blocked", "Your request was rejected by the safety system.")
		})
		_, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1},
			Image:           imaged.InputImage{Data: src, MediaType: "image/png"},
		})
		if imaged.ErrCode(err) != imaged.EContentPolicy || strings.Contains(err.Error(), testKey) {
			t.Errorf("error %v", err)
		}
	})

	t.Run("b64_answer_is_decoded", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			writeImages(w, datum{B64JSON: base64.StdEncoding.EncodeToString(out[1])})
		})
		images, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "x", Model: "gpt-image-2", AspectRatio: "16:9", N: 1},
			Image:           imaged.InputImage{Data: src, MediaType: "image/png"},
		})
		if err != nil || !bytes.Equal(images[0].Data, out[1]) {
			t.Fatalf("%v", err)
		}
		if size := f.editForms()[0].fields["size"]; !checkFreeSize(size) {
			t.Errorf("gpt-image-2 edit size %s", size)
		}
	})
}
