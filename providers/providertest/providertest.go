// Package providertest is the conformance suite every elevate provider
// runs against its cloud's emulator: grant, observe, revoke, idempotency,
// ownership (never touch a binding without elevate's marker, refuse such
// deletes in the write path), drift detection, batches and concurrent
// writers.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// OutOfBand changes the cloud behind elevate's back, the way a person with
// console access or another tool would. Each cloud's emulator implements it
// over its own state.
type OutOfBand interface {
	// AddUnmanaged creates b cloud-side without an ownership marker
	// (b.Owner is empty). A zero b.Expires means standing access.
	AddUnmanaged(b model.Binding) error
	// TamperExpiry changes the expiry of the managed binding with b's key
	// to expires, keeping its marker.
	TamperExpiry(b model.Binding, expires time.Time) error
}

// Env is one fresh provider under test and what the suite needs to know
// about its cloud.
type Env struct {
	Provider  providers.Provider
	OutOfBand OutOfBand
	// Scope is where the suite works; nothing else writes there during a
	// test.
	Scope model.ScopeKey
	// Targets are at least two distinct targets in Scope that accept
	// bindings.
	Targets []model.Target
	// Principals are at least three distinct identities the cloud can bind.
	Principals []model.Principal
	// Now is the cloud's clock; default time.Now.
	Now func() time.Time
}

// Owner returns the grant ID the suite uses as the n-th ownership marker.
// IDs are letters and digits only so that every cloud's marker encoding
// (an AWS statement Sid is alphanumeric) round-trips them.
func Owner(n int) string { return fmt.Sprintf("conformance%04d", n) }

// Run runs the conformance suite; newEnv is called once per case and must
// return a provider with an empty Scope.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		run  func(*testing.T, *suite)
	}{
		{"GrantThenObserve", testGrantThenObserve},
		{"Revoke", testRevoke},
		{"IdempotentApply", testIdempotentApply},
		{"NeverTouchesUnmanaged", testNeverTouchesUnmanaged},
		{"RemovesStandingOnlyWhenAsked", testRemovesStanding},
		{"DetectsTamperedExpiry", testDetectsTamperedExpiry},
		{"BatchOfManyChanges", testBatch},
		{"FailuresArePerChange", testPerChangeFailure},
		{"RefusesUnboundedOrUnownedWrites", testRefusesBadWrites},
		{"ConcurrentWritersLoseNothing", testConcurrentWriters},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newEnv(t)
			if len(env.Targets) < 2 || len(env.Principals) < 3 {
				t.Fatalf("conformance env needs at least 2 targets and 3 principals, got %d and %d", len(env.Targets), len(env.Principals))
			}
			for _, tg := range env.Targets {
				if tg.ScopeKey() != env.Scope {
					t.Fatalf("conformance env target %s is not in scope %s", tg, env.Scope)
				}
			}
			if env.Now == nil {
				env.Now = time.Now
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c.run(t, &suite{Env: env, ctx: ctx, base: env.Now().UTC().Truncate(time.Second)})
		})
	}
}

type suite struct {
	Env
	ctx  context.Context
	base time.Time // the cloud's now, whole seconds
}

// managed returns a binding elevate would write: target i, principal j,
// owner n, expiring after d.
func (s *suite) managed(i, j, n int, d time.Duration) model.Binding {
	return model.Binding{Target: s.Targets[i], Principal: s.Principals[j], Owner: Owner(n), Expires: s.base.Add(d)}
}

func create(b model.Binding) model.Change {
	return model.Change{Reason: model.ReasonGranted, New: &b}
}

func remove(b model.Binding, r model.Reason) model.Change {
	return model.Change{Reason: r, Old: &b}
}

func replace(old, b model.Binding) model.Change {
	return model.Change{Reason: model.ReasonTampered, Old: &old, New: &b}
}

// apply applies changes and fails the test on a batch error.
func (s *suite) apply(t *testing.T, changes ...model.Change) []providers.Result {
	t.Helper()
	res, err := s.Provider.Apply(s.ctx, s.Scope, changes)
	if err != nil {
		t.Fatalf("Apply(%d changes) failed as a batch: %v", len(changes), err)
	}
	if len(res) != len(changes) {
		t.Fatalf("Apply returned %d results for %d changes", len(res), len(changes))
	}
	return res
}

