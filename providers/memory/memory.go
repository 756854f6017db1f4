// Package memory is an in-memory elevate provider: bindings per scope with
// ownership markers, native expiry, fault injection (errors, throttling with
// Retry-After, latency, permanent failures per scope), call counters and
// out-of-band helpers that act like someone editing the cloud by hand. The
// engine's tests run against it; it passes the provider
// conformance suite like every cloud provider.
package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// Errors the fault injector produces.
var (
	// ErrUnavailable is the transient 5xx-like failure of ErrorRate.
	ErrUnavailable = errors.New("memory provider: service unavailable (503)")
	// ErrThrottled is the 429-like failure of ThrottleRate.
	ErrThrottled = errors.New("memory provider: too many requests (429)")
)

// MarkerPrefix starts the Raw marker the provider stores on bindings it
// writes, like GCP's condition title "elevate:<grant-id>".
const MarkerPrefix = "elevate:"

// OutOfBandActor is the actor recorded for changes made through the
// out-of-band helpers.
var OutOfBandActor = model.MustPrincipal("user:someone-else@example.com")

// Options configures a Provider.
type Options struct {
	// Cloud is the cloud the provider pretends to be; default
	// model.CloudMemory. Scopes of another cloud are refused.
	Cloud model.Cloud
	// Clock is the provider's notion of now (audit event times, native
	// expiry checks); default time.Now.
	Clock func() time.Time
	// Seed seeds the fault injector's random numbers.
	Seed uint64
	// DaemonEnforced makes the provider behave like AWS Identity Center or
	// Azure plain assignments: expiry is not enforced by the cloud, so a
	// binding stays effective until it is deleted. By default expiry is
	// native (GCP conditions, AWS trust conditions, Azure PIM).
	DaemonEnforced bool
	// Sleep waits out injected latency; default a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Actor is the identity recorded in audit events for Apply; default
	// serviceAccount:elevate@elevate.internal.
	Actor model.Principal
}

// Faults are injected into Observe and Apply calls.
type Faults struct {
	// Latency is added to every call.
	Latency time.Duration
	// ErrorRate is the fraction of calls that fail whole with ErrUnavailable
	// (transient).
	ErrorRate float64
	// ThrottleRate is the fraction of calls that fail whole with
	// ErrThrottled and RetryAfter.
	ThrottleRate float64
	RetryAfter   time.Duration
	// ChangeErrorRate is the fraction of single changes in an Apply batch
	// that fail with ErrUnavailable while the others succeed (the way one
	// AWS trust-policy write of several fails).
	ChangeErrorRate float64
}

// Provider is the in-memory provider. The zero value is not usable; call New.
type Provider struct {
	cloud  model.Cloud
	clock  func() time.Time
	native bool
	sleep  func(context.Context, time.Duration) error
	actor  model.Principal

	mu        sync.Mutex
	rng       *rand.Rand
	faults    Faults
	failNext  []error
	failScope map[model.ScopeKey]error
	scopes    map[model.ScopeKey]map[model.BindingKey]model.Binding
	reads     map[model.ScopeKey]int
	writes    map[model.ScopeKey]int
	events    []providers.AuditEvent
}

// New returns an empty provider.
func New(opts Options) *Provider {
	if opts.Cloud == "" {
		opts.Cloud = model.CloudMemory
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	if opts.Actor.IsZero() {
		opts.Actor = model.MustPrincipal("serviceAccount:elevate@elevate.internal")
	}
	return &Provider{
		cloud:     opts.Cloud,
		clock:     opts.Clock,
		native:    !opts.DaemonEnforced,
		sleep:     opts.Sleep,
		actor:     opts.Actor,
		rng:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		failScope: make(map[model.ScopeKey]error),
		scopes:    make(map[model.ScopeKey]map[model.BindingKey]model.Binding),
		reads:     make(map[model.ScopeKey]int),
		writes:    make(map[model.ScopeKey]int),
	}
}

// Cloud implements providers.Provider.
func (p *Provider) Cloud() model.Cloud { return p.cloud }

// SetFaults replaces the injected faults.
func (p *Provider) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// FailNext makes the next len(errs) calls fail whole with errs, in order,
// before any random fault. Mark errors with providers.Transient or
// providers.Throttled to make them retryable.
func (p *Provider) FailNext(errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = append(p.failNext, errs...)
}

// FailScope makes every call for scope fail with err (a permanent error
// unless err is marked transient); a nil err clears it.
func (p *Provider) FailScope(scope model.ScopeKey, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.failScope, scope)
		return
	}
	p.failScope[scope] = err
}

// Reads returns how many Observe calls reached scope.
func (p *Provider) Reads(scope model.ScopeKey) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads[scope]
}

