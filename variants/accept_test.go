package variants

import "testing"

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		accept, original string
		avifOK           bool
		want             string
	}{
		{"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/png", true, "avif"}, // Chrome
		{"image/avif,image/webp,*/*", "image/png", false, "webp"},                                       // a marked image
		{"image/webp,*/*", "image/jpeg", true, "webp"},
		{"image/avif;q=0, image/webp;q=0.5", "image/jpeg", true, "webp"},
		{"IMAGE/AVIF", "image/jpeg", true, "avif"},
		{"image/webp;q=0", "image/jpeg", true, "jpeg"},
		{"image/*,*/*", "image/jpeg", true, "jpeg"}, // wildcards do not count
		{"", "image/webp", true, "webp"},
		{"", "image/gif", true, "png"}, // renders write no GIF
		{"image/webp;q=bogus", "image/png", true, "png"},
	} {
		if got := negotiate(tc.accept, tc.original, tc.avifOK); got != tc.want {
			t.Errorf("negotiate(%q, %s, avif %v) = %s, want %s", tc.accept, tc.original, tc.avifOK, got, tc.want)
		}
	}
}
