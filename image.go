package imaged

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Source tells how an image came to be.
type Source string

const (
	SourceUpload     Source = "upload"
	SourceGeneration Source = "generation"
	// SourceEdit is an image a provider made from another of the owner's
	// images (its ParentID) as a prompt said.
	SourceEdit Source = "edit"
)

// Image is the metadata of one stored image. Its bytes live in a BlobStore
// under BlobKey.
type Image struct {
	ID               string
	Owner            string // the subject of the token that created it
	OriginalFilename string // as sent by the client (display only)
	MediaType        string // what the bytes are, decided by sniffing
	Size             int64  // bytes
	Width, Height    int
	SHA256           string // hex digest of the bytes
	BlobKey          string // random, never derived from the filename
	Source           Source
	Generation       *Generation // nil for uploads
	// ParentID is the image an edit was made from ("" unless Source is
	// SourceEdit). The parent may have been deleted since.
	ParentID   string
	Provenance *Provenance // nil when the bytes say nothing of their origin
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Generation is what a generated image was made from.
type Generation struct {
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negativePrompt,omitempty"`
	Provider       string `json:"provider"`
	Model          string `json:"model"`
	AspectRatio    string `json:"aspectRatio,omitempty"`
	Seed           *int64 `json:"seed,omitempty"`
	RevisedPrompt  string `json:"revisedPrompt,omitempty"`
	// Options are the model settings the request passed (imaged.Model.Options).
	Options map[string]string `json:"options,omitempty"`
	// Usage is what the provider reported counting for the request.
	Usage *Usage `json:"usage,omitempty"`
	// Strength and MaskID are what an edit asked for: how far it could
	// move from its source, and the image that said where it could change.
	Strength *float64 `json:"strength,omitempty"`
	MaskID   string   `json:"maskId,omitempty"`
	// The style fields of the request, as given: the provider saw them
	// folded into its prompt (see the README, "Generation").
	ArtStyle         string `json:"artStyle,omitempty"`
	ArtDescription   string `json:"artDescription,omitempty"`
	ThemeStyle       string `json:"themeStyle,omitempty"`
	ThemeDescription string `json:"themeDescription,omitempty"`
}

// Provenance is what an image's bytes say of how it was made: the marks
// imaged embeds in what it generates, or those an upload came with.
type Provenance struct {
	// DigitalSourceType is the IPTC digital source type, such as
	// http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia
	// for an image a generative model made.
	DigitalSourceType string `json:"digitalSourceType,omitempty"`
	// C2PA tells whether the bytes carry C2PA Content Credentials.
	C2PA bool `json:"c2pa"`
	// Manifest is the label of the active C2PA manifest.
	Manifest string `json:"manifest,omitempty"`
	// ClaimGenerator names the software that signed the active manifest.
	ClaimGenerator string `json:"claimGenerator,omitempty"`
	// Ingredient is the label of the manifest the active manifest takes as
	// its parent (the provider's for a generated image the provider signed,
	// the edited image's for an edit of an image with a manifest, the
	// uploaded one for an upload imaged signed again).
	Ingredient string `json:"ingredient,omitempty"`
}

// SortOrder orders a listing by creation time.
type SortOrder string

const (
	SortDesc SortOrder = "desc"
	SortAsc  SortOrder = "asc"
)

// ImageFilter selects one page of an owner's images. Either Cursor (keyset,
// constant cost at any depth) or Page (offset, 1-based) positions the page;
// Cursor wins when both are set.
type ImageFilter struct {
	Owner    string
	Search   string // case-insensitive substring of OriginalFilename
	Source   Source // "" for any
	Sort     SortOrder
	Page     int
	PageSize int
	Cursor   *Cursor
}

// ImagePage is one page of a listing.
type ImagePage struct {
	Images []*Image
	// TotalItems counts the images matching the filter, all pages. Stores
	// keep each owner's count, so without Search it costs the same however
	// many images there are; with Search it is a count of the owner's
	// matching images, whose cost grows with the owner's images.
	TotalItems int64
	Next       *Cursor // nil on the last page
}

// Cursor is the position after the last image of a page: listings are
// ordered by (CreatedAt, ID) in the filter's direction.
type Cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"i"`
	Page      int       `json:"p,omitempty"` // the page number it leads to, for display
}

// Encode returns the opaque text form given to clients.
func (c *Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses the text form made by Encode.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 256 {
		return nil, Errorf(EValidation, "cursor is malformed")
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.CreatedAt.IsZero() {
		return nil, Errorf(EValidation, "cursor is malformed")
	}
	return &c, nil
}

// ImageStore holds image metadata. Implementations: sqlite, postgres; both
// pass the storetest conformance suite.
//
// Lookups by owner answer NotFound() for an unknown id, a malformed id and an
// image of another owner alike.
type ImageStore interface {
	CreateImage(ctx context.Context, img *Image) error
	FindImage(ctx context.Context, owner, id string) (*Image, error)
	// FindImageByBlobKey serves the public byte URLs, which carry no token.
	FindImageByBlobKey(ctx context.Context, key string) (*Image, error)
	ListImages(ctx context.Context, f ImageFilter) (*ImagePage, error)
	// DeleteImage removes the metadata and returns what was removed, so that
	// the caller can then delete the bytes.
	DeleteImage(ctx context.Context, owner, id string) (*Image, error)
}

// DeletionFeed is implemented by image stores that report every deletion of
// an image, whichever process made it, so that a cache of image metadata
// stays exact.
//
// fn is called with the deleted image once the deletion is committed: for a
// deletion made through this store, with the whole image, before DeleteImage
// returns; for one made by another process, with at least its ID and
// BlobKey, as soon as the store hears of it. fn(nil) means deletions may
// have been missed (the store lost its way of hearing them): forget
// everything.
//
// DeletionsLive reports whether the store hears every deletion right now;
// while it does not, nothing may be answered from a cache. A store that
// cannot promise this for the deletions of other replicas does not
// implement DeletionFeed (its lookups are then never cached).
type DeletionFeed interface {
	OnImageDeleted(fn func(*Image))
	DeletionsLive() bool
}

// Pinger is implemented by stores whose dependency can be down; /readyz asks it.
type Pinger interface {
	Ping(ctx context.Context) error
}
