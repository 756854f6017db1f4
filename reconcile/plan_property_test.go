package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
)

var (
	universe   = []model.Target{sqlAdmin, awsDB, gcpOwner, gcpViewer, stray}
	principals = []model.Principal{alice, bob, carol}
	statuses   = []model.GrantStatus{
		model.StatusPending, model.StatusApproved, model.StatusActive, model.StatusExpired,
		model.StatusRevoked, model.StatusDenied, model.StatusFailed,
	}
)

// world is one random reconcile situation: grants in every state, and a
// cloud holding a mix of correct, missing, tampered, duplicated, stray,
// ownerless and foreign bindings.
type world struct {
	grants   []*model.Grant
	desired  []model.Binding
	observed []model.Binding
}

func minutes(t *rapid.T, label string, lo, hi int) time.Duration {
	return time.Duration(rapid.IntRange(lo, hi).Draw(t, label)) * time.Minute
}

func drawWindow(t *rapid.T, b *model.Binding) {
	if rapid.Bool().Draw(t, "bounded") {
		b.NotBefore = now.Add(minutes(t, "start", -120, 60))
		b.Expires = b.NotBefore.Add(minutes(t, "length", 1, 180))
	} else if rapid.Bool().Draw(t, "only-start") {
		b.NotBefore = now.Add(minutes(t, "start", -120, 60))
	}
}

func drawWorld(t *rapid.T, set *policies.Set) world {
	var w world
	roles := []string{"db-admin", "owner", "viewer", "no-such-role"}
	for i := range rapid.IntRange(0, 8).Draw(t, "grants") {
		g := &model.Grant{
			ID:        fmt.Sprintf("g%d", i),
			Principal: rapid.SampledFrom(principals).Draw(t, "principal"),
			Role:      rapid.SampledFrom(roles).Draw(t, "role"),
			Status:    rapid.SampledFrom(statuses).Draw(t, "status"),
		}
		if !rapid.Bool().Draw(t, "unstarted") {
			g.Starts = now.Add(minutes(t, "starts", -120, 60))
		}
		g.Expires = g.Starts.Add(minutes(t, "duration", 1, 120))
		if g.Starts.IsZero() {
			g.Expires = now.Add(minutes(t, "expires", -60, 60))
		}
		w.grants = append(w.grants, g)
	}
	w.desired = reconcile.Desired(set, w.grants, now)
	owners := []string{"g-unknown"}
	for _, g := range w.grants {
		owners = append(owners, g.ID)
	}
	for _, d := range w.desired {
		switch rapid.IntRange(0, 5).Draw(t, "fate") {
		case 0: // missing
		case 1:
			w.observed = append(w.observed, d)
		case 2:
			d.Expires = d.Expires.Add(minutes(t, "shift", -60, 60))
			w.observed = append(w.observed, d)
		case 3:
			d.Principal = rapid.SampledFrom(principals).Draw(t, "member")
			w.observed = append(w.observed, d)
		case 4:
			d.Target = rapid.SampledFrom(universe).Draw(t, "moved")
			w.observed = append(w.observed, d)
		case 5:
			dup := d
			drawWindow(t, &dup)
			w.observed = append(w.observed, d, dup)
		}
	}
	for range rapid.IntRange(0, 5).Draw(t, "strays") {
		b := model.Binding{
			Target:    rapid.SampledFrom(universe).Draw(t, "target"),
			Principal: rapid.SampledFrom(principals).Draw(t, "principal"),
			Owner:     rapid.SampledFrom(owners).Draw(t, "owner"),
		}
		drawWindow(t, &b)
		w.observed = append(w.observed, b)
	}
	for range rapid.IntRange(0, 5).Draw(t, "unmanaged") {
		b := model.Binding{
			Target:    rapid.SampledFrom(universe).Draw(t, "target"),
			Principal: rapid.SampledFrom(principals).Draw(t, "principal"),
		}
		drawWindow(t, &b)
		w.observed = append(w.observed, b)
	}
	return w
}

func (w world) plan(governed reconcile.Governed, observed []model.Binding) reconcile.Plan {
	return reconcile.Plan{
		Desired: w.desired, Observed: observed, Governed: governed,
		Grants: grantsByID(w.grants...), Now: now,
	}
}

func containsBinding(bs []model.Binding, b model.Binding) bool {
	return slices.ContainsFunc(bs, func(x model.Binding) bool { return cmp.Equal(x, b) })
}

