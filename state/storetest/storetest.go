// Package storetest is the conformance suite every state.Store
// implementation must pass: the memory, SQLite and PostgreSQL stores run
// the same cases, so they keep the same semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// Backend is what Run needs to know about one store implementation.
type Backend struct {
	// Open returns a new, empty store built with opts (the suite passes a
	// fake clock) and closes it when the test ends.
	Open func(t *testing.T, opts ...state.Option) state.Store
	// RewriteAudit replaces audit entry seq in the underlying storage with
	// e, or deletes it when e is nil, bypassing the store and its
	// append-only guards the way someone with database access could.
	RewriteAudit func(t *testing.T, s state.Store, seq int64, e *state.AuditEvent)
}

// Run runs the conformance suite against b. Every case opens its own store
// and runs in parallel with the others.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"GrantLifecycle", testGrantLifecycle},
		{"GrantValidation", testGrantValidation},
		{"OptimisticConcurrency", testOptimisticConcurrency},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"ListFilters", testListFilters},
		{"Approvals", testApprovals},
		{"RequesterGroups", testRequesterGroups},
		{"BindingsPerScope", testBindings},
		{"AuditChain", testAuditChain},
		{"AuditTamperDetection", testAuditTamper},
		{"AuditConcurrentAppends", testAuditConcurrent},
		{"Leases", testLeases},
		{"LeaseRace", testLeaseRace},
		{"FencedWrites", testFencedWrites},
		{"Cursors", testCursors},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"PingAndClose", testPingClose},
		{"IncidentLifecycle", testIncidentLifecycle},
		{"IncidentValidation", testIncidentValidation},
		{"IncidentList", testIncidentList},
		{"ConcurrentIncidentUpdates", testConcurrentIncidentUpdates},
		{"Declarations", testDeclarations},
		{"AlertOutbox", testAlertOutbox},
		{"SourceStatus", testSourceStatus},
		{"FencedIncidentWrites", testFencedIncidentWrites},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, b)
		})
	}
}

// Clock is a settable clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start is deliberately not UTC and has nanoseconds: stores must come back
// with UTC microseconds.
var start = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))

// norm is what a stored time must read back as.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func open(t *testing.T, b Backend) (state.Store, *Clock) {
	t.Helper()
	c := NewClock(start)
	return b.Open(t, state.WithClock(c.Now)), c
}

func wantErr(t *testing.T, err, target error, doing string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", doing, err, target)
	}
}

// must(v, err)(t) returns v, or fails the test with err.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var (
	alice = model.MustPrincipal("user:alice@example.com")
	bob   = model.MustPrincipal("user:bob@example.com")
	carol = model.MustPrincipal("user:carol@example.com")
)

// newGrant is a pending just-in-time request.
func newGrant(id string, p model.Principal, role string, requested time.Time) model.Grant {
	return model.Grant{
		ID: id, Kind: model.KindJIT, Principal: p, Role: role, Policy: "db-" + role,
		Status: model.StatusPending, Justification: "incident INC-1", Ticket: "INC-1",
		Duration: 30 * time.Minute, RequestedAt: requested,
	}
}

func ctxFor(t *testing.T) context.Context { return t.Context() }

func describe(g model.Grant) string {
	return fmt.Sprintf("%s v%d %s", g.ID, g.Version, g.Status)
}
