package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// errNoPolicies is why no pass runs before a policy set is loaded: an
// empty set would make every managed binding look unwanted.
var errNoPolicies = errors.New("no policy set is loaded yet; reconcile waits for one")

var liveStatuses = []model.GrantStatus{model.StatusApproved, model.StatusActive}

// snapshot is what one pass decides from: the policy set, the live grants
// and the time, with what is derived from them.
type snapshot struct {
	now time.Time
	// full is set for a full pass, which reads everything from the store.
	full bool
	set  *policies.Set
	// live are the live grants, shared with the grant cache: nobody
	// changes them.
	live []*model.Grant
	// endedByOps are the grants the policy ops just ended (plans that do
	// not write only).
	endedByOps []model.Grant
	// byID holds the grants the pass's scopes concern (see index), sorted
	// by ID (a slice, not a map: a full pass holds every live grant), and
	// ended the grants the policy ops just ended.
	byID  []*model.Grant
	ended map[string]*model.Grant
	// roleGrants holds the grants the pass's scopes concern that should
	// have bindings now, by role, in the order of live (indexes into it);
	// desiredFor derives a scope's desired bindings from them while the
	// scope is planned, so no pass holds every desired binding at once.
	roleGrants map[string][]int32
	// byOwner holds the desired bindings of each approved grant (the ones
	// a pass may activate).
	byOwner  map[string][]model.Binding
	governed Governed
	// roleScopes maps a role to the scopes of its targets, scopeRoles a
	// scope to the roles with targets there, scopeTargets a scope to every
	// target any role has there, and roleTargets a role to its targets.
	roleScopes   map[string][]model.ScopeKey
	scopeRoles   map[model.ScopeKey][]string
	scopeTargets map[model.ScopeKey][]model.Target
	roleTargets  map[string][]model.Target
}

// grant returns the grant with ID id that the pass knows, or nil.
func (s *snapshot) grant(id string) *model.Grant {
	if g := s.ended[id]; g != nil {
		return g
	}
	if i, ok := slices.BinarySearchFunc(s.byID, id, func(g *model.Grant, id string) int { return cmp.Compare(g.ID, id) }); ok {
		return s.byID[i]
	}
	return nil
}

// desiredFor returns the bindings that should exist in scope: Desired's
// bindings there, in its order.
func (s *snapshot) desiredFor(scope model.ScopeKey) []model.Binding {
	roles := s.scopeRoles[scope]
	var idx []int32
	for _, r := range roles {
		idx = append(idx, s.roleGrants[r]...)
	}
	if len(roles) > 1 {
		slices.Sort(idx)
	}
	out := make([]model.Binding, 0, len(idx))
	for _, i := range idx {
		g := s.live[i]
		notBefore, expires, ok := desiredWindow(g)
		if !ok {
			continue
		}
		for _, t := range s.roleTargets[g.Role] {
			if t.ScopeKey() == scope {
				out = append(out, model.Binding{Target: t, Principal: g.Principal, Owner: g.ID, NotBefore: notBefore, Expires: expires})
			}
		}
	}
	return out
}

// readLive reads every live grant from the store.
func readLive(ctx context.Context, st state.Store) ([]model.Grant, error) {
	live, err := st.ListGrants(ctx, state.GrantFilter{Status: liveStatuses})
	if err != nil {
		return nil, fmt.Errorf("reading live grants: %w", err)
	}
	return live, nil
}

// grantPtrs returns pointers to the grants of live, in order.
func grantPtrs(live []model.Grant) []*model.Grant {
	out := make([]*model.Grant, len(live))
	for i := range live {
		out[i] = &live[i]
	}
	return out
}

// snapshot derives a pass's inputs from the live grants at now. Unless
// write is set, the policy ops are applied to the grants in memory only
// (for plans that must not write). What depends on the scopes the pass
// reads is derived by index, once they are known.
func (e *Engine) snapshot(ctx context.Context, st state.Store, live []*model.Grant, now time.Time, write bool) (*snapshot, error) {
	set := e.opts.Policies()
	if set == nil {
		return nil, errNoPolicies
	}
	s := &snapshot{
		now: now, set: set, live: live,
		governed:     GovernedTargets(set),
		roleScopes:   make(map[string][]model.ScopeKey),
		scopeRoles:   make(map[model.ScopeKey][]string),
		scopeTargets: make(map[model.ScopeKey][]model.Target),
		roleTargets:  make(map[string][]model.Target),
	}
	if !write {
		copied := make([]model.Grant, len(live))
		for i, g := range live {
			copied[i] = *g
		}
		ops, err := e.policyOps(ctx, st, set, copied, now)
		if err != nil {
			return nil, err
		}
		copied, s.endedByOps = ApplyOps(copied, ops)
		s.live = grantPtrs(copied)
	}
	for _, r := range set.Roles {
		if set.Role(r.Name) != r {
			continue
		}
		ts := uniqueTargets(r.Targets())
		s.roleTargets[r.Name] = ts
		for _, t := range ts {
			k := t.ScopeKey()
			if !slices.Contains(s.roleScopes[r.Name], k) {
				s.roleScopes[r.Name] = append(s.roleScopes[r.Name], k)
				s.scopeRoles[k] = append(s.scopeRoles[k], r.Name)
			}
			if !slices.Contains(s.scopeTargets[k], t) {
				s.scopeTargets[k] = append(s.scopeTargets[k], t)
			}
		}
	}
	return s, nil
}

