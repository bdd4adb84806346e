package provenance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// editSources are the images an edit is made from: a generation of ours,
// signed (its record says so), and an upload that carries no mark.
func editSources(t *testing.T, m *Marker) (generated, upload *imaged.Image, generatedData, uploadData []byte) {
	t.Helper()
	generatedData, generated = generatedOriginal(t, m)
	var pb bytes.Buffer
	if err := png.Encode(&pb, testImage()); err != nil {
		t.Fatal(err)
	}
	upload = &imaged.Image{ID: "01a221fc-4a1c-7b2e-9d3f-0c6a4e2b9f10", OriginalFilename: "photo.png", MediaType: "image/png",
		Width: 64, Height: 48, Source: imaged.SourceUpload}
	return generated, upload, generatedData, pb.Bytes()
}

// editActions returns the actions of the active manifest that c2pa-rs read.
func editActions(t *testing.T, r *c2paReport) actionsJSON {
	t.Helper()
	var acts actionsJSON
	for _, a := range r.Store.Manifests[r.Store.ActiveManifest].Assertions {
		if a.Label == labelActions {
			if err := json.Unmarshal(a.Data, &acts); err != nil {
				t.Fatal(err)
			}
		}
	}
	return acts
}

// openedIngredient is the assertion label the first action, c2pa.opened,
// names as its ingredient ("" when it is not c2pa.opened of one).
func openedIngredient(acts actionsJSON) string {
	if len(acts.Actions) == 0 || acts.Actions[0].Action != "c2pa.opened" {
		return ""
	}
	uris, _ := acts.Actions[0].Parameters["ingredients"].([]any)
	if len(uris) != 1 {
		return ""
	}
	uri, _ := uris[0].(map[string]any)
	url, _ := uri["url"].(string)
	label, _ := strings.CutPrefix(url, "self#jumbf="+labelAssertions+"/")
	return label
}

// checkIngredientValidated asserts that c2pa-rs validated the manifest of
// the ingredient labelled label, and found nothing wrong with it but the
// trust of the development certificate.
func checkIngredientValidated(t *testing.T, r *c2paReport, label string) {
	t.Helper()
	success, _, failure := r.ingredientDeltas(label)
	if !slices.Contains(success, "ingredient.manifest.validated") || !slices.Equal(failure, []string{"signingCredential.untrusted"}) {
		t.Errorf("c2pa-rs on ingredient %s: success %v, failure %v", label, success, failure)
	}
}

