package reconcile_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// temporaryHCL declares viewer access for dave and erin until expires.
func temporaryHCL(expires time.Time) string {
	return fmt.Sprintf(`
temporary "migration" {
  role          = "viewer"
  principals    = ["user:dave@example.com", "user:erin@example.com"]
  expires       = %q
  justification = "Postgres 16 migration, CHG-1234"
  approved_by   = ["user:cto@example.com"]
}
`, expires.UTC().Format(time.RFC3339))
}

var erin = model.MustPrincipal("user:erin@example.com")

func TestTemporarySync(t *testing.T) {
	expires := now.Add(7 * 24 * time.Hour)
	r := newRig(t, engineHCL+temporaryHCL(expires))
	r.start()
	idDave := reconcile.TemporaryGrantID("migration", dave, 1)
	idErin := reconcile.TemporaryGrantID("migration", erin, 1)
	if idDave == idErin || !strings.HasPrefix(idDave, "tmp-") || idDave != reconcile.TemporaryGrantID("migration", dave, 1) {
		t.Fatalf("temporary IDs %q, %q: want distinct, deterministic tmp- IDs", idDave, idErin)
	}
	eventually(t, "both temporary grants are active", func() bool {
		return r.hasStatus(idDave, model.StatusActive)() && r.hasStatus(idErin, model.StatusActive)()
	})
	g := r.grant(idDave)
	if g.Kind != model.KindTemporary || g.Policy != "migration" || g.Role != "viewer" || !g.Starts.Equal(now) || !g.Expires.Equal(expires) ||
		g.Justification != "Postgres 16 migration, CHG-1234" || len(g.Approvals) != 1 || g.Approvals[0].Approver.String() != "user:cto@example.com" {
		t.Errorf("temporary grant: %+v", g)
	}
	if bs := owned(r.gcp, beta, idDave); len(bs) != 1 || !bs[0].Expires.Equal(expires) {
		t.Errorf("dave's bindings: %+v", bs)
	}

	// Re-syncs are idempotent: a policy reload with the same set and a
	// full resync change nothing.
	r.engine.PolicyChanged()
	r.clock.Advance(reconcile.DefaultResyncInterval)
	p := r.passes()
	eventually(t, "two more passes", func() bool { return r.passes() >= p+1 })
	if got := r.grant(idDave); got.Version != g.Version {
		t.Errorf("grant version %d after re-syncs, want %d (unchanged)", got.Version, g.Version)
	}

	// The block's expiry moves: the grant and its binding follow.
	later := expires.Add(24 * time.Hour)
	r.set.Store(loadSet(t, engineHCL+temporaryHCL(later)))
	r.engine.PolicyChanged()
	eventually(t, "the binding carries the new expiry", func() bool {
		bs := owned(r.gcp, beta, idDave)
		return len(bs) == 1 && bs[0].Expires.Equal(later)
	})
	if got := r.grant(idDave); !got.Expires.Equal(later) || got.Status != model.StatusActive {
		t.Errorf("after the expiry moved: %+v", got)
	}

	// The block leaves git: its grants are revoked by elevate:policy and
	// their bindings removed.
	r.set.Store(loadSet(t, engineHCL))
	r.engine.PolicyChanged()
	eventually(t, "the temporary bindings are removed", func() bool {
		return len(owned(r.gcp, beta, idDave))+len(owned(r.gcp, beta, idErin)) == 0
	})
	got := r.grant(idDave)
	if got.Status != model.StatusRevoked || !strings.HasPrefix(got.Reason, reconcile.ReasonTemporaryRemoved) {
		t.Errorf("after removal: %s %q", got.Status, got.Reason)
	}
	wantHist := []string{
		"elevate:policy declare approved",
		"elevate:reconcile activate active",
		"elevate:policy extend active",
		"elevate:policy revoke revoked",
	}
	if diff := cmp.Diff(wantHist, r.history(idDave)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// It comes back: a new generation of the grant, the old one stays
	// revoked.
	r.set.Store(loadSet(t, engineHCL+temporaryHCL(later)))
	r.engine.PolicyChanged()
	id2 := reconcile.TemporaryGrantID("migration", dave, 2)
	eventually(t, "the second generation is active", r.hasStatus(id2, model.StatusActive))
	if r.grant(idDave).Status != model.StatusRevoked {
		t.Error("the revoked generation changed")
	}
}

// TestTemporaryRevokedByPersonStaysRevoked: a person's revocation of a
// temporary grant holds while the block is unchanged.
func TestTemporaryRevokedByPersonStaysRevoked(t *testing.T) {
	expires := now.Add(48 * time.Hour)
	r := newRig(t, engineHCL+temporaryHCL(expires))
	r.start()
	id := reconcile.TemporaryGrantID("migration", dave, 1)
	eventually(t, "active", r.hasStatus(id, model.StatusActive))
	r.update(id, state.Change{Actor: "user:admin@example.com", Action: "revoke"}, func(g *model.Grant) { g.Status = model.StatusRevoked })
	r.engine.PolicyChanged()
	eventually(t, "the binding is removed", func() bool { return len(owned(r.gcp, beta, id)) == 0 })
	r.clock.Advance(reconcile.DefaultResyncInterval)
	p := r.passes()
	eventually(t, "a full pass", func() bool { return r.passes() > p })
	all, _ := r.store.ListGrants(t.Context(), state.GrantFilter{Principal: dave})
	if len(all) != 1 || all[0].Status != model.StatusRevoked {
		t.Errorf("dave's grants after a person revoked the temporary one: %+v", all)
	}
}

// policyChangeHCL is engineHCL's world with the db policy changed: bob is
// no longer a requester, max_duration drops to 1h, and a second policy
// grants viewer to a group.
const policyChangeBase = `
role "db-admin" {
  gcp {
    resource = "projects/alpha"
    role     = "roles/cloudsql.admin"
  }
}

role "viewer" {
  gcp {
    resource = "projects/beta"
    role     = "roles/viewer"
  }
}
`

const policyBefore = policyChangeBase + `
jit "db" {
  roles         = ["db-admin"]
  requesters    = ["user:alice@example.com", "user:bob@example.com"]
  max_duration  = "8h"
  justification = false
}

jit "view" {
  roles         = ["viewer"]
  requesters    = ["group:sre@example.com"]
  max_duration  = "8h"
  justification = false
}
`

const policyAfter = policyChangeBase + `
jit "db" {
  roles         = ["db-admin"]
  requesters    = ["user:alice@example.com"]
  max_duration  = "1h"
  justification = false
}

jit "view" {
  roles         = ["viewer"]
  requesters    = ["group:sre@example.com", "group:other@example.com"]
  max_duration  = "8h"
  justification = false
}
`

func TestPolicyChangeRevokesAndClamps(t *testing.T) {
	r := newRig(t, policyBefore)
	a := r.approved("g-alice", alice, "db-admin", now, now.Add(4*time.Hour))
	b := r.approved("g-bob", bob, "db-admin", now, now.Add(4*time.Hour))
	c := r.store
	carolG, err := c.CreateGrant(t.Context(), model.Grant{
		ID: "g-carol", Kind: model.KindJIT, Principal: carol, Role: "viewer", Policy: "view", Status: model.StatusApproved,
		Duration: 4 * time.Hour, Starts: now, Expires: now.Add(4 * time.Hour),
	}, state.Change{Actor: carol.String(), Action: "request"})
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	for _, id := range []string{a.ID, b.ID, carolG.ID} {
		eventually(t, id+" active", r.hasStatus(id, model.StatusActive))
	}
	r.clock.Advance(10 * time.Minute)

	r.set.Store(loadSet(t, policyAfter))
	r.engine.PolicyChanged()
	eventually(t, "bob's grant is revoked", r.hasStatus(b.ID, model.StatusRevoked))
	eventually(t, "bob's binding is removed", func() bool { return len(owned(r.gcp, alpha, b.ID)) == 0 })
	if h := r.history(b.ID); h[len(h)-1] != "elevate:policy revoke revoked" {
		t.Errorf("bob's history: %v", h)
	}
	if got := r.grant(b.ID).Reason; !strings.Contains(got, "no longer among the requesters") {
		t.Errorf("revocation reason %q", got)
	}
	eventually(t, "alice's binding is clamped to 1h", func() bool {
		bs := owned(r.gcp, alpha, a.ID)
		return len(bs) == 1 && bs[0].Expires.Equal(now.Add(time.Hour))
	})
	if got := r.grant(a.ID); got.Status != model.StatusActive || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("alice's grant: %s until %s", got.Status, got.Expires)
	}
	// Carol got viewer through a group: groups are not recorded, so the
	// grant is kept while the policy still names a group.
	if got := r.grant(carolG.ID); got.Status != model.StatusActive {
		t.Errorf("carol's group-based grant: %s", got.Status)
	}

	// The clamped expiry is scheduled: at now+1h the grant ends.
	r.clock.Advance(50 * time.Minute)
	eventually(t, "alice's grant expires at the clamped time", r.hasStatus(a.ID, model.StatusExpired))
}

