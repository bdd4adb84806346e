package http

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/http/fastlane"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/sqlite"
)

// BenchmarkGetImage serves GET /api/images/{id} for random images of one
// owner straight through the handler (no network): middleware, token check,
// SQLite lookup, JSON envelope and an access log line at info level.
func BenchmarkGetImage(b *testing.B) {
	srv, ids, tok := benchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api/images/"+ids[r.IntN(len(ids))], nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkFastAPIAnswer is the fast lane's part of the same GET, given
// the request head the lane read: token check, lookup, JSON body, header
// lines, then the metrics and access log line of Done.
func BenchmarkFastAPIAnswer(b *testing.B) {
	srv, ids, tok := benchServer(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		scratch := make([]byte, 0, 1024)
		for pb.Next() {
			req := fastlane.Request{Path: "/api/images/" + ids[r.IntN(len(ids))], Host: "example.com",
				Authorization: "Bearer " + tok, Start: time.Now(), Scratch: scratch}
			a := fastAPI{srv}.Answer(&req)
			if a == nil {
				b.Error("left to net/http")
				return
			}
			a.Done(int64(len(a.Body)), nil)
		}
	})
}

// benchServer is a Server over SQLite with 1,000 images of "bench", their
// ids and a token of "bench".
func benchServer(b *testing.B) (*Server, []string, string) {
	const n = 1000
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	auth, err := jwtauth.New(ctx, jwtauth.Config{HMACSecret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		img := &imaged.Image{ID: imaged.NewID(), Owner: "bench", OriginalFilename: fmt.Sprintf("seed-%d.png", i),
			MediaType: "image/png", Size: 1234, Width: 64, Height: 64, SHA256: "00",
			BlobKey: imaged.NewBlobKey("png"), Source: imaged.SourceUpload, CreatedAt: start, UpdatedAt: start}
		if err := db.CreateImage(ctx, img); err != nil {
			b.Fatal(err)
		}
		ids[i] = img.ID
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(Config{Images: images.New(db, blobs, images.Config{Logger: log}), Auth: auth, Logger: log})
	return srv, ids, mintToken(b, "bench")
}
