// Package server is elevate's HTTP API: JSON over HTTP under /v1 for
// requesting, approving, denying, extending, revoking and listing grants,
// plus the loaded policy set, the caller's identity, the OpenAPI document,
// and the /healthz, /readyz and /metrics probes.
//
// The grant service (Service) holds the rules: requests are evaluated with
// policies.Evaluate for the authenticated identity, who may do what is
// decided by server/auth, and every change goes through state.Store with
// optimistic concurrency (a bounded number of re-read-and-retry rounds on
// state.ErrConflict). The HTTP layer (New, Handler) decodes bodies
// strictly, maps failures to JSON errors with stable codes, logs every
// request without its credentials, and turns panics into 500s.
package server
