package provenance

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/imaged/imaged/container"
)

// The C2PA structures imaged writes (C2PA 2.x): a claim v2, the
// c2pa.actions.v2 and c2pa.ingredient.v3 assertions, the c2pa.hash.data
// hard binding. Field names are the specification's.

type hashedURI struct {
	URL  string `cbor:"url"`
	Hash []byte `cbor:"hash"`
}

type generatorInfo map[string]string

type claimV2 struct {
	InstanceID         string        `cbor:"instanceID"`
	ClaimGeneratorInfo generatorInfo `cbor:"claim_generator_info"`
	Signature          string        `cbor:"signature"`
	CreatedAssertions  []hashedURI   `cbor:"created_assertions"`
	Title              string        `cbor:"dc:title,omitempty"`
	Alg                string        `cbor:"alg"`
}

type action struct {
	Action            string         `cbor:"action"`
	When              string         `cbor:"when,omitempty"`
	SoftwareAgent     generatorInfo  `cbor:"softwareAgent,omitempty"`
	DigitalSourceType string         `cbor:"digitalSourceType,omitempty"`
	Description       string         `cbor:"description,omitempty"`
	Parameters        map[string]any `cbor:"parameters,omitempty"`
}

type actionsV2 struct {
	Actions []action `cbor:"actions"`
}

type exclusion struct {
	Start  int `cbor:"start"`
	Length int `cbor:"length"`
}

type dataHash struct {
	Exclusions []exclusion `cbor:"exclusions"`
	Name       string      `cbor:"name"`
	Alg        string      `cbor:"alg"`
	Hash       []byte      `cbor:"hash"`
	Pad        []byte      `cbor:"pad"`
}

type statusCodes struct {
	Success       []any `cbor:"success"`
	Informational []any `cbor:"informational"`
	Failure       []any `cbor:"failure"`
}

type validationResults struct {
	ActiveManifest statusCodes `cbor:"activeManifest"`
}

type ingredientV3 struct {
	Title             string             `cbor:"dc:title,omitempty"`
	Format            string             `cbor:"dc:format,omitempty"`
	Relationship      string             `cbor:"relationship"`
	InstanceID        string             `cbor:"instanceID,omitempty"`
	Description       string             `cbor:"description,omitempty"`
	ActiveManifest    *hashedURI         `cbor:"activeManifest,omitempty"`
	ClaimSignature    *hashedURI         `cbor:"claimSignature,omitempty"`
	ValidationResults *validationResults `cbor:"validationResults,omitempty"`
}

// An ingredient's relationship to the asset whose manifest names it: the
// asset is derived from its (only) parentOf ingredient; an inputTo
// ingredient was an input of the computation (an AI model) that made or
// changed it.
const (
	parentOf = "parentOf"
	inputTo  = "inputTo"
)

const (
	labelActions    = "c2pa.actions.v2"
	labelIngredient = "c2pa.ingredient.v3"
	labelDataHash   = "c2pa.hash.data"
	labelClaim      = "c2pa.claim.v2"
	labelSignature  = "c2pa.signature"
	labelAssertions = "c2pa.assertions"
	labelStore      = "c2pa"
)

// assertion is one CBOR assertion of a manifest.
type assertion struct {
	label string
	data  []byte
}

// boxPayload is the assertion's superbox payload, which its hashed URI hashes.
func (a assertion) boxPayload() []byte {
	return superboxPayload(typeCBOR, a.label, box("cbor", a.data))
}

func (a assertion) uri() hashedURI {
	h := sha256.Sum256(a.boxPayload())
	return hashedURI{URL: "self#jumbf=" + labelAssertions + "/" + a.label, Hash: h[:]}
}

func newAssertion(label string, v any) (assertion, error) {
	b, err := marshal(v)
	return assertion{label: label, data: b}, err
}

// manifestSpec is one manifest to add to an asset.
type manifestSpec struct {
	label           string      // urn:c2pa:<uuid>
	title           string      // dc:title of the claim
	assertions      []assertion // all but the hard binding, which signing adds
	parents         []jumbfBox  // manifests of the ingredients, kept in our store before ours
	ingredientCount int         // ingredient assertions among assertions
}

// addIngredient adds ing to spec's assertions, labelled as the C2PA
// labels a manifest's ingredients (c2pa.ingredient.v3, then
// c2pa.ingredient.v3__1, ...), and its manifests to the store (once: two
// ingredients may share history, and a label met twice in a store is
// ambiguous). It returns the ingredient's hashed URI, for the actions.
func (spec *manifestSpec) addIngredient(ing ingredient) hashedURI {
	a := ing.assertion
	if spec.ingredientCount > 0 {
		a.label = fmt.Sprintf("%s__%d", labelIngredient, spec.ingredientCount)
	}
	spec.ingredientCount++
	spec.assertions = append(spec.assertions, a)
	for _, m := range ing.manifests {
		if !slices.ContainsFunc(spec.parents, func(p jumbfBox) bool { return p.label == m.label }) {
			spec.parents = append(spec.parents, m)
		}
	}
	return a.uri()
}