// applyOK applies changes and fails the test on any error.
func (s *suite) applyOK(t *testing.T, changes ...model.Change) []providers.Result {
	t.Helper()
	res := s.apply(t, changes...)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("change %d (%s) failed: %v", i, r.Change.Reason, r.Err)
		}
	}
	return res
}

func (s *suite) observe(t *testing.T) []model.Binding {
	t.Helper()
	bs, err := s.Provider.Observe(s.ctx, s.Scope, s.Targets)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	for _, b := range bs {
		if b.Target.ScopeKey() != s.Scope {
			t.Errorf("Observe(%s) returned a binding in %s", s.Scope, b.Target.ScopeKey())
		}
	}
	return bs
}

// withKey returns the observed bindings with b's key.
func withKey(bs []model.Binding, b model.Binding) []model.Binding {
	var out []model.Binding
	for _, x := range bs {
		if x.Key() == b.Key() {
			out = append(out, x)
		}
	}
	return out
}

func sameWindow(a, b model.Binding) bool {
	return a.NotBefore.Equal(b.NotBefore) && a.Expires.Equal(b.Expires)
}

func describe(b model.Binding) string {
	return fmt.Sprintf("%s for %s owner %q window [%s, %s)", b.Target, b.Principal, b.Owner,
		b.NotBefore.Format(time.RFC3339), b.Expires.Format(time.RFC3339))
}

// mustHave fails unless exactly one observed binding has b's key and its
// window equals b's.
func mustHave(t *testing.T, bs []model.Binding, b model.Binding) model.Binding {
	t.Helper()
	got := withKey(bs, b)
	if len(got) != 1 {
		t.Fatalf("want exactly one binding %s, observed %d", describe(b), len(got))
	}
	if !sameWindow(got[0], b) {
		t.Fatalf("binding %s observed with window [%s, %s)", describe(b),
			got[0].NotBefore.Format(time.RFC3339), got[0].Expires.Format(time.RFC3339))
	}
	return got[0]
}

func mustNotHave(t *testing.T, bs []model.Binding, b model.Binding) {
	t.Helper()
	if got := withKey(bs, b); len(got) != 0 {
		t.Fatalf("binding %s still observed (%d)", describe(b), len(got))
	}
}

// managedOf returns the observed managed bindings.
func managedOf(bs []model.Binding) map[model.BindingKey]model.Binding {
	out := make(map[model.BindingKey]model.Binding)
	for _, b := range bs {
		if b.Managed() {
			out[b.Key()] = b
		}
	}
	return out
}

func testGrantThenObserve(t *testing.T, s *suite) {
	if got := managedOf(s.observe(t)); len(got) != 0 {
		t.Fatalf("a fresh scope has %d managed bindings, want none", len(got))
	}
	b := s.managed(0, 0, 1, time.Hour)
	future := s.managed(1, 0, 1, 2*time.Hour)
	future.NotBefore = s.base.Add(10 * time.Minute)
	res := s.applyOK(t, create(b), create(future))
	for i, want := range []model.Binding{b, future} {
		w := res[i].Binding
		if w == nil || w.Key() != want.Key() || !sameWindow(*w, want) {
			t.Errorf("result %d reports written binding %v, want %s", i, w, describe(want))
		}
	}
	bs := s.observe(t)
	got := mustHave(t, bs, b)
	if got.Owner != Owner(1) || !got.Principal.Equal(b.Principal) || got.Target != b.Target {
		t.Errorf("observed %s, want %s", describe(got), describe(b))
	}
	mustHave(t, bs, future)
	if n := len(managedOf(bs)); n != 2 {
		t.Errorf("observed %d managed bindings, want 2", n)
	}
}

func testRevoke(t *testing.T, s *suite) {
	b := s.managed(0, 0, 1, time.Hour)
	keep := s.managed(0, 1, 2, time.Hour)
	s.applyOK(t, create(b), create(keep))
	got := mustHave(t, s.observe(t), b)
	s.applyOK(t, remove(got, model.ReasonRevoked))
	bs := s.observe(t)
	mustNotHave(t, bs, b)
	mustHave(t, bs, keep)
	// Deleting what is already gone succeeds: a pass that crashed after the
	// write is repeated by the next one.
	s.applyOK(t, remove(got, model.ReasonRevoked))
	mustHave(t, s.observe(t), keep)
}

