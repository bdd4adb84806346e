package provenance

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
)

// MarkEdited marks an image that provider's model made from source, an
// existing image whose stored bytes are sourceData, as a prompt said: as
// MarkGenerated, with the digital source type
// compositeWithTrainedAlgorithmicMedia, and, when signing, a manifest that
// names the source as its parentOf ingredient: c2pa.opened of the source,
// then c2pa.edited by the model (its software agent, the digital source
// type). A source that carries a manifest store (our generations do) is
// referenced by its active manifest, and its manifests are kept in the
// edit's store, so validators follow the chain to the source's own
// c2pa.created; the returned provenance names that manifest as the
// ingredient. When the provider signed its answer (see MarkGenerated),
// the provider's manifest is the parent and the source an inputTo
// ingredient (see madeActions).
func (m *Marker) MarkEdited(data []byte, source *imaged.Image, sourceData []byte, provider, model string) ([]byte, *imaged.Provenance, error) {
	return m.mark(data, &editSource{image: source, data: sourceData}, provider, model)
}

// editSource is the image an edit was made from: its record and its bytes.
type editSource struct {
	image *imaged.Image
	data  []byte
}

// digitalSourceType is the IPTC digital source type of what a model made
// from s, or, s being nil, from nothing.
func (s *editSource) digitalSourceType() string {
	if s == nil {
		return TrainedAlgorithmicMedia
	}
	return CompositeWithTrainedAlgorithmicMedia
}

// ingredient is the source as an ingredient of the edit's manifest, in
// relationship rel: its filename as the title, its media type, its
// instance id, its active manifest when it has one, and description.
func (s *editSource) ingredient(rel, description string) (ingredient, error) {
	marks, _ := container.ReadMarks(s.data) // marks that do not read are none
	return ingredientOf(marks, ingredientV3{
		Title:        s.image.OriginalFilename,
		Format:       s.image.MediaType,
		Relationship: rel,
		InstanceID:   instanceID(marks, s.data),
		Description:  description,
	})
}

// instanceID identifies an ingredient as C2PA 2.2 says an asset is
// identified (8.3): by the xmpMM:InstanceID of its XMP when it has one,
// otherwise by a method of the claim generator's choosing, here the
// SHA-256 digest of its bytes ("sha256:" and the digest in hex).
//
// The v3 ingredient has no field for a digest of the ingredient's bytes:
// it identifies an ingredient by its active manifest or by instanceID
// (v1's documentID is gone), and its data and thumbnail fields are hashed
// URIs to data embedded in the manifest, which would copy the source (or
// a rendering of it) into every edit. So the digest is the instance id:
// whoever holds the source can check that it is the image named. A source
// with a manifest is identified by that (18.15.2); the instance id is
// given as well, which 18.15.2 allows.
func instanceID(marks container.Marks, data []byte) string {
	if marks.XMP != nil {
		if id := xmpProperty(marks.XMP, nsXMPMM, "InstanceID"); id != "" {
			return id
		}
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
