package imaged

import (
	"crypto/rand"
	"encoding/base32"
	"strings"

	"github.com/google/uuid"
)

// NewID returns a new id: a UUIDv7 (48 bits of milliseconds, 74 random bits),
// so ids sort by creation time yet cannot be guessed from one another.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ValidID reports whether s is an id in the canonical form NewID makes.
// Stores use it to answer NotFound() for malformed ids without a query.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewBlobKey returns a fresh storage key with 160 random bits and the given
// file extension (such as "png"). Keys never derive from a filename.
func NewBlobKey(ext string) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	k := strings.ToLower(keyEncoding.EncodeToString(b[:]))
	if ext != "" {
		k += "." + ext
	}
	return k
}