// index derives what planning the given scopes needs: the grants by ID and
// the desired bindings, of the grants with a scope among them (every live
// grant when scopes is nil, for a full pass). A grant none of whose scopes
// the pass reads is neither planned nor settled in it, so a targeted pass
// costs what its scopes hold, not what every live grant does.
func (e *Engine) index(s *snapshot, scopes []model.ScopeKey) {
	var in map[model.ScopeKey]bool
	if scopes != nil {
		in = make(map[model.ScopeKey]bool, len(scopes))
		for _, k := range scopes {
			in[k] = true
		}
	}
	s.byID = nil
	s.roleGrants = make(map[string][]int32)
	s.byOwner = make(map[string][]model.Binding)
	var buf []model.ScopeKey
	var approved []*model.Grant
	for i, g := range s.live {
		if in != nil {
			buf = e.grantScopesTo(buf, s, g)
			if !slices.ContainsFunc(buf, func(k model.ScopeKey) bool { return in[k] }) {
				continue
			}
		} else if s.byID == nil {
			s.byID = make([]*model.Grant, 0, len(s.live))
		}
		s.byID = append(s.byID, g)
		if g.ActiveAt(s.now) {
			s.roleGrants[g.Role] = append(s.roleGrants[g.Role], int32(i))
		}
		if g.Status == model.StatusApproved {
			approved = append(approved, g)
		}
	}
	slices.SortFunc(s.byID, func(a, b *model.Grant) int { return cmp.Compare(a.ID, b.ID) })
	eachDesired(s.set, approved, s.now, func(b model.Binding) { s.byOwner[b.Owner] = append(s.byOwner[b.Owner], b) })
	s.ended = make(map[string]*model.Grant, len(s.endedByOps))
	for i := range s.endedByOps {
		s.ended[s.endedByOps[i].ID] = &s.endedByOps[i]
	}
}

// grantScopes returns the scopes grant g may have bindings in: its role's
// targets and wherever its bindings were last seen.
func (e *Engine) grantScopes(s *snapshot, g *model.Grant) []model.ScopeKey {
	return e.grantScopesTo(nil, s, g)
}

// grantScopesTo is grantScopes appending to dst[:0].
func (e *Engine) grantScopesTo(dst []model.ScopeKey, s *snapshot, g *model.Grant) []model.ScopeKey {
	return e.loop.ownerScopes.appendTo(append(dst[:0], s.roleScopes[g.Role]...), g.ID)
}

// dueAt returns the instant a live grant fell due for a status change at
// now (its expiry, or for an approved grant its start), or false.
func dueAt(g *model.Grant, now time.Time) (time.Time, bool) {
	if !g.Expires.IsZero() && !now.Before(g.Expires) {
		return g.Expires, true
	}
	if g.Status == model.StatusApproved && g.ActiveAt(now) {
		return g.Starts, true
	}
	return time.Time{}, false
}

// fullScopes returns every scope a full pass observes: every scope a role
// targets, every scope holding a binding record, and extra.
func (e *Engine) fullScopes(ctx context.Context, st state.Store, s *snapshot, extra map[model.ScopeKey]bool) ([]model.ScopeKey, error) {
	set := make(map[model.ScopeKey]bool, len(s.scopeTargets))
	for k := range s.scopeTargets {
		set[k] = true
	}
	if l, ok := st.(state.BindingScopeLister); ok {
		// Only the scopes: the records themselves are read scope by scope.
		ks, err := l.BindingScopes(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the scopes of binding records: %w", err)
		}
		for _, k := range ks {
			set[k] = true
		}
	} else {
		recs, err := st.ListBindings(ctx, state.BindingFilter{})
		if err != nil {
			return nil, fmt.Errorf("reading binding records: %w", err)
		}
		for _, r := range recs {
			set[r.Binding.Target.ScopeKey()] = true
		}
	}
	for k := range extra {
		set[k] = true
	}
	return sortedScopes(set), nil
}

// targetedScopes returns the scopes a targeted pass observes: those
// requested, those of grants that fell due since the last pass, those of
// grants still due from before unless the scope is backing off, and those
// whose backoff is over.
func (e *Engine) targetedScopes(s *snapshot, requested map[model.ScopeKey]bool) []model.ScopeKey {
	set := make(map[model.ScopeKey]bool, len(requested))
	for k := range requested {
		set[k] = true
	}
	for _, g := range s.live {
		at, due := dueAt(g, s.now)
		if !due || e.loop.rec != nil && e.loop.rec.pending(g.ID) {
			continue
		}
		fresh := at.After(e.loop.prevNow)
		for _, k := range e.grantScopes(s, g) {
			if fresh || !e.loop.inBackoff(k, s.now) {
				set[k] = true
			}
		}
	}
	for k, b := range e.loop.backoff {
		if !s.now.Before(b.until) {
			set[k] = true
		}
	}
	return sortedScopes(set)
}

func sortedScopes(set map[model.ScopeKey]bool) []model.ScopeKey {
	out := make([]model.ScopeKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b model.ScopeKey) int {
		return cmp.Or(cmp.Compare(a.Cloud, b.Cloud), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

// failure is one change the cloud refused.
type failure struct {
	change    model.Change
	err       error
	transient bool
}

// scopeResult is what reconciling one scope found and did.
type scopeResult struct {
	scope model.ScopeKey
	// observed reports whether the scope could be read; owners then says
	// which grants have managed bindings in it after the pass's writes,
	// and which have all they should (see ownerStates).
	observed bool
	owners   map[string]ownerState
	// confirmAt is when the cloud confirmed present: the end of the write,
	// or the read when nothing was written.
	confirmAt time.Time
	changes   model.Changes
	// wrote reports whether an Apply call was made.
	wrote    bool
	failures []failure
	// batchFailed reports that the Apply call was refused whole, for good.
	batchFailed bool
	// err is a failure of the scope as a whole (read, write or records).
	err       error
	transient bool
}

// failed reports whether the scope should back off, and whether every
// failure that counts was transient. A change the cloud refused for good
// does not count: it is alerted, its grant fails and its binding record
// says why, while the scope's other changes (expiries) keep their normal
// schedule. A failure of the scope as a whole (read, records, or an Apply
// call refused whole) and a transient refusal of a change do count.
func (r *scopeResult) failed() (failed, transient bool) {
	if r.err != nil {
		return true, r.transient
	}
	if r.batchFailed {
		return true, false
	}
	for _, f := range r.failures {
		if f.transient {
			return true, true
		}
	}
	return false, false
}

// firstError returns the scope's error, or its first failed change's.
func (r *scopeResult) firstError() error {
	if r.err != nil {
		return r.err
	}
	if len(r.failures) > 0 {
		return r.failures[0].err
	}
	return nil
}

// runScopes reconciles scopes concurrently, at most Workers at a time, and
// returns their results in scope order. One slow or failing scope holds up
// only its own worker.
//
// rec receives the bookkeeping of writes; nil plans without writing.
func (e *Engine) runScopes(ctx context.Context, st state.Store, rec *recorder, s *snapshot, scopes []model.ScopeKey) []*scopeResult {
	results := make([]*scopeResult, len(scopes))
	sem := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	for i, k := range scopes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = e.runScope(ctx, st, rec, s, k)
		})
	}
	wg.Wait()
	return results
}

