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
	return m.mark(data, nil, provider, model)
}

// mark embeds the marks of an image provider's model made: from nothing,
// or, for an edit, from source.
func (m *Marker) mark(data []byte, source *editSource, provider, model string) ([]byte, *imaged.Provenance, error) {
	sourceType, title := source.digitalSourceType(), "generated."
	if source != nil {
		title = "edit."
	}
	format := container.Sniff(data)
	marks, err := container.ReadMarks(data)
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	if marks.C2PA != nil && !m.Signs() {
		// Without signing, a manifest the provider signed is worth more
		// than our XMP: any change would break its hard binding, so the
		// bytes stay as they came.
		if in := FromMarks(marks); in != nil {
			return data, in, nil
		}
	}
	now := m.cfg.Now()
	a := m.agent(provider, model)
	p := &imaged.Provenance{DigitalSourceType: sourceType}
	spec := manifestSpec{label: newManifestLabel(), title: title + format.Ext()}
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
	var signed *ingredient
	if marks.C2PA != nil {
		// The provider's manifest store: our parent if it parses, dropped
		// and replaced by ours if it does not.
		if ing, err := manifestIngredient(marks.C2PA, ingredientV3{Title: spec.title, Format: format.MediaType(), Relationship: parentOf}); err == nil {
			signed = &ing
		}
		if data, err = container.RemoveC2PA(data); err != nil {
			return nil, nil, unmarkable(err)
		}
	}
	acts, parent, err := m.madeActions(&spec, signed, source, a, now.UTC().Format(time.RFC3339))
	if err != nil {
		return nil, nil, err
	}
	if err := spec.addActions(acts); err != nil {
		return nil, nil, err
	}
	out, err := embedManifest(data, spec, m.generator, m.cfg.Credentials)
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	p.C2PA, p.Manifest, p.ClaimGenerator, p.Ingredient = true, spec.label, "imaged", parent
	return out, p, nil
}

// madeActions returns the actions of the manifest of an image a model made
// (agent a, at when), adding the ingredients they name to spec, and the
// label of the parent ingredient's manifest ("" for none):
//   - generated: c2pa.created;
//   - generated and signed by its provider (signed, the provider's
//     manifest): c2pa.opened of the provider's manifest as parentOf
//     ingredient;
//   - edited: c2pa.opened of the source as parentOf ingredient, then
//     c2pa.edited by the model;
//   - edited and signed by its provider: c2pa.opened of the provider's
//     manifest as parentOf ingredient, and the source as an inputTo one.
//
// The action that made the image gives its digital source type.
//
// When an edit comes back signed, the image our manifest derives from is
// the provider's: its hard binding is to those bytes, and C2PA allows a
// manifest one parentOf ingredient only (manifest.multipleParents), which
// c2pa.opened must name. The source is then what C2PA 2.x's inputTo
// relationship says: an input of the computation (the provider's model)
// that made the image. The edit itself is the provider's to record, in
// its manifest; ours records the opening, as for a signed generation.
func (m *Marker) madeActions(spec *manifestSpec, signed *ingredient, source *editSource, a Agent, when string) ([]action, string, error) {
	sourceType := source.digitalSourceType()
	if signed != nil {
		opened := action{Action: "c2pa.opened", When: when, SoftwareAgent: m.generator, DigitalSourceType: sourceType,
			Description: "The image as " + a.Provider + " signed it, marked by imaged",
			Parameters:  ingredients(spec.addIngredient(*signed))}
		if source != nil {
			ing, err := source.ingredient(inputTo, "The image "+a.Provider+"'s model edited into the parent")
			if err != nil {
				return nil, "", err
			}
			spec.addIngredient(ing)
		}
		return []action{opened}, signed.manifest, nil
	}
	if source == nil {
		return []action{{Action: "c2pa.created", When: when, SoftwareAgent: a.softwareAgent(), DigitalSourceType: sourceType}}, "", nil
	}
	ing, err := source.ingredient(parentOf, "")
	if err != nil {
		return nil, "", err
	}
	return []action{
		{Action: "c2pa.opened", When: when, SoftwareAgent: m.generator, Parameters: ingredients(spec.addIngredient(ing))},
		{Action: "c2pa.edited", When: when, SoftwareAgent: a.softwareAgent(), DigitalSourceType: sourceType,
			Description: "Edited by " + a.Provider + "'s model " + a.Model + " as a prompt asked"},
	}, ing.manifest, nil
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
