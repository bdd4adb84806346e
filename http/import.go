package http

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/imaged/imaged"
)

// maxImportBody bounds an import request's JSON.
const maxImportBody = 16 << 10

// importRequest is the body of POST /api/media/import.
type importRequest struct {
	URL      string `json:"url"`
	Filename string `json:"filename"`
}

// handleImport stores the image at a URL like an upload (see
// images.Service.Import): 201 with the image object and its Location.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, r, imaged.Errorf(imaged.EValidation, "The body must be JSON (Content-Type: application/json)"))
		return
	}
	var req importRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxImportBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb):
			writeError(w, r, err)
		case errors.Is(err, io.EOF):
			writeError(w, r, imaged.Errorf(imaged.EValidation, "url is required"))
		default:
			writeError(w, r, imaged.Errorf(imaged.EValidation, "The body is not a valid import request: %s", jsonProblem(err)))
		}
		return
	}
	if dec.More() {
		writeError(w, r, imaged.Errorf(imaged.EValidation, "The body must hold one JSON object"))
		return
	}
	img, err := s.images.Import(r.Context(), imaged.OwnerFrom(r.Context()), req.URL, req.Filename)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/images/"+img.ID)
	writeData(w, http.StatusCreated, "Image imported", s.imageJSON(r, img))
}
