// Package urlsign signs and checks URLs with HMAC-SHA256, so that a URL the
// service (or an application backend holding the same key) made cannot be
// altered by whoever receives it.
//
// The signature of a message is the unpadded base64url encoding
// (RFC 4648 section 5) of HMAC-SHA256(key, message), 43 characters. The key
// is used as the bytes it is given; with the key as text, in a shell:
//
//	printf '%s' "$MESSAGE" | openssl dgst -sha256 -hmac "$KEY" -binary | basenc --base64url | tr -d '='
//
// What the message is, and how expiry is written into it, is up to the
// caller (see the variants package for the transform URLs).
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// MinKeyLen is the shortest key accepted: 32 bytes, the size of the HMAC's
// output, so that the key is not the weakest part.
const MinKeyLen = 32

// SignatureLen is the length of a signature's text.
var SignatureLen = base64.RawURLEncoding.EncodedLen(sha256.Size)

// Signer signs and verifies messages with one key.
type Signer struct{ key []byte }

// New returns a Signer with key, refusing one shorter than MinKeyLen.
func New(key []byte) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("urlsign: the signing key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Sign returns the signature of message.
func (s *Signer) Sign(message string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac(message))
}

// Verify reports whether sig is the signature of message, in constant time.
func (s *Signer) Verify(message, sig string) bool {
	if len(sig) != SignatureLen {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.mac(message))
}

func (s *Signer) mac(message string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(message))
	return m.Sum(nil)
}