// runScope observes one scope, plans it and, with a recorder, applies the
// plan as one batch and queues the bookkeeping of the outcome.
func (e *Engine) runScope(ctx context.Context, st state.Store, rec *recorder, s *snapshot, scope model.ScopeKey) *scopeResult {
	write := rec != nil
	res := &scopeResult{scope: scope}
	ctx, span := e.ins.tracer.Start(ctx, "reconcile.scope", trace.WithAttributes(
		attribute.String("elevate.cloud", string(scope.Cloud)), attribute.String("elevate.scope", scope.Scope)))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, e.opts.ScopeTimeout)
	defer cancel()
	fail := func(err error) *scopeResult {
		res.err = err
		// A timeout is worth retrying; a cancellation means the pass is
		// being abandoned (shutdown, lost lease), not that the scope is bad.
		res.transient = providers.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return res
	}

	prov := e.opts.Providers[scope.Cloud]
	if prov == nil {
		return fail(fmt.Errorf("no provider is configured for cloud %q: add a %s block to the daemon configuration, or remove the roles and bindings that target it", scope.Cloud, scope.Cloud))
	}
	// A full pass reads the records from the store (and reloads the
	// recorder's mirror); a targeted pass uses the mirror.
	records, mirrored := []state.BindingRecord(nil), false
	if write && !s.full {
		records, mirrored = rec.view(scope)
	}
	if !mirrored {
		var err error
		if records, err = st.ListBindings(ctx, state.BindingFilter{Scope: scope}); err != nil {
			return fail(fmt.Errorf("reading binding records of %s: %w", scope, err))
		}
		if write {
			shareGrantStrings(s, records)
			records = rec.load(scope, records)
		}
	}
	targets := slices.Clone(s.scopeTargets[scope])
	for _, r := range records {
		if !slices.Contains(targets, r.Binding.Target) {
			targets = append(targets, r.Binding.Target)
		}
	}
	observed, err := prov.Observe(ctx, scope, targets)
	if err != nil {
		return fail(fmt.Errorf("reading bindings of %s: %w", scope, err))
	}
	res.confirmAt = e.clock.Now()

	grants, err := e.ownersOf(ctx, st, s, observed, records)
	if err != nil {
		return fail(err)
	}
	desired := s.desiredFor(scope)
	plan := Plan{
		Desired: desired, Observed: observed, Governed: s.governed,
		Grants: grants, Now: s.now, Scopes: map[model.ScopeKey]bool{scope: true},
	}
	res.changes = plan.Compute()
	span.SetAttributes(attribute.Int("elevate.create", len(res.changes.Create)),
		attribute.Int("elevate.delete", len(res.changes.Delete)), attribute.Int("elevate.replace", len(res.changes.Replace)))

	// present points at the bindings (observed, or as written); nobody
	// changes them.
	present := make(map[model.BindingKey]*model.Binding, len(observed))
	for i := range observed {
		if b := &observed[i]; b.Managed() {
			present[b.Key()] = b
		}
	}
	if !write {
		res.observed = true
		res.owners = ownerStates(s, desired, present)
		return res
	}

	batch := ByScope(res.changes)[scope]
	var results []providers.Result
	if len(batch) > 0 {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		// The intent is committed before the cloud is written: see
		// applyIntent.
		if _, err := st.AppendAudit(ctx, applyIntent(scope, batch)); err != nil {
			return fail(fmt.Errorf("recording the changes to %s before making them: %w", scope, err))
		}
		results, err = prov.Apply(ctx, scope, batch)
		res.wrote = true
		res.confirmAt = e.clock.Now()
		if err != nil {
			if providers.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				// Nothing is known to be applied; the next attempt plans
				// again. (A cancelled call is the pass being abandoned,
				// not the cloud refusing.)
				return fail(fmt.Errorf("writing bindings of %s: %w", scope, err))
			}
			res.batchFailed = true
			results = make([]providers.Result, len(batch))
			for i, c := range batch {
				results[i] = providers.Result{Change: c, Err: fmt.Errorf("writing bindings of %s: %w", scope, err)}
			}
		}
		if len(results) != len(batch) {
			return fail(fmt.Errorf("writing bindings of %s: the provider returned %d results for %d changes", scope, len(results), len(batch)))
		}
	}

	var audit []state.AuditEvent
	failedRecs := make(map[model.BindingKey]state.BindingRecord)
	for i, r := range results {
		c := batch[i]
		if r.Err != nil {
			f := failure{change: c, err: r.Err, transient: providers.IsTransient(r.Err)}
			res.failures = append(res.failures, f)
			if f.transient {
				continue
			}
			if b := changedBinding(c); b.Managed() {
				failedRecs[b.Key()] = state.BindingRecord{Binding: *b, State: state.BindingFailed, Detail: r.Err.Error()}
			}
			audit = append(audit, bindingAudit(c, r.Err))
			continue
		}
		if c.Old != nil {
			delete(present, c.Old.Key())
		}
		if c.New != nil {
			w := c.New
			if r.Binding != nil {
				w = r.Binding
			}
			present[w.Key()] = w
		}
		audit = append(audit, bindingAudit(c, nil))
	}
	res.observed = true
	res.owners = ownerStates(s, desired, present)

	ops, err := e.planRecords(ctx, st, s, records, present, failedRecs)
	// The audit entries of what the cloud did are recorded whatever
	// happens to the records (which a later pass plans again).
	rec.enqueue(ctx, recordJob{audit: audit, records: ops})
	if err != nil {
		return fail(fmt.Errorf("planning the binding records of %s: %w", scope, err))
	}
	return res
}

// shareGrantStrings makes records just read from the store use their
// grants' ID and principal strings where they are equal, so the mirror
// that keeps them holds no copies of those.
func shareGrantStrings(s *snapshot, records []state.BindingRecord) {
	for i := range records {
		b := &records[i].Binding
		if g := s.grant(b.Owner); g != nil {
			b.Owner = g.ID
			if b.Principal == g.Principal {
				b.Principal = g.Principal
			}
		}
	}
}

