// Package providers defines how elevate talks to a cloud: the Provider
// interface (observe and apply role bindings, one scope at a time), the
// AuditSource interface (read normalised audit events), the transient versus
// permanent error classification, an explicit factory map, and decorators
// that add retries with jittered backoff, per-scope rate limits, metrics and
// tracing around any provider. Cloud implementations live in sub-packages;
// each must pass the conformance suite in providertest.
package providers
