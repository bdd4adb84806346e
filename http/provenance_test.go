package http

import (
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/provenance"
)

func TestGeneratedImageProvenance(t *testing.T) {
	alice := mintToken(t, "alice")
	h := newHarness(t, options{})
	resp, body := h.call(t, "POST", generatePath, generatePath, alice, jsonBody(map[string]any{"prompt": "a lighthouse"}), jsonHeader)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	img := dataAs[[]apiImage](t, body)[0]
	_, body = h.call(t, "GET", "/api/images/{id}", "/api/images/"+img.ID, alice, nil, nil)
	got := dataAs[struct {
		Provenance *imaged.Provenance `json:"provenance"`
	}](t, body).Provenance
	if got == nil || got.DigitalSourceType != provenance.TrainedAlgorithmicMedia || !got.C2PA || got.Manifest == "" || got.ClaimGenerator != "imaged" {
		t.Fatalf("provenance %+v: %s", got, body)
	}
	_, data := h.call(t, "GET", "/cdn/{key}", cdnPath(t, img.URL), "", nil, nil)
	if in := provenance.Inspect(data); in == nil || *in != *got {
		t.Fatalf("the served bytes say %+v, the API %+v", in, got)
	}
	if m, err := container.ReadMarks(data); err != nil || m.XMP == nil || m.C2PA == nil {
		t.Fatalf("served bytes: XMP %v, C2PA %v, %v", m.XMP != nil, m.C2PA != nil, err)
	}
}
