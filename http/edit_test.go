package http

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

const editPattern = "/api/images/{id}/edit"

// apiEdit is an edit as the API answers it.
type apiEdit struct {
	apiImage
	ParentID   string             `json:"parentId"`
	Strength   *float64           `json:"strength"`
	MaskID     string             `json:"maskId"`
	Provenance *imaged.Provenance `json:"provenance"`
}

func editPath(id string) string { return "/api/images/" + id + "/edit" }

// maskPNG is a w×h opaque mask, white on its left half.
func maskPNG(t testing.TB, w, h int) []byte {
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

// fetchPixels decodes the bytes behind an image's URL.
func (h *harness) fetchPixels(t *testing.T, url string) image.Image {
	t.Helper()
	resp, err := h.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, _, err := image.Decode(resp.Body)
	if err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return img
}

func TestEdit(t *testing.T) {
	h := newHarness(t, options{})
	alice := mintToken(t, "alice")
	src := h.upload(t, alice, "photo.png", pngBytes(t, 300, 200, 3))

	t.Run("json_edit_makes_an_edit_of_the_source", func(t *testing.T) {
		resp, body := h.call(t, "POST", editPattern, editPath(src.ID), alice,
			jsonBody(map[string]any{"prompt": "make it stormy", "seed": 7, "n": 2, "strength": 0.5}), jsonHeader)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		got := dataAs[[]apiEdit](t, body)
		if len(got) != 2 {
			t.Fatalf("%d images, want 2: %s", len(got), body)
		}
		for i, e := range got {
			if e.Source != "edit" || e.ParentID != src.ID || e.Prompt != "make it stormy" || e.Provider != "builtin" ||
				e.Strength == nil || *e.Strength != 0.5 || e.Seed == nil || *e.Seed != int64(7+i) {
				t.Errorf("edit %d: %+v", i, e)
			}
			// 300x200 is nearest to 3:2, the default ratio of an edit.
			if e.AspectRatio != "3:2" || e.Width != 1024 || e.Height != 683 {
				t.Errorf("edit %d is %s %dx%d, want 3:2 1024x683", i, e.AspectRatio, e.Width, e.Height)
			}
			if e.Provenance == nil || e.Provenance.DigitalSourceType != "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia" {
				t.Errorf("edit %d provenance = %+v", i, e.Provenance)
			}
			// GET answers the same object.
			_, one := h.call(t, "GET", "/api/images/{id}", "/api/images/"+e.ID, alice, nil, nil)
			if g := dataAs[apiEdit](t, one); g.ParentID != src.ID || g.Source != "edit" {
				t.Errorf("GET edit %d: %s", i, one)
			}
		}
		// The listing filters edits.
		_, list := h.call(t, "GET", "/api/images", "/api/images?source=edit", alice, nil, nil)
		if l := dataAs[[]apiEdit](t, list); len(l) != 2 || l[0].Source != "edit" {
			t.Errorf("source=edit listing: %s", list)
		}
	})

	t.Run("multipart_with_an_uploaded_mask", func(t *testing.T) {
		body, hdr := multipartBody(t,
			filePart{field: "prompt", data: []byte("a red door")},
			filePart{field: "strength", data: []byte("1")},
			filePart{field: "aspectRatio", data: []byte("1:1")},
			filePart{field: "mask", filename: "mask.png", contentType: "image/png", data: maskPNG(t, 300, 200)})
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		got := dataAs[[]apiEdit](t, b)
		if len(got) != 1 || got[0].MaskID == "" || got[0].ParentID != src.ID || got[0].AspectRatio != "1:1" {
			t.Fatalf("%s", b)
		}
		// The mask is kept as one of alice's images.
		if r, mb := h.call(t, "GET", "/api/images/{id}", "/api/images/"+got[0].MaskID, alice, nil, nil); r.StatusCode != 200 {
			t.Errorf("mask image: %d %s", r.StatusCode, mb)
		}
		// Strength 1 under the mask: the masked (left) half changed, the
		// other half is the source, scaled.
		srcPix := h.fetchPixels(t, src.URL)
		out := h.fetchPixels(t, got[0].URL)
		w := out.Bounds().Dx()
		// The source's centre crop: 200x200 from x=50, scaled to 1024.
		same := func(x, y int) bool {
			sx, sy := 50+x*200/w, y*200/w
			a, b := color.RGBAModel.Convert(out.At(x, y)).(color.RGBA), color.RGBAModel.Convert(srcPix.At(sx, sy)).(color.RGBA)
			d := func(p, q uint8) int { return max(int(p)-int(q), int(q)-int(p)) }
			return d(a.R, b.R)+d(a.G, b.G)+d(a.B, b.B) < 30
		}
		if !same(w*3/4, w/4) {
			t.Errorf("the unmasked half changed at (%d, %d)", w*3/4, w/4)
		}
		changed := 0
		for i := range 10 {
			if !same(w/8+i*w/40, w/4) {
				changed++
			}
		}
		if changed < 5 {
			t.Errorf("only %d of 10 points of the masked half changed", changed)
		}
	})

	t.Run("mask_by_image_id", func(t *testing.T) {
		mask := h.upload(t, alice, "mask.png", maskPNG(t, 300, 200))
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice,
			jsonBody(map[string]any{"prompt": "a window", "mask": mask.ID}), jsonHeader)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if got := dataAs[[]apiEdit](t, b); got[0].MaskID != mask.ID {
			t.Errorf("%s", b)
		}
	})

	t.Run("async_edit_is_a_job", func(t *testing.T) {
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice,
			jsonBody(map[string]any{"prompt": "in winter"}), http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		job := dataAs[struct {
			apiJob
			ParentID string `json:"parentId"`
		}](t, b)
		if job.Status != "queued" || job.ParentID != src.ID || resp.Header.Get("Location") != "/api/images/generations/"+job.ID {
			t.Fatalf("%s %v", b, resp.Header)
		}
		if ran, err := h.gen.RunOne(context.Background()); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		_, jb := h.call(t, "GET", jobPattern, "/api/images/generations/"+job.ID, alice, nil, nil)
		done := dataAs[struct {
			Status string    `json:"status"`
			Images []apiEdit `json:"images"`
		}](t, jb)
		if done.Status != "succeeded" || len(done.Images) != 1 || done.Images[0].ParentID != src.ID || done.Images[0].Source != "edit" {
			t.Errorf("%s", jb)
		}
	})

	t.Run("idempotent_multipart_replays_across_boundaries", func(t *testing.T) {
		before := h.imageCount(t, "alice")
		send := func() (*http.Response, []byte) {
			body, hdr := multipartBody(t, filePart{field: "prompt", data: []byte("once")},
				filePart{field: "mask", filename: "m.png", contentType: "image/png", data: maskPNG(t, 300, 200)})
			hdr.Set("Idempotency-Key", "edit-once")
			return h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		}
		r1, b1 := send()
		r2, b2 := send() // a new boundary, the same parts
		if r1.StatusCode != 200 || r2.StatusCode != 200 || r2.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%d %s / %d %s %v", r1.StatusCode, b1, r2.StatusCode, b2, r2.Header)
		}
		if dataAs[[]apiEdit](t, b1)[0].ID != dataAs[[]apiEdit](t, b2)[0].ID {
			t.Errorf("the replay answered other images")
		}
		if n := h.imageCount(t, "alice"); n != before+2 { // the mask and one edit
			t.Errorf("%d images after two sends, want %d", n, before+2)
		}
	})
}