func TestPolicyOpsTable(t *testing.T) {
	set := loadSet(t, engineHCL+temporaryHCL(now.Add(48*time.Hour))+`
notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
break_glass "bg" {
  description       = "emergency"
  reasons           = ["idp-outage"]
  accounts          = ["user:bg@example.com"]
  review_within     = "24h"
  notify            = ["pager"]
  session_recording = true
}
`)
	bg := model.MustPrincipal("user:bg@example.com")
	jit := func(id string, p model.Principal, role, policy string, starts, expires time.Time, renewals int) model.Grant {
		return model.Grant{ID: id, Kind: model.KindJIT, Principal: p, Role: role, Policy: policy, Status: model.StatusActive,
			Starts: starts, Expires: expires, Duration: expires.Sub(starts), Renewals: renewals, Version: 3}
	}
	idDave := reconcile.TemporaryGrantID("migration", dave, 1)
	idErin := reconcile.TemporaryGrantID("migration", erin, 1)
	live := []model.Grant{
		jit("ok", alice, "viewer", "db", now, now.Add(time.Hour), 0),
		jit("gone-policy", alice, "viewer", "nope", now, now.Add(time.Hour), 0),
		jit("gone-role", alice, "ghost", "db", now, now.Add(time.Hour), 0),
		jit("not-named", alice, "auditor", "db", now, now.Add(time.Hour), 0),
		jit("stranger", dave, "viewer", "db", now, now.Add(time.Hour), 0), // no group to assume: db lists sre, but dave?
		jit("breakglass", bg, "viewer", "db", now, now.Add(time.Hour), 0),
		jit("long", bob, "viewer", "db", now, now.Add(20*time.Hour), 0),
		jit("renewed", bob, "viewer", "db", now, now.Add(12*time.Hour), 1),
		{ID: idErin, Kind: model.KindTemporary, Principal: erin, Role: "viewer", Policy: "migration", Status: model.StatusActive,
			Starts: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour), Justification: "old", Version: 2},
		{ID: reconcile.TemporaryGrantID("old-block", dave, 1), Kind: model.KindTemporary, Principal: dave, Role: "viewer",
			Policy: "old-block", Status: model.StatusActive, Starts: now, Expires: now.Add(time.Hour), Version: 2},
	}
	ops := reconcile.PolicyOps(set, live, map[string]reconcile.TemporaryHistory{reconcile.TemporaryGrantID("migration", dave, 1): {}}, now)
	got := map[string]string{}
	for _, op := range ops {
		s := string(op.Kind)
		if op.Kind == reconcile.OpUpdate {
			s += " " + op.Action + " until " + op.Grant.Expires.Sub(now).String()
		}
		if op.Kind == reconcile.OpRevoke && op.Grant.Status != model.StatusRevoked {
			t.Errorf("revoke op for %s has status %s", op.Grant.ID, op.Grant.Status)
		}
		got[op.Grant.ID] = s
	}
	want := map[string]string{
		"gone-policy": "revoke",
		"gone-role":   "revoke",
		"not-named":   "revoke",
		"breakglass":  "revoke",
		// "stranger": the db policy names a group, so dave may still be in
		// it: kept.
		"long":    "update clamp until 8h0m0s",
		"renewed": "update clamp until 8h0m0s", // max_renewals is 0 in db: no renewal counted
		idErin:    "update extend until 48h0m0s",
		idDave:    "create",
		reconcile.TemporaryGrantID("old-block", dave, 1): "revoke",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	for _, op := range ops {
		switch op.Grant.ID {
		case idDave:
			g := op.Grant
			if g.Kind != model.KindTemporary || g.Status != model.StatusApproved || !g.Starts.Equal(now) || !g.Expires.Equal(now.Add(48*time.Hour)) ||
				g.Duration != 48*time.Hour || len(g.Approvals) != 1 || !g.Approvals[0].Approve {
				t.Errorf("declared grant: %+v", g)
			}
		case idErin:
			if !op.Grant.Starts.Equal(now.Add(-time.Hour)) || op.Grant.Justification != "Postgres 16 migration, CHG-1234" || op.Grant.Version != 2 {
				t.Errorf("updated grant keeps its first-seen start and version: %+v", op.Grant)
			}
		}
	}

	// Applied in memory, the ops give the grants a plan sees.
	next, ended := reconcile.ApplyOps(live, ops)
	if len(ended) != 5 || len(next) != len(live)-5+1 {
		t.Errorf("ApplyOps: %d live, %d ended", len(next), len(ended))
	}
	if slices.ContainsFunc(next, func(g model.Grant) bool { return g.ID == "breakglass" }) {
		t.Error("a revoked grant is still live after ApplyOps")
	}
}

