// Package upstreamtest holds what the tests of the HTTP provider adapters
// share: small real images for fake providers to answer with, and checks of
// the errors an adapter returns. Only tests import it.
package upstreamtest

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/imaged/imaged"
)

// PNG encodes a small, real w×h PNG filled with c.
func PNG(t testing.TB, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// UpstreamError returns the *imaged.UpstreamError in err's chain, failing
// the test at once when there is none, and reports it when it does not name
// provider.
func UpstreamError(t testing.TB, err error, provider string) *imaged.UpstreamError {
	t.Helper()
	var ue *imaged.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error = %v (%T), want *imaged.UpstreamError", err, err)
	}
	if ue.Provider != provider {
		t.Errorf("Provider = %q, want %s", ue.Provider, provider)
	}
	return ue
}

// CheckUpstream checks that err is an *imaged.UpstreamError of provider with
// want's Status, Retryable, RetryAfter and Timeout.
func CheckUpstream(t testing.TB, err error, provider string, want *imaged.UpstreamError) {
	t.Helper()
	ue := UpstreamError(t, err, provider)
	if ue.Status != want.Status || ue.Retryable != want.Retryable || ue.RetryAfter != want.RetryAfter || ue.Timeout != want.Timeout {
		t.Errorf("got {Status:%d Retryable:%v RetryAfter:%v Timeout:%v}, want {Status:%d Retryable:%v RetryAfter:%v Timeout:%v} (%v)",
			ue.Status, ue.Retryable, ue.RetryAfter, ue.Timeout, want.Status, want.Retryable, want.RetryAfter, want.Timeout, err)
	}
}

// ContentPolicyMessage is what the caller reads of every content-policy
// refusal, whatever the provider said.
const ContentPolicyMessage = "The prompt was refused by the provider's content policy"

// AppError returns the *imaged.Error in err's chain, failing the test at once
// when there is none or when its code is not want. A content-policy error
// must carry the one fixed message.
func AppError(t testing.TB, err error, want imaged.ErrorCode) *imaged.Error {
	t.Helper()
	var ae *imaged.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *imaged.Error", err, err)
	}
	if ae.Code != want {
		t.Fatalf("code = %s, want %s (%v)", ae.Code, want, err)
	}
	if want == imaged.EContentPolicy && ae.Message != ContentPolicyMessage {
		t.Errorf("message = %q, want the fixed content-policy text", ae.Message)
	}
	return ae
}

// Gray is an opaque gray of level v.
func Gray(v uint8) color.Color { return color.RGBA{R: v, G: v, B: v, A: 255} }