func testIdempotentApply(t *testing.T, s *suite) {
	b := s.managed(0, 0, 1, time.Hour)
	s.applyOK(t, create(b))
	s.applyOK(t, create(b))
	bs := s.observe(t)
	mustHave(t, bs, b)
	if n := len(managedOf(bs)); n != 1 {
		t.Fatalf("two identical creates left %d managed bindings, want 1", n)
	}
	// A create of an existing binding with a new window sets the window
	// (a renewal applied twice).
	renewed := b
	renewed.Expires = s.base.Add(3 * time.Hour)
	s.applyOK(t, create(renewed))
	s.applyOK(t, create(renewed))
	bs = s.observe(t)
	mustHave(t, bs, renewed)
	if n := len(managedOf(bs)); n != 1 {
		t.Fatalf("re-creating with a new window left %d managed bindings, want 1", n)
	}
}

func testNeverTouchesUnmanaged(t *testing.T, s *suite) {
	standing := model.Binding{Target: s.Targets[0], Principal: s.Principals[1]}
	bounded := model.Binding{Target: s.Targets[0], Principal: s.Principals[2], Expires: s.base.Add(3 * time.Hour)}
	for _, u := range []model.Binding{standing, bounded} {
		if err := s.OutOfBand.AddUnmanaged(u); err != nil {
			t.Fatalf("adding unmanaged binding out of band: %v", err)
		}
	}
	checkUntouched := func(when string) {
		t.Helper()
		bs := s.observe(t)
		for _, u := range []model.Binding{standing, bounded} {
			got := withKey(bs, u)
			if len(got) != 1 || got[0].Managed() || !sameWindow(got[0], u) {
				t.Fatalf("%s: unmanaged binding %s changed: observed %v", when, describe(u), got)
			}
		}
	}
	checkUntouched("before any write")

	// Managed bindings next to the unmanaged ones: same target and
	// principal, different owner.
	m := s.managed(0, 1, 1, time.Hour)
	other := s.managed(1, 2, 2, time.Hour)
	s.applyOK(t, create(m), create(other))
	checkUntouched("after creates")
	s.applyOK(t, remove(m, model.ReasonExpired), remove(other, model.ReasonRevoked))
	checkUntouched("after deletes of managed neighbours")

	// The write path refuses to delete or replace what carries no marker.
	forged := standing
	forged.Owner = Owner(99)
	res := s.apply(t,
		remove(standing, model.ReasonExpired),
		replace(standing, s.managed(0, 1, 3, time.Hour)),
		remove(bounded, model.ReasonStandingFixed), // bounded: not standing
	)
	for i, r := range res {
		if !errors.Is(r.Err, providers.ErrNotOwned) {
			t.Errorf("change %d (%s of an unmanaged binding): got error %v, want ErrNotOwned", i, r.Change.Reason, r.Err)
		}
	}
	// A change claiming an owner the cloud-side binding does not carry
	// must not touch it; it may succeed as a no-op or be refused.
	res = s.apply(t, remove(forged, model.ReasonRevoked))
	if res[0].Err != nil && !errors.Is(res[0].Err, providers.ErrNotOwned) {
		t.Errorf("delete with a forged owner: got %v, want success (no-op) or ErrNotOwned", res[0].Err)
	}
	checkUntouched("after refused writes")
	if got := managedOf(s.observe(t)); len(got) != 0 {
		t.Errorf("refused writes left managed bindings: %v", got)
	}
}

func testRemovesStanding(t *testing.T, s *suite) {
	standing := model.Binding{Target: s.Targets[1], Principal: s.Principals[0]}
	if err := s.OutOfBand.AddUnmanaged(standing); err != nil {
		t.Fatalf("adding unmanaged binding out of band: %v", err)
	}
	res := s.apply(t, remove(standing, model.ReasonUnknownOwner))
	if !errors.Is(res[0].Err, providers.ErrNotOwned) {
		t.Fatalf("delete of standing access without ReasonStandingFixed: got %v, want ErrNotOwned", res[0].Err)
	}
	mustHave(t, s.observe(t), standing)
	s.applyOK(t, remove(standing, model.ReasonStandingFixed))
	mustNotHave(t, s.observe(t), standing)
}

