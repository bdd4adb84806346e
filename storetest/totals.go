package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// testListTotals checks that ListImages' TotalItems follows every create and
// delete, whether the store counts rows or keeps counts.
func testListTotals(t *testing.T, open func(t *testing.T) Stores, create func(*testing.T, imaged.ImageStore, ...*imaged.Image)) {
	t.Run("list_total_follows_creates_and_deletes", func(t *testing.T) {
		s := open(t).Images
		live := map[string]*imaged.Image{}
		add := func(imgs ...*imaged.Image) {
			t.Helper()
			create(t, s, imgs...)
			for _, img := range imgs {
				live[img.ID] = img
			}
		}
		del := func(owner, id string) {
			t.Helper()
			if _, err := s.DeleteImage(t.Context(), owner, id); err != nil {
				t.Fatalf("DeleteImage(%s, %s): %v", owner, id, err)
			}
			delete(live, id)
		}
		refuse := func(owner, id string) {
			t.Helper()
			_, err := s.DeleteImage(t.Context(), owner, id)
			wantCode(t, err, imaged.ENotFound, fmt.Sprintf("DeleteImage(%q, %q)", owner, id))
		}
		wantTotals(t, s, "empty", live)

		aliceUp := []*imaged.Image{newImage("alice", "Sunset-1.png", t0), newImage("alice", "beach.png", t0.Add(time.Second)),
			newImage("alice", "sunrise.png", t0.Add(2*time.Second))}
		aliceGen := []*imaged.Image{newGenerated("alice", "SUNNY.webp", t0.Add(3*time.Second)),
			newGenerated("alice", "moon.webp", t0.Add(4*time.Second))}
		bobUp, bobGen := newImage("bob", "sun.png", t0), newGenerated("bob", "rain.webp", t0)
		add(aliceUp...)
		add(aliceGen...)
		add(bobUp, bobGen)
		wantTotals(t, s, "after creates", live)

		del("alice", aliceUp[0].ID)
		wantTotals(t, s, "after deleting an upload", live)

		refuse("bob", aliceGen[0].ID)
		refuse("alice", bobUp.ID)
		refuse("", bobGen.ID)
		wantTotals(t, s, "after deleting another owner's images", live)

		refuse("alice", aliceUp[0].ID)
		refuse("alice", imaged.NewID())
		refuse("alice", "not-an-id")
		wantTotals(t, s, "after deleting missing images", live)

		dupID := newGenerated("alice", "sun-dup.webp", t0)
		dupID.ID = aliceUp[1].ID
		dupKey := newImage("bob", "sun-dup.png", t0)
		dupKey.BlobKey = aliceGen[1].BlobKey
		for _, img := range []*imaged.Image{dupID, dupKey} {
			if err := s.CreateImage(t.Context(), img); err == nil {
				t.Fatalf("CreateImage(%s) with a taken id or blob key succeeded", img.OriginalFilename)
			}
		}
		wantTotals(t, s, "after refused creates", live)

		for _, img := range aliceGen {
			del("alice", img.ID)
		}
		wantTotals(t, s, "after deleting every generated image of alice", live)

		add(newGenerated("alice", "sunburst.webp", t0.Add(5*time.Second)))
		del("bob", bobUp.ID)
		del("bob", bobGen.ID)
		wantTotals(t, s, "after bob deleted everything and alice generated again", live)
	})

	t.Run("list_total_after_concurrent_creates_and_deletes", func(t *testing.T) {
		s := open(t).Images
		const workers, perWorker = 8, 12
		// Worker w creates perWorker images, alternately alice's and bob's,
		// uploads and generations, then deletes every third one, and tries
		// to delete one of them as the other owner.
		plan := make([][]*imaged.Image, workers)
		for w := range workers {
			for i := range perWorker {
				owner := []string{"alice", "bob"}[i%2]
				at := t0.Add(time.Duration(w*perWorker+i) * time.Millisecond)
				name := fmt.Sprintf("w%d-%02d.png", w, i)
				if i%3 == 1 {
					name = "sun-" + name
				}
				img := newImage(owner, name, at)
				if i%4 >= 2 {
					img = newGenerated(owner, name, at)
				}
				plan[w] = append(plan[w], img)
			}
		}
		var (
			writers, listers sync.WaitGroup
			done             = make(chan struct{})
		)
		for w := range workers {
			writers.Go(func() {
				for _, img := range plan[w] {
					if err := s.CreateImage(t.Context(), img); err != nil {
						t.Errorf("CreateImage(%s): %v", img.OriginalFilename, err)
					}
				}
				for i, img := range plan[w] {
					if i%3 == 0 {
						if _, err := s.DeleteImage(t.Context(), img.Owner, img.ID); err != nil {
							t.Errorf("DeleteImage(%s): %v", img.OriginalFilename, err)
						}
					}
				}
				other := map[string]string{"alice": "bob", "bob": "alice"}[plan[w][1].Owner]
				if _, err := s.DeleteImage(t.Context(), other, plan[w][1].ID); imaged.ErrCode(err) != imaged.ENotFound {
					t.Errorf("DeleteImage(%s, %s's image): %v, want not found", other, plan[w][1].Owner, err)
				}
			})
		}
		// Meanwhile, every listing's total agrees with its own page, which
		// holds every matching image.
		for _, f := range []imaged.ImageFilter{
			{Owner: "alice", PageSize: workers * perWorker},
			{Owner: "bob", Source: imaged.SourceGeneration, PageSize: workers * perWorker},
			{Owner: "alice", Search: "SUN", PageSize: workers * perWorker},
		} {
			listers.Go(func() {
				for {
					p, err := s.ListImages(t.Context(), f)
					if err != nil {
						t.Errorf("ListImages(%+v): %v", f, err)
						return
					}
					if p.TotalItems != int64(len(p.Images)) {
						t.Errorf("ListImages(%+v) while writing: total %d, page of every match has %d",
							f, p.TotalItems, len(p.Images))
					}
					select {
					case <-done:
						return
					default:
					}
				}
			})
		}
		writers.Wait()
		close(done)
		listers.Wait()

		live := map[string]*imaged.Image{}
		for _, imgs := range plan {
			for i, img := range imgs {
				if i%3 != 0 {
					live[img.ID] = img
				}
			}
		}
		wantTotals(t, s, "after concurrent creates and deletes", live)
	})
}

// wantTotals checks ListImages' TotalItems, for alice, bob and carol, with
// and without source filters and searches, against the images of live.
func wantTotals(t *testing.T, s imaged.ImageStore, step string, live map[string]*imaged.Image) {
	t.Helper()
	for _, owner := range []string{"alice", "bob", "carol"} {
		for _, source := range []imaged.Source{"", imaged.SourceUpload, imaged.SourceGeneration} {
			for _, search := range []string{"", "sun", "SUN-", "nothing matches"} {
				var want int64
				for _, img := range live {
					if img.Owner == owner && (source == "" || img.Source == source) &&
						strings.Contains(strings.ToLower(img.OriginalFilename), strings.ToLower(search)) {
						want++
					}
				}
				// The first page and a page past the end count alike.
				for _, page := range []int{1, 50} {
					f := imaged.ImageFilter{Owner: owner, Source: source, Search: search, Page: page, PageSize: 2}
					p, err := s.ListImages(t.Context(), f)
					if err != nil {
						t.Fatalf("%s: ListImages(%+v): %v", step, f, err)
					}
					if p.TotalItems != want {
						t.Errorf("%s: ListImages(%+v): total %d, want %d", step, f, p.TotalItems, want)
					}
				}
			}
		}
	}
}
