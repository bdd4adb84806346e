package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

// defaultPageSize applies when a filter leaves PageSize unset.
const defaultPageSize = 20

const imageColumns = `id, owner, original_filename, media_type, size, width, height,
	sha256, blob_key, source, generation, provenance, created_at, updated_at, parent_id`

// CreateImage inserts img. A taken id or blob key answers EConflict.
func (db *DB) CreateImage(ctx context.Context, img *imaged.Image) error {
	if !imaged.ValidID(img.ID) {
		return fmt.Errorf("postgres: create image: malformed id %q", img.ID)
	}
	var gen []byte
	if img.Generation != nil {
		var err error
		if gen, err = json.Marshal(img.Generation); err != nil {
			return err
		}
	}
	var prov []byte
	if img.Provenance != nil {
		var err error
		if prov, err = json.Marshal(img.Provenance); err != nil {
			return err
		}
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `INSERT INTO images (`+imageColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		img.ID, img.Owner, img.OriginalFilename, img.MediaType, img.Size, img.Width, img.Height,
		img.SHA256, img.BlobKey, string(img.Source), gen, prov, img.CreatedAt, img.UpdatedAt, parentID(img))
	return wrapConflict(err, "Image already exists")
}

// FindImage returns owner's image id; NotFound for anything else.
func (db *DB) FindImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	if !imaged.ValidID(id) {
		return nil, imaged.NotFound()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	return db.oneImage(ctx, `SELECT `+imageColumns+` FROM images WHERE id = $1 AND owner = $2`, id, owner)
}

