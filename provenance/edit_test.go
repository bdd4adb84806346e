package provenance

import (
	"encoding/json"
	"testing"
)

// An edit's marks say compositeWithTrainedAlgorithmicMedia, in the XMP
// (read by exiftool) and in a C2PA manifest that c2pa-rs validates.
func TestMarkEdited(t *testing.T) {
	m := testMarker(t)
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			out, p, err := m.MarkEdited(s.data, "openai", "gpt-image-1")
			if err != nil {
				t.Fatal(err)
			}
			decodes(t, s, out)
			if p.DigitalSourceType != CompositeWithTrainedAlgorithmicMedia || !p.C2PA {
				t.Fatalf("provenance = %+v", p)
			}
			if got := Inspect(out); got == nil || *got != *p {
				t.Fatalf("Inspect = %+v, want %+v", got, p)
			}
			if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != CompositeWithTrainedAlgorithmicMedia {
				t.Fatalf("exiftool DigitalSourceType = %q", got)
			}
			r := c2paRead(t, s.format.MediaType(), out, "")
			checkValid(t, r)
			var acts actionsJSON
			for _, a := range r.Store.Manifests[p.Manifest].Assertions {
				if a.Label == labelActions {
					json.Unmarshal(a.Data, &acts)
				}
			}
			if len(acts.Actions) != 1 || acts.Actions[0].DigitalSourceType != CompositeWithTrainedAlgorithmicMedia {
				t.Fatalf("actions = %+v", acts)
			}
		})
	}
}
