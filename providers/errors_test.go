package providers_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/elevatehq/elevate/providers"
)

func TestClassification(t *testing.T) {
	base := errors.New("HTTP 503")
	perm := errors.New("HTTP 403")
	tests := []struct {
		name       string
		err        error
		transient  bool
		retryAfter time.Duration
	}{
		{"nil", nil, false, 0},
		{"plain error is permanent", perm, false, 0},
		{"transient", providers.Transient(base), true, 0},
		{"wrapped transient", fmt.Errorf("reading policy: %w", providers.Transient(base)), true, 0},
		{"throttled", providers.Throttled(base, 2*time.Second), true, 2 * time.Second},
		{"wrapped throttled", fmt.Errorf("a: %w", fmt.Errorf("b: %w", providers.Throttled(base, time.Minute))), true, time.Minute},
		{"throttled inside transient", providers.Transient(fmt.Errorf("x: %w", providers.Throttled(base, 5*time.Second))), true, 5 * time.Second},
		{"negative retry-after", providers.Throttled(base, -time.Second), true, 0},
		{"joined", errors.Join(perm, providers.Throttled(base, time.Second)), true, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := providers.IsTransient(tc.err); got != tc.transient {
				t.Errorf("IsTransient = %v, want %v", got, tc.transient)
			}
			if got := providers.RetryAfterOf(tc.err); got != tc.retryAfter {
				t.Errorf("RetryAfterOf = %s, want %s", got, tc.retryAfter)
			}
			if tc.transient && !errors.Is(tc.err, base) {
				t.Errorf("the cause is lost from the chain: %v", tc.err)
			}
		})
	}
	if providers.Transient(nil) != nil || providers.Throttled(nil, time.Second) != nil {
		t.Error("marking a nil error must stay nil")
	}
	if got := providers.Transient(base).Error(); got != "HTTP 503" {
		t.Errorf("message changed to %q", got)
	}
}
