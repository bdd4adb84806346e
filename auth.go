package imaged

import "context"

// Authenticator turns a bearer token into the subject who owns what the
// request creates. Any failure answers an *Error with EUnauthorized.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (subject string, err error)
}

type ownerKey struct{}

// WithOwner returns ctx carrying the authenticated subject.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// OwnerFrom returns the authenticated subject carried by ctx, or "".
func OwnerFrom(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}