func newManifestLabel() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:c2pa:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func manifestURI(label string) string { return "self#jumbf=/" + labelStore + "/" + label }

// buildStore returns the manifest store holding the parents and then spec's
// manifest, whose hard binding has hash and excl, signed with key (nil: a
// placeholder of the same size).
func buildStore(spec manifestSpec, generator generatorInfo, creds *Credentials, excl container.Range, hash []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	binding, err := newAssertion(labelDataHash, dataHash{
		Exclusions: []exclusion{{Start: excl.Start, Length: excl.Length}},
		Name:       "jumbf manifest",
		Alg:        "sha256",
		Hash:       hash,
		Pad:        []byte{},
	})
	if err != nil {
		return nil, err
	}
	all := append(append([]assertion{}, spec.assertions...), binding)
	var boxes [][]byte
	claim := claimV2{
		InstanceID:         "xmp:iid:" + strings.TrimPrefix(spec.label, "urn:c2pa:"),
		ClaimGeneratorInfo: generator,
		Signature:          manifestURI(spec.label) + "/" + labelSignature,
		Title:              spec.title,
		Alg:                "sha256",
	}
	for _, a := range all {
		boxes = append(boxes, box("jumb", a.boxPayload()))
		claim.CreatedAssertions = append(claim.CreatedAssertions, a.uri())
	}
	claimCBOR, err := marshal(claim)
	if err != nil {
		return nil, err
	}
	cose, err := coseSign1(key, creds.der(), claimCBOR)
	if err != nil {
		return nil, err
	}
	manifest := superbox(typeManifest, spec.label,
		superbox(typeAssertions, labelAssertions, boxes...),
		superbox(typeClaim, labelClaim, box("cbor", claimCBOR)),
		superbox(typeSignature, labelSignature, box("cbor", cose)),
	)
	var children [][]byte
	for _, p := range spec.parents {
		children = append(children, p.raw)
	}
	return superbox(typeStore, labelStore, append(children, manifest)...), nil
}

// embedManifest embeds spec's manifest, signed, into data (which must not
// hold a manifest store) and returns the result. The hard binding hashes
// every byte of the result but the store's: the store is first embedded
// as a placeholder of its final size, which fixes where it sits.
func embedManifest(data []byte, spec manifestSpec, generator generatorInfo, creds *Credentials) ([]byte, error) {
	zero := make([]byte, sha256.Size)
	var excl container.Range
	var out []byte
	for i := 0; ; i++ {
		store, err := buildStore(spec, generator, creds, excl, zero, nil)
		if err != nil {
			return nil, err
		}
		var r container.Range
		out, r, err = container.EmbedC2PA(data, store)
		if err != nil {
			return nil, err
		}
		if r == excl {
			break
		}
		if i == 4 {
			return nil, errors.New("provenance: manifest size does not settle")
		}
		excl = r
	}
	h := sha256.New()
	h.Write(out[:excl.Start])
	h.Write(out[excl.Start+excl.Length:])
	store, err := buildStore(spec, generator, creds, excl, h.Sum(nil), creds.Key)
	if err != nil {
		return nil, err
	}
	// The signed store has the placeholder's size: write it in place.
	signed, r, err := container.EmbedC2PA(data, store)
	if err != nil {
		return nil, err
	}
	if r != excl || len(signed) != len(out) {
		return nil, errors.New("provenance: signed manifest moved")
	}
	return signed, nil
}

// addActions puts the c2pa.actions.v2 assertion of acts first among
// spec's assertions.
func (spec *manifestSpec) addActions(acts []action) error {
	a, err := newAssertion(labelActions, actionsV2{Actions: acts})
	if err != nil {
		return err
	}
	spec.assertions = append([]assertion{a}, spec.assertions...)
	return nil
}

// ingredients is the parameters of an action that names ingredients.
func ingredients(uris ...hashedURI) map[string]any {
	return map[string]any{"ingredients": uris}
}

// ingredient is an ingredient assertion of a new manifest, with what the
// ingredient brings along.
type ingredient struct {
	assertion
	manifest  string     // the label of the ingredient's active manifest; "" without one
	manifests []jumbfBox // the ingredient's manifest store, to keep in the new one
}

// ingredientOf returns the c2pa.ingredient.v3 assertion ing (its title,
// format, relationship...) of an image whose marks are marks: when they
// hold a manifest store that parses, the assertion references its active
// manifest and claim signature and brings its manifests along; otherwise
// it names the image with ing's fields only.
func ingredientOf(marks container.Marks, ing ingredientV3) (ingredient, error) {
	if marks.C2PA != nil {
		if in, err := manifestIngredient(marks.C2PA, ing); err == nil {
			return in, nil
		} // a store that does not parse is no part of the new one
	}
	a, err := newAssertion(labelIngredient, ing)
	return ingredient{assertion: a}, err
}

