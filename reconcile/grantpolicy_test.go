package reconcile_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// groupPolicy is a jit policy for viewer whose requesters are requesters.
func groupPolicy(requesters string) string {
	return `
role "viewer" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/viewer"
  }
}

jit "view" {
  roles         = ["viewer"]
  requesters    = ` + requesters + `
  max_duration  = "8h"
  justification = false
}
`
}

// TestReviewJITRecordedGroups: a grant that recorded its requester's
// groups is judged by exactly those groups after a policy change; one that
// did not keeps the old assumption of membership.
func TestReviewJITRecordedGroups(t *testing.T) {
	var (
		eng    = model.MustPrincipal("group:eng@example.com")
		oncall = model.MustPrincipal("group:oncall@example.com")
		dave   = model.MustPrincipal("user:dave@example.com")
	)
	before := loadSet(t, groupPolicy(`["group:eng@example.com", "group:oncall@example.com", "user:bob@example.com"]`))
	engRemoved := loadSet(t, groupPolicy(`["group:oncall@example.com", "user:bob@example.com"]`))
	noGroups := loadSet(t, groupPolicy(`["user:bob@example.com"]`))

	viewer := func(id string, p model.Principal, groups []model.Principal) model.Grant {
		g := *grant(id, p, "viewer")
		g.Policy = "view"
		g.Version = 2
		g.RequesterGroups = groups
		return g
	}
	const notRevoked = ""
	for _, tc := range []struct {
		name  string
		grant model.Grant
		// want is the revocation reason after each policy, or notRevoked.
		wantBefore, wantEngRemoved, wantNoGroups string
	}{
		{
			name:           "through the removed group only",
			grant:          viewer("only-eng", alice, []model.Principal{eng}),
			wantEngRemoved: `policy change: user:alice@example.com is no longer among the requesters of "view" (groups at request time: group:eng@example.com)`,
			wantNoGroups:   `policy change: user:alice@example.com is no longer among the requesters of "view" (groups at request time: group:eng@example.com)`,
		},
		{
			name:         "another recorded group still qualifies",
			grant:        viewer("eng-and-oncall", carol, []model.Principal{eng, oncall}),
			wantNoGroups: `policy change: user:carol@example.com is no longer among the requesters of "view" (groups at request time: group:eng@example.com, group:oncall@example.com)`,
		},
		{
			name:  "listed by name, whatever the groups",
			grant: viewer("bob", bob, []model.Principal{eng}),
		},
		{
			name:           "recorded with no groups is judged by none",
			grant:          viewer("no-groups", dave, []model.Principal{}),
			wantBefore:     `policy change: user:dave@example.com is no longer among the requesters of "view" (groups at request time: none)`,
			wantEngRemoved: `policy change: user:dave@example.com is no longer among the requesters of "view" (groups at request time: none)`,
			wantNoGroups:   `policy change: user:dave@example.com is no longer among the requesters of "view" (groups at request time: none)`,
		},
		{
			// Not recorded (stored before groups were): membership of any
			// group the policy still names is assumed, as before.
			name:         "not recorded",
			grant:        viewer("legacy", dave, nil),
			wantNoGroups: `policy change: user:dave@example.com is no longer among the requesters of "view"`,
		},
	} {
		for _, step := range []struct {
			policy string
			want   string
		}{{"unchanged", tc.wantBefore}, {"group:eng removed", tc.wantEngRemoved}, {"no groups left", tc.wantNoGroups}} {
			set := map[string]*policies.Set{"unchanged": before, "group:eng removed": engRemoved, "no groups left": noGroups}[step.policy]
			op, changed := reconcile.ReviewJIT(set, tc.grant)
			if step.want == notRevoked {
				if changed {
					t.Errorf("%s, policy %s: %s %q, want the grant kept", tc.name, step.policy, op.Kind, op.Note)
				}
				continue
			}
			if !changed || op.Kind != reconcile.OpRevoke {
				t.Errorf("%s, policy %s: changed %v %s, want revoked", tc.name, step.policy, changed, op.Kind)
				continue
			}
			if op.Grant.Reason != step.want || op.Note != step.want {
				t.Errorf("%s, policy %s: reason %q, note %q; want %q", tc.name, step.policy, op.Grant.Reason, op.Note, step.want)
			}
			if op.Grant.Status != model.StatusRevoked || op.Grant.Version != tc.grant.Version {
				t.Errorf("%s, policy %s: revoked grant %s version %d, want revoked at the version read (%d)", tc.name, step.policy, op.Grant.Status, op.Grant.Version, tc.grant.Version)
			}
			if d := cmp.Diff(tc.grant.RequesterGroups, op.Grant.RequesterGroups); d != "" || (tc.grant.RequesterGroups == nil) != (op.Grant.RequesterGroups == nil) {
				t.Errorf("%s, policy %s: the revocation changed the recorded groups to %#v", tc.name, step.policy, op.Grant.RequesterGroups)
			}
		}
	}
}

// TestPolicyChangeRevokesByRecordedGroups runs the engine: removing a group
// from a policy's requesters revokes the live grants obtained only through
// it, and removes their bindings, while a grant whose other recorded group
// still qualifies stays.
func TestPolicyChangeRevokesByRecordedGroups(t *testing.T) {
	const roles = `
role "viewer" {
  gcp {
    resource = "projects/beta"
    role     = "roles/viewer"
  }
}
`
	view := func(requesters string) string {
		return roles + `
jit "view" {
  roles         = ["viewer"]
  requesters    = ` + requesters + `
  max_duration  = "8h"
  justification = false
}
`
	}
	eng, oncall := model.MustPrincipal("group:eng@example.com"), model.MustPrincipal("group:oncall@example.com")
	r := newRig(t, view(`["group:eng@example.com", "group:oncall@example.com"]`))
	create := func(id string, p model.Principal, groups []model.Principal) model.Grant {
		t.Helper()
		g, err := r.store.CreateGrant(t.Context(), model.Grant{
			ID: id, Kind: model.KindJIT, Principal: p, Role: "viewer", Policy: "view", Status: model.StatusApproved,
			Duration: 4 * time.Hour, Starts: now, Expires: now.Add(4 * time.Hour), RequesterGroups: groups,
		}, state.Change{Actor: p.String(), Action: "request"})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	onlyEng := create("g-alice", alice, []model.Principal{eng})
	both := create("g-carol", carol, []model.Principal{eng, oncall})
	legacy := create("g-bob", bob, nil)
	r.start()
	for _, g := range []model.Grant{onlyEng, both, legacy} {
		eventually(t, g.ID+" active", r.hasStatus(g.ID, model.StatusActive))
	}

	r.set.Store(loadSet(t, view(`["group:oncall@example.com"]`)))
	r.engine.PolicyChanged()
	eventually(t, "alice's grant is revoked", r.hasStatus(onlyEng.ID, model.StatusRevoked))
	eventually(t, "alice's binding is removed", func() bool { return len(owned(r.gcp, beta, onlyEng.ID)) == 0 })
	want := `policy change: user:alice@example.com is no longer among the requesters of "view" (groups at request time: group:eng@example.com)`
	if got := r.grant(onlyEng.ID); got.Reason != want {
		t.Errorf("revocation reason %q, want %q", got.Reason, want)
	}
	for _, g := range []model.Grant{both, legacy} {
		if got := r.grant(g.ID); got.Status != model.StatusActive || len(owned(r.gcp, beta, g.ID)) != 1 {
			t.Errorf("grant %s after the policy change: %s with %d bindings, want active with 1", g.ID, got.Status, len(owned(r.gcp, beta, g.ID)))
		}
	}
}