// simulate applies changes to a multiset of observed bindings the way a
// provider would.
func simulate(observed []model.Binding, c model.Changes) []model.Binding {
	out := slices.Clone(observed)
	drop := func(b model.Binding) {
		if i := slices.IndexFunc(out, func(x model.Binding) bool { return cmp.Equal(x, b) }); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, ch := range c.Delete {
		drop(*ch.Old)
	}
	for _, ch := range c.Replace {
		drop(*ch.Old)
		out = append(out, *ch.New)
	}
	for _, ch := range c.Create {
		out = append(out, *ch.New)
	}
	return out
}

func TestPlanProperties(t *testing.T) {
	set := loadSet(t, fixtureHCL)
	governed := reconcile.GovernedTargets(set)

	t.Run("NeverTouchesWhatItDoesNotOwn", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			w := drawWorld(t, set)
			c := w.plan(governed, w.observed).Compute()
			for _, ch := range slices.Concat(c.Delete, c.Replace) {
				old := *ch.Old
				if !containsBinding(w.observed, old) {
					t.Fatalf("%s change of a binding that was not observed: %+v", ch.Reason, old)
				}
				if old.Managed() {
					continue
				}
				gov, ok := governed[old.Target]
				if ch.Reason != model.ReasonStandingFixed || ch.New != nil || !ok || !gov.Remove || !old.Expires.IsZero() {
					t.Fatalf("%s change of unmanaged binding %+v (governance %+v)", ch.Reason, old, gov)
				}
			}
			for _, ch := range c.Replace {
				if ch.New.Owner != ch.Old.Owner || ch.New.Target.ScopeKey() != ch.Old.Target.ScopeKey() {
					t.Fatalf("replace across owners or scopes: %+v -> %+v", *ch.Old, *ch.New)
				}
			}
			for _, ch := range slices.Concat(c.Create, c.Replace) {
				if !containsBinding(w.desired, *ch.New) {
					t.Fatalf("%s writes a binding that is not desired: %+v", ch.Reason, *ch.New)
				}
			}
		})
	})

	t.Run("PlanApplyPlanIsEmpty", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			w := drawWorld(t, set)
			first := w.plan(governed, w.observed).Compute()
			after := simulate(w.observed, first)
			second := w.plan(governed, after).Compute()
			if len(second.Create)+len(second.Delete)+len(second.Replace) != 0 {
				t.Fatalf("second plan not empty:\nfirst %+v\nsecond %+v", first, second)
			}
			// What remains to report is the standing access that was only
			// reported.
			var kept []model.Finding
			for _, f := range first.Findings {
				if !governed[f.Binding.Target].Remove {
					kept = append(kept, f)
				}
			}
			if diff := cmp.Diff(kept, second.Findings); diff != "" {
				t.Fatalf("findings after apply (-want +got):\n%s", diff)
			}
		})
	})

	t.Run("OrderIndependent", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			w := drawWorld(t, set)
			want := w.plan(governed, w.observed).Compute()
			shuffled := w
			shuffled.desired = rapid.Permutation(w.desired).Draw(t, "desired")
			got := shuffled.plan(governed, rapid.Permutation(w.observed).Draw(t, "observed")).Compute()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("shuffled inputs changed the plan (-want +got):\n%s", diff)
			}
		})
	})

	t.Run("ThroughMemoryProvider", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			w := drawWorld(t, set)
			cloud := newCloud()
			for _, b := range w.observed {
				if err := cloud.mem[b.Target.Cloud].Put(b); err != nil {
					t.Fatal(err)
				}
			}
			first := w.plan(governed, cloud.observe(t)).Compute()
			cloud.apply(t, first)
			second := w.plan(governed, cloud.observe(t)).Compute()
			if len(second.Create)+len(second.Delete)+len(second.Replace) != 0 {
				t.Fatalf("plan after applying through the provider is not empty:\nfirst %+v\nsecond %+v", first, second)
			}
		})
	})
}

// fataler is what testing.T and rapid.T share.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// cloud is one memory provider per cloud of the fixture.
type cloud struct {
	mem map[model.Cloud]*memory.Provider
}

func newCloud() *cloud {
	return &cloud{mem: map[model.Cloud]*memory.Provider{
		model.CloudGCP: memory.New(memory.Options{Cloud: model.CloudGCP}),
		model.CloudAWS: memory.New(memory.Options{Cloud: model.CloudAWS, DaemonEnforced: true}),
	}}
}

func (c *cloud) observe(t fataler) []model.Binding {
	byScope := map[model.ScopeKey][]model.Target{}
	for _, tg := range universe {
		byScope[tg.ScopeKey()] = append(byScope[tg.ScopeKey()], tg)
	}
	var out []model.Binding
	for scope, targets := range byScope {
		bs, err := c.mem[scope.Cloud].Observe(context.Background(), scope, targets)
		if err != nil {
			t.Fatalf("observing %s: %v", scope, err)
		}
		out = append(out, bs...)
	}
	return out
}

// apply applies the plan one batch per scope and fails on any refusal: the
// planner must never ask for what the write path refuses.
func (c *cloud) apply(t fataler, changes model.Changes) {
	for scope, batch := range reconcile.ByScope(changes) {
		res, err := c.mem[scope.Cloud].Apply(context.Background(), scope, batch)
		if err != nil {
			t.Fatalf("applying to %s: %v", scope, err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("provider refused %s change %+v -> %+v: %v", r.Change.Reason, r.Change.Old, r.Change.New, r.Err)
			}
		}
	}
}