func (h *harness) imageCount(t *testing.T, owner string) int64 {
	t.Helper()
	p, err := h.images.List(context.Background(), imaged.ImageFilter{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return p.TotalItems
}

func TestEditRefusals(t *testing.T) {
	cannot := pngGenerator(t, "noedit")
	h := newHarness(t, options{providers: []imaged.Generator{cannot}, quota: imaged.QuotaLimits{ImagesPerDay: 3}})
	alice, bob := mintToken(t, "alice"), mintToken(t, "bob")
	src := h.upload(t, alice, "photo.png", pngBytes(t, 64, 48, 1))
	before := h.imageCount(t, "alice")

	for _, tc := range []struct {
		name   string
		tok    string
		id     string
		body   io.Reader
		hdr    http.Header
		status int
		code   imaged.ErrorCode
		says   string
	}{
		{"another_owners_image_is_not_found", bob, src.ID, jsonBody(map[string]any{"prompt": "x"}), jsonHeader, 404, imaged.ENotFound, ""},
		{"unknown_image_is_not_found", alice, imaged.NewID(), jsonBody(map[string]any{"prompt": "x"}), jsonHeader, 404, imaged.ENotFound, ""},
		{"a_model_that_cannot_edit", alice, src.ID, jsonBody(map[string]any{"prompt": "x", "provider": "noedit"}), jsonHeader, 400, imaged.EEditUnsupported, "builtin/procedural-v1"},
		{"prompt_is_required", alice, src.ID, jsonBody(map[string]any{}), jsonHeader, 400, imaged.EInvalidPrompt, "prompt"},
		{"strength_out_of_range", alice, src.ID, jsonBody(map[string]any{"prompt": "x", "strength": 1.5}), jsonHeader, 400, imaged.EInvalidPrompt, "strength"},
		{"n_zero", alice, src.ID, jsonBody(map[string]any{"prompt": "x", "n": 0}), jsonHeader, 400, imaged.EInvalidPrompt, "n must"},
		{"unknown_field", alice, src.ID, jsonBody(map[string]any{"prompt": "x", "image": "y"}), jsonHeader, 400, imaged.EValidation, "unknown field"},
		{"mask_of_another_owner", alice, src.ID, jsonBody(map[string]any{"prompt": "x", "mask": imaged.NewID()}), jsonHeader, 404, imaged.ENotFound, "Mask"},
		{"text_body", alice, src.ID, strings.NewReader("prompt=x"), http.Header{"Content-Type": {"text/plain"}}, 400, imaged.EValidation, "JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.call(t, "POST", editPattern, editPath(tc.id), tc.tok, tc.body, tc.hdr)
			e := wantError(t, resp, body, tc.status, tc.code)
			if !strings.Contains(e.Message, tc.says) {
				t.Errorf("message %q does not say %q", e.Message, tc.says)
			}
		})
	}

	t.Run("mask_of_another_size_is_refused_and_not_kept", func(t *testing.T) {
		body, hdr := multipartBody(t, filePart{field: "prompt", data: []byte("x")},
			filePart{field: "mask", filename: "m.png", contentType: "image/png", data: maskPNG(t, 10, 10)})
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		e := wantError(t, resp, b, 400, imaged.EInvalidPrompt)
		if !strings.Contains(e.Message, "10x10") || !strings.Contains(e.Message, "64x48") {
			t.Errorf("message %q", e.Message)
		}
	})

	t.Run("multipart_field_given_twice", func(t *testing.T) {
		body, hdr := multipartBody(t, filePart{field: "prompt", data: []byte("x")}, filePart{field: "prompt", data: []byte("y")})
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		wantError(t, resp, b, 400, imaged.EValidation)
	})

	t.Run("multipart_with_too_many_fields", func(t *testing.T) {
		parts := []filePart{{field: "prompt", data: []byte("x")}}
		for i := range 40 {
			parts = append(parts, filePart{field: "f" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		}
		body, hdr := multipartBody(t, parts...)
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		if e := wantError(t, resp, b, 400, imaged.EValidation); !strings.Contains(e.Message, "at most 32 fields") {
			t.Errorf("message %q", e.Message)
		}
	})

	t.Run("multipart_number_that_is_not_one", func(t *testing.T) {
		body, hdr := multipartBody(t, filePart{field: "prompt", data: []byte("x")}, filePart{field: "n", data: []byte("two")})
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, body, hdr)
		wantError(t, resp, b, 400, imaged.EValidation)
	})

	t.Run("quota_counts_edits", func(t *testing.T) {
		resp, b := h.call(t, "POST", editPattern, editPath(src.ID), alice, jsonBody(map[string]any{"prompt": "x", "n": 3}), jsonHeader)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		resp, b = h.call(t, "POST", editPattern, editPath(src.ID), alice, jsonBody(map[string]any{"prompt": "x"}), jsonHeader)
		wantError(t, resp, b, 429, imaged.EQuotaExceeded)
	})

	// Nothing refused left an image behind (the mask uploads included);
	// only the three edits of the quota test were kept.
	if n := h.imageCount(t, "alice"); n != before+3 {
		t.Errorf("alice has %d images, want %d", n, before+3)
	}
}
