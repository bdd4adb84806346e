package storetest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// newImage returns an upload of owner with every field set.
func newImage(owner, filename string, createdAt time.Time) *imaged.Image {
	sum := make([]byte, 32)
	rand.Read(sum)
	return &imaged.Image{
		ID:               imaged.NewID(),
		Owner:            owner,
		OriginalFilename: filename,
		MediaType:        "image/png",
		Size:             123456,
		Width:            640,
		Height:           480,
		SHA256:           hex.EncodeToString(sum),
		BlobKey:          imaged.NewBlobKey("png"),
		Source:           imaged.SourceUpload,
		CreatedAt:        createdAt,
		UpdatedAt:        createdAt,
	}
}

// newGenerated returns a generated image of owner with every field set.
func newGenerated(owner, filename string, createdAt time.Time) *imaged.Image {
	img := newImage(owner, filename, createdAt)
	img.Source = imaged.SourceGeneration
	img.MediaType = "image/webp"
	img.BlobKey = imaged.NewBlobKey("webp")
	img.Generation = &imaged.Generation{
		Prompt:         "a lighthouse at dusk, oil on canvas",
		NegativePrompt: "people",
		Provider:       "builtin",
		Model:          "procedural-1",
		AspectRatio:    "16:9",
		Seed:           ptr(int64(-9007199254740993)),
		RevisedPrompt:  "A lighthouse at dusk painted in oils",
	}
	img.Provenance = &imaged.Provenance{
		DigitalSourceType: "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
		C2PA:              true,
		Manifest:          "urn:c2pa:6f1c2a44-90be-4d6e-8d1f-1b0f3c2e9a77",
		ClaimGenerator:    "imaged",
		Ingredient:        "urn:c2pa:0c3f8f5e-3a7b-4c55-9a43-5d5e0b9c1f20",
	}
	return img
}

// newEdited returns an edit of parent, owned by parent's owner, with every
// field set.
func newEdited(parent *imaged.Image, filename string, createdAt time.Time) *imaged.Image {
	img := newGenerated(parent.Owner, filename, createdAt)
	img.Source = imaged.SourceEdit
	img.ParentID = parent.ID
	img.Generation.Strength = ptr(0.35)
	img.Generation.MaskID = imaged.NewID()
	img.Provenance.DigitalSourceType = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
	return img
}

// diffImage lists how got differs from want, field by field.
func diffImage(got, want *imaged.Image) []string {
	if got == nil || want == nil {
		if got != want {
			return []string{fmt.Sprintf("got %v, want %v", got, want)}
		}
		return nil
	}
	var d []string
	f := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	f("ID", got.ID, want.ID)
	f("Owner", got.Owner, want.Owner)
	f("OriginalFilename", got.OriginalFilename, want.OriginalFilename)
	f("MediaType", got.MediaType, want.MediaType)
	f("Size", got.Size, want.Size)
	f("Width", got.Width, want.Width)
	f("Height", got.Height, want.Height)
	f("SHA256", got.SHA256, want.SHA256)
	f("BlobKey", got.BlobKey, want.BlobKey)
	f("Source", got.Source, want.Source)
	f("ParentID", got.ParentID, want.ParentID)
	d = append(d, sameTime("CreatedAt", got.CreatedAt, want.CreatedAt)...)
	d = append(d, sameTime("UpdatedAt", got.UpdatedAt, want.UpdatedAt)...)
	switch g, w := got.Provenance, want.Provenance; {
	case g == nil && w == nil:
	case g == nil || w == nil || *g != *w:
		d = append(d, fmt.Sprintf("Provenance: got %+v, want %+v", g, w))
	}
	switch g, w := got.Generation, want.Generation; {
	case g == nil && w == nil:
	case g == nil || w == nil:
		d = append(d, fmt.Sprintf("Generation: got %+v, want %+v", g, w))
	default:
		f("Generation.Prompt", g.Prompt, w.Prompt)
		f("Generation.NegativePrompt", g.NegativePrompt, w.NegativePrompt)
		f("Generation.Provider", g.Provider, w.Provider)
		f("Generation.Model", g.Model, w.Model)
		f("Generation.AspectRatio", g.AspectRatio, w.AspectRatio)
		f("Generation.RevisedPrompt", g.RevisedPrompt, w.RevisedPrompt)
		f("Generation.MaskID", g.MaskID, w.MaskID)
		switch {
		case g.Strength == nil && w.Strength == nil:
		case g.Strength == nil || w.Strength == nil:
			d = append(d, fmt.Sprintf("Generation.Strength: got %v, want %v", g.Strength, w.Strength))
		default:
			f("Generation.Strength", *g.Strength, *w.Strength)
		}
		switch {
		case g.Seed == nil && w.Seed == nil:
		case g.Seed == nil || w.Seed == nil:
			d = append(d, fmt.Sprintf("Generation.Seed: got %v, want %v", g.Seed, w.Seed))
		default:
			f("Generation.Seed", *g.Seed, *w.Seed)
		}
	}
	return d
}

