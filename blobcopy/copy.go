// Package blobcopy moves image bytes between blob stores without downtime:
// Copy transfers every blob from one store to another, resumably and with
// verification, and Fallback serves reads from the new store while the old
// one still holds what has not been copied yet.
package blobcopy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/imaged/imaged"
)

// Options tune Copy.
type Options struct {
	// After resumes a walk after this key ("" for the start).
	After string
	// Verify re-reads each copied blob from the destination and compares
	// SHA-256 digests, not only sizes.
	Verify bool
	// Progress, when set, is called after each blob with the running totals.
	Progress func(Stats, string)
}

// Stats counts what Copy did.
type Stats struct {
	Copied  int   // blobs written to the destination
	Skipped int   // blobs already there with the same size
	Bytes   int64 // bytes written
	Last    string
}

// Copy copies every blob of from that to lacks (or holds with another
// size). It is safe to run again: blobs already copied are skipped, so an
// interrupted run resumes where it stopped (pass Stats.Last as After to skip
// the walk too). Both stores stay readable throughout.
func Copy(ctx context.Context, from, to imaged.BlobStore, opt Options) (Stats, error) {
	var st Stats
	err := from.Walk(ctx, opt.After, func(info imaged.BlobInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		have, err := to.Stat(ctx, info.Key)
		switch {
		case err == nil && have.Size == info.Size && !opt.Verify:
			st.Skipped++
		case err == nil && have.Size == info.Size:
			if err := verify(ctx, from, to, info.Key); err != nil {
				if err := copyOne(ctx, from, to, info, &st); err != nil {
					return err
				}
			} else {
				st.Skipped++
			}
		case err != nil && imaged.ErrCode(err) != imaged.ENotFound:
			return fmt.Errorf("stat %s in destination: %w", info.Key, err)
		default:
			if err := copyOne(ctx, from, to, info, &st); err != nil {
				return err
			}
			if opt.Verify {
				if err := verify(ctx, from, to, info.Key); err != nil {
					return err
				}
			}
		}
		st.Last = info.Key
		if opt.Progress != nil {
			opt.Progress(st, info.Key)
		}
		return nil
	})
	return st, err
}

func copyOne(ctx context.Context, from, to imaged.BlobStore, info imaged.BlobInfo, st *Stats) error {
	b, err := from.Open(ctx, info.Key)
	if err != nil {
		if imaged.ErrCode(err) == imaged.ENotFound {
			return nil // deleted since the walk listed it
		}
		return fmt.Errorf("open %s: %w", info.Key, err)
	}
	defer b.Close()
	n, err := to.Put(ctx, info.Key, b)
	if err != nil {
		return fmt.Errorf("put %s: %w", info.Key, err)
	}
	if n != b.Size() {
		return fmt.Errorf("put %s: wrote %d bytes, source has %d", info.Key, n, b.Size())
	}
	st.Copied++
	st.Bytes += n
	return nil
}

// ErrMismatch reports a blob whose copy differs from its source.
var ErrMismatch = errors.New("blob differs between source and destination")

func verify(ctx context.Context, from, to imaged.BlobStore, key string) error {
	a, err := digest(ctx, from, key)
	if err != nil {
		return err
	}
	b, err := digest(ctx, to, key)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("%s: %w", key, ErrMismatch)
	}
	return nil
}

func digest(ctx context.Context, s imaged.BlobStore, key string) ([32]byte, error) {
	var sum [32]byte
	b, err := s.Open(ctx, key)
	if err != nil {
		return sum, err
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.Copy(h, b); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
