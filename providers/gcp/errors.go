package gcp

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elevatehq/elevate/providers"
)

// classify marks err as transient (with the cloud's RetryInfo delay as the
// Retry-After) when retrying can help: UNAVAILABLE, RESOURCE_EXHAUSTED,
// ABORTED (a concurrent policy change the whole read-modify-write lost,
// after the provider's own retries), DEADLINE_EXCEEDED, INTERNAL and
// UNKNOWN. Everything else (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
// FAILED_PRECONDITION, UNAUTHENTICATED, …) stays permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return providers.Transient(err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
		if d := retryDelay(st); d > 0 {
			return providers.Throttled(err, d)
		}
		return providers.Transient(err)
	}
	return err
}

// retryDelay returns the delay of a google.rpc.RetryInfo detail, or zero.
func retryDelay(st *status.Status) time.Duration {
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// isAborted reports whether err is an ABORTED status: the etag of the read
// is stale because someone changed the policy since.
func isAborted(err error) bool {
	return status.Code(err) == codes.Aborted
}
