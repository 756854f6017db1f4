package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// Mode says whether the engine changes the clouds.
type Mode string

// Modes of the engine.
const (
	// ModeEnforce applies plans: bindings are created and removed, grants
	// move through their statuses, temporary blocks become grants.
	ModeEnforce Mode = "enforce"
	// ModeReport observes and plans, logs the plan and raises alerts for
	// findings, and writes nothing: no cloud call but reads, no grant,
	// binding or audit record. (It still takes the leader lease, so that one
	// replica reports.)
	ModeReport Mode = "report"
)

// LeaseName is the lease the reconcile leader holds.
const LeaseName = "reconcile"

// Defaults of Options.
const (
	DefaultResyncInterval = 5 * time.Minute
	DefaultPollInterval   = 2 * time.Second
	DefaultLeaseTTL       = 15 * time.Second
	DefaultWorkers        = 16
	DefaultScopeTimeout   = time.Minute
	DefaultOverdueAfter   = time.Minute
)

// Options configures an Engine.
type Options struct {
	// Store is the state store; the engine writes through a view fenced
	// with its lease.
	Store state.Store
	// Providers serve each cloud, already decorated (retries, rate limits,
	// telemetry) by the caller. A scope of a cloud with no provider fails
	// permanently and is reported.
	Providers map[model.Cloud]providers.Provider
	// Policies returns the current good policy set; nil until one is loaded
	// (no pass runs without one: an empty set would remove everything).
	Policies func() *policies.Set
	// Clock is the source of time; default SystemClock.
	Clock Clock
	// Mode is ModeEnforce (default) or ModeReport.
	Mode Mode
	// ResyncInterval is how often a full pass observes every scope;
	// default 5m.
	ResyncInterval time.Duration
	// PollInterval is how often the leader looks for grants another replica
	// changed (approved, revoked, extended): those replicas' Trigger calls
	// reach only themselves. Default 2s.
	PollInterval time.Duration
	// Logger receives the engine's logs; default slog.Default().
	Logger *slog.Logger
	// Alert receives permanent failures, standing-privilege findings and
	// grants past expiry whose removal is not confirmed. Each condition is
	// raised once while it lasts (again after it cleared, or after a change
	// of leader). Alerts are delivered from one goroutine in order; a slow
	// Alert delays later alerts, never a pass. Nil drops them (they are
	// logged either way).
	Alert func(context.Context, Alert)
	// Holder identifies this replica in the lease; default a random ID.
	Holder string
	// LeaseTTL is how long the lease lasts unrenewed; it is renewed every
	// TTL/3 and before every pass. Default 15s.
	LeaseTTL time.Duration
	// Workers bounds how many scopes are reconciled at once; default 16.
	Workers int
	// ScopeTimeout bounds one scope's observe and apply (a real-time
	// network timeout); a scope that takes longer fails transiently and is
	// retried. Default 1m.
	ScopeTimeout time.Duration
	// OverdueAfter is how long a grant may be past its expiry without
	// confirmed removal before an alert; default 1m.
	OverdueAfter time.Duration
	// MeterProvider and TracerProvider receive the engine's metrics and
	// spans; nil uses the global OpenTelemetry providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
}

// AlertKind classifies an Alert.
type AlertKind string

// Kinds of alerts.
const (
	// AlertPermanentFailure: the cloud refused a change for good, or a
	// scope cannot be read or written at all (permissions, no provider).
	AlertPermanentFailure AlertKind = "permanent-failure"
	// AlertStanding: an unmanaged assignment without expiry of a role
	// that is granted just in time.
	AlertStanding AlertKind = "standing-privilege"
	// AlertExpiryOverdue: a grant is past its expiry by more than
	// OverdueAfter and the cloud has not confirmed the removal.
	AlertExpiryOverdue AlertKind = "expiry-overdue"
)

