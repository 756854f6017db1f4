package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/elevatehq/elevate/state"
)

// errLeaseExpired is why a leader steps down when it could not renew its
// lease before it ran out.
var errLeaseExpired = errors.New("lease expired before it could be renewed")

// releaseTimeout bounds giving the lease up on shutdown (a real-time
// network timeout).
const releaseTimeout = 5 * time.Second

// Run campaigns for the reconcile lease and, while this replica holds it,
// runs the reconcile loop through a store view fenced with the lease. The
// lease is renewed every LeaseTTL/3 and before every pass; a leader whose
// lease is taken over, or whose write is refused with state.ErrFenced,
// stops acting at once and campaigns again. Run blocks until ctx is done,
// then gives the lease up (so another replica takes over at once) and
// returns nil. It returns an error only if it is already running.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("running the reconcile engine: Run is already running on this engine")
	}
	defer e.running.Store(false)
	if e.opts.Alert != nil {
		var wg sync.WaitGroup
		actx, cancel := context.WithCancel(ctx)
		wg.Go(func() { e.deliverAlerts(actx) })
		defer wg.Wait()
		defer cancel()
	}
	for {
		lease, ok := e.campaign(ctx)
		if !ok {
			return nil
		}
		e.lead(ctx, lease)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// campaign tries to take the lease until it succeeds or ctx is done. While
// another replica holds it, it tries again every TTL/3, or when the
// holder's lease runs out if that is sooner.
func (e *Engine) campaign(ctx context.Context) (state.Lease, bool) {
	ttl := e.opts.LeaseTTL
	for {
		now := e.clock.Now()
		l, err := e.store.TryAcquireLease(ctx, LeaseName, e.opts.Holder, ttl, now)
		if err == nil {
			return l, true
		}
		next := now.Add(ttl / 3)
		switch {
		case errors.Is(err, state.ErrLeaseHeld):
			e.updateStatus(func(s *Status) { s.LeaderHolder = l.Holder })
			if l.Expires.After(now) && l.Expires.Before(next) {
				next = l.Expires
			}
		case ctx.Err() != nil:
			return state.Lease{}, false
		default:
			e.log.Warn("campaigning for the reconcile lease", "error", err)
			e.updateStatus(func(s *Status) { s.LeaderHolder = ""; s.LastError = "campaigning for the lease: " + err.Error() })
		}
		t := e.clock.TimerAt(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return state.Lease{}, false
		case <-t.C():
		}
	}
}

// lead runs the loop while lease is held.
func (e *Engine) lead(ctx context.Context, lease state.Lease) {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.leaseMu.Lock()
	e.lease = lease
	e.leaseMu.Unlock()
	e.leader.Store(true)
	e.updateStatus(func(s *Status) { s.LeaderHolder = e.opts.Holder; s.LastError = "" })
	e.log.Info("became reconcile leader", "token", lease.Token, "mode", e.opts.Mode)

	stepDown := func(cause error) {
		e.leader.Store(false)
		cancel(cause)
	}
	fenced := e.store.WithFence(lease.Fence())
	var rec *recorder
	if e.opts.Mode == ModeEnforce {
		rec = newRecorder(e, fenced, stepDown)
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.keepLease(lctx, stepDown) })
	e.run(lctx, fenced, rec, stepDown)
	graceful := ctx.Err() != nil && context.Cause(lctx) == context.Cause(ctx)
	stepDown(context.Canceled)
	wg.Wait()
	if rec != nil {
		// On shutdown the lease is still ours for a while: finish the
		// bookkeeping within half of it. A deposed leader's writes would
		// be fenced: drop them.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.LeaseTTL/2)
		if !graceful {
			dcancel()
		}
		rec.close(dctx)
		dcancel()
	}

	if cause := context.Cause(lctx); ctx.Err() == nil {
		e.log.Warn("lost the reconcile lease; campaigning again", "cause", cause)
		e.updateStatus(func(s *Status) { s.LeaderHolder = ""; s.LastError = "lost leadership: " + cause.Error() })
		return
	}
	e.updateStatus(func(s *Status) { s.LeaderHolder = "" })
	if e.noRelease {
		return
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	if err := e.store.ReleaseLease(rctx, e.currentLease()); err != nil && !errors.Is(err, state.ErrLeaseLost) {
		e.log.Warn("releasing the reconcile lease on shutdown; another replica takes over when it expires", "error", err)
	}
}

func (e *Engine) currentLease() state.Lease {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	return e.lease
}

// renew extends the lease now. ErrLeaseLost (someone else holds it) and a
// lease that ran out while it could not be renewed are returned as the
// reason to step down; a failure to reach the store while the lease is
// still valid is not.
func (e *Engine) renew(ctx context.Context) error {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	now := e.clock.Now()
	l, err := e.store.RenewLease(ctx, e.lease, e.opts.LeaseTTL, now)
	switch {
	case err == nil:
		e.lease = l
		return nil
	case errors.Is(err, state.ErrLeaseLost):
		return fmt.Errorf("renewing the reconcile lease: %w", err)
	case ctx.Err() != nil:
		return ctx.Err()
	case !now.Before(e.lease.Expires):
		return fmt.Errorf("%w: %w", errLeaseExpired, err)
	}
	e.log.Warn("renewing the reconcile lease; retrying while it is still valid", "error", err, "expires", e.lease.Expires)
	return nil
}

// keepLease renews the lease every TTL/3 until ctx is done, and steps down
// when it cannot.
func (e *Engine) keepLease(ctx context.Context, stepDown func(error)) {
	for {
		t := e.clock.TimerAt(e.clock.Now().Add(e.opts.LeaseTTL / 3))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := e.renew(ctx); err != nil {
			if ctx.Err() == nil {
				stepDown(err)
			}
			return
		}
	}
}