// TestMarkEdited: an edit's marks say compositeWithTrainedAlgorithmicMedia,
// in the XMP (read by exiftool) and in a C2PA manifest that c2pa-rs
// validates, which opens the source as its parentOf ingredient and then
// records the model's edit. A source with a manifest is referenced by it,
// and c2pa-rs validates it too; one without is named by its filename,
// media type and digest.
func TestMarkEdited(t *testing.T) {
	m := testMarker(t)
	generated, upload, generatedData, uploadData := editSources(t, m)
	uploadSum := sha256.Sum256(uploadData)
	for _, s := range samples(t) {
		for _, src := range []struct {
			name     string
			image    *imaged.Image
			data     []byte
			manifest string // the source's, "" for none
		}{
			{"of_a_signed_generation", generated, generatedData, generated.Provenance.Manifest},
			{"of_an_unmarked_upload", upload, uploadData, ""},
		} {
			t.Run(s.name+"/"+src.name, func(t *testing.T) {
				out, p, err := m.MarkEdited(s.data, src.image, src.data, "openai", "gpt-image-1")
				if err != nil {
					t.Fatal(err)
				}
				decodes(t, s, out)
				if p.DigitalSourceType != CompositeWithTrainedAlgorithmicMedia || !p.C2PA || p.Ingredient != src.manifest {
					t.Fatalf("provenance = %+v, want the ingredient %q", p, src.manifest)
				}
				if got := Inspect(out); got == nil || *got != *p {
					t.Fatalf("Inspect = %+v, want %+v", got, p)
				}
				if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != CompositeWithTrainedAlgorithmicMedia {
					t.Fatalf("exiftool DigitalSourceType = %q", got)
				}
				r := c2paRead(t, s.format.MediaType(), out, "")
				checkValid(t, r)
				if r.Store.ActiveManifest != p.Manifest {
					t.Fatalf("active manifest %s, want %s", r.Store.ActiveManifest, p.Manifest)
				}
				ings := r.Store.Manifests[p.Manifest].Ingredients
				if len(ings) != 1 {
					t.Fatalf("ingredients %+v, want the source", ings)
				}
				ing := ings[0]
				if ing.Relationship != parentOf || ing.ActiveManifest != src.manifest ||
					ing.Title != src.image.OriginalFilename || ing.Format != src.image.MediaType {
					t.Fatalf("ingredient %+v", ing)
				}
				acts := editActions(t, r)
				if len(acts.Actions) != 2 || openedIngredient(acts) != ing.Label {
					t.Fatalf("actions %+v, want c2pa.opened of %s then c2pa.edited", acts, ing.Label)
				}
				if e := acts.Actions[1]; e.Action != "c2pa.edited" || e.DigitalSourceType != CompositeWithTrainedAlgorithmicMedia ||
					e.SoftwareAgent["name"] != "imaged" || e.SoftwareAgent["org.imaged.provider"] != "openai" || e.SoftwareAgent["org.imaged.model"] != "gpt-image-1" {
					t.Fatalf("edit action %+v", e)
				}
				if src.manifest == "" {
					if want := "sha256:" + hex.EncodeToString(uploadSum[:]); ing.InstanceID != want {
						t.Errorf("instance id %q, want %q", ing.InstanceID, want)
					}
					if _, info, failure := r.ingredientDeltas(ing.Label); !slices.Contains(info, "ingredient.unknownProvenance") || len(failure) != 0 {
						t.Errorf("c2pa-rs on the unmarked source: informational %v, failure %v", info, failure)
					}
					return
				}
				if _, ok := r.Store.Manifests[src.manifest]; !ok {
					t.Fatal("the source's manifest is not in the edit's store")
				}
				checkIngredientValidated(t, r, ing.Label)
			})
		}
	}
}

// TestMarkEditedOfASignedAnswer: when the provider signed the edit it
// returned, its manifest is the parent (the one parentOf ingredient C2PA
// allows, the one c2pa.opened names) and the source an inputTo ingredient,
// both validated by c2pa-rs; a provider that named the source in its own
// manifest brings the source's manifests twice, and the store keeps them
// once.
func TestMarkEditedOfASignedAnswer(t *testing.T) {
	provider := providerMarker(t)
	m := testMarker(t)
	generated, _, generatedData, _ := editSources(t, m)
	for _, s := range samples(t)[:2] {
		for _, tc := range []struct {
			name string
			sign func() ([]byte, *imaged.Provenance, error)
		}{
			{"provider_names_no_source", func() ([]byte, *imaged.Provenance, error) {
				return provider.MarkGenerated(s.data, "openai", "gpt-image-1")
			}},
			{"provider_names_the_source_too", func() ([]byte, *imaged.Provenance, error) {
				return provider.MarkEdited(s.data, generated, generatedData, "openai", "gpt-image-1")
			}},
		} {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				signed, pp, err := tc.sign()
				if err != nil {
					t.Fatal(err)
				}
				out, p, err := m.MarkEdited(signed, generated, generatedData, "openai", "gpt-image-1")
				if err != nil {
					t.Fatal(err)
				}
				decodes(t, s, out)
				if p.DigitalSourceType != CompositeWithTrainedAlgorithmicMedia || p.Ingredient != pp.Manifest || p.Manifest == pp.Manifest {
					t.Fatalf("provenance %+v, provider's manifest %s", p, pp.Manifest)
				}
				if got := Inspect(out); got == nil || *got != *p {
					t.Fatalf("Inspect = %+v, want %+v", got, p)
				}
				r := c2paRead(t, s.format.MediaType(), out, "")
				checkValid(t, r)
				ings := r.Store.Manifests[p.Manifest].Ingredients
				if len(ings) != 2 ||
					ings[0].Relationship != parentOf || ings[0].ActiveManifest != pp.Manifest ||
					ings[1].Relationship != inputTo || ings[1].ActiveManifest != generated.Provenance.Manifest || ings[1].Title != generated.OriginalFilename || ings[1].Description == "" {
					t.Fatalf("ingredients %+v; provider's manifest %s, source's %s", ings, pp.Manifest, generated.Provenance.Manifest)
				}
				acts := editActions(t, r)
				if len(acts.Actions) != 1 || openedIngredient(acts) != ings[0].Label || acts.Actions[0].DigitalSourceType != CompositeWithTrainedAlgorithmicMedia {
					t.Fatalf("actions %+v, want c2pa.opened of %s", acts, ings[0].Label)
				}
				for _, ing := range ings {
					checkIngredientValidated(t, r, ing.Label)
				}
				sb, err := parseSuperbox(mustMarks(t, out).C2PA, 1)
				if err != nil {
					t.Fatal(err)
				}
				var labels []string
				for _, c := range sb.children {
					if slices.Contains(labels, c.label) {
						t.Errorf("manifest %s twice in the store", c.label)
					}
					labels = append(labels, c.label)
				}
			})
		}
	}
}