// TestPlanApplyObserveThroughMemoryProvider walks one pass of the loop
// through the real memory provider: every kind of drift at once, applied in
// one batch per scope, and the next pass has nothing to do.
func TestPlanApplyObserveThroughMemoryProvider(t *testing.T) {
	set := loadSet(t, fixtureHCL)
	governed := reconcile.GovernedTargets(set)
	active := grant("g-active", alice, "db-admin")
	tampered := grant("g-tampered", bob, "db-admin")
	missing := grant("g-missing", carol, "owner")
	dave := model.MustPrincipal("user:dave@example.com")
	expired := grant("g-expired", dave, "db-admin")
	expired.Status = model.StatusExpired
	expired.Starts, expired.Expires = now.Add(-3*time.Hour), now.Add(-2*time.Hour)
	revoked := grant("g-revoked", bob, "viewer")
	revoked.Status = model.StatusRevoked
	grants := []*model.Grant{active, tampered, missing, expired, revoked}

	c := newCloud()
	gcp, aws := c.mem[model.CloudGCP], c.mem[model.CloudAWS]
	put := func(p *memory.Provider, b model.Binding) {
		t.Helper()
		if err := p.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	put(gcp, bound(active, sqlAdmin))
	put(aws, bound(active, awsDB))
	put(gcp, with(bound(tampered, sqlAdmin), func(b *model.Binding) { b.Expires = now.Add(90 * 24 * time.Hour) }))
	put(gcp, bound(expired, sqlAdmin))
	put(aws, bound(expired, awsDB))
	put(gcp, bound(revoked, gcpViewer))
	put(gcp, with(bound(active, sqlAdmin), func(b *model.Binding) { b.Owner = "g-forgotten" }))
	put(gcp, model.Binding{Target: gcpOwner, Principal: bob})                                // standing, remove
	put(gcp, model.Binding{Target: sqlAdmin, Principal: carol})                              // standing, report
	put(gcp, model.Binding{Target: gcpViewer, Principal: carol})                             // not governed
	put(gcp, model.Binding{Target: gcpOwner, Principal: alice, Expires: now.Add(time.Hour)}) // bounded, another tool's

	// Expired access is already inert where the cloud enforces expiry; on
	// the daemon-enforced cloud it lasts until the pass removes it.
	if gcp.EffectiveAccess(dave, sqlAdmin, now) || !aws.EffectiveAccess(dave, awsDB, now) {
		t.Fatal("native expiry not modelled as expected before the pass")
	}

	p := reconcile.Plan{
		Desired:  reconcile.Desired(set, grants, now),
		Observed: c.observe(t),
		Governed: governed,
		Grants:   grantsByID(grants...),
		Now:      now,
	}
	first := p.Compute()
	reasons := map[model.Reason]int{}
	for _, ch := range slices.Concat(first.Create, first.Delete, first.Replace) {
		reasons[ch.Reason]++
	}
	wantReasons := map[model.Reason]int{
		model.ReasonGranted: 2, // g-tampered on AWS, g-missing on roles/owner
		model.ReasonExpired: 2, model.ReasonRevoked: 1, model.ReasonUnknownOwner: 1,
		model.ReasonTampered: 1, model.ReasonStandingFixed: 1,
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("first plan reasons (-want +got):\n%s\nplan: %+v", diff, first)
	}
	if len(first.Findings) != 2 {
		t.Errorf("findings %+v, want the two standing assignments", first.Findings)
	}

	writesBefore := gcp.Writes(sqlAdmin.ScopeKey())
	c.apply(t, first)
	if n := gcp.Writes(sqlAdmin.ScopeKey()) - writesBefore; n != 1 {
		t.Errorf("%d writes to the GCP project, want one batch", n)
	}

	p.Observed = c.observe(t)
	second := p.Compute()
	if len(second.Create)+len(second.Delete)+len(second.Replace) != 0 {
		t.Fatalf("second pass plans changes: %+v", second)
	}
	if len(second.Findings) != 1 || !second.Findings[0].Binding.Principal.Equal(carol) {
		t.Errorf("second pass findings %+v, want only the reported standing assignment", second.Findings)
	}
	for _, check := range []struct {
		p      *memory.Provider
		who    model.Principal
		target model.Target
		want   bool
	}{
		{gcp, alice, sqlAdmin, true},
		{aws, bob, awsDB, true},
		{gcp, carol, gcpOwner, true},
		{aws, dave, awsDB, false}, // expired grant removed
		{gcp, dave, sqlAdmin, false},
		{gcp, bob, gcpViewer, false},
		{gcp, bob, gcpOwner, false},  // standing access removed
		{gcp, carol, sqlAdmin, true}, // standing access only reported
		{gcp, carol, gcpViewer, true},
		{gcp, alice, gcpOwner, true}, // another tool's binding untouched
	} {
		if got := check.p.EffectiveAccess(check.who, check.target, now); got != check.want {
			t.Errorf("after the pass, %s on %s: access %v, want %v", check.who, check.target, got, check.want)
		}
	}
	if gcp.EffectiveAccess(bob, sqlAdmin, now.Add(31*time.Minute)) {
		t.Error("the repaired binding outlives its grant")
	}
}