// ownersOf returns the grants the observed managed bindings and the
// records name: the live ones from the snapshot, the others read from the
// store. A grant that does not exist is left out (its binding is then
// unknown-grant).
func (e *Engine) ownersOf(ctx context.Context, st state.Store, s *snapshot, observed []model.Binding, records []state.BindingRecord) (map[string]*model.Grant, error) {
	out := make(map[string]*model.Grant, len(observed))
	add := func(id string) error {
		if id == "" {
			return nil
		}
		if _, ok := out[id]; ok {
			return nil
		}
		if g := s.grant(id); g != nil {
			out[id] = g
			return nil
		}
		g, err := e.lookupGrant(ctx, st, id)
		if err != nil {
			return err
		}
		if g != nil {
			out[id] = g
		}
		return nil
	}
	for i := range observed {
		if err := add(observed[i].Owner); err != nil {
			return nil, err
		}
	}
	for _, r := range records {
		if err := add(r.Binding.Owner); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lookupGrant reads a grant that is not live; terminal ones are cached
// (they never change). It returns nil for a grant that does not exist.
func (e *Engine) lookupGrant(ctx context.Context, st state.Store, id string) (*model.Grant, error) {
	e.endedMu.Lock()
	g, ok := e.ended[id]
	e.endedMu.Unlock()
	if ok {
		return g, nil
	}
	got, err := st.GetGrant(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading grant %s: %w", id, err)
	}
	if got.Status.Terminal() {
		e.endedMu.Lock()
		if len(e.ended) >= maxEndedCache {
			clear(e.ended)
		}
		e.ended[id] = &got
		e.endedMu.Unlock()
	}
	return &got, nil
}

const maxEndedCache = 100_000

// planRecords returns the writes that make the scope's binding records
// match the managed bindings present after the pass: applied records for
// them, failed records for changes the cloud refused, and no record for a
// binding that is gone, except a failed one whose grant is live or failed
// (it says why).
func (e *Engine) planRecords(ctx context.Context, st state.Store, s *snapshot, records []state.BindingRecord,
	present map[model.BindingKey]*model.Binding, failed map[model.BindingKey]state.BindingRecord) ([]recordOp, error) {
	// One walk over the records finds the present bindings already
	// recorded as they are (by pointer: a scope may hold a hundred
	// thousand, and a set of pointers is a tenth the size of one of keys)
	// and the records of bindings that are gone.
	recorded := make(map[*model.Binding]bool, len(present))
	var deletes []recordOp
	for i := range records {
		r := &records[i]
		k := r.Binding.Key()
		if b, ok := present[k]; ok {
			if _, refused := failed[k]; !refused && r.State == state.BindingApplied && sameRecorded(r.Binding, *b) {
				recorded[b] = true
			}
			continue
		}
		if _, ok := failed[k]; ok {
			continue
		}
		if r.State == state.BindingFailed {
			if g, err := e.lookupOwner(ctx, st, s, r.Binding.Owner); err != nil {
				return nil, err
			} else if g != nil && (g.Status.Live() || g.Status == model.StatusFailed) {
				continue
			}
		}
		deletes = append(deletes, recordOp{rec: state.BindingRecord{Binding: r.Binding}, del: true})
	}
	var ops []recordOp
	for k, b := range present {
		if f, ok := failed[k]; ok {
			// A refused replace or delete leaves the binding as it was:
			// record the refusal on it.
			f.Binding = *b
			ops = append(ops, recordOp{rec: f})
			continue
		}
		if !recorded[b] {
			ops = append(ops, recordOp{rec: state.BindingRecord{Binding: *b, State: state.BindingApplied}})
		}
	}
	sortRecordOps(ops)
	var refused []recordOp
	for k, f := range failed {
		if _, ok := present[k]; !ok {
			refused = append(refused, recordOp{rec: f})
		}
	}
	sortRecordOps(refused)
	return slices.Concat(ops, refused, deletes), nil
}

// sortRecordOps orders record writes by their bindings' keys.
func sortRecordOps(ops []recordOp) {
	if len(ops) < 2 {
		return
	}
	type keyed struct {
		k  model.BindingKey
		op recordOp
	}
	ks := make([]keyed, len(ops))
	for i, op := range ops {
		ks[i] = keyed{op.rec.Binding.Key(), op}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return compareKeys(a.k, b.k) })
	for i := range ks {
		ops[i] = ks[i].op
	}
}

func (e *Engine) lookupOwner(ctx context.Context, st state.Store, s *snapshot, id string) (*model.Grant, error) {
	if g := s.grant(id); g != nil {
		return g, nil
	}
	return e.lookupGrant(ctx, st, id)
}

func compareKeys(a, b model.BindingKey) int {
	return cmp.Or(cmp.Compare(a.Target.Cloud, b.Target.Cloud), cmp.Compare(a.Target.Scope, b.Target.Scope),
		cmp.Compare(a.Target.Role, b.Target.Role), cmp.Compare(a.Target.InstanceARN, b.Target.InstanceARN),
		cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Owner, b.Owner))
}

// sameRecorded reports whether a stored record's binding matches the
// cloud's, at the store's microsecond precision.
func sameRecorded(rec, b model.Binding) bool {
	return rec.Native == b.Native && rec.Raw == b.Raw &&
		rec.NotBefore.Equal(b.NotBefore.Truncate(time.Microsecond)) && rec.Expires.Equal(b.Expires.Truncate(time.Microsecond))
}

// ActionApply is the audit action of applyIntent entries.
const ActionApply = "reconcile.apply"

