package http

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/imaged/imaged"
)

// Cursors handed to clients carry the page number they lead to, which the
// answer reports as currentPage. So that a client cannot make the service
// report a page it did not reach, each cursor is signed (HMAC-SHA256,
// truncated to 128 bits) for its owner with the server's cursor key; a
// cursor that does not verify is refused. Replicas must share the key
// (Config.CursorKey) for cursors to move between them.
const cursorMACSize = 16

// newCursorKey returns a random key, for a server given none.
func newCursorKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// CursorKeyFrom derives the cursor key from a secret the replicas share
// (the HS256 secret), so that it needs no setting of its own.
func CursorKeyFrom(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("imaged listing cursor v1"))
	return m.Sum(nil)
}

func cursorMAC(key []byte, owner, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(owner))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)[:cursorMACSize]
}

// EncodeCursor returns the text form of c for owner, signed with key.
func EncodeCursor(key []byte, owner string, c *imaged.Cursor) string {
	payload := c.Encode()
	return payload + "." + base64.RawURLEncoding.EncodeToString(cursorMAC(key, owner, payload))
}

func (s *Server) encodeCursor(owner string, c *imaged.Cursor) string {
	return EncodeCursor(s.cursorKey, owner, c)
}

// decodeCursor verifies and parses a cursor made by encodeCursor for owner.
func (s *Server) decodeCursor(owner, text string) (*imaged.Cursor, error) {
	payload, sig, ok := strings.Cut(text, ".")
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(mac, cursorMAC(s.cursorKey, owner, payload)) {
		return nil, imaged.Errorf(imaged.EValidation, "cursor is invalid: pass back pagination.nextCursor as it was given")
	}
	return imaged.DecodeCursor(payload)
}
