package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Authenticator establishes who made a request.
type Authenticator interface {
	// Authenticate returns the caller's identity, or an error that
	// wraps ErrNoCredentials, ErrInvalidToken or ErrUnavailable.
	Authenticate(ctx context.Context, r *http.Request) (*Identity, error)
}

// Sentinel errors of authentication; match them with errors.Is.
var (
	// ErrNoCredentials means the request carried no bearer token (HTTP 401).
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken means the token was rejected (HTTP 401). The error's
	// message says why, and never contains the token.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnavailable means the token could not be checked because the
	// identity provider's discovery document or keys could not be fetched
	// (HTTP 503).
	ErrUnavailable = errors.New("identity provider unavailable")
)

// Error is an authentication failure: one of the sentinel errors and a
// reason for the caller. Reasons are fixed sentences or carry claim values
// (issuer, audience, times), never the token itself.
type Error struct {
	// Kind is ErrNoCredentials, ErrInvalidToken or ErrUnavailable.
	Kind error
	// Reason explains the failure to the caller.
	Reason string
	// Cause is an underlying error for operators' logs (a fetch failure);
	// it is not shown to the caller.
	Cause error
}

func (e *Error) Error() string { return e.Reason }

// Unwrap returns the sentinel kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func invalid(reason string) error { return &Error{Kind: ErrInvalidToken, Reason: reason} }

func unavailable(reason string, cause error) error {
	return &Error{Kind: ErrUnavailable, Reason: reason, Cause: cause}
}

// MaxTokenBytes bounds the length of a bearer token: longer ones are
// rejected before any parsing.
const MaxTokenBytes = 16 << 10

// BearerToken returns the bearer token of r's Authorization header. A
// missing header gives ErrNoCredentials; another scheme, several headers,
// an empty or oversized token give ErrInvalidToken.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", &Error{Kind: ErrNoCredentials,
			Reason: "no credentials: send an Authorization: Bearer header with a token from your identity provider or an elevate static token"}
	case 1:
	default:
		return "", invalid("the request has more than one Authorization header; send exactly one")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", invalid("the Authorization header must use the Bearer scheme (Authorization: Bearer TOKEN)")
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return "", invalid("the bearer token is empty")
	case len(token) > MaxTokenBytes:
		return "", invalid("the bearer token is longer than 16 KiB")
	case strings.ContainsAny(token, " \t\r\n"):
		return "", invalid("the bearer token contains white space")
	}
	return token, nil
}

// Chain authenticates a bearer token with the static tokens first (a
// cheap hash comparison), then with OIDC, and marks configured
// administrators. Either authenticator may be nil.
type Chain struct {
	Static *StaticTokens
	OIDC   *OIDC
	Admins Admins
}

// Authenticate implements Authenticator.
func (c *Chain) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	token, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return c.AuthenticateToken(ctx, token)
}

// AuthenticateToken authenticates a bearer token taken from a request.
func (c *Chain) AuthenticateToken(ctx context.Context, token string) (*Identity, error) {
	if c.Static != nil {
		if id, ok := c.Static.Lookup(token); ok {
			return c.finish(id), nil
		}
	}
	if strings.HasPrefix(token, StaticTokenPrefix) {
		// Never forward something that is meant to be a static token to
		// the identity provider's verifier.
		return nil, invalid("the static token is not known: it was revoked, mistyped or belongs to another elevate server")
	}
	if c.OIDC != nil && looksLikeJWT(token) {
		id, err := c.OIDC.VerifyToken(ctx, token)
		if err != nil {
			return nil, err
		}
		return c.finish(id), nil
	}
	if c.OIDC == nil {
		return nil, invalid("the token is not a known static token (OIDC is not configured on this server)")
	}
	return nil, invalid("the token is neither a known static token nor a JWT from the configured identity provider")
}

func (c *Chain) finish(id *Identity) *Identity {
	if c.Admins.Match(id) {
		id.Admin = true
	}
	return id
}

// looksLikeJWT reports whether token has the three dot-separated parts of
// a compact JWS.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}