// applyIntent is the audit entry committed before the changes of one
// scope are sent to the cloud. The outcome of each change is recorded
// after the write, off the cloud path (see recorder), and a replica that
// dies in between loses those entries; this one is already stored, so
// every cloud write elevate makes is in the audit log. It is written
// through the leader's fenced store: a replica whose lease was taken over
// cannot write it, and so makes no cloud write either. One entry per scope
// and pass, whatever the number of changes, keeps the cost on the cloud
// path to one store transaction per scope.
func applyIntent(scope model.ScopeKey, batch []model.Change) state.AuditEvent {
	type change struct {
		Op        string       `json:"op"`
		Role      string       `json:"role"`
		Principal string       `json:"principal"`
		Owner     string       `json:"owner,omitempty"`
		Reason    model.Reason `json:"reason"`
		Expires   *time.Time   `json:"expires,omitempty"`
	}
	data := struct {
		Scope   string   `json:"scope"`
		Changes []change `json:"changes"`
	}{Scope: scope.String(), Changes: make([]change, 0, len(batch))}
	for _, c := range batch {
		b := changedBinding(c)
		ch := change{Op: changeVerb(c), Role: b.Target.Role, Principal: b.Principal.String(), Owner: b.Owner, Reason: c.Reason}
		if !b.Expires.IsZero() {
			exp := b.Expires.UTC()
			ch.Expires = &exp
		}
		data.Changes = append(data.Changes, ch)
	}
	raw, _ := json.Marshal(data)
	return state.AuditEvent{Actor: ActorReconcile, Action: ActionApply, Subject: "scope/" + scope.String(), Data: raw}
}

// bindingAudit is the audit entry of one change the cloud applied (err nil)
// or refused for good.
func bindingAudit(c model.Change, err error) state.AuditEvent {
	op, b := changeVerb(c), changedBinding(c)
	type window struct {
		NotBefore *time.Time `json:"not_before,omitempty"`
		Expires   *time.Time `json:"expires,omitempty"`
	}
	win := func(b *model.Binding) *window {
		if b == nil {
			return nil
		}
		w := &window{}
		if !b.NotBefore.IsZero() {
			w.NotBefore = &b.NotBefore
		}
		if !b.Expires.IsZero() {
			w.Expires = &b.Expires
		}
		return w
	}
	data := struct {
		Scope     string       `json:"scope"`
		Target    model.Target `json:"target"`
		Principal string       `json:"principal"`
		Owner     string       `json:"owner,omitempty"`
		Reason    model.Reason `json:"reason"`
		Old       *window      `json:"old,omitempty"`
		New       *window      `json:"new,omitempty"`
		Error     string       `json:"error,omitempty"`
	}{Scope: b.Target.ScopeKey().String(), Target: b.Target, Principal: b.Principal.String(), Owner: b.Owner,
		Reason: c.Reason, Old: win(c.Old), New: win(c.New)}
	action := "binding." + op
	if err != nil {
		data.Error = err.Error()
		action += ".failed"
	}
	raw, _ := json.Marshal(data)
	subject := "scope/" + b.Target.ScopeKey().String()
	if b.Owner != "" {
		subject = "grant/" + b.Owner
	}
	return state.AuditEvent{Actor: ActorReconcile, Action: action, Subject: subject, Data: raw}
}

// passRequest says what pass to run.
type passRequest struct {
	full   bool
	scopes map[model.ScopeKey]bool
	// rec receives the bookkeeping; nil runs the pass without writing
	// (report mode).
	rec *recorder
	now time.Time
}

// passOutcome is what the loop needs from a pass.
type passOutcome struct {
	err    error // the pass could not run
	fenced error // a write was fenced: this replica is no longer leader
	// policyErr is why the policy set could not be applied to every
	// grant (the pass ran with what could).
	policyErr error
}

