package reconcile

import (
	"container/heap"
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// instant is a moment a grant needs a pass (its start or its expiry), in
// Unix nanoseconds: the schedule holds one or two per live grant, and only
// says when to look (the pass works out which grants are due).
type instant int64

func instantOf(t time.Time) instant {
	if t.After(maxInstant) {
		return instant(maxInstant.UnixNano())
	}
	return instant(t.UnixNano())
}

// maxInstant is the last time an instant holds; later ones wait there.
var maxInstant = time.Unix(0, math.MaxInt64).UTC()

func (i instant) time() time.Time { return time.Unix(0, int64(i)).UTC() }

// instants is a min-heap of instants (container/heap).
type instants []instant

func (h instants) Len() int           { return len(h) }
func (h instants) Less(i, j int) bool { return h[i] < h[j] }
func (h instants) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *instants) Push(x any)        { *h = append(*h, x.(instant)) }
func (h *instants) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule holds the upcoming instants of live grants: the loop sleeps
// until the earliest. It is rebuilt from every pass's grants and added to
// when the leader sees a grant change between passes.
type schedule struct{ h instants }

// reset replaces the schedule with the future instants of grants.
func (s *schedule) reset(grants []*model.Grant, now time.Time) {
	s.h = s.h[:0]
	for _, g := range grants {
		s.h = appendInstants(s.h, g, now)
	}
	heap.Init(&s.h)
}

// add schedules g's future instants.
func (s *schedule) add(g *model.Grant, now time.Time) {
	for _, in := range appendInstants(nil, g, now) {
		heap.Push(&s.h, in)
	}
}

func appendInstants(h instants, g *model.Grant, now time.Time) instants {
	if !g.Status.Live() {
		return h
	}
	if g.Status == model.StatusApproved && g.Starts.After(now) {
		h = append(h, instantOf(g.Starts))
	}
	if g.Expires.After(now) {
		h = append(h, instantOf(g.Expires))
	}
	return h
}

// next returns the earliest scheduled instant.
func (s *schedule) next() (time.Time, bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].time(), true
}

// popDue removes the instants at or before now and returns how many there
// were. The pass works out which grants are due from the store, so the
// heap only says when to look.
func (s *schedule) popDue(now time.Time) int {
	n := 0
	for len(s.h) > 0 && !s.h[0].time().After(now) {
		heap.Pop(&s.h)
		n++
	}
	return n
}

// Retry backoff of failing scopes.
const (
	retryBase         = time.Second
	retryMaxTransient = time.Minute
	retryMaxPermanent = 5 * time.Minute
	// retryUnsettled is how soon a pass runs again when due grants are
	// left unsettled for another reason than a failing scope (a grant
	// changed under the pass).
	retryUnsettled = time.Second
	// passRetry is how soon a pass that could not run at all (store
	// unreachable, no policy set) is tried again.
	passRetry = 5 * time.Second
)

// seenVersion is the version of a grant the engine last saw, and when.
type seenVersion struct {
	version int64
	at      time.Time
}

// backoffState is a failing scope's retry schedule.
type backoffState struct {
	failures int
	until    time.Time
}

