package provenance

import (
	"bytes"
	"context"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// CanMark tells whether images of mediaType can carry the marks: PNG, JPEG
// and WebP. (AVIF and GIF cannot, here: the container package does not
// write their metadata.)
func CanMark(mediaType string) bool {
	switch mediaType {
	case "image/png", "image/jpeg", "image/webp":
		return true
	}
	return false
}

// MarkVariant marks a variant (a resized or re-encoded rendering) of
// original, whose stored bytes are source, so that it says what the
// original says: the same XMP mark (digital source type, AI system and
// model, the creator tool) and, when signing, a C2PA manifest whose
// c2pa.opened action names the original as its parentOf ingredient (with
// the original's manifests kept in the store, so validators follow the
// chain), followed by c2pa.resized when the dimensions changed and
// c2pa.transcoded (the re-encoding). It has the signature of the variants
// service's Mark hook.
//
// An original with no provenance (an upload that carried no mark) gives
// its variants none either: the variant is returned as it is. A variant
// of a marked original in a format that cannot carry marks (AVIF, GIF) is
// refused with EUnsupportedMedia rather than served unmarked.
func (m *Marker) MarkVariant(ctx context.Context, original *imaged.Image, source, variant []byte, mediaType string) ([]byte, error) {
	if original == nil || original.Provenance == nil {
		return variant, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	format := container.Sniff(variant)
	if !CanMark(mediaType) || format.MediaType() != mediaType {
		return nil, &imaged.Error{Code: imaged.EUnsupportedMedia,
			Message: "This image carries provenance marks, which " + mediaType + " variants cannot carry: ask for WebP, JPEG or PNG"}
	}
	info, err := container.Validate(bytes.NewReader(variant), container.Options{})
	if err != nil {
		return nil, unmarkable(err)
	}
	if marks, err := container.ReadMarks(variant); err == nil && marks.C2PA != nil {
		// Renders strip metadata; a manifest here would not be ours.
		if variant, err = container.RemoveC2PA(variant); err != nil {
			return nil, unmarkable(err)
		}
	}
	prov := original.Provenance
	a := Agent{Name: "imaged", Version: m.cfg.Version}
	if g := original.Generation; g != nil {
		a.Provider, a.Model = g.Provider, g.Model
	}
	now := m.cfg.Now()
	spec := manifestSpec{label: newManifestLabel(), title: "variant." + format.Ext()}
	uri := ""
	if m.Signs() {
		uri = manifestURI(spec.label)
	}
	out, err := container.EmbedXMP(variant, xmpPacket(prov.DigitalSourceType, a, now, uri))
	if err != nil {
		return nil, unmarkable(err)
	}
	if !m.Signs() {
		return out, nil
	}

	// The original as the parent ingredient, carrying its manifest if it
	// has one.
	sm, _ := container.ReadMarks(source) // marks that do not read are none
	ing, err := ingredientOf(sm, ingredientV3{Title: original.OriginalFilename, Format: original.MediaType, Relationship: parentOf})
	if err != nil {
		return nil, err
	}
	parent := spec.addIngredient(ing)
	when := now.UTC().Format(time.RFC3339)
	acts := []action{{
		Action:            "c2pa.opened",
		When:              when,
		SoftwareAgent:     m.generator,
		DigitalSourceType: prov.DigitalSourceType,
		Parameters:        ingredients(parent),
	}}
	if info.Width != original.Width || info.Height != original.Height {
		acts = append(acts, action{Action: "c2pa.resized", When: when, SoftwareAgent: m.generator,
			Description: "Resized from the original's dimensions"})
	}
	acts = append(acts, action{Action: "c2pa.transcoded", When: when, SoftwareAgent: m.generator,
		Description: "Re-encoded as " + mediaType})
	if err := spec.addActions(acts); err != nil {
		return nil, err
	}
	out, err = embedManifest(out, spec, m.generator, m.cfg.Credentials)
	if err != nil {
		return nil, unmarkable(err)
	}
	return out, nil
}
