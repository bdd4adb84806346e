package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// defaultPageSize applies when a filter leaves PageSize unset.
const defaultPageSize = 20

const imageColumns = `id, owner, original_filename, media_type, size, width, height,
	sha256, blob_key, source, generation, provenance, created_at, updated_at, parent_id`

// CreateImage inserts img. A taken id or blob key answers EConflict.
func (db *DB) CreateImage(ctx context.Context, img *imaged.Image) error {
	if !imaged.ValidID(img.ID) {
		return fmt.Errorf("sqlite: create image: malformed id %q", img.ID)
	}
	if !imaged.ValidBlobKey(img.BlobKey) {
		return fmt.Errorf("sqlite: create image: malformed blob key %q", img.BlobKey)
	}
	var gen sql.NullString
	if img.Generation != nil {
		b, err := json.Marshal(img.Generation)
		if err != nil {
			return fmt.Errorf("sqlite: create image: %w", err)
		}
		gen = sql.NullString{String: string(b), Valid: true}
	}
	var prov sql.NullString
	if img.Provenance != nil {
		b, err := json.Marshal(img.Provenance)
		if err != nil {
			return fmt.Errorf("sqlite: create image: %w", err)
		}
		prov = sql.NullString{String: string(b), Valid: true}
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO images (id, owner, original_filename, filename_lower,
		media_type, size, width, height, sha256, blob_key, source, generation, provenance, created_at, updated_at, parent_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		img.ID, img.Owner, img.OriginalFilename, strings.ToLower(img.OriginalFilename),
		img.MediaType, img.Size, img.Width, img.Height, img.SHA256, img.BlobKey, string(img.Source), gen, prov,
		micros(img.CreatedAt), micros(img.UpdatedAt), sql.NullString{String: img.ParentID, Valid: img.ParentID != ""})
	if isUniqueViolation(err) {
		return &imaged.Error{Code: imaged.EConflict, Message: "Image already exists", Err: err}
	} else if err != nil {
		return fmt.Errorf("sqlite: create image: %w", err)
	}
	return nil
}

// FindImage returns owner's image id, or NotFound().
func (db *DB) FindImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	if !imaged.ValidID(id) {
		return nil, imaged.NotFound()
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap("find image", err)
	}
	img, err := scanImage(db.findImage.QueryRowContext(lookupContext(ctx), id, owner))
	return img, wrap("find image", err)
}

// FindImageByBlobKey returns the image stored under key, or NotFound().
func (db *DB) FindImageByBlobKey(ctx context.Context, key string) (*imaged.Image, error) {
	if !imaged.ValidBlobKey(key) {
		return nil, imaged.NotFound()
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap("find image by blob key", err)
	}
	img, err := scanImage(db.findImageByBlobKey.QueryRowContext(lookupContext(ctx), key))
	return img, wrap("find image by blob key", err)
}

// lookupContext is ctx without its cancellation, for a lookup by a unique
// key: it reads a handful of pages in microseconds, while watching ctx
// during it would cost more (a goroutine in database/sql and another in the
// driver, per query) than stopping it could save. Callers check ctx first.
func lookupContext(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// DeleteImage removes owner's image id and returns it, or NotFound().
func (db *DB) DeleteImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	if !imaged.ValidID(id) {
		return nil, imaged.NotFound()
	}
	img, err := scanImage(db.write.QueryRowContext(ctx,
		`DELETE FROM images WHERE id = ? AND owner = ? RETURNING `+imageColumns, id, owner))
	if err != nil {
		return nil, wrap("delete image", err)
	}
	db.deletedMu.Lock()
	fns := db.onDeleted
	db.deletedMu.Unlock()
	for _, fn := range fns {
		fn(img)
	}
	return img, nil
}

// OnImageDeleted makes DB an imaged.DeletionFeed: a SQLite file belongs to
// one imaged process (like its blob directory), so the deletions made
// through this DB are all there are.
func (db *DB) OnImageDeleted(fn func(*imaged.Image)) {
	db.deletedMu.Lock()
	defer db.deletedMu.Unlock()
	db.onDeleted = append(db.onDeleted, fn)
}

// DeletionsLive is always true: every deletion goes through this DB.
func (db *DB) DeletionsLive() bool { return true }