func TestDeclareTemporaryGenerations(t *testing.T) {
	set := loadSet(t, engineHCL+temporaryHCL(now.Add(48*time.Hour)))
	id1 := reconcile.TemporaryGrantID("migration", dave, 1)
	ended := func(status model.GrantStatus, expires time.Time, reason string) *model.Grant {
		return &model.Grant{ID: id1, Kind: model.KindTemporary, Principal: dave, Role: "viewer", Policy: "migration",
			Status: status, Starts: now.Add(-time.Hour), Expires: expires, Reason: reason}
	}
	for _, tc := range []struct {
		name   string
		latest *model.Grant
		want   string // "" = nothing
	}{
		{"never declared", nil, id1},
		{"expired, same window", ended(model.StatusExpired, now.Add(48*time.Hour), ""), ""},
		{"expired, new window", ended(model.StatusExpired, now.Add(-time.Minute), ""), reconcile.TemporaryGrantID("migration", dave, 2)},
		{"revoked by a person", ended(model.StatusRevoked, now.Add(48*time.Hour), "misuse"), ""},
		{"revoked because removed", ended(model.StatusRevoked, now.Add(48*time.Hour), reconcile.ReasonTemporaryRemoved+": x"), reconcile.TemporaryGrantID("migration", dave, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := reconcile.TemporaryHistory{Latest: tc.latest}
			if tc.latest != nil {
				h.Gen = 1
			}
			var got string
			for _, op := range reconcile.PolicyOps(set, nil, map[string]reconcile.TemporaryHistory{id1: h}, now) {
				if op.Kind == reconcile.OpCreate && op.Grant.Principal.Equal(dave) {
					got = op.Grant.ID
				}
			}
			if got != tc.want {
				t.Errorf("created %q, want %q", got, tc.want)
			}
		})
	}
	// A window that has already ended is never declared.
	if ops := reconcile.PolicyOps(loadSet(t, engineHCL+temporaryHCL(now.Add(-time.Hour))), nil, nil, now); len(ops) != 0 {
		t.Errorf("ops for an ended block: %+v", ops)
	}
}