// retryDelay returns the wait before retrying a scope after its
// failures-th consecutive failure: exponential from 1s with equal jitter,
// capped at 1m (5m when the failure is permanent: it needs a person), and
// never shorter than a Retry-After the cloud asked for.
func retryDelay(failures int, err error, permanent bool) time.Duration {
	ceiling := retryMaxTransient
	if permanent {
		ceiling = retryMaxPermanent
	}
	d := ceiling
	if failures < 20 {
		d = min(ceiling, retryBase<<max(failures-1, 0))
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	if ra := providers.RetryAfterOf(err); ra > d {
		d = ra
	}
	return d
}

// loopState is what the leader's loop keeps between passes. Only the loop
// goroutine touches it.
type loopState struct {
	sched   schedule
	backoff map[model.ScopeKey]*backoffState
	// ownerScopes holds the scopes each grant's bindings were last seen
	// or recorded in.
	ownerScopes *ownerScopes
	// seen maps grant IDs to the version last seen, so the poll reacts
	// only to changes (and not to the engine's own writes).
	seen     map[string]seenVersion
	lastPoll time.Time
	// prevNow is the time of the previous pass: grants that fell due after
	// it are fresh and get their scopes reconciled even in backoff.
	prevNow time.Time
	// retryAt is when to run again for due grants left unsettled, zero if
	// none.
	retryAt time.Time
	// rec writes this leadership term's bookkeeping; nil in report mode.
	rec *recorder
	// cache holds the live grants between full passes.
	cache *grantCache
	// scopeAlerts and overdueAlerted remember raised alerts, so each is
	// raised once while it lasts.
	scopeAlerts    map[model.ScopeKey]map[string]bool
	overdueAlerted map[string]bool
}

func newLoopState() loopState {
	return loopState{
		backoff:        make(map[model.ScopeKey]*backoffState),
		ownerScopes:    newOwnerScopes(),
		seen:           make(map[string]seenVersion),
		scopeAlerts:    make(map[model.ScopeKey]map[string]bool),
		overdueAlerted: make(map[string]bool),
		cache:          newGrantCache(),
	}
}

// nextRetry returns the earliest time a failing scope or an unsettled grant
// wants another pass.
func (l *loopState) nextRetry() (time.Time, bool) {
	var at time.Time
	for _, b := range l.backoff {
		if at.IsZero() || b.until.Before(at) {
			at = b.until
		}
	}
	if !l.retryAt.IsZero() && (at.IsZero() || l.retryAt.Before(at)) {
		at = l.retryAt
	}
	return at, !at.IsZero()
}

// inBackoff reports whether scope is waiting out a failure at now.
func (l *loopState) inBackoff(scope model.ScopeKey, now time.Time) bool {
	b := l.backoff[scope]
	return b != nil && now.Before(b.until)
}

// run is the leader's loop: it sleeps until the earliest of the next grant
// instant, a scope retry, the poll for changed grants, the periodic full
// resync and a Trigger or PolicyChanged call, then runs the pass that is
// due. st is the store view fenced with the lease. It returns when ctx is
// done or leadership is lost (stepDown called).
//
// rec, nil in report mode, writes the bookkeeping.
func (e *Engine) run(ctx context.Context, st state.Store, rec *recorder, stepDown func(error)) {
	e.seenMu.Lock()
	e.loop = newLoopState()
	e.loop.rec = rec
	e.seenMu.Unlock()
	now := e.clock.Now()
	if err := e.loadOwnerScopes(ctx, st); err != nil {
		e.log.Warn("reading binding records at leadership start; the first full pass rebuilds them", "error", err)
	}
	e.loop.lastPoll = now
	nextResync := now // the first pass is a full one
	nextPoll := now.Add(e.opts.PollInterval)
	for ctx.Err() == nil {
		now = e.clock.Now()
		trig := e.takeTriggers()
		// After a policy change every scope is reconciled (in report mode
		// too: the plan to report has changed). A full pass applies the
		// policy set to the grants first.
		full := trig.full || !now.Before(nextResync) || e.policyChanged.Swap(false)
		fired := e.loop.sched.popDue(now)
		if e.settleRetry.Swap(false) {
			e.loop.retryAt = now.Add(retryUnsettled)
		}
		retry, ok := e.loop.nextRetry()
		retryDue := ok && !retry.After(now)
		// A targeted pass works from the grant cache: bring it up to date
		// first. (A full pass reads every grant anyway.)
		if !full && (trig.poll || !now.Before(nextPoll) || fired > 0 || retryDue || len(trig.scopes) > 0) {
			for s := range e.pollChanges(ctx, st, now) {
				trig.scopes[s] = true
			}
			nextPoll = now.Add(e.opts.PollInterval)
		}
		if full || len(trig.scopes) > 0 || fired > 0 || retryDue {
			if err := e.renew(ctx); err != nil {
				stepDown(err)
				return
			}
			out := e.pass(ctx, st, passRequest{full: full, scopes: trig.scopes, rec: rec, now: now})
			if out.fenced != nil {
				stepDown(out.fenced)
				return
			}
			if full {
				nextPoll = now.Add(e.opts.PollInterval)
				nextResync = now.Add(e.opts.ResyncInterval)
				if out.err != nil || out.policyErr != nil {
					nextResync = now.Add(min(passRetry, e.opts.ResyncInterval))
				}
			}
		}
		wake := nextResync
		if nextPoll.Before(wake) {
			wake = nextPoll
		}
		if at, ok := e.loop.sched.next(); ok && at.Before(wake) {
			wake = at
		}
		if at, ok := e.loop.nextRetry(); ok && at.Before(wake) {
			wake = at
		}
		timer := e.clock.TimerAt(wake)
		select {
		case <-ctx.Done():
		case <-timer.C():
		case <-e.wake:
		}
		timer.Stop()
	}
}

// loadOwnerScopes seeds ownerScopes from the binding records.
func (e *Engine) loadOwnerScopes(ctx context.Context, st state.Store) error {
	recs, err := st.ListBindings(ctx, state.BindingFilter{})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Binding.Managed() {
			e.loop.ownerScopes.add(r.Binding.Owner, r.Binding.Target.ScopeKey())
		}
	}
	return nil
}

// pollSlack widens the window of grants polled for changes, for clock
// differences between replicas and writes committed late: a third of the
// lease TTL, since the leases already need the replicas' clocks to agree to
// well within it. The full resync repairs anything a larger skew hides.
func (e *Engine) pollSlack() time.Duration { return max(e.opts.LeaseTTL/3, time.Second) }

// pollChanges reads the grants changed since the last poll, brings the
// grant cache up to date, and returns the scopes of the grants someone
// else changed; it schedules their new instants.
func (e *Engine) pollChanges(ctx context.Context, st state.Store, now time.Time) map[model.ScopeKey]bool {
	out := make(map[model.ScopeKey]bool)
	set := e.opts.Policies()
	gs, err := st.ListGrants(ctx, state.GrantFilter{UpdatedSince: e.loop.lastPoll.Add(-e.pollSlack())})
	if err != nil {
		e.log.Warn("polling for changed grants", "error", err)
		return out
	}
	e.loop.lastPoll = now
	for i := range gs {
		g := &gs[i]
		e.loop.cache.apply(*g)
		e.seenMu.Lock()
		known := e.loop.seen[g.ID].version >= g.Version
		e.seenMu.Unlock()
		e.noteSeen(g.ID, g.Version)
		if known {
			continue
		}
		e.loop.sched.add(g, now)
		for _, s := range e.loop.ownerScopes.appendTo(nil, g.ID) {
			out[s] = true
		}
		if set != nil {
			if r := set.Role(g.Role); r != nil {
				for _, t := range r.Targets() {
					out[t.ScopeKey()] = true
				}
			}
		}
	}
	// A grant not seen for a while is not in the polled window any more;
	// if it changes again its version is new anyway.
	e.seenMu.Lock()
	for id, v := range e.loop.seen {
		if v.at.Before(now.Add(-2*e.pollSlack() - e.opts.PollInterval)) {
			delete(e.loop.seen, id)
		}
	}
	e.seenMu.Unlock()
	return out
}
