package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/elevatehq/elevate/policies"
)

// DefaultAnonymousPaths are the paths Middleware lets through without
// credentials: probes, metrics and the API description.
var DefaultAnonymousPaths = []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"}

type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity Middleware put in ctx; false for an
// anonymous request.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// WithAnonymousPaths replaces DefaultAnonymousPaths: exact request paths
// served without authentication.
func WithAnonymousPaths(paths ...string) MiddlewareOption {
	return func(m *middleware) {
		m.anonymous = map[string]bool{}
		for _, p := range paths {
			m.anonymous[p] = true
		}
	}
}

type middleware struct {
	auth      Authenticator
	anonymous map[string]bool
}

// Middleware authenticates every request with a and puts the identity in
// the request context (FromContext). Requests for the anonymous paths
// (exact match) pass without authentication and without an identity.
// Otherwise missing or invalid credentials get 401 with a
// WWW-Authenticate: Bearer header, an unreachable identity provider 503,
// each with a JSON body {"error": {"code": ..., "message": ...}}.
func Middleware(a Authenticator, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{auth: a}
	WithAnonymousPaths(DefaultAnonymousPaths...)(m)
	for _, o := range opts {
		o(m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m.anonymous[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			id, err := m.auth.Authenticate(r.Context(), r)
			if err != nil {
				writeAuthError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}

// Error codes Middleware writes.
const (
	CodeAuthUnavailable = "auth-unavailable"
	CodeInternal        = "internal"
)

func writeAuthError(w http.ResponseWriter, err error) {
	var ae *Error
	msg := "authentication failed"
	if errors.As(err, &ae) {
		msg = ae.Reason
	}
	switch {
	case errors.Is(err, ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="elevate"`)
		WriteError(w, http.StatusUnauthorized, CodeUnauthenticated, msg)
	case errors.Is(err, ErrInvalidToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="elevate", error="invalid_token"`)
		WriteError(w, http.StatusUnauthorized, CodeUnauthenticated, msg)
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, CodeAuthUnavailable, msg)
	default:
		// An authenticator broke its contract; say nothing of the cause.
		WriteError(w, http.StatusInternalServerError, CodeInternal, "authentication failed because of an internal error")
	}
}

// WriteError writes the API's error body {"error": {"code": ..., "message": ...}}
// with status.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message
	_ = json.NewEncoder(w).Encode(body)
}

// RefuseBreakGlass returns middleware that answers 403 breakglass-account
// to every authenticated request from a break-glass account of the current
// policy set (current is called per request, so a reload takes effect at
// once). Every Can* decision refuses such callers too; this makes the rule
// hold even for a handler that forgets to ask. Put it after Middleware.
func RefuseBreakGlass(current func() *policies.Set) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, ok := FromContext(r.Context()); ok {
				if allowed, code, msg := gate(current(), id); !allowed {
					Refuse(w, code, msg)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Refuse writes a refused decision: the status HTTPStatus gives for code,
// and the JSON error body.
func Refuse(w http.ResponseWriter, code, message string) {
	if code == CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="elevate"`)
	}
	WriteError(w, HTTPStatus(code), code, message)
}
