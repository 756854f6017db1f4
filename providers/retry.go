package providers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/elevatehq/elevate/model"
)

// RetryPolicy says how a provider call that failed transiently is retried:
// exponential backoff with full jitter (a uniformly random wait between zero
// and the current backoff), never less than a Retry-After the cloud asked
// for, and a bounded number of attempts.
type RetryPolicy struct {
	// MaxAttempts counts the first call; default 5.
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt; it doubles per
	// attempt up to MaxDelay. Defaults 200ms and 30s.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter is the longest Retry-After waited for; a longer one
	// ends the retries and returns the error (the next reconcile pass picks
	// the scope up again). Default 1m.
	MaxRetryAfter time.Duration
	// Sleep waits for d or until ctx is done; default a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a uniform value in [0, 1); default math/rand/v2.
	Rand func() float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = time.Minute
	}
	if p.Sleep == nil {
		p.Sleep = sleepContext
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// Backoff returns how long to wait before attempt number retry+1 (retry 0
// is the wait after the first failure) given the error that failed, and
// false when the error asks for a wait longer than MaxRetryAfter.
func (p RetryPolicy) Backoff(retry int, err error) (time.Duration, bool) {
	p = p.withDefaults()
	ceiling := p.MaxDelay
	if retry < 62 && p.BaseDelay<<retry > 0 && p.BaseDelay<<retry < ceiling {
		ceiling = p.BaseDelay << retry
	}
	d := time.Duration(p.Rand() * float64(ceiling))
	if ra := RetryAfterOf(err); ra > 0 {
		if ra > p.MaxRetryAfter {
			return 0, false
		}
		d = max(d, ra)
	}
	return d, true
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithRetry wraps p so that transient failures are retried under pol.
// Apply retries only the changes that failed transiently (all of them when
// the batch failed as a whole); changes are idempotent, so a retry after an
// ambiguous failure is safe.
func WithRetry(p Provider, pol RetryPolicy) Provider {
	return &retrying{next: p, pol: pol.withDefaults()}
}

type retrying struct {
	next Provider
	pol  RetryPolicy
}

func (r *retrying) Cloud() model.Cloud { return r.next.Cloud() }

// wait sleeps before retry number retry, or reports why it will not.
func (r *retrying) wait(ctx context.Context, retry int, err error) error {
	if retry+1 >= r.pol.MaxAttempts {
		return fmt.Errorf("giving up after %d attempts: %w", retry+1, err)
	}
	d, ok := r.pol.Backoff(retry, err)
	if !ok {
		return fmt.Errorf("not retrying: the cloud asked to wait %s: %w", RetryAfterOf(err), err)
	}
	if serr := r.pol.Sleep(ctx, d); serr != nil {
		return fmt.Errorf("waiting to retry: %w", errors.Join(err, serr))
	}
	return nil
}

func (r *retrying) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	for retry := 0; ; retry++ {
		bs, err := r.next.Observe(ctx, scope, targets)
		if err == nil || !IsTransient(err) || ctx.Err() != nil {
			return bs, err
		}
		if werr := r.wait(ctx, retry, err); werr != nil {
			return nil, werr
		}
	}
}

func (r *retrying) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]Result, error) {
	results := make([]Result, len(changes))
	pending := make([]int, len(changes))
	for i := range pending {
		pending[i] = i
	}
	applied := false // whether an earlier attempt returned per-change results
	for retry := 0; ; retry++ {
		batch := make([]model.Change, len(pending))
		for i, idx := range pending {
			batch[i] = changes[idx]
		}
		res, err := r.next.Apply(ctx, scope, batch)
		if err == nil && len(res) != len(batch) {
			err = fmt.Errorf("applying changes to %s: provider returned %d results for %d changes", scope, len(res), len(batch))
		}
		last := err
		if err == nil {
			var still []int
			for i, idx := range pending {
				results[idx] = res[i]
				if e := res[i].Err; e != nil && IsTransient(e) {
					still = append(still, idx)
					if last == nil || RetryAfterOf(e) > RetryAfterOf(last) {
						last = e
					}
				}
			}
			applied = true
			pending = still
			if len(pending) == 0 {
				return results, nil
			}
		}
		if IsTransient(last) && ctx.Err() == nil {
			werr := r.wait(ctx, retry, last)
			if werr == nil {
				continue
			}
			last = werr
		}
		// Giving up. Per-change failures keep their own errors; a batch
		// failure is returned whole when nothing went through, and recorded
		// on the pending changes otherwise so the caller sees what did.
		if err == nil {
			return results, nil
		}
		if !applied {
			return nil, last
		}
		for _, idx := range pending {
			results[idx] = Result{Change: changes[idx], Err: last}
		}
		return results, nil
	}
}
