package blobcopy

import (
	"context"
	"io"

	"github.com/imaged/imaged"
)

// Fallback is a BlobStore in the middle of a migration: writes go to
// Primary (the new store); reads try Primary, then Secondary (the old
// store) for blobs not copied yet; deletes apply to both.
type Fallback struct {
	Primary, Secondary imaged.BlobStore
}

var _ imaged.BlobStore = (*Fallback)(nil)

func (f *Fallback) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return f.Primary.Put(ctx, key, r)
}

func (f *Fallback) Open(ctx context.Context, key string) (imaged.Blob, error) {
	b, err := f.Primary.Open(ctx, key)
	if imaged.ErrCode(err) == imaged.ENotFound {
		return f.Secondary.Open(ctx, key)
	}
	return b, err
}

func (f *Fallback) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	i, err := f.Primary.Stat(ctx, key)
	if imaged.ErrCode(err) == imaged.ENotFound {
		return f.Secondary.Stat(ctx, key)
	}
	return i, err
}

func (f *Fallback) Delete(ctx context.Context, key string) error {
	if err := f.Primary.Delete(ctx, key); err != nil {
		return err
	}
	return f.Secondary.Delete(ctx, key)
}

// Walk lists the primary store only: the secondary is being drained.
func (f *Fallback) Walk(ctx context.Context, after string, fn func(imaged.BlobInfo) error) error {
	return f.Primary.Walk(ctx, after, fn)
}

// Ping reports the primary's health when it can tell.
func (f *Fallback) Ping(ctx context.Context) error {
	if p, ok := f.Primary.(imaged.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
