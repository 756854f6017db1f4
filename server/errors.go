package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/elevatehq/elevate/state"
)

// Error codes the API writes besides server/auth's decision codes and
// policies' reason codes. They never change meaning.
const (
	CodeInvalidRequest       = "invalid-request"        // 400: a field is missing or malformed
	CodeMalformedJSON        = "malformed-json"         // 400: the body is not JSON
	CodeUnknownField         = "unknown-field"          // 400: the body has a field the endpoint does not take
	CodeTrailingData         = "trailing-data"          // 400: something follows the JSON object
	CodeEmptyBody            = "empty-body"             // 400: the endpoint needs a body
	CodeBodyTooLarge         = "body-too-large"         // 413: the body exceeds MaxBodyBytes
	CodeUnsupportedMedia     = "unsupported-media-type" // 415: Content-Type is not application/json
	CodeNotFound             = "not-found"              // 404
	CodeMethodNotAllowed     = "method-not-allowed"     // 405
	CodeConflict             = "conflict"               // 409: too many concurrent changes; retry
	CodeRenewalNeedsApproval = "renewal-needs-approval" // 409: an extension a policy would only grant with approval
	CodePoliciesUnavailable  = "policies-unavailable"   // 503: no policy set is loaded yet
	CodeStoreUnavailable     = "store-unavailable"      // 503: the state store failed
	CodeInternal             = "internal"               // 500
)

// Error is a failure reported to the API caller: an HTTP status, a stable
// code for programs and a sentence for people. Cause, when set, is logged
// and never shown.
type Error struct {
	Status  int
	Code    string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, CodeInvalidRequest, format, args...)
}

// storeError maps a state store error to an API error.
func storeError(err error, doing string) *Error {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, state.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such grant: check the ID (elevate grants lists yours)", Cause: err}
	case errors.Is(err, state.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the grant kept changing while " + doing + "; try again", Cause: err}
	default:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: "the state store failed while " + doing + "; try again shortly", Cause: err}
	}
}

// asAPIError turns any error into an API error; unknown errors are 500s
// whose detail is only logged.
func asAPIError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; the server log has the details", Cause: err}
}