// FindImageByBlobKey returns the image whose bytes are stored under key.
func (db *DB) FindImageByBlobKey(ctx context.Context, key string) (*imaged.Image, error) {
	if !imaged.ValidBlobKey(key) {
		return nil, imaged.NotFound()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	return db.oneImage(ctx, `SELECT `+imageColumns+` FROM images WHERE blob_key = $1`, key)
}

// DeleteImage removes owner's image id and returns what was removed. The
// same statement notifies every replica listening for deletions (see
// deletions.go), which PostgreSQL does when it commits; the deletion is
// reported to this DB's OnImageDeleted functions, and acknowledged by the
// replicas that were listening (up to deletionAckWait), before DeleteImage
// returns.
func (db *DB) DeleteImage(ctx context.Context, owner, id string) (*imaged.Image, error) {
	if !imaged.ValidID(id) {
		return nil, imaged.NotFound()
	}
	d := db.deletions
	qctx, cancel := db.bound(ctx)
	defer cancel()
	var listeners int
	if err := db.pool.QueryRow(qctx, `SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, $1)`,
		d.listenerPrefix()).Scan(&listeners); err != nil {
		return nil, wrap(err)
	}
	acks := d.expect(id, listeners)
	img, err := db.oneImage(qctx, `WITH d AS (
			DELETE FROM images WHERE id = $1 AND owner = $2 RETURNING `+imageColumns+`
		), n AS (
			SELECT pg_notify($3, $4 || ' ' || id || ' ' || blob_key) FROM d
		)
		SELECT `+imageColumns+` FROM d, n`, id, owner, d.channel, d.origin)
	if err != nil {
		d.forget(id, acks)
		return nil, err
	}
	d.report(img)
	d.await(ctx, id, acks)
	return img, nil
}

func (db *DB) oneImage(ctx context.Context, sql string, args ...any) (*imaged.Image, error) {
	img, err := scanImage(db.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, imaged.NotFound()
	}
	if err != nil {
		return nil, wrap(err)
	}
	return img, nil
}

// ListImages returns one page of f.Owner's images and the count of all that
// match, read from one snapshot. The page is positioned by f.Cursor (keyset: constant cost at any
// depth) or else by f.Page; it holds f.PageSize images at most. Without a
// search the count is read from image_counts, which triggers keep (migration
// 0002), at a constant cost; with one it counts the matches found through
// the trigram indexes (the image_search migration), a cost that follows the matches.
func (db *DB) ListImages(ctx context.Context, f imaged.ImageFilter) (*imaged.ImagePage, error) {
	if f.PageSize <= 0 {
		f.PageSize = defaultPageSize
	}

	where := []string{"owner = $1"}
	args := []any{f.Owner}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Source != "" {
		where = append(where, "source = "+arg(string(f.Source)))
	}
	// The kept count sums the owner's rows, one per source.
	countSQL := `SELECT coalesce(sum(n), 0)::bigint FROM image_counts WHERE ` + strings.Join(where, " AND ")
	if f.Search != "" {
		// A substring of the filename or of the prompt, found through the
		// trigram indexes of the image_search migration (backslash is ILIKE's default
		// escape, which escapeLike uses).
		p := arg("%" + escapeLike(f.Search) + "%")
		where = append(where, `(original_filename ILIKE `+p+` OR generation->>'prompt' ILIKE `+p+`)`)
		countSQL = `SELECT count(*) FROM images WHERE ` + strings.Join(where, " AND ")
	}
	countArgs := append([]any(nil), args...)

	cmp, dir := "<", "DESC"
	if f.Sort == imaged.SortAsc {
		cmp, dir = ">", "ASC"
	}
	offset := 0
	if f.Cursor != nil {
		where = append(where, fmt.Sprintf("(created_at, id) %s (%s, %s)",
			cmp, arg(f.Cursor.CreatedAt), arg(f.Cursor.ID)))
	} else if f.Page > 1 {
		offset = (f.Page - 1) * f.PageSize
	}
	// One more than a page tells whether another page follows.
	listSQL := fmt.Sprintf(`SELECT %s FROM images WHERE %s ORDER BY created_at %s, id %s LIMIT %d OFFSET %d`,
		imageColumns, strings.Join(where, " AND "), dir, dir, f.PageSize+1, offset)
	if f.Search != "" {
		// The matches first, then the page sorted from them: left to
		// itself the planner may walk the owner's images in order and
		// filter them, betting that matches are frequent, and read every
		// image of the owner when they are rare. Its cost is then the
		// count's, which follows the matches.
		listSQL = fmt.Sprintf(`WITH matches AS MATERIALIZED (SELECT %s FROM images WHERE %s)
			SELECT * FROM matches ORDER BY created_at %s, id %s LIMIT %d OFFSET %d`,
			imageColumns, strings.Join(where, " AND "), dir, dir, f.PageSize+1, offset)
	}

	total, imgs, err := countAndList(ctx, db, countSQL, countArgs, listSQL, args, scanImageRow)
	if err != nil {
		return nil, err
	}
	out := &imaged.ImagePage{Images: []*imaged.Image{}, TotalItems: total}
	if len(imgs) > f.PageSize {
		imgs = imgs[:f.PageSize]
		last := imgs[len(imgs)-1]
		out.Next = &imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	out.Images = append(out.Images, imgs...)
	return out, nil
}

// countAndList runs a count and a page query on one snapshot, so that they
// agree, in one round trip.
func countAndList[T any](ctx context.Context, db *DB, countSQL string, countArgs []any, listSQL string, args []any, scan pgx.RowToFunc[T]) (int64, []T, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(countSQL, countArgs...)
	b.Queue(listSQL, args...)
	b.Queue(`COMMIT`)
	res := db.pool.SendBatch(ctx, b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return 0, nil, wrap(err)
	}
	var total int64
	if err := res.QueryRow().Scan(&total); err != nil {
		return 0, nil, wrap(err)
	}
	rows, err := res.Query()
	if err != nil {
		return 0, nil, wrap(err)
	}
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return 0, nil, wrap(err)
	}
	if _, err := res.Exec(); err != nil {
		return 0, nil, wrap(err)
	}
	if err := res.Close(); err != nil {
		return 0, nil, wrap(err)
	}
	return total, items, nil
}

// escapeLike makes s match itself literally in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func scanImageRow(row pgx.CollectableRow) (*imaged.Image, error) { return scanImage(row) }

func scanImage(row pgx.Row) (*imaged.Image, error) {
	var (
		img    imaged.Image
		source string
		gen    []byte
		prov   []byte
		parent *string
	)
	err := row.Scan(&img.ID, &img.Owner, &img.OriginalFilename, &img.MediaType, &img.Size,
		&img.Width, &img.Height, &img.SHA256, &img.BlobKey, &source, &gen, &prov, &img.CreatedAt, &img.UpdatedAt, &parent)
	if err != nil {
		return nil, err
	}
	img.Source = imaged.Source(source)
	if gen != nil {
		img.Generation = new(imaged.Generation)
		if err := json.Unmarshal(gen, img.Generation); err != nil {
			return nil, fmt.Errorf("image %s: generation: %w", img.ID, err)
		}
	}
	if prov != nil {
		img.Provenance = new(imaged.Provenance)
		if err := json.Unmarshal(prov, img.Provenance); err != nil {
			return nil, fmt.Errorf("image %s: provenance: %w", img.ID, err)
		}
	}
	if parent != nil {
		img.ParentID = *parent
	}
	img.CreatedAt = utc(img.CreatedAt)
	img.UpdatedAt = utc(img.UpdatedAt)
	return &img, nil
}

// parentID is the parent_id column of img: NULL unless it is an edit.
func parentID(img *imaged.Image) *string {
	if img.ParentID == "" {
		return nil
	}
	return &img.ParentID
}