// TestMarkEditedWithoutSigning: the XMP mark only, of an edit.
func TestMarkEditedWithoutSigning(t *testing.T) {
	m := New(Config{Version: "1.2.3"})
	_, upload, _, uploadData := editSources(t, testMarker(t))
	s := samples(t)[0]
	out, p, err := m.MarkEdited(s.data, upload, uploadData, "builtin", "procedural")
	if err != nil {
		t.Fatal(err)
	}
	if p.C2PA || p.DigitalSourceType != CompositeWithTrainedAlgorithmicMedia || p.Ingredient != "" {
		t.Fatalf("provenance = %+v", p)
	}
	if marks := mustMarks(t, out); marks.C2PA != nil || marks.XMP == nil {
		t.Fatalf("marks = %+v", marks)
	}
	if got := exiftoolTag(t, out, "XMP-iptcExt:DigitalSourceType"); got != CompositeWithTrainedAlgorithmicMedia {
		t.Fatalf("exiftool DigitalSourceType = %q", got)
	}
}

func mustMarks(t *testing.T, data []byte) container.Marks {
	t.Helper()
	marks, err := container.ReadMarks(data)
	if err != nil {
		t.Fatal(err)
	}
	return marks
}

// TestInstanceIDOfAnIngredient: the xmpMM:InstanceID of the source's XMP
// when it has one (C2PA 8.3), its digest otherwise.
func TestInstanceIDOfAnIngredient(t *testing.T) {
	data := []byte("the bytes")
	sum := sha256.Sum256(data)
	for _, tc := range []struct {
		name string
		xmp  string
		want string
	}{
		{"no_xmp", "", "sha256:" + hex.EncodeToString(sum[:])},
		{"xmp_without_an_instance_id", `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description/></rdf:RDF></x:xmpmeta>`,
			"sha256:" + hex.EncodeToString(sum[:])},
		{"attribute", `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmpMM:InstanceID="xmp.iid:1b2c"/></rdf:RDF></x:xmpmeta>`,
			"xmp.iid:1b2c"},
		{"element", `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"><xmpMM:InstanceID> xmp.iid:3d4e </xmpMM:InstanceID></rdf:Description></rdf:RDF></x:xmpmeta>`,
			"xmp.iid:3d4e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var marks container.Marks
			if tc.xmp != "" {
				marks.XMP = []byte(tc.xmp)
			}
			if got := instanceID(marks, data); got != tc.want {
				t.Fatalf("instanceID = %q, want %q", got, tc.want)
			}
		})
	}
}
