package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/postgres"
	"github.com/imaged/imaged/sqlite"
)

// The search benchmark (-only search) measures, in this process, what a
// listing with a search costs the metadata store, total included, as one
// owner's images grow from searchSmall to searchLarge: the store is seeded
// with the first searchSmall images, measured, seeded with the rest and
// measured again. A quarter of the images are generations whose prompt
// comes from a few common ones; 100 of the first searchSmall have a rare
// prompt ("a lighthouse at dusk"), and 100 have filenames that a filename
// search finds, so these two searches have as many matches at either size.
// A common word of the prompts ("castle") has matches in proportion to the
// images, for contrast. The baseline is the listing's first page without a
// search (its total read from the kept counts), measured in the same run.
const (
	searchSmall = 100_000
	searchLarge = 1_000_000
	searchRuns  = 200
)

var searchPrompts = []string{
	"a castle on a hill at dawn, watercolor",
	"portrait of a fox in a forest, studio light",
	"city street in the rain at night, neon",
	"a bowl of fruit on a wooden table, still life",
	"mountains above the clouds, matte painting",
	"an old sailing ship in a storm",
	"a cat sleeping on a windowsill, soft light",
	"abstract shapes in blue and orange",
}

// searchPrompt is image i's prompt: the rare one for 100 images among the
// first searchSmall, a common one for the other generations (i%4 == 3).
func searchPrompt(i int) string {
	switch {
	case i%4 != 3:
		return ""
	case i < searchSmall && i%1000 == 503:
		return "a lighthouse at dusk, oil on canvas"
	}
	return searchPrompts[(i/4)%len(searchPrompts)]
}

type searchCase struct {
	name   string
	filter imaged.ImageFilter
	// matches is the expected total at n images (-1: not checked).
	matches func(n int) int64
}

func searchCases(owner string) []searchCase {
	fixed := func(k int64) func(int) int64 { return func(int) int64 { return k } }
	return []searchCase{
		{"no search (baseline)", imaged.ImageFilter{Owner: owner, PageSize: 20}, func(n int) int64 { return int64(n) }},
		{`search "lighthouse" (a prompt; 100 matches)`, imaged.ImageFilter{Owner: owner, Search: "lighthouse", PageSize: 20}, fixed(100)},
		{`search "seed-00001" (filenames; 100 matches)`, imaged.ImageFilter{Owner: owner, Search: "seed-00001", PageSize: 20}, fixed(100)},
		{`search "castle" (a common word; matches grow)`, imaged.ImageFilter{Owner: owner, Search: "castle", PageSize: 20}, func(n int) int64 {
			var k int64
			for i := range n {
				if p := searchPrompt(i); p != "" && p == searchPrompts[0] {
					k++
				}
			}
			return k
		}},
	}
}

// searchStore is one store under the search benchmark.
type searchStore struct {
	name  string
	seed  func(ctx context.Context, s *seedSet, from, to int) error
	open  func(ctx context.Context) (imaged.ImageStore, func(), error)
	close func()
}

// searchSeedVersion names the seed of the search benchmark in the files of
// -search-cache: change it when searchPrompt or seedSet.image change.
const searchSeedVersion = "v1"