// pass runs one reconcile pass: snapshot, observe and plan the scopes due,
// apply and queue the bookkeeping (when writing), settle grant statuses,
// reschedule.
func (e *Engine) pass(ctx context.Context, st state.Store, req passRequest) passOutcome {
	if !req.full && !e.loop.cache.isLoaded() {
		// No full read has succeeded yet in this term (or the last one
		// failed): only a full pass knows every live grant.
		req.full = true
	}
	kind := "targeted"
	if req.full {
		kind = "full"
	}
	write := req.rec != nil
	ctx, span := e.ins.tracer.Start(ctx, "reconcile.pass", trace.WithAttributes(
		attribute.String("elevate.kind", kind), attribute.String("elevate.mode", string(e.opts.Mode))))
	defer span.End()
	now := req.now
	started := e.clock.Now()
	endPass := func(lastErr string, counts ChangeCounts, scopeErrs map[string]string, overdue int) {
		d := e.clock.Now().Sub(started)
		e.ins.duration.Record(ctx, d.Seconds(), metric.WithAttributes(
			attribute.String("kind", kind), attribute.String("mode", string(e.opts.Mode))))
		e.updateStatus(func(s *Status) {
			s.Passes++
			s.LastPass, s.LastKind, s.LastDuration, s.LastError = now, kind, d, lastErr
			if lastErr == "" {
				s.LastChanges = counts
				s.Overdue = overdue
				if s.ScopeErrors == nil {
					s.ScopeErrors = make(map[string]string)
				}
				for k, v := range scopeErrs {
					if v == "" {
						delete(s.ScopeErrors, k)
					} else {
						s.ScopeErrors[k] = v
					}
				}
			}
		})
	}

	// A full pass reads every live grant, and when writing first applies
	// the policy set to them (syncPolicy); a targeted one uses the cache
	// the loop's poll has just brought up to date. The time is taken after
	// the read, so grants that expired during it are in this pass.
	var live []*model.Grant
	var err error
	var policyErr error
	if req.full {
		// The cached grants go first: the read replaces them, and they
		// need not be held twice meanwhile. Until the read succeeds, every
		// pass is a full one (see loaded).
		e.loop.cache.drop()
		readFrom := e.clock.Now()
		read, rerr := readLive(ctx, st)
		if err = rerr; err == nil && write {
			if read, policyErr = e.syncPolicy(ctx, st, read, e.clock.Now()); fencedErr(policyErr) != nil {
				err = policyErr
			} else if policyErr != nil {
				// The full resync applies it again; make that soon.
				e.log.Error("applying the policy set to grants; retrying", "error", policyErr, "retry_in", passRetry)
			}
		}
		if err == nil {
			e.loop.cache.reset(read)
			e.loop.lastPoll = readFrom
			live = e.loop.cache.list()
		}
	} else {
		live = e.loop.cache.list()
	}
	var snap *snapshot
	if err == nil {
		now = e.clock.Now()
		snap, err = e.snapshot(ctx, st, live, now, write)
	}
	if snap != nil {
		snap.full = req.full
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		e.log.Error("reconcile pass could not run", "error", err)
		endPass(err.Error(), ChangeCounts{}, nil, 0)
		return passOutcome{err: err, fenced: fencedErr(err)}
	}
	var scopes []model.ScopeKey
	if req.full {
		scopes, err = e.fullScopes(ctx, st, snap, req.scopes)
		if err != nil {
			e.log.Error("reconcile pass could not run", "error", err)
			endPass(err.Error(), ChangeCounts{}, nil, 0)
			return passOutcome{err: err}
		}
		e.index(snap, nil)
	} else {
		scopes = e.targetedScopes(snap, req.scopes)
		e.index(snap, scopes)
	}
	span.SetAttributes(attribute.Int("elevate.scopes", len(scopes)), attribute.Int("elevate.live_grants", len(snap.live)))

	results := e.runScopes(ctx, st, req.rec, snap, scopes)

	var total model.Changes
	scopeErrs := make(map[string]string, len(results))
	read := make(map[model.ScopeKey]map[string]ownerState, len(results))
	var fenced error
	for _, r := range results {
		total.Create = append(total.Create, r.changes.Create...)
		total.Delete = append(total.Delete, r.changes.Delete...)
		total.Replace = append(total.Replace, r.changes.Replace...)
		total.Findings = append(total.Findings, r.changes.Findings...)
		if f := fencedErr(r.err); f != nil && fenced == nil {
			fenced = f
		}
		e.noteScope(r, now)
		if err := r.firstError(); err != nil {
			scopeErrs[r.scope.String()] = err.Error()
		} else {
			scopeErrs[r.scope.String()] = ""
		}
		if r.observed {
			read[r.scope] = r.owners
		}
	}
	e.loop.ownerScopes.observed(read)
	if fenced != nil {
		endPass("", countChanges(total), scopeErrs, 0)
		return passOutcome{fenced: fenced}
	}
	if !write {
		for _, c := range slices.Concat(total.Delete, total.Replace, total.Create) {
			e.log.Info("planned change (report mode: not applied)", "reason", c.Reason, "old", describe(c.Old), "new", describe(c.New))
		}
	}

	overdue := 0
	if write {
		overdue = e.settle(ctx, req.rec, snap, results)
	} else {
		active := int64(0)
		for _, g := range snap.live {
			if g.Status == model.StatusActive {
				active++
			}
		}
		e.activeGrants.Store(active)
	}
	// Only grants a later poll can return need noting: those updated
	// within its window (the others would be news there only with a new
	// version anyway).
	seenFrom := e.loop.lastPoll.Add(-2*e.pollSlack() - e.opts.PollInterval)
	for _, g := range snap.live {
		if !g.Updated.Before(seenFrom) {
			e.noteSeen(g.ID, g.Version)
		}
	}
	e.loop.sched.reset(snap.live, now)
	e.loop.prevNow = now

	counts := countChanges(total)
	span.SetAttributes(attribute.Int("elevate.create", counts.Create), attribute.Int("elevate.delete", counts.Delete),
		attribute.Int("elevate.replace", counts.Replace), attribute.Int("elevate.findings", counts.Findings))
	level := e.log.Debug
	if counts != (ChangeCounts{}) || overdue > 0 {
		level = e.log.Info
	}
	level("reconcile pass", "kind", kind, "scopes", len(scopes), "create", counts.Create, "delete", counts.Delete,
		"replace", counts.Replace, "findings", counts.Findings, "overdue", overdue, "duration", e.clock.Now().Sub(started))
	endPass("", counts, scopeErrs, overdue)
	return passOutcome{policyErr: policyErr}
}

