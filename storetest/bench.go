package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// BenchmarkListImages lists one owner's images: the first page and a page
// near the far end by cursor, with and without a source filter, and a
// search for "img_09" (whose total counts the owner's matching rows). imgs
// are that owner's images in s, oldest first; the expected totals are
// counted from them.
func BenchmarkListImages(b *testing.B, s imaged.ImageStore, imgs []*imaged.Image) {
	ctx := context.Background()
	n := int64(len(imgs))
	owner := imgs[0].Owner
	// Newest first, the default: the cursor of the 100th oldest image
	// leads to the listing's last pages.
	deep := &imaged.Cursor{CreatedAt: imgs[100].CreatedAt, ID: imgs[100].ID}
	var generated, searched int64
	for _, img := range imgs {
		if img.Source == imaged.SourceGeneration {
			generated++
		}
		if strings.Contains(strings.ToLower(img.OriginalFilename), "img_09") {
			searched++
		}
	}
	for _, bc := range []struct {
		name  string
		f     imaged.ImageFilter
		total int64
	}{
		{"first_page", imaged.ImageFilter{Owner: owner, PageSize: 20}, n},
		{"deep_cursor", imaged.ImageFilter{Owner: owner, PageSize: 20, Cursor: deep}, n},
		{"first_page_source", imaged.ImageFilter{Owner: owner, Source: imaged.SourceGeneration, PageSize: 20}, generated},
		{"deep_cursor_source", imaged.ImageFilter{Owner: owner, Source: imaged.SourceGeneration, PageSize: 20, Cursor: deep}, generated},
		{"search_first_page", imaged.ImageFilter{Owner: owner, Search: "img_09", PageSize: 20}, searched},
	} {
		if bc.total < 20 {
			continue
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := s.ListImages(ctx, bc.f)
				if err != nil {
					b.Fatal(err)
				}
				if p.TotalItems != bc.total || len(p.Images) != 20 {
					b.Fatalf("total %d, %d images; want %d, 20", p.TotalItems, len(p.Images), bc.total)
				}
			}
		})
	}
}

// BenchmarkCreateImage measures one upload's metadata write, count included.
func BenchmarkCreateImage(b *testing.B, s imaged.ImageStore) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		img := &imaged.Image{ID: imaged.NewID(), Owner: "alice", OriginalFilename: "a.png", MediaType: "image/png",
			Size: 1, Width: 1, Height: 1, SHA256: "00", BlobKey: imaged.NewBlobKey("png"),
			Source: imaged.SourceUpload, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateImage(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}
