package providers

import (
	"errors"
	"time"
)

// Errors a provider reports. Every other error is permanent unless it is
// marked with Transient or Throttled.
var (
	// ErrTransient is joined into the chain of errors worth retrying:
	// throttling, 5xx, concurrent-modification conflicts, timeouts.
	ErrTransient = errors.New("transient cloud error")
	// ErrNotOwned means a change asked to delete or replace a binding that
	// carries no elevate ownership marker (or another owner's marker). It is
	// permanent: the planner must never have asked.
	ErrNotOwned = errors.New("binding is not owned by elevate")
	// ErrInvalidChange means a change is malformed for this provider (no
	// binding, a binding in another scope, a create without an owner).
	ErrInvalidChange = errors.New("invalid change")
)

// classified carries a transient error and the delay the cloud asked for.
type classified struct {
	err        error
	retryAfter time.Duration
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.err, ErrTransient} }

// Transient marks err as worth retrying. It returns nil for a nil err.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err}
}

// Throttled marks err as transient and records how long the cloud asked the
// caller to wait (an HTTP Retry-After, a throttling error's hint); zero when
// the cloud gave no hint. It returns nil for a nil err.
func Throttled(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, retryAfter: max(retryAfter, 0)}
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// RetryAfterOf returns the wait the cloud asked for, found anywhere in
// err's chain, or zero.
func RetryAfterOf(err error) time.Duration {
	var c *classified
	for err != nil {
		if !errors.As(err, &c) {
			return 0
		}
		if c.retryAfter > 0 {
			return c.retryAfter
		}
		err = c.err
	}
	return 0
}
