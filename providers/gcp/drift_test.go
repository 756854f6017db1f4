package gcp_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
)

// driftCase is one grant elevate has written, then an out-of-band edit.
type driftCase struct {
	e       *env
	grant   *model.Grant
	desired model.Binding
	gov     reconcile.Governed
}

func newDriftCase(t *testing.T, remove bool) *driftCase {
	e := newEnv(t)
	g := &model.Grant{
		ID: "g1", Kind: model.KindJIT, Principal: alice, Role: "db-admin", Policy: "db", Status: model.StatusActive,
		Starts: t0.Add(-10 * time.Minute), Expires: t0.Add(time.Hour),
	}
	d := model.Binding{Target: target(prod, sqlAdm), Principal: alice, Owner: g.ID, NotBefore: g.Starts, Expires: g.Expires}
	c := &driftCase{e: e, grant: g, desired: d, gov: reconcile.Governed{d.Target: {Roles: []string{"db-admin"}, Remove: remove}}}
	mustApply(t, e.prov, prod, create(d))
	if got := c.plan(t); !got.Empty() {
		t.Fatalf("a fresh grant plans changes: %+v", got)
	}
	return c
}

// plan observes the scope and plans it with the real planner.
func (c *driftCase) plan(t *testing.T) model.Changes {
	t.Helper()
	observed, err := c.e.prov.Observe(context.Background(), prod, []model.Target{c.desired.Target})
	if err != nil {
		t.Fatal(err)
	}
	return reconcile.Plan{
		Desired: []model.Binding{c.desired}, Observed: observed, Governed: c.gov,
		Grants: map[string]*model.Grant{c.grant.ID: c.grant}, Now: c.e.clock.Now(),
		Scopes: map[model.ScopeKey]bool{prod: true},
	}.Compute()
}

// repair applies the plan and checks that the scope then plans nothing and
// that only the grantee holds the role.
func (c *driftCase) repair(t *testing.T, ch model.Changes) {
	t.Helper()
	mustApply(t, c.e.prov, prod, reconcile.ByScope(ch)[prod]...)
	if again := c.plan(t); !again.Empty() {
		t.Errorf("after the repair the plan is not empty: %+v", again)
	}
	now := c.e.clock.Now()
	if !c.e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, now) {
		t.Error("the grantee lost access")
	}
	if c.e.emu.EffectiveAccess(prod.Scope, "user:mallory@example.com", sqlAdm, now) {
		t.Error("mallory still holds the role")
	}
	if c.e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, c.grant.Expires) {
		t.Error("the grantee keeps access past the grant's expiry")
	}
}

func TestDriftExpiryMoved(t *testing.T) {
	c := newDriftCase(t, false)
	if err := (outOfBand{c.e.emu}).TamperExpiry(c.desired, t0.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ch := c.plan(t)
	if len(ch.Replace) != 1 || ch.Replace[0].Reason != model.ReasonTampered || !ch.Replace[0].Old.Expires.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("plan %+v; want one tampered replace of the moved expiry", ch)
	}
	c.repair(t, ch)
}

func TestDriftConditionEdited(t *testing.T) {
	c := newDriftCase(t, false)
	// The title survives, the expression no longer bounds anything.
	if err := (outOfBand{c.e.emu}).editOwned(c.desired, func(b *iampb.Binding) { b.Condition.Expression = "true" }); err != nil {
		t.Fatal(err)
	}
	ch := c.plan(t)
	if len(ch.Replace) != 1 || ch.Replace[0].Reason != model.ReasonTampered || !ch.Replace[0].Old.Expires.IsZero() {
		t.Fatalf("plan %+v; want one tampered replace", ch)
	}
	c.repair(t, ch)
}

func TestDriftConditionRemoved(t *testing.T) {
	c := newDriftCase(t, true)
	// Without a condition the binding loses elevate's marker with it: it is
	// now standing access to a role granted just in time.
	if err := (outOfBand{c.e.emu}).editOwned(c.desired, func(b *iampb.Binding) { b.Condition = nil }); err != nil {
		t.Fatal(err)
	}
	ch := c.plan(t)
	if len(ch.Findings) != 1 || ch.Findings[0].Reason != model.ReasonStanding ||
		len(ch.Delete) != 1 || ch.Delete[0].Reason != model.ReasonStandingFixed ||
		len(ch.Create) != 1 || ch.Create[0].Reason != model.ReasonGranted {
		t.Fatalf("plan %+v; want a standing finding, its removal and the grant written again", ch)
	}
	c.repair(t, ch)
	for _, b := range c.e.bindingsOf(prod) {
		if b.Condition == nil && b.Role == sqlAdm {
			t.Errorf("the unconditional binding survived: %v", b)
		}
	}
}

func TestDriftMemberChanged(t *testing.T) {
	c := newDriftCase(t, false)
	if err := (outOfBand{c.e.emu}).editOwned(c.desired, func(b *iampb.Binding) { b.Members = []string{"user:mallory@example.com"} }); err != nil {
		t.Fatal(err)
	}
	if !c.e.emu.EffectiveAccess(prod.Scope, "user:mallory@example.com", sqlAdm, t0) {
		t.Fatal("the edit did not give mallory the role")
	}
	ch := c.plan(t)
	if len(ch.Replace) != 1 || ch.Replace[0].Reason != model.ReasonTampered || ch.Replace[0].Old.Principal.String() != "user:mallory@example.com" {
		t.Fatalf("plan %+v; want a tampered replace of mallory's binding", ch)
	}
	c.repair(t, ch)
}

func TestDriftMemberAdded(t *testing.T) {
	c := newDriftCase(t, false)
	if err := (outOfBand{c.e.emu}).editOwned(c.desired, func(b *iampb.Binding) { b.Members = append(b.Members, "user:mallory@example.com") }); err != nil {
		t.Fatal(err)
	}
	ch := c.plan(t)
	if len(ch.Delete) != 1 || ch.Delete[0].Reason != model.ReasonTampered || ch.Delete[0].Old.Principal.String() != "user:mallory@example.com" {
		t.Fatalf("plan %+v; want mallory's membership deleted as tampered", ch)
	}
	c.repair(t, ch)
}
