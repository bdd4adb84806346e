// Package provenance marks what imaged generates as AI-generated, in the
// two forms the industry reads: an XMP packet with the IPTC digital source
// type trainedAlgorithmicMedia, and C2PA Content Credentials (a manifest
// store of JUMBF boxes holding a CBOR claim v2, its assertions with the
// c2pa.hash.data hard binding, and a COSE_Sign1 ES256 signature by the
// operator's certificate). It also reads those marks from uploaded images.
//
// No Go C2PA library exists; the format is written here on
// github.com/fxamacker/cbor and crypto/ecdsa, and the tests prove it
// against c2pa-rs (npm @contentauth/c2pa-wasm). The container package
// places the marks in PNG, JPEG and WebP files.
package provenance

import (
	"errors"
	"io"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// Config sets up a Marker.
type Config struct {
	// Version of imaged, recorded as the claim generator's and in the XMP.
	Version string
	// Credentials sign the C2PA manifests; nil writes the XMP mark only.
	Credentials *Credentials
	Now         func() time.Time // time.Now if nil
}

// Marker marks images.
type Marker struct {
	cfg       Config
	generator generatorInfo
}

// New returns a Marker.
func New(cfg Config) *Marker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return &Marker{cfg: cfg, generator: generatorInfo{"name": "imaged", "version": cfg.Version}}
}

// Signs tells whether the marker adds C2PA manifests.
func (m *Marker) Signs() bool { return m.cfg.Credentials != nil }

func (m *Marker) agent(provider, model string) Agent {
	return Agent{Name: "imaged", Version: m.cfg.Version, Provider: provider, Model: model}
}

func (a Agent) softwareAgent() generatorInfo {
	g := generatorInfo{"name": a.Name, "version": a.Version}
	if a.Provider != "" {
		g["org.imaged.provider"] = a.Provider
	}
	if a.Model != "" {
		g["org.imaged.model"] = a.Model
	}
	return g
}

func unmarkable(err error) error {
	if errors.Is(err, container.ErrUnsupported) {
		return &imaged.Error{Code: imaged.EUnsupportedMedia, Message: "The image format cannot carry provenance marks", Err: err}
	}
	return &imaged.Error{Code: imaged.EUnsupportedMedia, Message: "The image is malformed", Err: err}
}

// MarkGenerated marks an image that provider's model generated: it embeds
// the XMP mark and, when signing, a C2PA manifest whose c2pa.created
// action gives the digital source type trainedAlgorithmicMedia and the
// software agent. A manifest the provider embedded (OpenAI signs its
// images) is kept: it becomes our manifest's parent ingredient, its
// manifests stay in the store, and our manifest opens it instead of
// claiming to have created the image. It returns the marked bytes and
// what they now say.
func (m *Marker) MarkGenerated(data []byte, provider, model string) ([]byte, *imaged.Provenance, error) {
	return m.mark(data, provider, model, TrainedAlgorithmicMedia)
}

// MarkEdited marks an image that provider's model made from an existing
// image as a prompt said: as MarkGenerated, with the digital source type
// compositeWithTrainedAlgorithmicMedia.
func (m *Marker) MarkEdited(data []byte, provider, model string) ([]byte, *imaged.Provenance, error) {
	return m.mark(data, provider, model, CompositeWithTrainedAlgorithmicMedia)
}

// mark embeds the marks of an image a model made, of digital source type
// sourceType.
func (m *Marker) mark(data []byte, provider, model, sourceType string) ([]byte, *imaged.Provenance, error) {
	format := container.Sniff(data)
	mediaType := format.MediaType()
	marks, err := container.ReadMarks(data)
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	now := m.cfg.Now()
	a := m.agent(provider, model)
	p := &imaged.Provenance{DigitalSourceType: sourceType}
	spec := manifestSpec{label: newManifestLabel(), title: "generated." + format.Ext()}

	created := action{
		Action:            "c2pa.created",
		When:              now.UTC().Format(time.RFC3339),
		SoftwareAgent:     a.softwareAgent(),
		DigitalSourceType: sourceType,
	}
	acts := []action{created}
	if marks.C2PA != nil && m.Signs() {
		ing, err := manifestIngredient(marks.C2PA, ingredientV3{Title: spec.title, Format: mediaType, Relationship: parentOf})
		if err == nil {
			if data, err = container.RemoveC2PA(data); err != nil {
				return nil, nil, unmarkable(err)
			}
			p.Ingredient = ing.manifest
			acts = []action{{
				Action:            "c2pa.opened",
				When:              created.When,
				SoftwareAgent:     m.generator,
				DigitalSourceType: sourceType,
				Description:       "The image as " + provider + " signed it, marked by imaged",
				Parameters:        ingredients(spec.addIngredient(ing)),
			}}
		} // a store that does not parse is dropped and replaced by ours
	}
	if marks.C2PA != nil && !m.Signs() {
		// Without signing, a manifest the provider signed is worth more
		// than our XMP: any change would break its hard binding, so the
		// bytes stay as they came.
		if in := Inspect(data); in != nil {
			return data, in, nil
		}
	}
	uri := ""
	if m.Signs() {
		uri = manifestURI(spec.label)
	}
	if data, err = container.EmbedXMP(data, xmpPacket(sourceType, a, now, uri)); err != nil {
		return nil, nil, unmarkable(err)
	}
	if !m.Signs() {
		return data, p, nil
	}
	if err := spec.addActions(acts); err != nil {
		return nil, nil, err
	}
	if marks.C2PA != nil && spec.parents == nil {
		if data, err = container.RemoveC2PA(data); err != nil {
			return nil, nil, unmarkable(err)
		}
	}
	out, err := embedManifest(data, spec, m.generator, m.cfg.Credentials)
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	p.C2PA, p.Manifest, p.ClaimGenerator = true, spec.label, "imaged"
	return out, p, nil
}

// Inspect reads the marks an image came with: the digital source type of
// its XMP packet or of its C2PA manifest's actions, and whether it has a
// manifest store. It checks their structure, not the signature. Nil when
// the image carries neither mark.
func Inspect(data []byte) *imaged.Provenance {
	marks, err := container.ReadMarks(data)
	if err != nil {
		return nil
	}
	return FromMarks(marks)
}

// InspectReader is Inspect of a stream, read to its end; memory holds the
// marks only. A malformed stream has no provenance.
func InspectReader(r io.Reader) *imaged.Provenance {
	marks, err := container.ReadMarksFrom(r)
	if err != nil {
		return nil
	}
	return FromMarks(marks)
}

// FromMarks is what marks found in a file say (see Inspect); nil when there
// are none.
func FromMarks(marks container.Marks) *imaged.Provenance {
	if marks.XMP == nil && marks.C2PA == nil {
		return nil
	}
	p := &imaged.Provenance{}
	if marks.XMP != nil {
		p.DigitalSourceType = xmpDigitalSourceType(marks.XMP)
	}
	if marks.C2PA != nil {
		p.C2PA = true
		label, gen, st, err := activeManifestInfo(marks.C2PA)
		if err == nil {
			p.Manifest, p.ClaimGenerator, p.Ingredient = label, gen, parentManifest(marks.C2PA)
			if p.DigitalSourceType == "" {
				p.DigitalSourceType = st
			}
		}
	}
	if !p.C2PA && p.DigitalSourceType == "" {
		return nil
	}
	return p
}