func describe(b *model.Binding) string {
	if b == nil {
		return ""
	}
	s := fmt.Sprintf("%s %s", b.Target, b.Principal)
	if b.Owner != "" {
		s += " owner=" + b.Owner
	}
	if !b.Expires.IsZero() {
		s += " expires=" + b.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// fencedErr returns err if it says this replica's lease was taken over.
func fencedErr(err error) error {
	if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrLeaseLost) {
		return err
	}
	return nil
}

// noteScope updates the loop's view of one scope after a pass: backoff and
// alerts for failures and findings.
func (e *Engine) noteScope(r *scopeResult, now time.Time) {
	if failed, transient := r.failed(); failed {
		b := e.loop.backoff[r.scope]
		if b == nil {
			b = &backoffState{}
			e.loop.backoff[r.scope] = b
		}
		b.failures++
		b.until = now.Add(retryDelay(b.failures, r.firstError(), !transient))
		e.log.Warn("reconciling scope failed; retrying", "scope", r.scope.String(), "error", r.firstError(),
			"transient", transient, "failures", b.failures, "retry_at", b.until)
	} else {
		delete(e.loop.backoff, r.scope)
	}
	// Alerts: each condition once while it lasts.
	raised := make(map[string]bool)
	prev := e.loop.scopeAlerts[r.scope]
	raise := func(key string, a Alert) {
		raised[key] = true
		if !prev[key] {
			a.At = now
			e.sendAlert(a)
		}
	}
	if r.err != nil && !r.transient && fencedErr(r.err) == nil {
		raise("scope|"+r.err.Error(), Alert{Kind: AlertPermanentFailure, Scope: r.scope,
			Message: fmt.Sprintf("reconciling %s failed and will keep failing until fixed: %v", r.scope, r.err)})
	}
	for _, f := range r.failures {
		if f.transient {
			continue
		}
		b := f.change.New
		if b == nil {
			b = f.change.Old
		}
		key := fmt.Sprintf("change|%v|%s|%s", b.Key(), f.change.Reason, f.err)
		raise(key, Alert{Kind: AlertPermanentFailure, Scope: r.scope, Grant: b.Owner, Binding: b, Reason: f.change.Reason,
			Message: fmt.Sprintf("the cloud refused to %s %s for %s (%s): %v", changeVerb(f.change), b.Target, b.Principal, f.change.Reason, f.err)})
	}
	for _, f := range r.changes.Findings {
		b := f.Binding
		raise(fmt.Sprintf("finding|%v|%s", b.Key(), f.Reason), Alert{Kind: AlertStanding, Scope: r.scope, Binding: &b, Reason: f.Reason, Message: f.Message})
	}
	if r.err != nil && r.transient {
		// A transient failure hides the scope's findings; keep them raised.
		for k := range prev {
			raised[k] = true
		}
	}
	e.loop.scopeAlerts[r.scope] = raised
}

// changedBinding is the binding a change is about: the new one, or the
// old one of a delete.
func changedBinding(c model.Change) *model.Binding {
	if c.New != nil {
		return c.New
	}
	return c.Old
}

func changeVerb(c model.Change) string {
	switch {
	case c.Old != nil && c.New != nil:
		return "replace"
	case c.Old != nil:
		return "delete"
	}
	return "create"
}

// settle decides the status changes the cloud's confirmations allow and
// queues them on rec: approved → active when every desired binding is
// present, live → expired when the window has ended and no binding is left
// (the lag is recorded then), → failed when the cloud refused a binding for
// good. A grant with a scope that could not be read in this pass waits for
// a pass that reads it; one whose change is already queued is left alone.
// It returns how many grants are past their expiry and still unconfirmed.
func (e *Engine) settle(ctx context.Context, rec *recorder, s *snapshot, results []*scopeResult) int {
	byScope := make(map[model.ScopeKey]*scopeResult, len(results))
	refused := make(map[string]failure)
	for _, r := range results {
		byScope[r.scope] = r
		for _, f := range r.failures {
			if !f.transient && f.change.New != nil && f.change.New.Owner != "" {
				if _, ok := refused[f.change.New.Owner]; !ok {
					refused[f.change.New.Owner] = f
				}
			}
		}
	}
	now := s.now
	overdue, unsettled := 0, false
	active := int64(0)
	var oldest time.Time
	stillOverdue := make(map[string]bool)
	var ops []settleOp
	var scopes []model.ScopeKey
	for _, g := range s.live {
		if pending, activating := rec.pendingGrant(g.ID); pending {
			// A queued activation counts already: the pass that queued
			// it may be the last for a while, and the gauge would miss
			// the grant until the next one.
			if g.Status == model.StatusActive || activating {
				active++
			}
			continue
		}
		ended := !g.Expires.IsZero() && !now.Before(g.Expires)
		scopes = e.grantScopesTo(scopes, s, g)
		covered, clean, waiting := true, true, false
		var confirmAt time.Time
		for _, k := range scopes {
			r := byScope[k]
			if r == nil || !r.observed {
				covered = false
				// A failing scope's backoff brings the next try; a scope
				// this pass left out for another reason needs a pass.
				waiting = waiting || !e.loop.inBackoff(k, now) && (r == nil || !r.transient)
				continue
			}
			if r.owners[g.ID]&ownerPresent != 0 {
				clean = false
			}
			if r.confirmAt.After(confirmAt) {
				confirmAt = r.confirmAt
			}
		}
		if len(scopes) == 0 {
			confirmAt = e.clock.Now()
		}
		f, isRefused := refused[g.ID]
		switch {
		case isRefused && !ended:
			ops = append(ops, settleOp{grant: *g, action: "fail",
				note: fmt.Sprintf("the cloud refused %s for good: %v", f.change.New.Target, f.err),
				mutate: func(cur *model.Grant) bool {
					if !cur.Status.Live() {
						return false
					}
					cur.Status = model.StatusFailed
					cur.Reason = fmt.Sprintf("%s refused the binding on %s: %v", f.change.New.Target.Cloud, f.change.New.Target, f.err)
					return true
				},
				after: func(stored model.Grant) { e.loop.cache.apply(stored) }})
			continue
		case ended && covered && clean:
			expires, kind := g.Expires, g.Kind
			ops = append(ops, settleOp{grant: *g, action: "expire", note: "the cloud confirmed its bindings are removed",
				mutate: func(cur *model.Grant) bool {
					if !cur.Status.Live() || !cur.Expires.Equal(expires) {
						return false
					}
					cur.Status = model.StatusExpired
					cur.Reason = "expired"
					return true
				},
				after: func(stored model.Grant) {
					e.loop.cache.apply(stored)
					lag := max(confirmAt.Sub(expires), 0)
					e.ins.lag.Record(context.Background(), lag.Seconds(), metric.WithAttributes(attribute.String("kind", string(kind))))
					if e.onEnded != nil {
						e.onEnded(stored, lag)
					}
				}})
			continue
		case ended:
			unsettled = unsettled || waiting
		case g.Status == model.StatusApproved && g.ActiveAt(now) && covered && e.allPresent(s, byScope, g):
			starts, expires := g.Starts, g.Expires
			ops = append(ops, settleOp{grant: *g, action: "activate", note: "the cloud confirmed its bindings",
				mutate: func(cur *model.Grant) bool {
					if cur.Status != model.StatusApproved || !cur.Starts.Equal(starts) || !cur.Expires.Equal(expires) {
						return false
					}
					cur.Status = model.StatusActive
					return true
				},
				after: func(stored model.Grant) { e.loop.cache.apply(stored) }})
			active++
			continue
		case g.Status == model.StatusApproved && g.ActiveAt(now):
			unsettled = unsettled || waiting
		}
		if g.Status == model.StatusActive {
			active++
		}
		if ended {
			overdue++
			stillOverdue[g.ID] = true
			if oldest.IsZero() || g.Expires.Before(oldest) {
				oldest = g.Expires
			}
			if now.Sub(g.Expires) >= e.opts.OverdueAfter && !e.loop.overdueAlerted[g.ID] {
				e.loop.overdueAlerted[g.ID] = true
				e.sendAlert(Alert{Kind: AlertExpiryOverdue, Grant: g.ID, At: now,
					Message: fmt.Sprintf("grant %s (%s as %s) expired at %s and the cloud has not confirmed its removal after %s; check the scope errors of the reconcile status",
						g.ID, g.Principal, g.Role, fmtTime(g.Expires), now.Sub(g.Expires).Round(time.Second))})
			}
		}
	}
	rec.enqueue(ctx, recordJob{settle: ops})
	for id := range e.loop.overdueAlerted {
		if !stillOverdue[id] {
			delete(e.loop.overdueAlerted, id)
		}
	}
	e.activeGrants.Store(active)
	if oldest.IsZero() {
		e.oldestOverdue.Store(0)
	} else {
		e.oldestOverdue.Store(oldest.UnixNano())
	}
	e.loop.retryAt = time.Time{}
	if unsettled {
		e.loop.retryAt = now.Add(retryUnsettled)
	}
	return overdue
}

// allPresent reports whether every desired binding of g is present with the
// desired window.
func (e *Engine) allPresent(s *snapshot, byScope map[model.ScopeKey]*scopeResult, g *model.Grant) bool {
	for i := range s.byOwner[g.ID] {
		d := &s.byOwner[g.ID][i]
		r := byScope[d.Target.ScopeKey()]
		if r == nil || !r.observed || r.owners[g.ID]&ownerComplete == 0 {
			return false
		}
	}
	return true
}

// transitionOK updates grant g with mutate under optimistic concurrency: on
// a version conflict it re-reads the grant and asks mutate again, which
// returns false when the change no longer applies. It reports whether the
// grant was updated; an error means the store failed (or the write was
// fenced).
func (e *Engine) transitionOK(ctx context.Context, st state.Store, g *model.Grant, action, note string, mutate func(*model.Grant) bool) (model.Grant, bool, error) {
	cur := *g
	for range 3 {
		next := cur
		next.Approvals = slices.Clone(cur.Approvals)
		if !mutate(&next) {
			return cur, false, nil
		}
		stored, err := st.UpdateGrant(ctx, next, state.Change{Actor: ActorReconcile, Action: action, Note: note})
		if err == nil {
			e.noteSeen(stored.ID, stored.Version)
			e.log.Debug("grant "+action, "grant", stored.ID, "principal", stored.Principal.String(), "role", stored.Role, "status", stored.Status)
			return stored, true, nil
		}
		switch {
		case errors.Is(err, state.ErrInvalid):
			// The grant ended meanwhile (terminal grants cannot change).
			e.log.Debug("grant status change no longer applies", "grant", g.ID, "action", action, "error", err)
			return cur, false, nil
		case !errors.Is(err, state.ErrConflict):
			return cur, false, fmt.Errorf("updating grant %s (%s): %w", g.ID, action, err)
		}
		if cur, err = st.GetGrant(ctx, g.ID); err != nil {
			return cur, false, fmt.Errorf("re-reading grant %s after a conflict: %w", g.ID, err)
		}
	}
	return cur, false, nil
}

// noteSeen records that the engine saw (or wrote) version v of grant id, so
// the poll does not take it for someone else's change.
func (e *Engine) noteSeen(id string, v int64) {
	now := e.clock.Now()
	e.seenMu.Lock()
	defer e.seenMu.Unlock()
	if e.loop.seen == nil {
		return
	}
	if cur := e.loop.seen[id]; cur.version <= v {
		e.loop.seen[id] = seenVersion{version: v, at: now}
	}
}

// policyOps reads what PolicyOps needs from the store and returns the ops.
func (e *Engine) policyOps(ctx context.Context, st state.Store, set *policies.Set, live []model.Grant, now time.Time) ([]GrantOp, error) {
	liveIDs := make(map[string]bool)
	for _, g := range live {
		if g.Kind == model.KindTemporary {
			base, _ := temporaryBase(g.ID)
			liveIDs[base] = true
		}
	}
	history := make(map[string]TemporaryHistory)
	for _, d := range TemporaryDecls(set) {
		if liveIDs[d.BaseID] {
			continue
		}
		var h TemporaryHistory
		for gen := 1; ; gen++ {
			g, err := st.GetGrant(ctx, TemporaryGrantID(d.Block.Name, d.Principal, gen))
			if errors.Is(err, state.ErrNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading temporary grants of %q: %w", d.Block.Name, err)
			}
			h = TemporaryHistory{Latest: &g, Gen: gen}
		}
		history[d.BaseID] = h
	}
	return PolicyOps(set, live, history, now), nil
}

// syncPolicy applies what the policy set asks of the live grants just
// read from the store (PolicyOps) with actor ActorPolicy, and returns them
// as they are after it (live is changed in place). An error of one grant
// does not stop the others; a fenced write stops it.
func (e *Engine) syncPolicy(ctx context.Context, st state.Store, live []model.Grant, now time.Time) ([]model.Grant, error) {
	set := e.opts.Policies()
	if set == nil {
		return live, nil
	}
	ops, err := e.policyOps(ctx, st, set, live, now)
	if err != nil {
		return live, err
	}
	var errs []error
	var changed []model.Grant
	for _, op := range ops {
		c := state.Change{Actor: ActorPolicy, Action: op.Action, Note: op.Note}
		var stored model.Grant
		var err error
		switch op.Kind {
		case OpCreate:
			stored, err = st.CreateGrant(ctx, op.Grant, c)
			if errors.Is(err, state.ErrExists) {
				continue // another writer declared it first
			}
		default:
			stored, err = st.UpdateGrant(ctx, op.Grant, c)
		}
		if err != nil {
			if fencedErr(err) != nil {
				return live, err
			}
			errs = append(errs, fmt.Errorf("%s grant %s: %w", op.Action, op.Grant.ID, err))
			continue
		}
		// The full pass that follows a sync reconciles every scope.
		e.log.Info("policy changed a grant", "grant", stored.ID, "action", op.Action, "note", op.Note)
		e.noteSeen(stored.ID, stored.Version)
		changed = append(changed, stored)
	}
	return applyStored(live, changed), errors.Join(errs...)
}

// applyStored returns live with the grants in changed (as stored) put in
// place of those with their IDs, added when new, and the ones no longer
// live left out. It changes live in place.
func applyStored(live, changed []model.Grant) []model.Grant {
	if len(changed) == 0 {
		return live
	}
	at := make(map[string]int, len(changed))
	for i := range changed {
		at[changed[i].ID] = i
	}
	for i := range live {
		if j, ok := at[live[i].ID]; ok {
			live[i] = changed[j]
			delete(at, live[i].ID)
		}
	}
	for i := range changed {
		if _, ok := at[changed[i].ID]; ok {
			live = append(live, changed[i])
		}
	}
	return slices.DeleteFunc(live, func(g model.Grant) bool { return !g.Status.Live() })
}
