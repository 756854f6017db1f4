package reconcile

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// instant is a moment a grant needs a pass: its start or its expiry.
type instant struct {
	at    time.Time
	grant string
}

// instants is a min-heap of instants by time (container/heap).
type instants []instant

func (h instants) Len() int           { return len(h) }
func (h instants) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
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
func (s *schedule) reset(grants []model.Grant, now time.Time) {
	s.h = s.h[:0]
	for i := range grants {
		s.h = appendInstants(s.h, &grants[i], now)
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
		h = append(h, instant{g.Starts, g.ID})
	}
	if g.Expires.After(now) {
		h = append(h, instant{g.Expires, g.ID})
	}
	return h
}

// next returns the earliest scheduled instant.
func (s *schedule) next() (time.Time, bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].at, true
}

// popDue removes the instants at or before now and returns how many there
// were. The pass works out which grants are due from the store, so the
// heap only says when to look.
func (s *schedule) popDue(now time.Time) int {
	n := 0
	for len(s.h) > 0 && !s.h[0].at.After(now) {
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
	// pollSlack widens the window of grants polled for changes, for clock
	// differences between replicas and for writes committed late.
	pollSlack = 30 * time.Second
	// passRetry is how soon a pass that could not run at all (store
	// unreachable, no policy set) is tried again.
	passRetry = 5 * time.Second
)

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
	// ownerScopes maps a grant ID to the scopes its bindings were last seen
	// or recorded in: a grant whose role lost a target still has its
	// binding there.
	ownerScopes map[string]map[model.ScopeKey]bool
	// seen maps grant IDs to the version last seen, so the poll reacts
	// only to changes (and not to the engine's own writes).
	seen     map[string]int64
	lastPoll time.Time
	// prevNow is the time of the previous pass: grants that fell due after
	// it are fresh and get their scopes reconciled even in backoff.
	prevNow time.Time
	// retryAt is when to run again for due grants left unsettled, zero if
	// none.
	retryAt time.Time
	// scopeAlerts and overdueAlerted remember raised alerts, so each is
	// raised once while it lasts.
	scopeAlerts    map[model.ScopeKey]map[string]bool
	overdueAlerted map[string]bool
}

func newLoopState() loopState {
	return loopState{
		backoff:        make(map[model.ScopeKey]*backoffState),
		ownerScopes:    make(map[string]map[model.ScopeKey]bool),
		seen:           make(map[string]int64),
		scopeAlerts:    make(map[model.ScopeKey]map[string]bool),
		overdueAlerted: make(map[string]bool),
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
func (e *Engine) run(ctx context.Context, st state.Store, stepDown func(error)) {
	write := e.opts.Mode == ModeEnforce
	e.loop = newLoopState()
	now := e.clock.Now()
	if err := e.loadOwnerScopes(ctx, st); err != nil {
		e.log.Warn("reading binding records at leadership start; the first full pass rebuilds them", "error", err)
	}
	e.loop.lastPoll = now
	syncPolicy := true
	nextResync := now // the first pass is a full one
	nextPoll := now.Add(e.opts.PollInterval)
	for ctx.Err() == nil {
		now = e.clock.Now()
		trig := e.takeTriggers()
		if e.policyChanged.Swap(false) {
			syncPolicy = true
		}
		full := trig.full || !now.Before(nextResync)
		if full || syncPolicy {
			syncPolicy = true
		}
		if syncPolicy && write {
			if err := e.renew(ctx); err != nil {
				stepDown(err)
				return
			}
			if err := e.syncPolicy(ctx, st, now); err != nil {
				if errors.Is(err, state.ErrFenced) {
					stepDown(err)
					return
				}
				e.log.Error("applying the policy set to grants; retrying", "error", err)
				e.policyChanged.Store(true)
			}
			full = true
		}
		syncPolicy = false
		if trig.poll || !now.Before(nextPoll) {
			for s := range e.pollChanges(ctx, st, now) {
				trig.scopes[s] = true
			}
			nextPoll = now.Add(e.opts.PollInterval)
		}
		fired := e.loop.sched.popDue(now)
		retry, ok := e.loop.nextRetry()
		if full || len(trig.scopes) > 0 || fired > 0 || ok && !retry.After(now) {
			if err := e.renew(ctx); err != nil {
				stepDown(err)
				return
			}
			out := e.pass(ctx, st, passRequest{full: full, scopes: trig.scopes, write: write, now: now})
			if out.fenced != nil {
				stepDown(out.fenced)
				return
			}
			if full {
				nextResync = now.Add(e.opts.ResyncInterval)
				if out.err != nil {
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
			e.addOwnerScope(r.Binding.Owner, r.Binding.Target.ScopeKey())
		}
	}
	return nil
}

func (e *Engine) addOwnerScope(owner string, s model.ScopeKey) {
	m := e.loop.ownerScopes[owner]
	if m == nil {
		m = make(map[model.ScopeKey]bool, 1)
		e.loop.ownerScopes[owner] = m
	}
	m[s] = true
}

// pollChanges reads the grants changed since the last poll and returns the
// scopes they touch; it schedules their new instants.
func (e *Engine) pollChanges(ctx context.Context, st state.Store, now time.Time) map[model.ScopeKey]bool {
	out := make(map[model.ScopeKey]bool)
	set := e.opts.Policies()
	gs, err := st.ListGrants(ctx, state.GrantFilter{UpdatedSince: e.loop.lastPoll.Add(-pollSlack)})
	if err != nil {
		e.log.Warn("polling for changed grants", "error", err)
		return out
	}
	e.loop.lastPoll = now
	seen := make(map[string]int64, len(gs))
	for i := range gs {
		g := &gs[i]
		seen[g.ID] = g.Version
		if e.loop.seen[g.ID] == g.Version {
			continue
		}
		e.loop.sched.add(g, now)
		for s := range e.loop.ownerScopes[g.ID] {
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
	e.loop.seen = seen
	return out
}