// manifestIngredient returns the c2pa.ingredient.v3 assertion ing that
// references the active manifest of store (a manifest store found in an
// ingredient), and the manifests to keep in the new store.
func manifestIngredient(store []byte, ing ingredientV3) (ingredient, error) {
	sb, err := parseSuperbox(store, 1)
	if err != nil || sb.label != labelStore || len(sb.children) == 0 {
		return ingredient{}, errJUMBF
	}
	active := sb.children[len(sb.children)-1]
	sig, err := parseSuperbox(findChildRaw(active, labelSignature), 0)
	if err != nil {
		return ingredient{}, err
	}
	mh := sha256.Sum256(active.payload)
	sh := sha256.Sum256(sig.payload)
	ing.ActiveManifest = &hashedURI{URL: manifestURI(active.label), Hash: mh[:]}
	ing.ClaimSignature = &hashedURI{URL: manifestURI(active.label) + "/" + labelSignature, Hash: sh[:]}
	ing.ValidationResults = &validationResults{ActiveManifest: statusCodes{Success: []any{}, Informational: []any{}, Failure: []any{}}}
	a, err := newAssertion(labelIngredient, ing)
	if err != nil {
		return ingredient{}, err
	}
	return ingredient{assertion: a, manifest: active.label, manifests: sb.children}, nil
}

// findChildRaw returns the raw superbox of b's child labelled label, or nil.
func findChildRaw(b jumbfBox, label string) []byte {
	boxes, raws, err := parseBoxes(b.payload)
	if err != nil {
		return nil
	}
	for i, c := range boxes {
		if c.typ != "jumb" {
			continue
		}
		child, err := parseSuperbox(raws[i], 0)
		if err == nil && child.label == label {
			return raws[i]
		}
	}
	return nil
}

// parentManifest is the label of the manifest that the active manifest of
// store takes as its parentOf ingredient, "" if none: what a
// c2pa.ingredient assertion's activeManifest (v3) or c2pa_manifest (v1,
// v2) points at.
func parentManifest(store []byte) string {
	sb, err := parseSuperbox(store, 3)
	if err != nil || sb.label != labelStore || len(sb.children) == 0 {
		return ""
	}
	active := sb.children[len(sb.children)-1]
	for _, c := range active.children {
		if c.label != labelAssertions {
			continue
		}
		for _, a := range c.children {
			if !strings.HasPrefix(a.label, "c2pa.ingredient") {
				continue
			}
			data, ok := a.cbor()
			if !ok {
				continue
			}
			var ing struct {
				Relationship string     `cbor:"relationship"`
				V3           *hashedURI `cbor:"activeManifest"`
				V1           *hashedURI `cbor:"c2pa_manifest"`
			}
			if cbor.Unmarshal(data, &ing) != nil || ing.Relationship != parentOf {
				continue
			}
			ref := ing.V3
			if ref == nil {
				ref = ing.V1
			}
			if ref != nil {
				if label, ok := strings.CutPrefix(ref.URL, "self#jumbf=/"+labelStore+"/"); ok && !strings.Contains(label, "/") {
					return label
				}
			}
		}
	}
	return ""
}

// activeManifestInfo reads what the active manifest of a store says: its
// label, its claim generator's name and the first digital source type
// its actions give. It checks the structure, not the signature.
func activeManifestInfo(store []byte) (label, generator, sourceType string, err error) {
	sb, err := parseSuperbox(store, 3)
	if err != nil || sb.label != labelStore || len(sb.children) == 0 {
		return "", "", "", errJUMBF
	}
	active := sb.children[len(sb.children)-1]
	for _, c := range active.children {
		switch {
		case strings.HasPrefix(c.label, "c2pa.claim"):
			if data, ok := c.cbor(); ok {
				generator = claimGenerator(data)
			}
		case c.label == labelAssertions:
			for _, a := range c.children {
				if !strings.HasPrefix(a.label, "c2pa.actions") || sourceType != "" {
					continue
				}
				data, ok := a.cbor()
				if !ok {
					continue
				}
				var acts struct {
					Actions []struct {
						DigitalSourceType string `cbor:"digitalSourceType"`
					} `cbor:"actions"`
				}
				if cbor.Unmarshal(data, &acts) == nil {
					for _, x := range acts.Actions {
						if x.DigitalSourceType != "" {
							sourceType = x.DigitalSourceType
							break
						}
					}
				}
			}
		}
	}
	return active.label, generator, sourceType, nil
}

// claimGenerator is the generator's name in a v2 claim (a map) or a v1 one
// (a list of maps, and a claim_generator string).
func claimGenerator(data []byte) string {
	var c struct {
		Info      cbor.RawMessage `cbor:"claim_generator_info"`
		Generator string          `cbor:"claim_generator"`
	}
	if cbor.Unmarshal(data, &c) != nil {
		return ""
	}
	var one struct {
		Name string `cbor:"name"`
	}
	if cbor.Unmarshal(c.Info, &one) == nil && one.Name != "" {
		return one.Name
	}
	var list []struct {
		Name string `cbor:"name"`
	}
	if cbor.Unmarshal(c.Info, &list) == nil && len(list) > 0 && list[0].Name != "" {
		return list[0].Name
	}
	return c.Generator
}
