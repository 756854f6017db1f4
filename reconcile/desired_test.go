package reconcile_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
)

func TestDesired(t *testing.T) {
	set := loadSet(t, fixtureHCL)
	active := grant("g-active", alice, "db-admin")
	temp := grant("g-temp", bob, "viewer")
	temp.Kind = model.KindTemporary
	approved := grant("g-approved", carol, "owner")
	approved.Status = model.StatusApproved
	future := grant("g-future", carol, "db-admin")
	future.Status = model.StatusApproved
	future.Starts = now.Add(time.Minute)
	unstarted := grant("g-unstarted", carol, "db-admin")
	unstarted.Status = model.StatusApproved
	unstarted.Starts = time.Time{}
	ended := grant("g-ended", carol, "db-admin")
	ended.Expires = now
	revoked := grant("g-revoked", carol, "db-admin")
	revoked.Status = model.StatusRevoked
	pending := grant("g-pending", carol, "db-admin")
	pending.Status = model.StatusPending
	unknownRole := grant("g-norole", carol, "no-such-role")
	fractional := grant("g-frac", bob, "db-admin")
	fractional.Starts = now.Add(-time.Minute + 300*time.Millisecond)
	fractional.Expires = now.Add(time.Hour + 700*time.Millisecond)

	got := reconcile.Desired(set, []*model.Grant{
		active, nil, temp, approved, future, unstarted, ended, revoked, pending, unknownRole, fractional,
	}, now)
	fracBound := func(target model.Target) model.Binding {
		b := bound(fractional, target)
		b.NotBefore = now.Add(-time.Minute + time.Second)
		b.Expires = now.Add(time.Hour)
		return b
	}
	want := []model.Binding{
		bound(active, sqlAdmin), bound(active, awsDB),
		bound(temp, gcpViewer),
		bound(approved, gcpOwner), // the role lists it twice: one binding
		fracBound(sqlAdmin), fracBound(awsDB),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Desired (-want +got):\n%s", diff)
	}
	// The passes take them scope by scope, in the same order within one.
	wantByScope := map[model.ScopeKey][]model.Binding{}
	for _, b := range want {
		wantByScope[b.Target.ScopeKey()] = append(wantByScope[b.Target.ScopeKey()], b)
	}
	live := []*model.Grant{active, temp, approved, future, unstarted, ended, pending, unknownRole, fractional}
	for k, want := range wantByScope {
		if diff := cmp.Diff(want, reconcile.DesiredFor(set, live, now, k)); diff != "" {
			t.Errorf("desired bindings of %s (-want +got):\n%s", k, diff)
		}
	}
}

func TestGovernedTargets(t *testing.T) {
	got := reconcile.GovernedTargets(loadSet(t, fixtureHCL))
	want := reconcile.Governed{
		sqlAdmin: {Roles: []string{"db-admin"}},
		awsDB:    {Roles: []string{"db-admin"}},
		gcpOwner: {Roles: []string{"owner"}, Remove: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GovernedTargets (-want +got):\n%s", diff)
	}

	// A target shared by a reporting and a removing role is only reported.
	shared := loadSet(t, fixtureHCL+`
role "db-admin-strict" {
  standing = "remove"
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
}
role "owner-too" {
  standing = "remove"
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/owner"
  }
}
jit "strict" {
  roles        = ["db-admin-strict", "owner-too"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}
`)
	g := reconcile.GovernedTargets(shared)
	if len(g[sqlAdmin].Exempt) != 0 {
		t.Errorf("exempt accounts without a break_glass block: %v", g[sqlAdmin].Exempt)
	}
	if diff := cmp.Diff(reconcile.Governance{Roles: []string{"db-admin", "db-admin-strict"}}, g[sqlAdmin]); diff != "" {
		t.Errorf("shared report/remove target (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(reconcile.Governance{Roles: []string{"owner", "owner-too"}, Remove: true}, g[gcpOwner]); diff != "" {
		t.Errorf("shared remove/remove target (-want +got):\n%s", diff)
	}
}

func TestGovernedTargetsExemptBreakGlassAccounts(t *testing.T) {
	set := loadSet(t, fixtureHCL+`
break_glass "idp-outage" {
  reasons       = ["identity-provider-outage"]
  accounts      = ["gcp:user:bg-1@example.com", "aws:arn:aws:iam::123456789012:user/bg"]
  roles         = ["owner", "viewer"]
  review_within = "24h"
  notify        = ["pager"]
}
notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
`)
	g := reconcile.GovernedTargets(set)
	want := []model.Principal{
		model.MustPrincipal("gcp:user:bg-1@example.com"),
		model.MustPrincipal("aws:arn:aws:iam::123456789012:user/bg"),
	}
	if diff := cmp.Diff(want, g[gcpOwner].Exempt); diff != "" {
		t.Errorf("exempt on the owner role (-want +got):\n%s", diff)
	}
	if len(g[sqlAdmin].Exempt) != 0 {
		t.Errorf("db-admin is not declared for break-glass, got exempt %v", g[sqlAdmin].Exempt)
	}
	if _, ok := g[gcpViewer]; ok {
		t.Error("viewer is not jit-governed: declaring it for break-glass must not govern it")
	}

	// The account's standing owner binding, as GCP reports the member, is
	// neither reported nor removed; another person's is.
	bg := model.Binding{Target: gcpOwner, Principal: model.MustPrincipal("user:BG-1@example.com")}
	other := model.Binding{Target: gcpOwner, Principal: bob}
	c := reconcile.Plan{Observed: []model.Binding{bg, other}, Governed: g, Now: now}.Compute()
	if len(c.Findings) != 1 || !c.Findings[0].Binding.Principal.Equal(bob) ||
		len(c.Delete) != 1 || !c.Delete[0].Old.Principal.Equal(bob) {
		t.Errorf("plan %+v, want only bob's standing owner binding reported and removed", c)
	}
}
