package providers

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/time/rate"

	"github.com/elevatehq/elevate/model"
)

// RateLimit is a token bucket per cloud account, project or subscription:
// clouds throttle per account (AWS), per project (GCP) and per subscription
// (Azure), so one busy scope must not starve the others.
type RateLimit struct {
	// PerSecond is the steady call rate per bucket; zero or less disables
	// limiting.
	PerSecond float64
	// Burst is the bucket size; default 1.
	Burst int
	// Bucket maps a scope to the name of its bucket; default one bucket per
	// scope. Azure passes a function that returns the subscription of a
	// resource-group scope, so all scopes of a subscription share one.
	Bucket func(model.ScopeKey) string
}

// WithRateLimit wraps p so that every call waits for a token from its
// scope's bucket first.
func WithRateLimit(p Provider, rl RateLimit) Provider {
	if rl.PerSecond <= 0 {
		return p
	}
	if rl.Burst <= 0 {
		rl.Burst = 1
	}
	if rl.Bucket == nil {
		rl.Bucket = func(s model.ScopeKey) string { return s.String() }
	}
	return &limited{next: p, rl: rl, buckets: make(map[string]*rate.Limiter)}
}

type limited struct {
	next    Provider
	rl      RateLimit
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func (l *limited) Cloud() model.Cloud { return l.next.Cloud() }

func (l *limited) wait(ctx context.Context, scope model.ScopeKey) error {
	name := l.rl.Bucket(scope)
	l.mu.Lock()
	b, ok := l.buckets[name]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.rl.PerSecond), l.rl.Burst)
		l.buckets[name] = b
	}
	l.mu.Unlock()
	if err := b.Wait(ctx); err != nil {
		return fmt.Errorf("waiting for the rate limit of %s: %w", name, err)
	}
	return nil
}

func (l *limited) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	if err := l.wait(ctx, scope); err != nil {
		return nil, err
	}
	return l.next.Observe(ctx, scope, targets)
}

func (l *limited) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]Result, error) {
	if err := l.wait(ctx, scope); err != nil {
		return nil, err
	}
	return l.next.Apply(ctx, scope, changes)
}