func ids(imgs []*imaged.Image) []string {
	s := make([]string, len(imgs))
	for i, img := range imgs {
		s[i] = img.ID
	}
	return s
}

// byCreation orders images as an ascending listing does.
func byCreation(a, b *imaged.Image) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func testImages(t *testing.T, open func(t *testing.T) Stores) {
	create := func(t *testing.T, s imaged.ImageStore, imgs ...*imaged.Image) {
		t.Helper()
		for _, img := range imgs {
			if err := s.CreateImage(t.Context(), img); err != nil {
				t.Fatalf("CreateImage(%s): %v", img.OriginalFilename, err)
			}
		}
	}
	find := func(t *testing.T, s imaged.ImageStore, owner, id string) *imaged.Image {
		t.Helper()
		img, err := s.FindImage(t.Context(), owner, id)
		if err != nil {
			t.Fatalf("FindImage(%q, %q): %v", owner, id, err)
		}
		return img
	}

	t.Run("create_find_round_trip_upload", func(t *testing.T) {
		s := open(t).Images
		// Given in another zone: the store answers the same instant in UTC.
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		want := newImage("alice", "Holiday photo.PNG", t0.In(zone))
		want.UpdatedAt = t0.Add(90*time.Minute + 7*time.Microsecond).In(zone)
		create(t, s, want)
		report(t, "found image", diffImage(find(t, s, "alice", want.ID), want))
	})

	t.Run("create_find_round_trip_generation", func(t *testing.T) {
		s := open(t).Images
		want := newGenerated("alice", "lighthouse.webp", t0)
		create(t, s, want)
		report(t, "found image", diffImage(find(t, s, "alice", want.ID), want))
	})

	t.Run("create_find_round_trip_edit", func(t *testing.T) {
		s := open(t).Images
		parent := newGenerated("alice", "lighthouse.webp", t0)
		want := newEdited(parent, "lighthouse-edit.png", t0.Add(time.Second))
		create(t, s, parent, want)
		report(t, "found edit", diffImage(find(t, s, "alice", want.ID), want))
		report(t, "found parent", diffImage(find(t, s, "alice", parent.ID), parent))
	})

	t.Run("edit_outlives_its_parent", func(t *testing.T) {
		s := open(t).Images
		parent := newImage("alice", "photo.png", t0)
		edit := newEdited(parent, "photo-edit.png", t0.Add(time.Second))
		create(t, s, parent, edit)
		if _, err := s.DeleteImage(t.Context(), "alice", parent.ID); err != nil {
			t.Fatalf("DeleteImage(parent): %v", err)
		}
		report(t, "edit after its parent's deletion", diffImage(find(t, s, "alice", edit.ID), edit))
	})

	t.Run("upload_provenance_without_c2pa_round_trips", func(t *testing.T) {
		s := open(t).Images
		want := newImage("alice", "from-elsewhere.jpg", t0)
		want.Provenance = &imaged.Provenance{DigitalSourceType: "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}
		create(t, s, want)
		report(t, "found image", diffImage(find(t, s, "alice", want.ID), want))
	})

	t.Run("generation_seed_nil_and_zero_are_distinct", func(t *testing.T) {
		s := open(t).Images
		noSeed := newGenerated("alice", "a.png", t0)
		noSeed.Generation = &imaged.Generation{Prompt: "p", Provider: "builtin", Model: "m"}
		zeroSeed := newGenerated("alice", "b.png", t0)
		zeroSeed.Generation.Seed = ptr(int64(0))
		create(t, s, noSeed, zeroSeed)
		for _, want := range []*imaged.Image{noSeed, zeroSeed} {
			report(t, "found "+want.OriginalFilename, diffImage(find(t, s, "alice", want.ID), want))
		}
	})

	t.Run("times_come_back_in_utc_to_the_microsecond", func(t *testing.T) {
		s := open(t).Images
		loc := time.FixedZone("UTC-8", -8*3600)
		want := newImage("alice", "a.png", time.Date(2031, 12, 31, 23, 59, 59, 999999000, loc))
		want.UpdatedAt = time.Date(1999, 1, 1, 0, 0, 0, 1000, loc)
		create(t, s, want)
		got := find(t, s, "alice", want.ID)
		report(t, "times", append(sameTime("CreatedAt", got.CreatedAt, want.CreatedAt),
			sameTime("UpdatedAt", got.UpdatedAt, want.UpdatedAt)...))
		if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
			t.Errorf("times in %v and %v, want UTC", got.CreatedAt.Location(), got.UpdatedAt.Location())
		}
	})

	t.Run("find_malformed_id_is_not_found", func(t *testing.T) {
		s := open(t).Images
		img := newImage("alice", "a.png", t0)
		create(t, s, img)
		for _, id := range []string{"", "x", "../etc/passwd", "' OR 1=1 --", "%", strings.ToUpper(img.ID),
			"{" + img.ID + "}", img.ID + " ", strings.ReplaceAll(img.ID, "-", "")} {
			_, err := s.FindImage(t.Context(), "alice", id)
			wantCode(t, err, imaged.ENotFound, fmt.Sprintf("FindImage(%q)", id))
		}
	})

	t.Run("find_unknown_id_is_not_found", func(t *testing.T) {
		s := open(t).Images
		create(t, s, newImage("alice", "a.png", t0))
		_, err := s.FindImage(t.Context(), "alice", imaged.NewID())
		wantCode(t, err, imaged.ENotFound, "FindImage(unknown)")
	})

	t.Run("find_other_owner_is_not_found", func(t *testing.T) {
		s := open(t).Images
		img := newImage("alice", "a.png", t0)
		create(t, s, img)
		_, err := s.FindImage(t.Context(), "bob", img.ID)
		wantCode(t, err, imaged.ENotFound, "FindImage(bob, alice's image)")
		_, err = s.FindImage(t.Context(), "", img.ID)
		wantCode(t, err, imaged.ENotFound, "FindImage(no owner, alice's image)")
	})

	t.Run("find_by_blob_key", func(t *testing.T) {
		s := open(t).Images
		want := newGenerated("alice", "a.png", t0)
		other := newImage("bob", "b.png", t0)
		create(t, s, want, other)
		got, err := s.FindImageByBlobKey(t.Context(), want.BlobKey)
		if err != nil {
			t.Fatalf("FindImageByBlobKey: %v", err)
		}
		report(t, "found by blob key", diffImage(got, want))

		_, err = s.FindImageByBlobKey(t.Context(), imaged.NewBlobKey("png"))
		wantCode(t, err, imaged.ENotFound, "FindImageByBlobKey(unknown)")
		_, err = s.FindImageByBlobKey(t.Context(), "")
		wantCode(t, err, imaged.ENotFound, "FindImageByBlobKey(\"\")")
		_, err = s.FindImageByBlobKey(t.Context(), strings.ToUpper(want.BlobKey))
		wantCode(t, err, imaged.ENotFound, "FindImageByBlobKey(upper case)")
	})

	t.Run("create_duplicate_id_fails", func(t *testing.T) {
		s := open(t).Images
		first := newImage("alice", "first.png", t0)
		create(t, s, first)
		dup := newImage("alice", "second.png", t0.Add(time.Second))
		dup.ID = first.ID
		if err := s.CreateImage(t.Context(), dup); err == nil {
			t.Fatal("CreateImage with a taken id succeeded")
		}
		report(t, "first image after the duplicate", diffImage(find(t, s, "alice", first.ID), first))
		if _, err := s.FindImageByBlobKey(t.Context(), dup.BlobKey); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("the refused image is findable by its blob key (err %v)", err)
		}
	})

	t.Run("create_duplicate_blob_key_fails", func(t *testing.T) {
		s := open(t).Images
		first := newImage("alice", "first.png", t0)
		create(t, s, first)
		dup := newImage("bob", "second.png", t0.Add(time.Second))
		dup.BlobKey = first.BlobKey
		if err := s.CreateImage(t.Context(), dup); err == nil {
			t.Fatal("CreateImage with a taken blob key succeeded")
		}
		_, err := s.FindImage(t.Context(), "bob", dup.ID)
		wantCode(t, err, imaged.ENotFound, "FindImage(refused image)")
		got, err := s.FindImageByBlobKey(t.Context(), first.BlobKey)
		if err != nil {
			t.Fatalf("FindImageByBlobKey: %v", err)
		}
		report(t, "image under the blob key", diffImage(got, first))
	})

	t.Run("delete_returns_image_then_not_found", func(t *testing.T) {
		s := open(t).Images
		img := newGenerated("alice", "a.png", t0)
		keep := newImage("alice", "b.png", t0)
		create(t, s, img, keep)
		got, err := s.DeleteImage(t.Context(), "alice", img.ID)
		if err != nil {
			t.Fatalf("DeleteImage: %v", err)
		}
		report(t, "deleted image", diffImage(got, img))
		_, err = s.FindImage(t.Context(), "alice", img.ID)
		wantCode(t, err, imaged.ENotFound, "FindImage after delete")
		_, err = s.FindImageByBlobKey(t.Context(), img.BlobKey)
		wantCode(t, err, imaged.ENotFound, "FindImageByBlobKey after delete")
		_, err = s.DeleteImage(t.Context(), "alice", img.ID)
		wantCode(t, err, imaged.ENotFound, "DeleteImage again")
		find(t, s, "alice", keep.ID)
	})

	t.Run("delete_other_owner_is_not_found_and_keeps_image", func(t *testing.T) {
		s := open(t).Images
		img := newImage("alice", "a.png", t0)
		create(t, s, img)
		_, err := s.DeleteImage(t.Context(), "bob", img.ID)
		wantCode(t, err, imaged.ENotFound, "DeleteImage(bob, alice's image)")
		report(t, "alice's image", diffImage(find(t, s, "alice", img.ID), img))
	})

	t.Run("delete_malformed_or_unknown_id_is_not_found", func(t *testing.T) {
		s := open(t).Images
		create(t, s, newImage("alice", "a.png", t0))
		for _, id := range []string{"", "nope", "%", imaged.NewID()} {
			_, err := s.DeleteImage(t.Context(), "alice", id)
			wantCode(t, err, imaged.ENotFound, fmt.Sprintf("DeleteImage(%q)", id))
		}
	})

	t.Run("deletion_feed_reports_each_deletion_before_delete_returns", func(t *testing.T) {
		s := open(t).Images
		feed, ok := s.(imaged.DeletionFeed)
		if !ok {
			t.Skip("the store does not report deletions (imaged.DeletionFeed); its lookups are not cached")
		}
		var (
			mu       sync.Mutex
			reported []string
		)
		feed.OnImageDeleted(func(img *imaged.Image) {
			if img == nil {
				return // "forget everything": a feed (re)starting to listen
			}
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, img.BlobKey)
		})
		img, other := newImage("alice", "a.png", t0), newImage("alice", "b.png", t0)
		create(t, s, img, other)
		if _, err := s.DeleteImage(t.Context(), "bob", img.ID); imaged.ErrCode(err) != imaged.ENotFound {
			t.Fatalf("DeleteImage(bob) = %v", err)
		}
		if _, err := s.DeleteImage(t.Context(), "alice", img.ID); err != nil {
			t.Fatalf("DeleteImage: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(reported, []string{img.BlobKey}) {
			t.Errorf("reported %q, want only the deleted image's key %q", reported, img.BlobKey)
		}
	})

	testListImages(t, open, create)
	testListTotals(t, open, create)
}

