package imaged

import "strings"

// Variants are derived blobs: an image rendered at another size or in
// another format. Their keys are built from the original's key, so that
// deleting an image and collecting garbage find them without any record:
//
//	{originalKey}.v-{16 hex digits}.{ext}
//
// where the digits name the rendering (a digest of its options) and ext is
// the variant's format (webp, avif, jpg, png). Variant keys sort right after
// their original's key, so a store's Walk from VariantPrefix lists them.

// variantMark separates an original's key from a variant's suffix.
const variantMark = ".v-"

// VariantKey is the key of the variant of the image stored under original,
// named by digest (16 lowercase hex digits) and of format ext.
func VariantKey(original, digest, ext string) string {
	return original + variantMark + digest + "." + ext
}

// VariantPrefix starts the key of every variant of original.
func VariantPrefix(original string) string { return original + variantMark }

// OriginalKey returns the key of the image a variant key derives from, and
// whether key is a variant key at all.
func OriginalKey(key string) (string, bool) {
	i := strings.LastIndex(key, variantMark)
	if i <= 0 {
		return "", false
	}
	digest, ext, ok := strings.Cut(key[i+len(variantMark):], ".")
	if !ok || len(digest) != 16 || ext == "" || len(ext) > 8 {
		return "", false
	}
	for _, c := range digest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	for _, c := range ext {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return "", false
		}
	}
	original := key[:i]
	if !ValidBlobKey(original) || strings.Contains(original, variantMark) {
		return "", false
	}
	return original, true
}