func testDetectsTamperedExpiry(t *testing.T, s *suite) {
	b := s.managed(0, 0, 1, time.Hour)
	s.applyOK(t, create(b))
	tampered := b
	tampered.Expires = s.base.Add(30 * 24 * time.Hour)
	if err := s.OutOfBand.TamperExpiry(b, tampered.Expires); err != nil {
		t.Fatalf("tampering with expiry out of band: %v", err)
	}
	got := mustHave(t, s.observe(t), tampered)
	if got.Owner != b.Owner {
		t.Fatalf("tampered binding observed with owner %q, want %q (the marker survives)", got.Owner, b.Owner)
	}
	s.applyOK(t, replace(got, b))
	bs := s.observe(t)
	mustHave(t, bs, b)
	if n := len(managedOf(bs)); n != 1 {
		t.Fatalf("replace left %d managed bindings, want 1", n)
	}
}

func testBatch(t *testing.T, s *suite) {
	var first, second []model.Binding
	n := 0
	for i := range 2 {
		for j := range 3 {
			n++
			first = append(first, s.managed(i, j, n, time.Hour))
			second = append(second, s.managed(i, j, 100+n, 2*time.Hour))
		}
	}
	var changes []model.Change
	for _, b := range first {
		changes = append(changes, create(b))
	}
	s.applyOK(t, changes...)
	bs := s.observe(t)
	for _, b := range first {
		mustHave(t, bs, b)
	}
	// Half the first set goes, the second set comes, in one batch.
	changes = changes[:0]
	for _, b := range first[:3] {
		changes = append(changes, remove(b, model.ReasonExpired))
	}
	for _, b := range second {
		changes = append(changes, create(b))
	}
	s.applyOK(t, changes...)
	bs = s.observe(t)
	want := append(append([]model.Binding{}, first[3:]...), second...)
	for _, b := range want {
		mustHave(t, bs, b)
	}
	for _, b := range first[:3] {
		mustNotHave(t, bs, b)
	}
	if got := len(managedOf(bs)); got != len(want) {
		t.Fatalf("observed %d managed bindings, want %d", got, len(want))
	}
}

func testPerChangeFailure(t *testing.T, s *suite) {
	u := model.Binding{Target: s.Targets[1], Principal: s.Principals[1]}
	if err := s.OutOfBand.AddUnmanaged(u); err != nil {
		t.Fatalf("adding unmanaged binding out of band: %v", err)
	}
	a, b := s.managed(0, 0, 1, time.Hour), s.managed(1, 2, 2, time.Hour)
	res := s.apply(t, create(a), remove(u, model.ReasonExpired), create(b))
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("valid changes failed next to a refused one: %v, %v", res[0].Err, res[2].Err)
	}
	if !errors.Is(res[1].Err, providers.ErrNotOwned) {
		t.Fatalf("delete of an unmanaged binding: got %v, want ErrNotOwned", res[1].Err)
	}
	bs := s.observe(t)
	mustHave(t, bs, a)
	mustHave(t, bs, b)
	mustHave(t, bs, u)
}

func testRefusesBadWrites(t *testing.T, s *suite) {
	unowned := s.managed(0, 0, 1, time.Hour)
	unowned.Owner = ""
	unbounded := s.managed(0, 1, 2, 0)
	unbounded.Expires = time.Time{}
	for _, b := range []model.Binding{unowned, unbounded} {
		res, err := s.Provider.Apply(s.ctx, s.Scope, []model.Change{create(b)})
		if err == nil && (len(res) != 1 || res[0].Err == nil) {
			t.Errorf("create of %s succeeded; elevate only writes owned, time-bounded bindings", describe(b))
		}
	}
	bs := s.observe(t)
	mustNotHave(t, bs, unowned)
	mustNotHave(t, bs, unbounded)
}

func testConcurrentWriters(t *testing.T, s *suite) {
	// Conflicts (an etag mismatch) are transient: the real retry decorator
	// handles them, as it does in the daemon.
	p := providers.WithRetry(s.Provider, providers.RetryPolicy{MaxAttempts: 20, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond})
	const writers = 8
	want := make([]model.Binding, writers)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		want[i] = s.managed(i%2, i%3, i+1, time.Hour)
		wg.Go(func() {
			res, err := p.Apply(s.ctx, s.Scope, []model.Change{create(want[i])})
			if err == nil && res[0].Err != nil {
				err = res[0].Err
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	bs := s.observe(t)
	for _, b := range want {
		mustHave(t, bs, b)
	}
}
