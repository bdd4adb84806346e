// Package jsonappend writes JSON values by appending them to a byte slice,
// with no reflection and no allocation of its own, for the few answers that
// are served often enough for encoding/json's reflection to show in a
// profile (the image object of GET /api/images/{id}).
//
// What it writes is byte for byte what encoding/json writes for the same Go
// value with its default settings (HTML-safe escaping: <, > and & as \u003c,
// \u003e and \u0026; invalid UTF-8 as \ufffd; U+2028 and U+2029 escaped), so
// that an answer does not depend on which encoder produced it; the tests
// compare both over hostile strings.
package jsonappend

import (
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// String appends s as a JSON string.
func String(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = escape(dst, s)
	return append(dst, '"')
}

// Concat appends a+b as one JSON string, without making a+b.
func Concat(dst []byte, a, b string) []byte {
	if i := lastRuneStart(a); i >= 0 && !utf8.FullRuneInString(a[i:]) {
		// a ends inside a UTF-8 sequence that b may complete.
		return String(dst, a+b)
	}
	dst = append(dst, '"')
	dst = escape(dst, a)
	dst = escape(dst, b)
	return append(dst, '"')
}

// lastRuneStart is the index of the last byte of s that starts a UTF-8
// sequence, or -1.
func lastRuneStart(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return -1
}

// escape appends the contents of s as a JSON string holds them.
func escape(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Other control bytes, and <, > and & (HTML-safe).
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// Int appends n as a JSON number.
func Int(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// Bool appends b as true or false.
func Bool(dst []byte, b bool) []byte { return strconv.AppendBool(dst, b) }

// Key appends a member name and its colon, after a comma unless the object
// has just been opened (dst ends in '{').
func Key(dst []byte, name string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' {
		dst = append(dst, ',')
	}
	dst = String(dst, name)
	return append(dst, ':')
}

// safe holds the ASCII bytes that encoding/json copies as they are in its
// HTML-safe mode: printable (DEL included), and none of ", \, <, > and &.
var safe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		switch b {
		case '"', '\\', '<', '>', '&':
		default:
			t[b] = true
		}
	}
	return t
}()
