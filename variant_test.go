package imaged

import "testing"

func TestVariantKeys(t *testing.T) {
	orig := NewBlobKey("png")
	k := VariantKey(orig, "0123456789abcdef", "webp")
	if !ValidBlobKey(k) {
		t.Fatalf("variant key %q is not a valid blob key", k)
	}
	if got, ok := OriginalKey(k); !ok || got != orig {
		t.Errorf("OriginalKey(%q) = %q, %v; want %q", k, got, ok, orig)
	}
	if len(k) <= len(VariantPrefix(orig)) || k[:len(VariantPrefix(orig))] != VariantPrefix(orig) {
		t.Errorf("%q does not start with its prefix %q", k, VariantPrefix(orig))
	}
	if VariantPrefix(orig) <= orig {
		t.Errorf("variants must sort after their original")
	}
	for _, notVariant := range []string{
		orig,
		orig + ".v-0123456789abcdef",           // no extension
		orig + ".v-0123456789abcde.webp",       // 15 digits
		orig + ".v-0123456789ABCDEF.webp",      // upper case
		orig + ".v-0123456789abcdeg.webp",      // not hex
		".v-0123456789abcdef.webp",             // no original
		"a..b.v-0123456789abcdef.webp",         // original not a key
		k + ".v-0123456789abcdef.webp",         // a variant of a variant
		orig + ".v-0123456789abcdef.we-bp",     // odd extension
		orig + ".v-0123456789abcdef.webpwebp9", // long extension
	} {
		if got, ok := OriginalKey(notVariant); ok {
			t.Errorf("OriginalKey(%q) = %q, true; want not a variant key", notVariant, got)
		}
	}
}