// Writes returns how many Apply batches reached scope (one per call, however
// many changes it held).
func (p *Provider) Writes(scope model.ScopeKey) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes[scope]
}

// inject runs the faults for one call: latency, then queued failures, then
// the scope's permanent failure, then random ones.
func (p *Provider) inject(ctx context.Context, scope model.ScopeKey) error {
	p.mu.Lock()
	latency := p.faults.Latency
	p.mu.Unlock()
	if latency > 0 {
		if err := p.sleep(ctx, latency); err != nil {
			return fmt.Errorf("calling memory provider: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("calling memory provider: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failNext) > 0 {
		err := p.failNext[0]
		p.failNext = p.failNext[1:]
		return err
	}
	if err := p.failScope[scope]; err != nil {
		return err
	}
	if p.faults.ErrorRate > 0 && p.rng.Float64() < p.faults.ErrorRate {
		return providers.Transient(ErrUnavailable)
	}
	if p.faults.ThrottleRate > 0 && p.rng.Float64() < p.faults.ThrottleRate {
		return providers.Throttled(ErrThrottled, p.faults.RetryAfter)
	}
	return nil
}

func (p *Provider) checkScope(scope model.ScopeKey) error {
	if scope.Cloud != p.cloud {
		return fmt.Errorf("%w: scope %s belongs to cloud %q, this provider serves %q", providers.ErrInvalidChange, scope, scope.Cloud, p.cloud)
	}
	if scope.Scope == "" {
		return fmt.Errorf("%w: empty scope", providers.ErrInvalidChange)
	}
	return nil
}

// Observe implements providers.Provider: every managed binding of the scope
// and the unmanaged bindings on targets (all of them when targets is nil),
// sorted.
func (p *Provider) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	if err := p.checkScope(scope); err != nil {
		return nil, err
	}
	if err := p.inject(ctx, scope); err != nil {
		return nil, fmt.Errorf("reading bindings of %s: %w", scope, err)
	}
	var want map[model.Target]bool
	if targets != nil {
		want = make(map[model.Target]bool, len(targets))
		for _, t := range targets {
			want[t] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads[scope]++
	out := make([]model.Binding, 0, len(p.scopes[scope]))
	for _, b := range p.scopes[scope] {
		if b.Managed() || want == nil || want[b.Target] {
			out = append(out, b)
		}
	}
	sortBindings(out)
	return out, nil
}

// Apply implements providers.Provider. The batch is applied under one lock,
// like one read-modify-write of a shared document.
func (p *Provider) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	if err := p.checkScope(scope); err != nil {
		return nil, err
	}
	if err := p.inject(ctx, scope); err != nil {
		return nil, fmt.Errorf("writing bindings of %s: %w", scope, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes[scope]++
	bs := p.scopes[scope]
	if bs == nil {
		bs = make(map[model.BindingKey]model.Binding)
		p.scopes[scope] = bs
	}
	results := make([]providers.Result, len(changes))
	for i, c := range changes {
		results[i].Change = c
		if p.faults.ChangeErrorRate > 0 && p.rng.Float64() < p.faults.ChangeErrorRate {
			results[i].Err = providers.Transient(ErrUnavailable)
			continue
		}
		written, err := p.apply(scope, bs, c)
		if err != nil {
			results[i].Err = fmt.Errorf("applying %s change to %s: %w", c.Reason, scope, err)
			continue
		}
		results[i].Binding = written
	}
	return results, nil
}

// apply performs one change on the scope's bindings; the caller holds mu.
func (p *Provider) apply(scope model.ScopeKey, bs map[model.BindingKey]model.Binding, c model.Change) (*model.Binding, error) {
	for _, b := range []*model.Binding{c.Old, c.New} {
		if b != nil && b.Target.ScopeKey() != scope {
			return nil, fmt.Errorf("%w: binding on %s is not in scope %s", providers.ErrInvalidChange, b.Target, scope)
		}
	}
	switch {
	case c.Old == nil && c.New != nil:
		return p.write(bs, *c.New, "CreateBinding")
	case c.Old != nil && c.New == nil:
		return nil, p.remove(bs, *c.Old, c.Reason)
	case c.Old != nil && c.New != nil:
		if !c.Old.Managed() {
			return nil, fmt.Errorf("%w: refusing to replace %s of %s: it carries no elevate marker", providers.ErrNotOwned, c.Old.Target, c.Old.Principal)
		}
		if c.Old.Owner != c.New.Owner {
			return nil, fmt.Errorf("%w: a replace keeps the owner (old %q, new %q)", providers.ErrInvalidChange, c.Old.Owner, c.New.Owner)
		}
		if cur, ok := bs[c.Old.Key()]; ok && cur.Owner != c.Old.Owner {
			return nil, fmt.Errorf("%w: %s of %s carries marker %q, not %q", providers.ErrNotOwned, cur.Target, cur.Principal, cur.Owner, c.Old.Owner)
		}
		if err := checkWritable(*c.New); err != nil {
			return nil, err
		}
		delete(bs, c.Old.Key())
		return p.write(bs, *c.New, "ReplaceBinding")
	default:
		return nil, fmt.Errorf("%w: a change needs an old or a new binding", providers.ErrInvalidChange)
	}
}

func checkWritable(b model.Binding) error {
	switch {
	case !b.Managed():
		return fmt.Errorf("%w: elevate writes only bindings with an owner (grant ID)", providers.ErrInvalidChange)
	case b.Principal.IsZero():
		return fmt.Errorf("%w: binding on %s has no principal", providers.ErrInvalidChange, b.Target)
	case b.Expires.IsZero():
		return fmt.Errorf("%w: binding on %s for %s has no expiry: elevate never writes unbounded bindings", providers.ErrInvalidChange, b.Target, b.Principal)
	case !b.NotBefore.IsZero() && !b.NotBefore.Before(b.Expires):
		return fmt.Errorf("%w: binding on %s for %s starts at or after it expires", providers.ErrInvalidChange, b.Target, b.Principal)
	}
	return nil
}

func (p *Provider) write(bs map[model.BindingKey]model.Binding, b model.Binding, action string) (*model.Binding, error) {
	if err := checkWritable(b); err != nil {
		return nil, err
	}
	b.Native = p.native
	b.Raw = MarkerPrefix + b.Owner
	bs[b.Key()] = b
	p.record(p.actor, action, b)
	return &b, nil
}

func (p *Provider) remove(bs map[model.BindingKey]model.Binding, old model.Binding, reason model.Reason) error {
	key := old.Key()
	cur, ok := bs[key]
	if !ok {
		return nil // already gone: deletes are idempotent
	}
	switch {
	case cur.Managed() && cur.Owner == old.Owner:
	case !cur.Managed() && reason == model.ReasonStandingFixed && cur.Expires.IsZero():
		// Standing access (no expiry) of a role whose policy says remove.
	case !cur.Managed():
		return fmt.Errorf("%w: refusing to delete %s of %s: it carries no elevate marker", providers.ErrNotOwned, cur.Target, cur.Principal)
	default:
		return fmt.Errorf("%w: %s of %s carries marker %q, not %q", providers.ErrNotOwned, cur.Target, cur.Principal, cur.Owner, old.Owner)
	}
	delete(bs, key)
	p.record(p.actor, "DeleteBinding", cur)
	return nil
}

// EffectiveAccess reports whether principal can use target at time at: a
// binding exists whose window contains at. With native expiry (the default)
// a binding past its expiry is inert even before elevate deletes it; with
// DaemonEnforced it stays effective until deleted.
func (p *Provider) EffectiveAccess(principal model.Principal, target model.Target, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.scopes[target.ScopeKey()] {
		if b.Target != target || !b.Principal.Equal(principal) {
			continue
		}
		if p.native && !b.NotBefore.IsZero() && at.Before(b.NotBefore) {
			continue
		}
		if p.native && !b.Expires.IsZero() && !at.Before(b.Expires) {
			continue
		}
		return true
	}
	return false
}

// AddUnmanaged creates a binding without an ownership marker, as a person
// or another tool would.
func (p *Provider) AddUnmanaged(b model.Binding) error {
	if b.Managed() {
		return fmt.Errorf("adding unmanaged binding: it has owner %q; use Put to forge a marker", b.Owner)
	}
	return p.Put(b)
}

// Put stores b as given (any owner, any bounds; Raw and Native are set as
// the cloud would), replacing a binding with the same key: the out-of-band
// write of a person with console access.
func (p *Provider) Put(b model.Binding) error {
	if b.Target.Cloud != p.cloud || b.Target.Scope == "" || b.Principal.IsZero() {
		return fmt.Errorf("putting binding: it needs a %s target with a scope and a principal", p.cloud)
	}
	if b.Managed() {
		b.Raw = MarkerPrefix + b.Owner
	}
	// Whether expiry is enforced is the cloud's property, not the writer's.
	b.Native = p.native && !b.Expires.IsZero()
	p.mu.Lock()
	defer p.mu.Unlock()
	scope := b.Target.ScopeKey()
	if p.scopes[scope] == nil {
		p.scopes[scope] = make(map[model.BindingKey]model.Binding)
	}
	p.scopes[scope][b.Key()] = b
	p.record(OutOfBandActor, "PutBinding", b)
	return nil
}

// Tamper edits the stored binding with key in scope out of band. The edit
// may change anything, including the key fields.
func (p *Provider) Tamper(scope model.ScopeKey, key model.BindingKey, edit func(*model.Binding)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.scopes[scope][key]
	if !ok {
		return fmt.Errorf("tampering with binding: no binding %v in %s", key, scope)
	}
	edit(&b)
	if b.Target.ScopeKey() != scope {
		return fmt.Errorf("tampering with binding: the edit moved it out of %s", scope)
	}
	delete(p.scopes[scope], key)
	p.scopes[scope][b.Key()] = b
	p.record(OutOfBandActor, "TamperBinding", b)
	return nil
}

// TamperExpiry sets the expiry of the stored binding with b's key, keeping
// its marker.
func (p *Provider) TamperExpiry(b model.Binding, expires time.Time) error {
	return p.Tamper(b.Target.ScopeKey(), b.Key(), func(x *model.Binding) { x.Expires = expires })
}

// Remove deletes the binding with key from scope out of band and reports
// whether it existed.
func (p *Provider) Remove(scope model.ScopeKey, key model.BindingKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.scopes[scope][key]
	if ok {
		delete(p.scopes[scope], key)
		p.record(OutOfBandActor, "RemoveBinding", b)
	}
	return ok
}

// Bindings returns every binding stored in scope, sorted, without counting
// a read or injecting faults.
func (p *Provider) Bindings(scope model.ScopeKey) []model.Binding {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]model.Binding, 0, len(p.scopes[scope]))
	for _, b := range p.scopes[scope] {
		out = append(out, b)
	}
	sortBindings(out)
	return out
}

// Scopes returns every scope that holds bindings, sorted.
func (p *Provider) Scopes() []model.ScopeKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]model.ScopeKey, 0, len(p.scopes))
	for s, bs := range p.scopes {
		if len(bs) > 0 {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b model.ScopeKey) int {
		return cmp.Or(cmp.Compare(a.Cloud, b.Cloud), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

// record appends an audit event; the caller holds mu.
func (p *Provider) record(actor model.Principal, action string, b model.Binding) {
	p.events = append(p.events, providers.AuditEvent{
		ID:       strconv.Itoa(len(p.events) + 1),
		Cloud:    p.cloud,
		Time:     p.clock(),
		Actor:    actor,
		ActorID:  actor.String(),
		Category: providers.AuditIAMChange,
		Action:   action,
		Scope:    b.Target.ScopeKey(),
		Success:  true,
		Attrs: map[string]string{
			"role": b.Target.Role, "member": b.Principal.String(), "owner": b.Owner,
		},
	})
}

// RecordEvent appends an audit event as the cloud would log one (a
// break-glass sign-in, say). Empty ID and zero Time are filled in.
func (p *Provider) RecordEvent(ev providers.AuditEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.ID == "" {
		ev.ID = strconv.Itoa(len(p.events) + 1)
	}
	if ev.Time.IsZero() {
		ev.Time = p.clock()
	}
	if ev.Cloud == "" {
		ev.Cloud = p.cloud
	}
	p.events = append(p.events, ev)
}

// Read implements providers.AuditSource over every write the provider saw
// and every recorded event. The cursor is the count of events already read.
func (p *Provider) Read(ctx context.Context, cursor string, limit int) ([]providers.AuditEvent, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, cursor, fmt.Errorf("reading memory audit log: %w", err)
	}
	if limit <= 0 {
		return nil, cursor, fmt.Errorf("reading memory audit log: limit must be positive, got %d", limit)
	}
	from := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 {
			return nil, cursor, fmt.Errorf("reading memory audit log: invalid cursor %q: pass the cursor a previous Read returned, or \"\" to start over", cursor)
		}
		from = n
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	from = min(from, len(p.events))
	to := min(from+limit, len(p.events))
	out := slices.Clone(p.events[from:to])
	return out, strconv.Itoa(to), nil
}

func sortBindings(bs []model.Binding) {
	slices.SortFunc(bs, compareBindings)
}

func compareBindings(a, b model.Binding) int {
	return cmp.Or(
		cmp.Compare(a.Target.Cloud, b.Target.Cloud),
		cmp.Compare(a.Target.Scope, b.Target.Scope),
		cmp.Compare(a.Target.Role, b.Target.Role),
		cmp.Compare(a.Target.InstanceARN, b.Target.InstanceARN),
		cmp.Compare(a.Principal.Key(), b.Principal.Key()),
		cmp.Compare(a.Owner, b.Owner),
		a.NotBefore.Compare(b.NotBefore),
		a.Expires.Compare(b.Expires),
	)
}

// Interface checks.
var (
	_ providers.Provider    = (*Provider)(nil)
	_ providers.AuditSource = (*Provider)(nil)
)
