package imaged

import (
	"errors"
	"fmt"
	"time"
)

// ErrorCode is a stable UPPER_SNAKE name that clients branch on. The HTTP layer
// maps each code to one status in one place.
type ErrorCode string

// Error codes. The first block are the names the original service used.
const (
	ENotFound            ErrorCode = "MEDIA_NOT_FOUND"
	EUnauthorized        ErrorCode = "UNAUTHORIZED"
	EValidation          ErrorCode = "VALIDATION_ERROR"
	EUnsupportedMedia    ErrorCode = "UNSUPPORTED_MEDIA_TYPE"
	ETooLarge            ErrorCode = "FILE_TOO_LARGE"
	EInternal            ErrorCode = "INTERNAL_SERVER_ERROR"
	EIdempotencyMissing  ErrorCode = "IDEMPOTENCY_KEY_MISSING"
	EIdempotencyInvalid  ErrorCode = "IDEMPOTENCY_KEY_INVALID"
	EInvalidPrompt       ErrorCode = "INVALID_IMAGE_PROMPT"
	EQuotaExceeded       ErrorCode = "IMAGE_GENERATION_QUOTA_EXCEEDED"
	EGeneration          ErrorCode = "GENERATION_ERROR"
	ERouteNotFound       ErrorCode = "NOT_FOUND"
	EMethodNotAllowed    ErrorCode = "METHOD_NOT_ALLOWED"
	EIdempotencyMismatch ErrorCode = "IDEMPOTENCY_KEY_MISMATCH"
	EIdempotencyBusy     ErrorCode = "IDEMPOTENCY_KEY_IN_PROGRESS"
	EContentPolicy       ErrorCode = "CONTENT_POLICY_VIOLATION"
	EGenerationTimeout   ErrorCode = "GENERATION_TIMEOUT"
	EJobNotFound         ErrorCode = "GENERATION_JOB_NOT_FOUND"
	EUnavailable         ErrorCode = "SERVICE_UNAVAILABLE"
	EConflict            ErrorCode = "CONFLICT"
	// ERequestTimeout: the request body stopped arriving.
	ERequestTimeout ErrorCode = "REQUEST_TIMEOUT"
	// ERangeNotSatisfiable: no range of a Range header lies within the bytes.
	ERangeNotSatisfiable ErrorCode = "RANGE_NOT_SATISFIABLE"
	// EEditUnsupported: the model asked for cannot edit images.
	EEditUnsupported ErrorCode = "EDIT_NOT_SUPPORTED"
	// EHeadersTooLarge: the request's header fields exceed the limit.
	EHeadersTooLarge ErrorCode = "REQUEST_HEADER_FIELDS_TOO_LARGE"
	// EInvalidSignature: a signed transform URL whose signature is
	// missing, wrong or expired.
	EInvalidSignature ErrorCode = "INVALID_SIGNATURE"
	// EImportRefused: an import URL (or a redirect it led to) points where
	// the service may not go.
	EImportRefused ErrorCode = "IMPORT_URL_REFUSED"
	// EImportFailed: the import URL could not be fetched (no such host, no
	// connection, an answer other than 2xx, the connection dropped).
	EImportFailed ErrorCode = "IMPORT_FAILED"
	// EImportTimeout: the import URL did not yield the whole file in time.
	EImportTimeout ErrorCode = "IMPORT_TIMEOUT"
)

// Error is the application error. Its Message is safe to show to the caller;
// anything that is not an *Error is reported as EInternal and its detail only
// goes to the log.
type Error struct {
	Code    ErrorCode
	Message string
	// RetryAfter, when positive, tells the caller how long to wait before
	// trying again (quota and availability errors).
	RetryAfter time.Duration
	// Err is an optional cause, logged but never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted, caller-safe message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrCode(err error) ErrorCode {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrMessage returns the caller-safe message of err: the *Error's message, or
// a generic text for anything else.
func ErrMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error"
}

// NotFound is the single answer for an image that does not exist, has a
// malformed id, or belongs to someone else: the three are indistinguishable.
func NotFound() *Error { return &Error{Code: ENotFound, Message: "Image not found"} }

// Unavailable wraps a dependency failure (database, object store) so that the
// caller gets 503 instead of 500.
func Unavailable(what string, err error) *Error {
	return &Error{Code: EUnavailable, Message: what + " is unavailable", RetryAfter: time.Second, Err: err}
}
