package provenance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// COSE_Sign1 (RFC 9052) with ES256, as C2PA signs a claim: the protected
// header holds the algorithm (1: -7) and the certificate chain (x5chain,
// 33), the claim is the detached payload (nil in the structure, signed
// through the Sig_structure), and the signature is r||s.

const (
	coseAlgES256 = -7
	coseTagSign1 = 18
	coseX5Chain  = 33
	es256SigSize = 64
)

var encMode = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// coseProtected is the encoded protected header for chain (leaf first).
func coseProtected(chain [][]byte) ([]byte, error) {
	var x5 any = chain
	if len(chain) == 1 {
		x5 = chain[0]
	}
	return marshal(map[int]any{1: coseAlgES256, coseX5Chain: x5})
}

// sigStructure is what ES256 signs: ["Signature1", protected, external_aad, payload].
func sigStructure(protected, payload []byte) ([]byte, error) {
	return marshal([]any{"Signature1", protected, []byte{}, payload})
}

// coseSign1 returns the tagged COSE_Sign1 of payload (detached). With a nil
// key it returns a structure of the same size with a zero signature, for a
// placeholder.
func coseSign1(key *ecdsa.PrivateKey, chain [][]byte, payload []byte) ([]byte, error) {
	protected, err := coseProtected(chain)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, es256SigSize)
	if key != nil {
		if key.Curve != elliptic.P256() {
			return nil, errors.New("provenance: ES256 needs a P-256 key")
		}
		tbs, err := sigStructure(protected, payload)
		if err != nil {
			return nil, err
		}
		digest := sha256.Sum256(tbs)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return nil, err
		}
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return marshal(cbor.Tag{Number: coseTagSign1, Content: []any{
		protected,
		map[any]any{},
		nil, // detached payload: the claim
		sig,
	}})
}
