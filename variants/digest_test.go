package variants

import (
	"testing"

	"github.com/imaged/imaged/render"
)

// The kept digests are the digests: the same options name the same key
// before and after the memo fills, different options different keys.
func TestOptionsDigestMemo(t *testing.T) {
	seen := map[string]render.Options{}
	for i := range maxDigests + 10 {
		o := render.Options{Width: i + 1, Height: 7, Fit: render.Cover, Format: render.WebP}
		d := optionsDigest(o)
		if len(d) != 16 {
			t.Fatalf("digest %q", d)
		}
		if prev, ok := seen[d]; ok {
			t.Fatalf("%+v and %+v share the digest %s", prev, o, d)
		}
		seen[d] = o
		if again := optionsDigest(o); again != d {
			t.Fatalf("%+v: %s, then %s", o, d, again)
		}
	}
	for d, o := range seen {
		if got := optionsDigest(o); got != d {
			t.Fatalf("%+v: %s after the memo was cleared, was %s", o, got, d)
		}
	}
}
