package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/images"
)

// multipartNumbers and multipartObjects are the fields of an edit whose
// multipart text is JSON (a number, an object) rather than a string.
var (
	multipartNumbers = map[string]bool{"n": true, "seed": true, "strength": true}
	multipartObjects = map[string]bool{"options": true, "webhook": true}
)

// maxEditFields bounds the text fields of a multipart edit, all together,
// and maxEditParts their number.
const (
	maxEditFields = maxGenerateBody
	maxEditParts  = 32
)

// handleEdit serves POST /api/images/{id}/edit: the body is the JSON of a
// generation request plus mask and strength, or the same fields as
// multipart/form-data, where mask may also be an uploaded file. The answer
// is that of a generation: the images, or a job with Prefer: respond-async.
func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	owner := imaged.OwnerFrom(ctx)
	// The source is checked first: another owner's id is 404 whatever the
	// body holds.
	if _, err := s.images.Get(ctx, owner, r.PathValue("id")); err != nil {
		writeError(w, r, err)
		return
	}
	req, uploaded, err := s.decodeEditRequest(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req.Image = r.PathValue("id")
	ok := false
	if uploaded != nil {
		// An uploaded mask is kept with the edits that used it; it goes
		// again when the edit fails.
		defer func() {
			if !ok {
				s.dropUpload(ctx, owner, uploaded)
			}
		}()
	}
	if preferAsync(r) {
		job, err := s.gen.SubmitEdit(ctx, owner, req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		ok = true
		w.Header().Set("Location", "/api/images/generations/"+job.ID)
		w.Header().Set("Preference-Applied", "respond-async")
		w.Header().Set("Retry-After", "1")
		writeData(w, http.StatusAccepted, "Edit queued", s.jobJSON(r, job))
		return
	}
	imgs, err := s.gen.Edit(ctx, owner, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ok = true
	writeData(w, http.StatusOK, "OK", s.generatedJSON(r, imgs))
}

func (s *Server) dropUpload(ctx context.Context, owner string, img *imaged.Image) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.images.Delete(dctx, owner, img.ID); err != nil {
		loggerFrom(ctx).ErrorContext(ctx, "uploaded mask of a failed edit not removed", "id", img.ID, "err", err)
	}
}

// decodeEditRequest reads a JSON or multipart edit. A mask uploaded in a
// multipart body is stored as one of the caller's images and returned, so
// that the caller removes it if the edit fails.
func (s *Server) decodeEditRequest(w http.ResponseWriter, r *http.Request) (generation.EditRequest, *imaged.Image, error) {
	var req generation.EditRequest
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		if ct := r.Header.Get("Content-Type"); ct != "" && mt != "application/json" {
			return req, nil, imaged.Errorf(imaged.EValidation, "The body must be JSON (Content-Type: application/json) or multipart/form-data")
		}
		err := decodeStrict(http.MaxBytesReader(w, r.Body, maxGenerateBody), &req, "an edit request")
		return req, nil, err
	}
	return s.decodeMultipartEdit(w, r)
}

// decodeMultipartEdit reads the text fields of a multipart edit into the
// JSON object they stand for, which is then read like a JSON body, and
// stores a mask sent as a file (a part with a filename).
func (s *Server) decodeMultipartEdit(w http.ResponseWriter, r *http.Request) (req generation.EditRequest, mask *imaged.Image, err error) {
	limit := s.images.MaxFileSize() + multipartOverhead
	if r.ContentLength > limit {
		return req, nil, imaged.Errorf(imaged.ETooLarge, "The request body exceeds the limit of %d bytes", limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		return req, nil, imaged.Errorf(imaged.EValidation, "The multipart body is malformed")
	}
	ctx := r.Context()
	owner := imaged.OwnerFrom(ctx)
	defer func() {
		if err != nil && mask != nil {
			s.dropUpload(ctx, owner, mask)
			mask = nil
		}
	}()
	fields := map[string]json.RawMessage{}
	left := int64(maxEditFields)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.As(err, new(*imaged.Error)) || classify(ctx, err) != err {
				return req, mask, err
			}
			return req, mask, &imaged.Error{Code: imaged.EValidation, Message: "The multipart body is malformed", Err: err}
		}
		if len(fields) == maxEditParts {
			part.Close()
			return req, mask, imaged.Errorf(imaged.EValidation, "An edit has at most %d fields", maxEditParts)
		}
		name := part.FormName()
		if name == "" {
			part.Close()
			return req, mask, imaged.Errorf(imaged.EValidation, "Every multipart part needs a form field name")
		}
		if _, dup := fields[name]; dup || (name == "mask" && mask != nil) {
			part.Close()
			return req, mask, imaged.Errorf(imaged.EValidation, "The field %q is given twice", upTo(name, 40))
		}
		if name == "mask" && rawFilename(part) != "" {
			mask, err = s.images.Store(ctx, images.NewImage{Owner: owner, Filename: rawFilename(part), Source: imaged.SourceUpload}, partReader{part})
			part.Close()
			if err != nil {
				mask = nil
				return req, nil, withField(err, "mask")
			}
			fields[name] = nil
			continue
		}
		text, err := io.ReadAll(io.LimitReader(partReader{part}, left+1))
		part.Close()
		if err != nil {
			return req, mask, err
		}
		if left -= int64(len(text)); left < 0 {
			return req, mask, imaged.Errorf(imaged.ETooLarge, "The text fields of the body exceed %d bytes", maxEditFields)
		}
		switch {
		case multipartNumbers[name] || multipartObjects[name]:
			if !json.Valid(text) {
				return req, mask, imaged.Errorf(imaged.EValidation, "The field %q must be JSON (a number, or an object)", upTo(name, 40))
			}
			fields[name] = json.RawMessage(text)
		default:
			b, _ := json.Marshal(string(text))
			fields[name] = b
		}
	}
	if mask != nil {
		b, _ := json.Marshal(mask.ID)
		fields["mask"] = b
	}
	body, _ := json.Marshal(fields)
	if err := decodeStrict(bytes.NewReader(body), &req, "an edit request"); err != nil {
		return req, mask, err
	}
	return req, mask, nil
}

// withField names the field in an application error's message.
func withField(err error, field string) error {
	code := imaged.ErrCode(err)
	if code == imaged.EInternal || code == imaged.EUnavailable {
		return err
	}
	return &imaged.Error{Code: code, Message: "Field " + field + ": " + imaged.ErrMessage(err), Err: err}
}

// upTo bounds s for quoting in a message.
func upTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
