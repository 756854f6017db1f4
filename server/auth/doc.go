// Package auth is the identity and decision layer of elevate's HTTP API.
//
// Authentication turns a request's bearer token into an Identity: an
// OIDC token verified against the issuer's published keys (OIDC), or a
// static automation token compared by its SHA-256 hash (StaticTokens); a
// Chain tries both, and Middleware puts the result in the request context.
// Authorization is a set of pure functions (CanRequest, CanApprove, ...)
// that decide what an Identity may do with the policy set and a grant and
// return a stable code for the HTTP 403 body. Nothing here talks to the
// store or the clouds, and no token is ever logged or echoed.
package auth