// ListImages returns one page of f.Owner's images. The count and the page are
// read in one transaction, so they agree. Without a search the total is read
// from image_counts, which triggers keep (migration 0002), at a constant cost;
// with one it counts the matches found through the full-text index
// (the image_search migration), a cost that follows the matches (see listQuery).
func (db *DB) ListImages(ctx context.Context, f imaged.ImageFilter) (*imaged.ImagePage, error) {
	pageSize := f.PageSize
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	countSQL, pageSQL, countArgs, pageArgs := listQuery(f, pageSize)

	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list images: %w", err)
	}
	defer tx.Rollback()

	page := &imaged.ImagePage{Images: []*imaged.Image{}}
	if err := tx.QueryRowContext(ctx, countSQL, countArgs...).Scan(&page.TotalItems); err != nil {
		return nil, fmt.Errorf("sqlite: list images: count: %w", err)
	}
	rows, err := tx.QueryContext(ctx, pageSQL, pageArgs...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list images: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list images: %w", err)
		}
		page.Images = append(page.Images, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list images: %w", err)
	}
	// One row more than the page was asked for, to know whether a next
	// page exists without a second query.
	if len(page.Images) > pageSize {
		page.Images = page.Images[:pageSize]
		last := page.Images[pageSize-1]
		page.Next = &imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// listQuery builds the count and the page queries of f. Without a search the
// count sums the owner's rows of image_counts (one per source). A search of
// three characters or more goes through images_search (the image_search migration): the
// trigram index yields the matching images of every owner, at a cost that
// follows their number, and the owner's are counted and sorted from those.
// A shorter one (no trigram to look up) scans the owner's images with LIKE.
// The page query asks for pageSize+1 rows in the filter's direction and,
// with a cursor, starts right after it.
func listQuery(f imaged.ImageFilter, pageSize int) (countSQL, pageSQL string, countArgs, pageArgs []any) {
	from := `images`
	where := []string{"images.owner = ?"}
	args := []any{f.Owner}
	if f.Source != "" {
		where = append(where, "images.source = ?")
		args = append(args, string(f.Source))
	}
	switch {
	case f.Search == "":
		countSQL = `SELECT coalesce(sum(n), 0) FROM image_counts WHERE ` +
			strings.ReplaceAll(strings.Join(where, " AND "), "images.", "")
	case utf8.RuneCountInString(f.Search) >= 3:
		// CROSS JOIN keeps images_search the outer loop: the matches drive
		// the query, instead of a walk of the owner's images in order that
		// probes the index for each (fast for common words, a scan of every
		// image for rare ones).
		// The join is on rowid alone: reading images_search.id too would
		// double the cost of every match (a second lookup, in the FTS
		// table's content); the owner is checked on the image itself.
		from = `images_search CROSS JOIN images ON images.rowid = images_search.rowid`
		where = append(where, "images_search MATCH ?")
		args = append(args, ftsPhrase(f.Search))
	default:
		pattern := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		where = append(where, `(images.filename_lower LIKE ? ESCAPE '\' OR json_extract(images.generation, '$.prompt') LIKE ? ESCAPE '\')`)
		args = append(args, pattern, pattern)
	}
	if countSQL == "" {
		countSQL = `SELECT count(*) FROM ` + from + ` WHERE ` + strings.Join(where, " AND ")
	}
	countArgs = args

	op, dir := "<", "DESC"
	if f.Sort == imaged.SortAsc {
		op, dir = ">", "ASC"
	}
	pageArgs = append([]any(nil), args...)
	offset := int64(0)
	if f.Cursor != nil {
		where = append(where, "(images.created_at, images.id) "+op+" (?, ?)")
		pageArgs = append(pageArgs, micros(f.Cursor.CreatedAt), f.Cursor.ID)
	} else if f.Page > 1 {
		offset = int64(f.Page-1) * int64(pageSize)
	}
	pageSQL = `SELECT ` + qualifiedImageColumns + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY images.created_at ` + dir + `, images.id ` + dir + ` LIMIT ? OFFSET ?`
	pageArgs = append(pageArgs, pageSize+1, offset)
	return countSQL, pageSQL, countArgs, pageArgs
}

// qualifiedImageColumns are imageColumns of the images table, for queries
// that join images_search (which has an id too).
var qualifiedImageColumns = func() string {
	cols := strings.Split(imageColumns, ",")
	for i, c := range cols {
		cols[i] = "images." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// ftsPhrase is s as one FTS5 string: every character literal (a double
// quote is doubled), so that with the trigram tokenizer it matches s as a
// case-insensitive substring of a filename or a prompt.
func ftsPhrase(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// escapeLike makes s match itself literally in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// scanImage reads one row of imageColumns; no row is NotFound().
func scanImage(row interface{ Scan(...any) error }) (*imaged.Image, error) {
	// The image and the columns converted after the scan share one
	// allocation: each variable Scan is given a pointer to would otherwise
	// be allocated on its own.
	var r struct {
		img                  imaged.Image
		source               string
		gen, prov, parent    sql.NullString
		createdAt, updatedAt int64
	}
	img := &r.img
	err := row.Scan(&img.ID, &img.Owner, &img.OriginalFilename, &img.MediaType, &img.Size,
		&img.Width, &img.Height, &img.SHA256, &img.BlobKey, &r.source, &r.gen, &r.prov, &r.createdAt, &r.updatedAt, &r.parent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, imaged.NotFound()
	} else if err != nil {
		return nil, err
	}
	img.Source = imaged.Source(r.source)
	if r.gen.Valid {
		img.Generation = new(imaged.Generation)
		if err := json.Unmarshal([]byte(r.gen.String), img.Generation); err != nil {
			return nil, fmt.Errorf("image %s: generation: %w", img.ID, err)
		}
		r.gen = sql.NullString{} // not kept alive with the image
	}
	if r.prov.Valid {
		img.Provenance = new(imaged.Provenance)
		if err := json.Unmarshal([]byte(r.prov.String), img.Provenance); err != nil {
			return nil, fmt.Errorf("image %s: provenance: %w", img.ID, err)
		}
		r.prov = sql.NullString{}
	}
	img.ParentID = r.parent.String
	img.CreatedAt = fromMicros(r.createdAt)
	img.UpdatedAt = fromMicros(r.updatedAt)
	return img, nil
}