func testListImages(t *testing.T, open func(t *testing.T) Stores, create func(*testing.T, imaged.ImageStore, ...*imaged.Image)) {
	list := func(t *testing.T, s imaged.ImageStore, f imaged.ImageFilter) *imaged.ImagePage {
		t.Helper()
		p, err := s.ListImages(t.Context(), f)
		if err != nil {
			t.Fatalf("ListImages(%+v): %v", f, err)
		}
		return p
	}
	// seed creates n images of owner a second apart, oldest first, and
	// returns them in ascending listing order.
	seed := func(t *testing.T, s imaged.ImageStore, owner string, n int) []*imaged.Image {
		t.Helper()
		var imgs []*imaged.Image
		for i := range n {
			imgs = append(imgs, newImage(owner, fmt.Sprintf("img-%02d.png", i), t0.Add(time.Duration(i)*time.Second)))
		}
		// Created out of order, so that insertion order cannot pass for
		// creation order.
		for _, i := range []int{1, 0} {
			for j := i; j < n; j += 2 {
				create(t, s, imgs[j])
			}
		}
		return imgs
	}
	wantIDs := func(t *testing.T, what string, got []*imaged.Image, want []*imaged.Image) {
		t.Helper()
		if g, w := ids(got), ids(want); !slices.Equal(g, w) {
			t.Errorf("%s: got ids\n\t%v\nwant\n\t%v", what, g, w)
		}
	}

	t.Run("list_empty", func(t *testing.T) {
		s := open(t).Images
		p := list(t, s, imaged.ImageFilter{Owner: "alice", PageSize: 10, Page: 1})
		if len(p.Images) != 0 || p.TotalItems != 0 || p.Next != nil {
			t.Errorf("empty listing: %d images, total %d, next %v", len(p.Images), p.TotalItems, p.Next)
		}
	})

	t.Run("list_owner_isolation", func(t *testing.T) {
		s := open(t).Images
		alice := seed(t, s, "alice", 3)
		bob := seed(t, s, "bob", 2)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, Page: 1, PageSize: 10})
		wantIDs(t, "alice's listing", p.Images, alice)
		if p.TotalItems != 3 {
			t.Errorf("alice's total: %d, want 3", p.TotalItems)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "bob", Sort: imaged.SortAsc, Page: 1, PageSize: 10})
		wantIDs(t, "bob's listing", p.Images, bob)
		if p.TotalItems != 2 {
			t.Errorf("bob's total: %d, want 2", p.TotalItems)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "carol", Page: 1, PageSize: 10})
		if len(p.Images) != 0 || p.TotalItems != 0 {
			t.Errorf("carol sees %d images, total %d", len(p.Images), p.TotalItems)
		}
	})

	t.Run("list_round_trips_every_field", func(t *testing.T) {
		s := open(t).Images
		want := newGenerated("alice", "a.png", t0)
		create(t, s, want)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Page: 1, PageSize: 10})
		if len(p.Images) != 1 {
			t.Fatalf("listing has %d images, want 1", len(p.Images))
		}
		report(t, "listed image", diffImage(p.Images[0], want))
	})

	t.Run("list_newest_first_by_default", func(t *testing.T) {
		s := open(t).Images
		imgs := seed(t, s, "alice", 5)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Page: 1, PageSize: 10})
		wantIDs(t, "default order", p.Images, reversed(imgs))
		p = list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortDesc, Page: 1, PageSize: 10})
		wantIDs(t, "desc order", p.Images, reversed(imgs))
	})

	t.Run("list_ascending", func(t *testing.T) {
		s := open(t).Images
		imgs := seed(t, s, "alice", 5)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, Page: 1, PageSize: 10})
		wantIDs(t, "asc order", p.Images, imgs)
	})

	t.Run("list_offset_pages", func(t *testing.T) {
		s := open(t).Images
		imgs := reversed(seed(t, s, "alice", 7))
		for _, tc := range []struct {
			page int
			want []*imaged.Image
			next bool
		}{
			{1, imgs[0:3], true},
			{2, imgs[3:6], true},
			{3, imgs[6:7], false},
			{4, nil, false},
		} {
			p := list(t, s, imaged.ImageFilter{Owner: "alice", Page: tc.page, PageSize: 3})
			wantIDs(t, fmt.Sprintf("page %d", tc.page), p.Images, tc.want)
			if p.TotalItems != 7 {
				t.Errorf("page %d: total %d, want 7", tc.page, p.TotalItems)
			}
			if (p.Next != nil) != tc.next {
				t.Errorf("page %d: next %v, want a next page: %v", tc.page, p.Next, tc.next)
			}
		}
	})

	t.Run("list_total_counts_all_matching", func(t *testing.T) {
		s := open(t).Images
		seed(t, s, "alice", 6)
		create(t, s, newGenerated("alice", "dream-1.webp", t0), newGenerated("alice", "dream-2.webp", t0),
			newGenerated("bob", "dream-3.webp", t0))
		for _, tc := range []struct {
			f    imaged.ImageFilter
			want int64
		}{
			{imaged.ImageFilter{Owner: "alice", Page: 1, PageSize: 2}, 8},
			{imaged.ImageFilter{Owner: "alice", Page: 3, PageSize: 2}, 8},
			{imaged.ImageFilter{Owner: "alice", Source: imaged.SourceGeneration, Page: 1, PageSize: 1}, 2},
			{imaged.ImageFilter{Owner: "alice", Source: imaged.SourceUpload, Page: 1, PageSize: 1}, 6},
			{imaged.ImageFilter{Owner: "alice", Search: "DREAM", Page: 1, PageSize: 1}, 2},
			{imaged.ImageFilter{Owner: "alice", Search: "img-0", Source: imaged.SourceUpload, Page: 1, PageSize: 1}, 6},
			{imaged.ImageFilter{Owner: "alice", Search: "img", Source: imaged.SourceGeneration, Page: 1, PageSize: 1}, 0},
			{imaged.ImageFilter{Owner: "alice", PageSize: 1, Cursor: &imaged.Cursor{CreatedAt: t0.Add(time.Hour), ID: imaged.NewID()}}, 8},
		} {
			if p := list(t, s, tc.f); p.TotalItems != tc.want {
				t.Errorf("ListImages(%+v): total %d, want %d", tc.f, p.TotalItems, tc.want)
			}
		}
	})

	t.Run("list_search_is_case_insensitive_substring", func(t *testing.T) {
		s := open(t).Images
		holiday := newImage("alice", "Summer HOLIDAY 2024.png", t0)
		ete := newImage("alice", "ÉTÉ à la Plage.JPG", t0.Add(time.Second))
		strasse := newImage("alice", "STRASSE-Ölbild.png", t0.Add(2*time.Second))
		other := newImage("alice", "cat.png", t0.Add(3*time.Second))
		bobs := newImage("bob", "holiday.png", t0)
		create(t, s, holiday, ete, strasse, other, bobs)
		for _, tc := range []struct {
			search string
			want   []*imaged.Image
		}{
			{"holiday", []*imaged.Image{holiday}},
			{"HoLiDaY 20", []*imaged.Image{holiday}},
			{"été", []*imaged.Image{ete}},
			{"ÉTÉ À", []*imaged.Image{ete}},
			{"ölbild", []*imaged.Image{strasse}},
			{".png", []*imaged.Image{holiday, strasse, other}},
			{".PNG", []*imaged.Image{holiday, strasse, other}},
			{"dog", nil},
		} {
			p := list(t, s, imaged.ImageFilter{Owner: "alice", Search: tc.search, Sort: imaged.SortAsc, Page: 1, PageSize: 10})
			wantIDs(t, fmt.Sprintf("search %q", tc.search), p.Images, tc.want)
			if p.TotalItems != int64(len(tc.want)) {
				t.Errorf("search %q: total %d, want %d", tc.search, p.TotalItems, len(tc.want))
			}
		}
	})

	t.Run("list_search_matches_prompts", func(t *testing.T) {
		s := open(t).Images
		prompted := func(owner, filename, prompt string, at time.Time) *imaged.Image {
			img := newGenerated(owner, filename, at)
			img.Generation.Prompt = prompt
			img.Generation.NegativePrompt = "blurry harbour"
			return img
		}
		lighthouse := prompted("alice", "gen-1.webp", "A Lighthouse at dusk", t0)
		cafe := prompted("alice", "gen-2.webp", "Un CAFÉ à Paris, 1920", t0.Add(time.Second))
		quoted := prompted("alice", "gen-3.webp", `the "quoted" sign OR NOT`, t0.Add(2*time.Second))
		named := newImage("alice", "lighthouse-photo.jpg", t0.Add(3*time.Second))
		upload := newImage("alice", "gen-4.png", t0.Add(4*time.Second))
		bobs := prompted("bob", "bob.webp", "a lighthouse too", t0)
		create(t, s, lighthouse, cafe, quoted, named, upload, bobs)
		for _, tc := range []struct {
			search string
			want   []*imaged.Image
		}{
			{"lighthouse", []*imaged.Image{lighthouse, named}}, // prompt or filename
			{"LIGHTHOUSE AT", []*imaged.Image{lighthouse}},     // a substring of the prompt, any case
			{"ghthou", []*imaged.Image{lighthouse, named}},     // inside words
			{"café à", []*imaged.Image{cafe}},                  // Unicode case folding
			{`"quoted"`, []*imaged.Image{quoted}},              // quotes are characters
			{"sign OR NOT", []*imaged.Image{quoted}},           // operators are words
			{"OR", []*imaged.Image{quoted}},                    // two characters
			{"harbour", nil},                                   // the negative prompt is not searched
			{"webp a", nil},                                    // no match across filename and prompt
			{"gen-", []*imaged.Image{lighthouse, cafe, quoted, upload}},
		} {
			p := list(t, s, imaged.ImageFilter{Owner: "alice", Search: tc.search, Sort: imaged.SortAsc, Page: 1, PageSize: 10})
			wantIDs(t, fmt.Sprintf("search %q", tc.search), p.Images, tc.want)
			if p.TotalItems != int64(len(tc.want)) {
				t.Errorf("search %q: total %d, want %d", tc.search, p.TotalItems, len(tc.want))
			}
		}
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Search: "lighthouse", Source: imaged.SourceGeneration, Page: 1, PageSize: 10})
		wantIDs(t, "search with source", p.Images, []*imaged.Image{lighthouse})

		// A deleted image is no longer found, by its prompt or its name.
		if _, err := s.DeleteImage(t.Context(), "alice", lighthouse.ID); err != nil {
			t.Fatal(err)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "alice", Search: "lighthouse", Page: 1, PageSize: 10})
		wantIDs(t, "search after delete", p.Images, []*imaged.Image{named})
		if p.TotalItems != 1 {
			t.Errorf("search after delete: total %d, want 1", p.TotalItems)
		}
	})

	t.Run("list_search_treats_wildcards_literally", func(t *testing.T) {
		s := open(t).Images
		percent := newImage("alice", "100%_done.png", t0)
		x := newImage("alice", "100x_done.png", t0.Add(time.Second))
		under := newImage("alice", "a_b.png", t0.Add(2*time.Second))
		axb := newImage("alice", "axb.png", t0.Add(3*time.Second))
		back := newImage("alice", `C:\scans\a.png`, t0.Add(4*time.Second))
		create(t, s, percent, x, under, axb, back)
		for _, tc := range []struct {
			search string
			want   []*imaged.Image
		}{
			{"%", []*imaged.Image{percent}},
			{"0%", []*imaged.Image{percent}},
			{"_", []*imaged.Image{percent, x, under}},
			{"a_b", []*imaged.Image{under}},
			{"%_", []*imaged.Image{percent}},
			{`\`, []*imaged.Image{back}},
			{`\s`, []*imaged.Image{back}},
			{`\%`, nil},
			{"*", nil},
			{"[a]", nil},
		} {
			p := list(t, s, imaged.ImageFilter{Owner: "alice", Search: tc.search, Sort: imaged.SortAsc, Page: 1, PageSize: 10})
			wantIDs(t, fmt.Sprintf("search %q", tc.search), p.Images, tc.want)
		}
	})

	t.Run("list_source_filter", func(t *testing.T) {
		s := open(t).Images
		up1 := newImage("alice", "a.png", t0)
		gen1 := newGenerated("alice", "b.png", t0.Add(time.Second))
		up2 := newImage("alice", "c.png", t0.Add(2*time.Second))
		gen2 := newGenerated("alice", "d.png", t0.Add(3*time.Second))
		edit := newEdited(gen1, "f.png", t0.Add(4*time.Second))
		create(t, s, up1, gen1, up2, gen2, edit, newGenerated("bob", "e.png", t0))
		for _, tc := range []struct {
			source imaged.Source
			want   []*imaged.Image
		}{
			{imaged.SourceUpload, []*imaged.Image{up1, up2}},
			{imaged.SourceGeneration, []*imaged.Image{gen1, gen2}},
			{imaged.SourceEdit, []*imaged.Image{edit}},
			{"", []*imaged.Image{up1, gen1, up2, gen2, edit}},
		} {
			p := list(t, s, imaged.ImageFilter{Owner: "alice", Source: tc.source, Sort: imaged.SortAsc, Page: 1, PageSize: 10})
			wantIDs(t, fmt.Sprintf("source %q", tc.source), p.Images, tc.want)
		}
	})

	t.Run("list_cursor_walks_every_image_once", func(t *testing.T) {
		s := open(t).Images
		// 23 images on 5 distinct instants: ties on CreatedAt are broken by
		// ID. IDs are minted in an order unrelated to creation order.
		var imgs []*imaged.Image
		for i := range 23 {
			imgs = append(imgs, newImage("alice", fmt.Sprintf("%02d.png", i), t0.Add(time.Duration(4-i%5)*time.Minute)))
		}
		create(t, s, imgs...)
		create(t, s, newImage("bob", "bob.png", t0.Add(2*time.Minute)))
		asc := slices.SortedFunc(slices.Values(imgs), byCreation)
		desc := reversed(asc)

		for _, size := range []int{1, 4, 5, 23, 24, 100} {
			for _, tc := range []struct {
				sort imaged.SortOrder
				want []*imaged.Image
			}{{imaged.SortAsc, asc}, {imaged.SortDesc, desc}, {"", desc}} {
				name := fmt.Sprintf("sort %q page size %d", tc.sort, size)
				got := walk(t, s, imaged.ImageFilter{Owner: "alice", Sort: tc.sort, PageSize: size}, 23)
				wantIDs(t, name, got, tc.want)
			}
		}
	})

	t.Run("list_cursor_walks_filtered_listing", func(t *testing.T) {
		s := open(t).Images
		var want []*imaged.Image
		for i := range 10 {
			at := t0.Add(time.Duration(i%3) * time.Second)
			match := newGenerated("alice", fmt.Sprintf("Sunset-%d.png", i), at)
			want = append(want, match)
			create(t, s, match,
				newImage("alice", fmt.Sprintf("sunset-%d.png", i), at),
				newGenerated("alice", fmt.Sprintf("dawn-%d.png", i), at))
		}
		slices.SortFunc(want, byCreation)
		got := walk(t, s, imaged.ImageFilter{Owner: "alice", Search: "SUNSET", Source: imaged.SourceGeneration,
			Sort: imaged.SortAsc, PageSize: 3}, 10)
		wantIDs(t, "filtered walk", got, want)
	})

	t.Run("list_next_is_position_after_last_image", func(t *testing.T) {
		s := open(t).Images
		imgs := seed(t, s, "alice", 3)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, Page: 1, PageSize: 2})
		if p.Next == nil {
			t.Fatal("first of two pages has no Next")
		}
		if p.Next.ID != imgs[1].ID || !p.Next.CreatedAt.Equal(imgs[1].CreatedAt) {
			t.Errorf("Next = %+v, want the position of %s at %v", p.Next, imgs[1].ID, imgs[1].CreatedAt)
		}
		// The cursor survives its text form.
		c, err := imaged.DecodeCursor(p.Next.Encode())
		if err != nil {
			t.Fatalf("DecodeCursor: %v", err)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, PageSize: 2, Cursor: c})
		wantIDs(t, "second page", p.Images, imgs[2:])
		if p.Next != nil {
			t.Errorf("last page has Next %+v", p.Next)
		}
	})

	t.Run("list_next_nil_when_last_page_is_full", func(t *testing.T) {
		s := open(t).Images
		seed(t, s, "alice", 4)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Page: 2, PageSize: 2})
		if len(p.Images) != 2 || p.Next != nil {
			t.Errorf("offset page 2 of 2: %d images, next %v; want 2 images and no next", len(p.Images), p.Next)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "alice", PageSize: 4})
		if len(p.Images) != 4 || p.Next != nil {
			t.Errorf("one full page: %d images, next %v; want 4 images and no next", len(p.Images), p.Next)
		}
	})

	t.Run("list_cursor_wins_over_page", func(t *testing.T) {
		s := open(t).Images
		imgs := reversed(seed(t, s, "alice", 6))
		c := &imaged.Cursor{CreatedAt: imgs[1].CreatedAt, ID: imgs[1].ID}
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Page: 3, PageSize: 2, Cursor: c})
		wantIDs(t, "cursor and page 3", p.Images, imgs[2:4])
	})

	t.Run("list_cursor_of_deleted_image_still_positions", func(t *testing.T) {
		s := open(t).Images
		imgs := seed(t, s, "alice", 5)
		p := list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, PageSize: 2})
		if _, err := s.DeleteImage(t.Context(), "alice", imgs[1].ID); err != nil {
			t.Fatalf("DeleteImage: %v", err)
		}
		p = list(t, s, imaged.ImageFilter{Owner: "alice", Sort: imaged.SortAsc, PageSize: 2, Cursor: p.Next})
		wantIDs(t, "page after a deleted cursor image", p.Images, imgs[2:4])
	})
}

// walk follows Next from the first page to the last and returns every image
// seen. It fails t if the walk does not end within the pages that total
// images can fill.
func walk(t *testing.T, s imaged.ImageStore, f imaged.ImageFilter, total int) []*imaged.Image {
	t.Helper()
	var all []*imaged.Image
	maxPages := total/max(f.PageSize, 1) + 2
	for range maxPages {
		p, err := s.ListImages(t.Context(), f)
		if err != nil {
			t.Fatalf("ListImages(%+v): %v", f, err)
		}
		if p.TotalItems != int64(total) {
			t.Errorf("ListImages(%+v): total %d, want %d", f, p.TotalItems, total)
		}
		if len(p.Images) > f.PageSize {
			t.Fatalf("page of %d images, page size %d", len(p.Images), f.PageSize)
		}
		all = append(all, p.Images...)
		if p.Next == nil {
			return all
		}
		if len(p.Images) == 0 {
			t.Fatalf("empty page with Next %+v", p.Next)
		}
		f.Cursor = p.Next
	}
	t.Fatalf("walk with page size %d did not end after %d pages", f.PageSize, maxPages)
	return nil
}

// reversed returns a reversed copy of imgs.
func reversed(imgs []*imaged.Image) []*imaged.Image {
	r := slices.Clone(imgs)
	slices.Reverse(r)
	return r
}
