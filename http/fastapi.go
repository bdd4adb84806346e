package http

import (
	"net/http"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/http/fastlane"
)

// fastAPI answers the fast lane's GET /api/images/{id} with a bearer token
// as authenticated and handleGetImage answer it: the same body and header.
// A request it cannot answer with a 200 (a token refused, an unknown id,
// another owner's image, a failed lookup) goes to net/http, which answers
// it as always, with the error envelope and its log line, from the lane's
// verdict: a forged token is not checked twice, nor an unknown id looked
// up twice. TestFastLaneAnswersAsNetHTTP holds the two to the same answer.
type fastAPI struct{ s *Server }

const fastImagePattern = "GET /api/images/{id}"

func (f fastAPI) Answer(r *fastlane.Request) *fastlane.Answer {
	id, ok := strings.CutPrefix(r.Path, "/api/images/")
	// A valid id has no '/' and is no literal segment of a route beside
	// {id} (such as /api/images/models): its pattern is this one.
	if !ok || !imaged.ValidID(id) {
		return nil
	}
	token, ok := bearerToken(r.Authorization)
	if !ok {
		return nil
	}
	ctx := &lookupContext{deadline: r.Start.Add(fastLookupTimeout)}
	defer ctx.stop()
	owner, err := f.s.auth.Authenticate(ctx, token)
	if err != nil {
		r.Note = &laneVerdict{path: r.Path, token: token, authErr: err}
		return nil
	}
	img, err := f.s.images.Get(ctx, owner, id)
	if err != nil {
		r.Note = &laneVerdict{path: r.Path, token: token, owner: owner, err: err}
		return nil
	}
	j := f.s.imageJSONUnder(f.s.cdnBaseAt(false, r.Host), img)
	buf := imageBuffers.Get().(*[]byte)
	*buf = appendImageEnvelope((*buf)[:0], http.StatusOK, "OK", &j)
	reqID := f.s.laneAnswerStarted(r)
	return &fastlane.Answer{
		Body:   *buf,
		Header: appendFastJSONHeader(r.Scratch, reqID),
		Done: func(sent int64, err error) {
			putImageBuffer(buf)
			f.s.laneAnswerDone(r, fastImagePattern, reqID, sent)
		},
	}
}

// appendFastJSONHeader appends the header lines writeJSONBytes and observe
// set for a JSON answer (but Content-Length and Date, which the lane
// writes), in net/http's order.
func appendFastJSONHeader(b []byte, requestID string) []byte {
	b = append(b, "Content-Type: "...)
	b = append(b, jsonType[0]...)
	b = append(b, "\r\nX-Request-Id: "...)
	b = append(b, requestID...)
	return append(b, "\r\n"...)
}
