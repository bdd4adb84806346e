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
// That form is a UUID's String: lower-case hex digits in groups of 8, 4,
// 4, 4 and 12, joined by '-'. It is checked here without allocating, as
// it is on every GET by id.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
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