// Alert is something a person should look at.
type Alert struct {
	Kind  AlertKind      `json:"kind"`
	Scope model.ScopeKey `json:"scope,omitzero"`
	// Grant is the grant concerned, if any.
	Grant string `json:"grant,omitempty"`
	// Binding is the binding concerned, if any.
	Binding *model.Binding `json:"binding,omitempty"`
	// Reason is the planner's reason for the change or finding, if any.
	Reason model.Reason `json:"reason,omitempty"`
	// Message says what happened and what to do, as a sentence.
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Status is what the engine last did, for /readyz and logs.
type Status struct {
	// Holder is this replica's lease holder ID.
	Holder string `json:"holder"`
	// Leader reports whether this replica runs reconcile now.
	Leader bool `json:"leader"`
	// LeaderHolder is the replica last seen holding the lease: this one
	// when Leader, "" while unknown.
	LeaderHolder string `json:"leader_holder,omitempty"`
	Mode         Mode   `json:"mode"`
	// Passes counts the passes this replica has run.
	Passes int64 `json:"passes"`
	// LastPass is when the last pass started, LastKind whether it was
	// "full" or "targeted", LastDuration how long it took.
	LastPass     time.Time     `json:"last_pass,omitzero"`
	LastKind     string        `json:"last_kind,omitempty"`
	LastDuration time.Duration `json:"last_duration_ns,omitempty"`
	// LastError is why the last pass could not run at all ("" when it ran).
	LastError string `json:"last_error,omitempty"`
	// ScopeErrors maps "cloud:scope" to the error of its last attempt, for
	// scopes whose last attempt failed.
	ScopeErrors map[string]string `json:"scope_errors,omitempty"`
	// LastChanges counts what the last pass planned (in report mode, what
	// it would have done).
	LastChanges ChangeCounts `json:"last_changes"`
	// Overdue counts live grants past their expiry whose removal the
	// cloud has not confirmed.
	Overdue int `json:"overdue"`
}

// ChangeCounts summarises a plan.
type ChangeCounts struct {
	Create   int `json:"create"`
	Delete   int `json:"delete"`
	Replace  int `json:"replace"`
	Findings int `json:"findings"`
}

func countChanges(c model.Changes) ChangeCounts {
	return ChangeCounts{Create: len(c.Create), Delete: len(c.Delete), Replace: len(c.Replace), Findings: len(c.Findings)}
}

// Engine is the reconcile loop: it keeps the clouds in line with the grants
// that should exist now. Every replica builds one and calls Run; the one
// holding the lease does the work. Trigger and PolicyChanged are safe to
// call from any goroutine at any time.
type Engine struct {
	opts  Options
	store state.Store
	clock Clock
	log   *slog.Logger
	ins   *instruments

	running atomic.Bool
	leader  atomic.Bool

	// Requests from other goroutines, taken by the loop.
	mu            sync.Mutex
	dirty         map[model.ScopeKey]bool
	fullRequested bool
	pollRequested bool
	wake          chan struct{}
	policyChanged atomic.Bool
	// settleRetry asks for a pass soon: the recorder could not store a
	// status change the cloud has confirmed.
	settleRetry atomic.Bool

	leaseMu sync.Mutex
	lease   state.Lease

	statusMu sync.Mutex
	status   Status

	// ended caches grants in a terminal status (they never change) that
	// plans need to explain why a binding goes.
	endedMu sync.Mutex
	ended   map[string]*model.Grant

	alerts chan Alert

	// Loop state, owned by the leader's loop goroutine (seen is shared
	// with the recorder under seenMu).
	loop   loopState
	seenMu sync.Mutex

	// Metric readings, written by the loop and read by gauge callbacks.
	activeGrants  atomic.Int64
	oldestOverdue atomic.Int64 // expiry (unix ns) of the oldest unconfirmed, 0 when none

	// Test hooks (export_test.go).
	onEnded   func(g model.Grant, lag time.Duration)
	noRelease bool
}

// NewEngine checks opts, fills in defaults and returns an engine that is
// not running yet.
func NewEngine(opts Options) (*Engine, error) {
	var problems []string
	if opts.Store == nil {
		problems = append(problems, "Store is required")
	}
	if opts.Policies == nil {
		problems = append(problems, "Policies is required (a function returning the current policy set)")
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeEnforce
	case ModeEnforce, ModeReport:
	default:
		problems = append(problems, fmt.Sprintf("mode %q is not %q or %q", opts.Mode, ModeEnforce, ModeReport))
	}
	for cloud, p := range opts.Providers {
		if p == nil {
			problems = append(problems, fmt.Sprintf("provider for cloud %q is nil", cloud))
		} else if p.Cloud() != cloud {
			problems = append(problems, fmt.Sprintf("provider registered for cloud %q serves %q", cloud, p.Cloud()))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ResyncInterval", opts.ResyncInterval}, {"PollInterval", opts.PollInterval}, {"LeaseTTL", opts.LeaseTTL},
		{"ScopeTimeout", opts.ScopeTimeout}, {"OverdueAfter", opts.OverdueAfter}} {
		if d.v < 0 {
			problems = append(problems, fmt.Sprintf("%s must not be negative, got %s", d.name, d.v))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("configuring the reconcile engine: %s", strings.Join(problems, "; "))
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock()
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.ScopeTimeout == 0 {
		opts.ScopeTimeout = DefaultScopeTimeout
	}
	if opts.OverdueAfter == 0 {
		opts.OverdueAfter = DefaultOverdueAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Holder == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generating a replica ID: %w", err)
		}
		opts.Holder = "replica-" + hex.EncodeToString(b[:])
	}
	opts.Providers = maps.Clone(opts.Providers)
	e := &Engine{
		opts:   opts,
		store:  opts.Store,
		clock:  opts.Clock,
		log:    opts.Logger.With("component", "reconcile", "holder", opts.Holder),
		dirty:  make(map[model.ScopeKey]bool),
		wake:   make(chan struct{}, 1),
		ended:  make(map[string]*model.Grant),
		alerts: make(chan Alert, 1024),
		status: Status{Holder: opts.Holder, Mode: opts.Mode},
	}
	ins, err := newInstruments(e, opts.MeterProvider, opts.TracerProvider)
	if err != nil {
		return nil, err
	}
	e.ins = ins
	return e, nil
}

// Trigger asks for a pass soon: over the given scopes, or a full pass when
// none are given. It never blocks; requests made while a pass runs are
// merged into the next one. On a replica that is not the leader it only
// takes effect if this replica becomes leader (the leader finds changed
// grants itself, every PollInterval).
func (e *Engine) Trigger(scopes ...model.ScopeKey) {
	e.mu.Lock()
	if len(scopes) == 0 {
		e.fullRequested = true
	}
	for _, s := range scopes {
		e.dirty[s] = true
	}
	e.pollRequested = true
	e.mu.Unlock()
	e.poke()
}

// PolicyChanged tells the engine the policy set was swapped: the leader
// syncs temporary blocks into grants, re-evaluates live just-in-time grants
// (see ReviewJIT) and runs a full pass. Safe to call at any time, from any
// goroutine, leader or not, running or not.
func (e *Engine) PolicyChanged() {
	e.policyChanged.Store(true)
	e.poke()
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// triggers is what Trigger calls asked for since the loop last looked.
type triggers struct {
	scopes map[model.ScopeKey]bool
	full   bool
	poll   bool
}

func (e *Engine) takeTriggers() triggers {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := triggers{scopes: e.dirty, full: e.fullRequested, poll: e.pollRequested}
	e.dirty = make(map[model.ScopeKey]bool)
	e.fullRequested, e.pollRequested = false, false
	return t
}

// IsLeader reports whether this replica holds the lease and runs reconcile.
func (e *Engine) IsLeader() bool { return e.leader.Load() }

// Status returns what the engine last did.
func (e *Engine) Status() Status {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	s := e.status
	s.Leader = e.leader.Load()
	s.ScopeErrors = maps.Clone(s.ScopeErrors)
	return s
}

func (e *Engine) updateStatus(f func(*Status)) {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	f(&e.status)
}

// PlanNow observes every scope and returns what a pass would change right
// now, without changing anything: the plan of `elevate plan`. It includes
// what the current policy set asks of the grants (temporary blocks not yet
// synced, revocations and clamps of a policy change) as if it were already
// applied. It needs no lease and may run beside Run.
func (e *Engine) PlanNow(ctx context.Context) (model.Changes, error) {
	live, err := readLive(ctx, e.store)
	if err != nil {
		return model.Changes{}, err
	}
	snap, err := e.snapshot(ctx, e.store, grantPtrs(live), e.clock.Now(), false)
	if err != nil {
		return model.Changes{}, err
	}
	scopes, err := e.fullScopes(ctx, e.store, snap, nil)
	if err != nil {
		return model.Changes{}, err
	}
	e.index(snap, nil)
	results := e.runScopes(ctx, e.store, nil, snap, scopes)
	var out model.Changes
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("observing %s: %w", r.scope, r.err))
			continue
		}
		out.Create = append(out.Create, r.changes.Create...)
		out.Delete = append(out.Delete, r.changes.Delete...)
		out.Replace = append(out.Replace, r.changes.Replace...)
		out.Findings = append(out.Findings, r.changes.Findings...)
	}
	sortChanges(out.Create)
	sortChanges(out.Delete)
	sortChanges(out.Replace)
	slices.SortFunc(out.Findings, func(a, b model.Finding) int { return compareBindings(a.Binding, b.Binding) })
	if len(errs) > 0 {
		return out, fmt.Errorf("planning: %d of %d scopes could not be read (the plan covers the others): %w", len(errs), len(scopes), errors.Join(errs...))
	}
	return out, nil
}

// sendAlert queues a for delivery and logs it.
func (e *Engine) sendAlert(a Alert) {
	e.log.Warn("alert", "kind", a.Kind, "scope", a.Scope.String(), "grant", a.Grant, "reason", a.Reason, "message", a.Message)
	if e.opts.Alert == nil {
		return
	}
	select {
	case e.alerts <- a:
	default:
		e.log.Error("alert queue full: alert dropped (the Alert hook is too slow)", "kind", a.Kind, "message", a.Message)
	}
}

func (e *Engine) deliverAlerts(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-e.alerts:
			e.opts.Alert(ctx, a)
		}
	}
}
