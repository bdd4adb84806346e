package http

import (
	"context"
	"net/http"
	"strings"
	"time"

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
	reqID := requestID(r.RequestID)
	f.s.tel.RequestStarted()
	f.s.fastAnswers.Add(1)
	return &fastlane.Answer{
		Body:   *buf,
		Header: appendFastJSONHeader(r.Scratch, reqID),
		Done: func(sent int64, err error) {
			if cap(*buf) <= maxPooledJSON {
				imageBuffers.Put(buf)
			}
			f.s.tel.RequestDone(fastImagePattern, http.MethodGet, http.StatusOK, time.Since(r.Start), 0, sent)
			f.s.logRequest(context.Background(), reqID, http.MethodGet, r.Path, http.StatusOK, sent, r.Start)
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

// laneVerdict is why the lane left a request to net/http: for GET
// /api/images/{id}, the token's refusal or the lookup's failure for the
// token's owner; under /cdn, the lookup's failure. It goes with the
// connection (fastlane.Request.Note) to the request net/http reads first,
// which observe gives it (requestInfo.lane), and the handlers take the
// token's owner or refusal, and the lookup's failure, from it instead of
// doing the same work again, for that same path, token and owner only. It
// never answers bytes or an image: a lookup that found them was answered
// in the lane.
type laneVerdict struct {
	path    string // the request's
	token   string // the bearer token, and what checking it gave
	owner   string
	authErr error
	err     error // the lookup's failure (for owner, on the API)
}

// takeLaneVerdict returns the verdict the lane left with the connection
// of ctx, once: observe calls it for every request, so only the first
// request net/http serves on the connection gets it.
func takeLaneVerdict(ctx context.Context) *laneVerdict {
	c, ok := ctx.Value(connKeyType{}).(*moreConn)
	if !ok || c.Conn == nil {
		return nil
	}
	v, _ := c.Conn.TakeNote().(*laneVerdict)
	return v
}

// laneVerdictFor is the verdict of r, nil for almost every request.
func laneVerdictFor(r *http.Request) *laneVerdict {
	ri, ok := r.Context().Value(requestKey).(*requestInfo)
	if !ok || ri.lane == nil || r.Method != http.MethodGet || r.URL.Path != ri.lane.path {
		return nil
	}
	return ri.lane
}

// laneLookupError is the failure of the lookup the lane made for r, for
// owner ("" under /cdn), or nil when it made none.
func laneLookupError(r *http.Request, owner string) error {
	if v := laneVerdictFor(r); v != nil && v.owner == owner {
		return v.err
	}
	return nil
}
