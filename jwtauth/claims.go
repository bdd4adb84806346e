package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// strictClaims are the registered claims, read more strictly than the JSON
// decoder of jwt does by itself: claim names match exactly (RFC 7519 section
// 4: names are case-sensitive, where encoding/json would take "eXp" or "Sub"
// for "exp" and "sub"), "exp", "nbf" and "iat" must be JSON numbers
// (NumericDate, RFC 7519 section 2), not strings holding digits, and "sub"
// must be a JSON string whose bytes are valid UTF-8 (the decoder would
// silently turn invalid bytes into U+FFFD, so that different subjects would
// share one owner).
type strictClaims struct {
	jwt.RegisteredClaims
}

func (c *strictClaims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage // keys exactly as written
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("claims are not a JSON object")
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := raw[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("claim %q is not a NumericDate", name)
		}
	}
	if v, ok := raw["sub"]; ok && !utf8.Valid(v) {
		return errors.New(`claim "sub" is not valid UTF-8`)
	}
	rc := &c.RegisteredClaims
	for _, c := range [...]struct {
		name string
		dst  any
	}{
		{"iss", &rc.Issuer}, {"sub", &rc.Subject}, {"aud", &rc.Audience}, {"jti", &rc.ID},
		{"exp", &rc.ExpiresAt}, {"nbf", &rc.NotBefore}, {"iat", &rc.IssuedAt},
	} {
		if v, ok := raw[c.name]; ok {
			if err := json.Unmarshal(v, c.dst); err != nil {
				return fmt.Errorf("claim %q: %w", c.name, err)
			}
		}
	}
	return nil
}

// isJSONNumber reports whether v, one JSON value, is a number.
func isJSONNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// checkSubject refuses a subject that cannot name an owner: empty or blank,
// longer than MaxSubjectLen, holding control characters, or holding U+FFFD
// (what invalid UTF-8 and lone surrogate escapes such as "\udc00" decode to).
func checkSubject(sub string) error {
	switch {
	case strings.TrimFunc(sub, unicode.IsSpace) == "":
		return errors.New("token has no subject")
	case len(sub) > MaxSubjectLen:
		return fmt.Errorf("subject is longer than %d bytes", MaxSubjectLen)
	case !utf8.ValidString(sub) || strings.ContainsRune(sub, utf8.RuneError):
		return errors.New("subject is not valid UTF-8")
	case strings.IndexFunc(sub, unicode.IsControl) >= 0:
		return errors.New("subject holds control characters")
	}
	return nil
}

// checkHeader refuses a header that asks for processing the service does not
// implement: RFC 7515 section 4.1.11 requires refusing a token whose "crit"
// names an extension the recipient does not understand, and this one
// understands none (an empty or malformed "crit" is invalid as well).
func checkHeader(h map[string]any) error {
	if _, ok := h["crit"]; ok {
		return errors.New(`token header has "crit" extensions, none of which is supported`)
	}
	return nil
}
