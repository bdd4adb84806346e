package images

import (
	"context"
	"time"

	"github.com/imaged/imaged"
)

// GCStats counts what CollectGarbage did.
type GCStats struct {
	Checked, Removed int
	RemovedBytes     int64
}

// CollectGarbage deletes blobs that no image references and that are older
// than grace: bytes left behind when a metadata write failed after the blob
// was stored, or when deleting an image's bytes failed; and variants
// (imaged.VariantKey) whose original has no record any more, as after a
// crash between deleting an image's record and its variants. The grace period
// protects uploads in flight, whose blob exists a moment before its record.
// Run it from any one replica (imaged gc); running it twice is harmless.
func (s *Service) CollectGarbage(ctx context.Context, grace time.Duration) (GCStats, error) {
	var st GCStats
	cutoff := s.cfg.Now().Add(-grace)
	err := s.blobs.Walk(ctx, "", func(b imaged.BlobInfo) error {
		st.Checked++
		if b.ModTime.After(cutoff) {
			return nil
		}
		// A variant lives as long as its original's record.
		key := b.Key
		if original, ok := imaged.OriginalKey(b.Key); ok {
			key = original
		}
		_, err := s.images.FindImageByBlobKey(ctx, key)
		switch imaged.ErrCode(err) {
		case "":
			return nil
		case imaged.ENotFound:
			if err := s.blobs.Delete(ctx, b.Key); err != nil {
				return err
			}
			s.log.InfoContext(ctx, "removed unreferenced blob", "key", b.Key, "size", b.Size)
			st.Removed++
			st.RemovedBytes += b.Size
			return nil
		}
		return err
	})
	return st, err
}
