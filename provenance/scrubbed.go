package provenance

import (
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// MarkScrubbed signs again an upload that carried a C2PA manifest and lost
// private metadata (container.ScrubSigned): data is the cleaned file, its
// manifest store still in place but its hard binding broken by the edits.
// The result carries a manifest of ours whose c2pa.opened action takes the
// uploaded manifest as its parentOf ingredient (its manifests kept in the
// store, so validators still follow the chain) and whose
// c2pa.edited.metadata action says what changed. It needs credentials, and
// a manifest store that parses.
func (m *Marker) MarkScrubbed(data []byte) ([]byte, *imaged.Provenance, error) {
	if !m.Signs() {
		return nil, nil, &imaged.Error{Code: imaged.EInternal, Message: "Signing is off"}
	}
	marks, err := container.ReadMarks(data)
	if err != nil || marks.C2PA == nil {
		return nil, nil, unmarkable(err)
	}
	format := container.Sniff(data)
	spec := manifestSpec{label: newManifestLabel(), title: "upload." + format.Ext()}
	ing, err := manifestIngredient(marks.C2PA, ingredientV3{Title: spec.title, Format: format.MediaType(), Relationship: parentOf})
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	_, _, sourceType, _ := activeManifestInfo(marks.C2PA)
	if marks.XMP != nil {
		if st := xmpDigitalSourceType(marks.XMP); st != "" {
			sourceType = st
		}
	}
	parent := spec.addIngredient(ing)
	when := m.cfg.Now().UTC().Format(time.RFC3339)
	acts := []action{
		{Action: "c2pa.opened", When: when, SoftwareAgent: m.generator, DigitalSourceType: sourceType,
			Parameters: ingredients(parent)},
		{Action: "c2pa.edited.metadata", When: when, SoftwareAgent: m.generator,
			Description: "Private metadata removed (location, serial numbers, contact details)"},
	}
	if err := spec.addActions(acts); err != nil {
		return nil, nil, err
	}
	if data, err = container.RemoveC2PA(data); err != nil {
		return nil, nil, unmarkable(err)
	}
	out, err := embedManifest(data, spec, m.generator, m.cfg.Credentials)
	if err != nil {
		return nil, nil, unmarkable(err)
	}
	return out, &imaged.Provenance{DigitalSourceType: sourceType, C2PA: true, Manifest: spec.label, ClaimGenerator: "imaged", Ingredient: ing.manifest}, nil
}
