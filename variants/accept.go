package variants

import (
	"strconv"
	"strings"

	"github.com/imaged/imaged/render"
)

// negotiate picks format=auto's format from an Accept header: AVIF when the
// client takes it, else WebP, else the original's format. A type counts as
// taken when listed with a q above 0; wildcards (*/*, image/*) do not count,
// since browsers send them for formats they cannot show. AVIF is left out
// unless avifOK (a variant that must carry marks AVIF cannot hold).
func negotiate(accept, originalType string, avifOK bool) string {
	avif, webp := false, false
	for _, part := range strings.Split(accept, ",") {
		typ, params, _ := strings.Cut(part, ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
		if typ != "image/avif" && typ != "image/webp" {
			continue
		}
		if q, ok := quality(params); ok && q <= 0 {
			continue
		}
		if typ == "image/avif" {
			avif = true
		} else {
			webp = true
		}
	}
	switch {
	case avif && avifOK:
		return render.AVIF
	case webp:
		return render.WebP
	}
	return formatOf(originalType)
}

// quality reads a media range's q parameter.
func quality(params string) (float64, bool) {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, true
			}
			return q, true
		}
	}
	return 1, false
}
