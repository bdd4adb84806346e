package http

import (
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/http/fastlane"
	"github.com/imaged/imaged/variants"
)

// fastCDN answers the fast lane's requests for /cdn/{key},
// /cdn/{key}/{preset} and /cdn/{key}/{transform}/{signature} with the
// headers handleBlob and serveVariant give a plain GET, when the bytes are
// a local file already stored. Everything else (a miss, an error, a blob in
// a bucket, a variant still to render) goes to net/http, which answers it
// as always, a miss and an error from the lane's verdict (laneVerdict).
// TestFastLaneAnswersAsNetHTTP holds the two to the same answer.
type fastCDN struct{ s *Server }

func (f fastCDN) Answer(r *fastlane.Request) *fastlane.Answer {
	rest, ok := strings.CutPrefix(r.Path, "/cdn/")
	if !ok {
		return nil
	}
	ctx := &lookupContext{deadline: r.Start.Add(fastLookupTimeout)}
	defer ctx.stop()
	var (
		pattern string
		blob    imaged.Blob
		d       delivery
	)
	switch parts := strings.Split(rest, "/"); len(parts) {
	case 1:
		img, b, err := f.s.images.OpenBlob(ctx, parts[0])
		if err != nil {
			r.Note = &laneVerdict{path: r.Path, err: err}
			return nil
		}
		pattern, blob, d = "GET /cdn/{key}", b, originalDelivery(img)
	case 2, 3:
		if f.s.variants == nil {
			return nil
		}
		var v *variants.Variant
		var err error
		if len(parts) == 2 {
			pattern = "GET /cdn/{key}/{preset}"
			v, err = f.s.variants.StoredPreset(ctx, parts[0], parts[1], r.Accept)
		} else {
			pattern = "GET /cdn/{key}/{transform}/{signature}"
			v, err = f.s.variants.StoredTransform(ctx, parts[0], parts[1], parts[2], r.Accept)
		}
		if err != nil {
			r.Note = &laneVerdict{path: r.Path, err: err}
		}
		if v == nil {
			return nil // not stored yet: net/http renders it
		}
		blob, d = v.Blob, variantDelivery(v)
	default:
		return nil
	}
	lb, ok := blob.(imaged.LocalBlob)
	if !ok {
		blob.Close()
		return nil
	}
	id := f.s.laneAnswerStarted(r)
	return &fastlane.Answer{
		File:   lb.LocalFile(),
		Size:   blob.Size(),
		Header: appendFastHeader(r.Scratch, &d, id),
		Done: func(sent int64, err error) {
			blob.Close()
			f.s.laneAnswerDone(r, pattern, id, sent)
		},
	}
}

// appendFastHeader appends the header lines serveBlob and sendFile set for
// a plain GET of a local file (but Content-Length and Date, which the lane
// writes), in net/http's order.
func appendFastHeader(b []byte, d *delivery, requestID string) []byte {
	line := func(b []byte, name, value string) []byte {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		return append(b, "\r\n"...)
	}
	b = line(b, "Accept-Ranges", "bytes")
	b = line(b, "Cache-Control", d.cacheControl)
	b = line(b, "Content-Security-Policy", sandboxed[0])
	b = line(b, "Content-Type", d.mediaType)
	b = line(b, "Etag", d.etag)
	if !d.modTime.IsZero() {
		b = append(b, "Last-Modified: "...)
		b = fastlane.AppendHTTPDate(b, d.modTime)
		b = append(b, "\r\n"...)
	}
	if d.vary != "" {
		b = line(b, "Vary", d.vary)
	}
	b = line(b, "X-Content-Type-Options", nosniff[0])
	return line(b, "X-Request-Id", requestID)
}
