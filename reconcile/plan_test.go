package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
)

func create(r model.Reason, b model.Binding) model.Change { return model.Change{Reason: r, New: &b} }
func del(r model.Reason, b model.Binding) model.Change    { return model.Change{Reason: r, Old: &b} }
func repl(r model.Reason, old, b model.Binding) model.Change {
	return model.Change{Reason: r, Old: &old, New: &b}
}

func with(b model.Binding, edit func(*model.Binding)) model.Binding {
	edit(&b)
	return b
}

// changesOnly drops finding messages so tables can state reasons.
func stripMessages(c model.Changes) model.Changes {
	for i := range c.Findings {
		c.Findings[i].Message = ""
	}
	return c
}

func TestPlanReasons(t *testing.T) {
	set := loadSet(t, fixtureHCL)
	governed := reconcile.GovernedTargets(set)

	g := grant("g1", alice, "db-admin")
	want := bound(g, sqlAdmin)
	status := func(s model.GrantStatus) *model.Grant {
		c := *g
		c.Status = s
		return &c
	}
	pastExpiry := *g
	pastExpiry.Expires = now
	future := *g
	future.Status = model.StatusApproved
	future.Starts = now.Add(time.Hour)
	future.Expires = now.Add(2 * time.Hour)
	standing := model.Binding{Target: sqlAdmin, Principal: bob}
	standingOwner := model.Binding{Target: gcpOwner, Principal: bob}

	tests := []struct {
		name     string
		desired  []model.Binding
		observed []model.Binding
		grants   map[string]*model.Grant
		scopes   map[model.ScopeKey]bool
		want     model.Changes
	}{
		{
			name:    "granted",
			desired: []model.Binding{want},
			grants:  grantsByID(g),
			want:    model.Changes{Create: []model.Change{create(model.ReasonGranted, want)}},
		},
		{
			name:     "in sync",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Raw = "elevate:g1"; b.Native = true })},
			grants:   grantsByID(g),
		},
		{
			name:     "expired status",
			observed: []model.Binding{want},
			grants:   grantsByID(status(model.StatusExpired)),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonExpired, want)}},
		},
		{
			name:     "expired window of a live grant",
			observed: []model.Binding{want},
			grants:   grantsByID(&pastExpiry),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonExpired, want)}},
		},
		{
			name:     "revoked",
			observed: []model.Binding{want},
			grants:   grantsByID(status(model.StatusRevoked)),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonRevoked, want)}},
		},
		{
			name:     "pending grant",
			observed: []model.Binding{want},
			grants:   grantsByID(status(model.StatusPending)),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonInactive, want)}},
		},
		{
			name:     "failed grant",
			observed: []model.Binding{want},
			grants:   grantsByID(status(model.StatusFailed)),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonInactive, want)}},
		},
		{
			name:     "not started",
			observed: []model.Binding{bound(&future, sqlAdmin)},
			grants:   grantsByID(&future),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonNotStarted, bound(&future, sqlAdmin))}},
		},
		{
			name:     "unknown grant",
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Owner = "g-gone" })},
			grants:   grantsByID(g),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonUnknownOwner, with(want, func(b *model.Binding) { b.Owner = "g-gone" }))}},
		},
		{
			name:     "expiry extended out of band",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Expires = now.Add(30 * 24 * time.Hour) })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonTampered,
				with(want, func(b *model.Binding) { b.Expires = now.Add(30 * 24 * time.Hour) }), want)}},
		},
		{
			name:     "expiry condition removed out of band",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Expires = time.Time{} })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonTampered,
				with(want, func(b *model.Binding) { b.Expires = time.Time{} }), want)}},
		},
		{
			name:     "start moved earlier out of band",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.NotBefore = time.Time{} })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonTampered,
				with(want, func(b *model.Binding) { b.NotBefore = time.Time{} }), want)}},
		},
		{
			name:     "renewed grant: cloud window is narrower",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Expires = now.Add(time.Minute) })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonWindowChanged,
				with(want, func(b *model.Binding) { b.Expires = now.Add(time.Minute) }), want)}},
		},
		{
			name:     "member swapped out of band",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Principal = carol })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonTampered,
				with(want, func(b *model.Binding) { b.Principal = carol }), want)}},
		},
		{
			name:     "member copied out of band",
			desired:  []model.Binding{want},
			observed: []model.Binding{want, with(want, func(b *model.Binding) { b.Principal = carol })},
			grants:   grantsByID(g),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonTampered, with(want, func(b *model.Binding) { b.Principal = carol }))}},
		},
		{
			name:     "marker moved to another role in the scope",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Target = stray })},
			grants:   grantsByID(g),
			want: model.Changes{Replace: []model.Change{repl(model.ReasonTampered,
				with(want, func(b *model.Binding) { b.Target = stray }), want)}},
		},
		{
			name:     "target no longer in the role",
			desired:  []model.Binding{want},
			observed: []model.Binding{want, with(want, func(b *model.Binding) { b.Target = stray })},
			grants:   grantsByID(g),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonNotDesired, with(want, func(b *model.Binding) { b.Target = stray }))}},
		},
		{
			name:     "duplicate managed binding",
			desired:  []model.Binding{want},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Expires = now.Add(time.Hour) }), want},
			grants:   grantsByID(g),
			want:     model.Changes{Delete: []model.Change{del(model.ReasonTampered, with(want, func(b *model.Binding) { b.Expires = now.Add(time.Hour) }))}},
		},
		{
			name:     "standing access reported",
			observed: []model.Binding{standing},
			want:     model.Changes{Findings: []model.Finding{{Reason: model.ReasonStanding, Binding: standing}}},
		},
		{
			name:     "standing access removed where the role says so",
			observed: []model.Binding{standingOwner},
			want: model.Changes{
				Delete:   []model.Change{del(model.ReasonStandingFixed, standingOwner)},
				Findings: []model.Finding{{Reason: model.ReasonStanding, Binding: standingOwner}},
			},
		},
		{
			name:    "unmanaged bounded, ungoverned or same-key bindings are left alone",
			desired: []model.Binding{want},
			observed: []model.Binding{
				{Target: gcpOwner, Principal: carol, Expires: now.Add(time.Hour)}, // another tool's time-bound grant
				{Target: gcpViewer, Principal: carol},                             // viewer is not jit-governed
				{Target: stray, Principal: carol},
				{Target: sqlAdmin, Principal: alice, Expires: now.Add(time.Hour), NotBefore: g.Starts}, // same as desired but unowned
			},
			grants: grantsByID(g),
			want:   model.Changes{Create: []model.Change{create(model.ReasonGranted, want)}},
		},
		{
			name:     "scopes limit the plan",
			desired:  []model.Binding{want, bound(g, awsDB)},
			observed: []model.Binding{with(want, func(b *model.Binding) { b.Owner = "g-gone" }), standing},
			grants:   grantsByID(g),
			scopes:   map[model.ScopeKey]bool{awsDB.ScopeKey(): true},
			want:     model.Changes{Create: []model.Change{create(model.ReasonGranted, bound(g, awsDB))}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := reconcile.Plan{
				Desired: tc.desired, Observed: tc.observed, Governed: governed,
				Grants: tc.grants, Now: now, Scopes: tc.scopes,
			}.Compute()
			if diff := cmp.Diff(tc.want, stripMessages(got)); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStandingFindingMessage(t *testing.T) {
	c := reconcile.Plan{
		Observed: []model.Binding{{Target: sqlAdmin, Principal: bob}},
		Governed: reconcile.GovernedTargets(loadSet(t, fixtureHCL)),
		Now:      now,
	}.Compute()
	if len(c.Findings) != 1 {
		t.Fatalf("findings %v", c.Findings)
	}
	msg := c.Findings[0].Message
	for _, part := range []string{"user:bob@example.com", "roles/cloudsql.admin", "projects/acme-prod", "role db-admin is granted just in time", `standing = "remove"`} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q lacks %q", msg, part)
		}
	}
}

func TestByScope(t *testing.T) {
	g := grant("g1", alice, "db-admin")
	a, b := bound(g, sqlAdmin), bound(g, awsDB)
	old := with(a, func(x *model.Binding) { x.Owner = "g0" })
	tampered := with(a, func(x *model.Binding) { x.Expires = now.Add(time.Hour) })
	c := model.Changes{
		Create:   []model.Change{create(model.ReasonGranted, a), create(model.ReasonGranted, b)},
		Delete:   []model.Change{del(model.ReasonExpired, old)},
		Replace:  []model.Change{repl(model.ReasonTampered, tampered, a)},
		Findings: []model.Finding{{Reason: model.ReasonStanding, Binding: model.Binding{Target: sqlAdmin, Principal: bob}}},
	}
	got := reconcile.ByScope(c)
	want := map[model.ScopeKey][]model.Change{
		sqlAdmin.ScopeKey(): {c.Delete[0], c.Replace[0], c.Create[0]},
		awsDB.ScopeKey():    {c.Create[1]},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ByScope (-want +got):\n%s", diff)
	}
}