// copyFile copies the file src to dst (replaced).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func measureSearch(ctx context.Context, w io.Writer, dbURL, cacheDir string) error {
	dir, err := os.MkdirTemp("", "imaged-bench-search-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "imaged.db")
	stores := []searchStore{{
		name: "SQLite (FTS5 trigram)",
		seed: func(ctx context.Context, s *seedSet, from, to int) error {
			// A seeded file is kept in -search-cache, when set, and
			// reused by the next run (seeding SQLite one CreateImage at a
			// time takes minutes).
			cached := ""
			if cacheDir != "" {
				cached = filepath.Join(cacheDir, fmt.Sprintf("sqlite-%s-%d.db", searchSeedVersion, to))
				if err := copyFile(cached, file); err == nil {
					progress("  sqlite: reusing %s", cached)
					return nil
				}
			}
			db, err := sqlite.Open(ctx, file)
			if err != nil {
				return err
			}
			for i := from; i < to; i++ {
				if err := db.CreateImage(ctx, s.image(i)); err != nil {
					db.Close()
					return fmt.Errorf("create image %d: %w", i, err)
				}
				if (i+1)%100000 == 0 {
					progress("  sqlite: %d images seeded", i+1)
				}
			}
			if err := db.Close(); err != nil {
				return err
			}
			if cached != "" {
				if err := os.MkdirAll(cacheDir, 0o750); err != nil {
					return err
				}
				return copyFile(file, cached)
			}
			return nil
		},
		open: func(ctx context.Context) (imaged.ImageStore, func(), error) {
			db, err := sqlite.Open(ctx, file)
			if err != nil {
				return nil, nil, err
			}
			return db, func() { db.Close() }, nil
		},
		close: func() {},
	}}
	if dbURL != "" {
		pg, err := postgresBackend(ctx, dbURL)
		if err != nil {
			return err
		}
		defer pg.close()
		url := pg.env[0][len("IMAGED_DATABASE_URL="):]
		stores = append(stores, searchStore{
			name: "PostgreSQL (pg_trgm)",
			seed: func(ctx context.Context, s *seedSet, from, to int) error {
				return copyImageRange(ctx, url, s, from, to, func(done int) { progress("  postgres: %d images seeded", done) })
			},
			open: func(ctx context.Context) (imaged.ImageStore, func(), error) {
				db, err := postgres.Open(ctx, postgres.Config{URL: url})
				if err != nil {
					return nil, nil, err
				}
				return db, db.Close, nil
			},
			close: func() {},
		})
	}

	png, width, height := smallPNG()
	fmt.Fprintf(w, "search benchmark: one owner's images, %d listings of 20 with their total per case, in this process, sequential\n", searchRuns)
	for _, st := range stores {
		s := newSeedSet("bench-search", searchLarge, png, width, height, "00")
		s.prompt = searchPrompt
		cases := searchCases(s.owner)
		results := map[int][]time.Duration{}
		for _, step := range [][2]int{{0, searchSmall}, {searchSmall, searchLarge}} {
			progress("%s: seeding images %d to %d", st.name, step[0], step[1])
			start := time.Now()
			if err := st.seed(ctx, s, step[0], step[1]); err != nil {
				return fmt.Errorf("%s: seed: %w", st.name, err)
			}
			progress("%s: seeded in %s", st.name, time.Since(start).Round(time.Second))
			db, closeDB, err := st.open(ctx)
			if err != nil {
				return err
			}
			for ci, c := range cases {
				p50, p99, err := timeSearch(ctx, db, c, step[1])
				if err != nil {
					closeDB()
					return fmt.Errorf("%s: %s: %w", st.name, c.name, err)
				}
				results[ci] = append(results[ci], p50, p99)
			}
			closeDB()
		}
		fmt.Fprintf(w, "\n%s, CPUs %d, load average %s\n", st.name, runtime.NumCPU(), loadAverage())
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "listing\t%d images p50 / p99\t%d images p50 / p99\tratio p50 (1M / 100k)\n", searchSmall, searchLarge)
		for ci, c := range cases {
			r := results[ci]
			fmt.Fprintf(tw, "%s\t%s / %s\t%s / %s\t%.2f\n", c.name, ms(r[0]), ms(r[1]), ms(r[2]), ms(r[3]), float64(r[2])/float64(r[0]))
		}
		tw.Flush()
		st.close()
	}
	return nil
}

// timeSearch lists c's first page searchRuns times (after a warm-up) and
// checks the total each time.
func timeSearch(ctx context.Context, db imaged.ImageStore, c searchCase, n int) (p50, p99 time.Duration, err error) {
	want := c.matches(n)
	var took []time.Duration
	for i := range searchRuns + 20 {
		start := time.Now()
		p, err := db.ListImages(ctx, c.filter)
		d := time.Since(start)
		if err != nil {
			return 0, 0, err
		}
		if p.TotalItems != want || len(p.Images) != min(20, int(want)) {
			return 0, 0, fmt.Errorf("total %d with %d images, want %d", p.TotalItems, len(p.Images), want)
		}
		if i >= 20 {
			took = append(took, d)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*99/100], nil
}
