package storetest

import (
	"errors"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

func testGrantLifecycle(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)

	g := newGrant("", alice, "db-admin", start)
	created := must(s.CreateGrant(ctx, g, state.Change{Actor: alice.String(), Action: "request", Note: "please"}))(t)
	if !regexp.MustCompile(`^[a-z0-9]+$`).MatchString(created.ID) {
		t.Fatalf("generated grant ID %q is not lowercase letters and digits", created.ID)
	}
	if created.Version != 1 || !created.Updated.Equal(norm(start)) || created.Updated.Location() != time.UTC {
		t.Fatalf("created grant: version %d updated %v; want version 1, updated %v in UTC", created.Version, created.Updated, norm(start))
	}
	got := must(s.GetGrant(ctx, created.ID))(t)
	if d := cmp.Diff(created, got); d != "" {
		t.Fatalf("GetGrant differs from what CreateGrant returned (-created +got):\n%s", d)
	}

	// Approve, activate, expire: each from the version just read.
	clock.Advance(time.Minute)
	approved := got
	approved.Status = model.StatusApproved
	approved.Approvals = append(approved.Approvals, model.Approval{Approver: bob, At: clock.Now(), Approve: true, Comment: "ok"})
	approved = must(s.UpdateGrant(ctx, approved, state.Change{Actor: bob.String(), Action: "approve"}))(t)
	if approved.Version != 2 || len(approved.Approvals) != 1 {
		t.Fatalf("after approval: %s with %d approvals, want version 2 with 1", describe(approved), len(approved.Approvals))
	}

	clock.Advance(time.Second)
	active := approved
	active.Status = model.StatusActive
	active.Starts = clock.Now()
	active.Expires = clock.Now().Add(30 * time.Minute)
	active = must(s.UpdateGrant(ctx, active, state.Change{Actor: "elevate:reconcile", Action: "activate"}))(t)

	clock.Advance(30 * time.Minute)
	expired := active
	expired.Status = model.StatusExpired
	expired.Reason = "window ended"
	expired = must(s.UpdateGrant(ctx, expired, state.Change{Actor: "elevate:reconcile", Action: "expire"}))(t)
	if expired.Version != 4 || !expired.Updated.Equal(norm(clock.Now())) {
		t.Fatalf("after expiry: %s updated %v, want version 4 updated %v", describe(expired), expired.Updated, norm(clock.Now()))
	}
	if d := cmp.Diff(expired, must(s.GetGrant(ctx, created.ID))(t)); d != "" {
		t.Fatalf("GetGrant after expiry (-want +got):\n%s", d)
	}

	// A terminal grant cannot change.
	again := expired
	again.Status = model.StatusActive
	_, err := s.UpdateGrant(ctx, again, state.Change{Actor: "x", Action: "reactivate"})
	wantErr(t, err, state.ErrInvalid, "updating an expired grant")

	// The whole history is kept, each version as it was stored.
	hist := must(s.GrantHistory(ctx, created.ID))(t)
	want := []struct {
		grant      model.Grant
		actor      string
		action     string
		from, to   model.GrantStatus
		note       string
		atAdvanced bool
	}{
		{created, alice.String(), "request", "", model.StatusPending, "please", false},
		{approved, bob.String(), "approve", model.StatusPending, model.StatusApproved, "", true},
		{active, "elevate:reconcile", "activate", model.StatusApproved, model.StatusActive, "", true},
		{expired, "elevate:reconcile", "expire", model.StatusActive, model.StatusExpired, "", true},
	}
	if len(hist) != len(want) {
		t.Fatalf("history has %d events, want %d", len(hist), len(want))
	}
	for i, w := range want {
		ev := hist[i]
		if ev.GrantID != created.ID || ev.Version != int64(i+1) || ev.Actor != w.actor || ev.Action != w.action ||
			ev.From != w.from || ev.To != w.to || ev.Note != w.note || !ev.At.Equal(w.grant.Updated) {
			t.Errorf("history[%d] = %+v, want version %d by %s %s %s→%s at %v", i, ev, i+1, w.actor, w.action, w.from, w.to, w.grant.Updated)
		}
		if d := cmp.Diff(w.grant, ev.Grant); d != "" {
			t.Errorf("history[%d] snapshot (-want +got):\n%s", i, d)
		}
	}

	// Every change is in the audit log too.
	audit := must(s.ListAudit(ctx, state.AuditFilter{Subject: "grant/" + created.ID}))(t)
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if d := cmp.Diff([]string{"grant.request", "grant.approve", "grant.activate", "grant.expire"}, actions); d != "" {
		t.Errorf("audit actions for the grant (-want +got):\n%s", d)
	}

	_, err = s.GetGrant(ctx, "nope")
	wantErr(t, err, state.ErrNotFound, "getting an unknown grant")
	_, err = s.GrantHistory(ctx, "nope")
	wantErr(t, err, state.ErrNotFound, "history of an unknown grant")
}

func testGrantValidation(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	c := state.Change{Actor: "user:alice@example.com", Action: "request"}

	g := must(s.CreateGrant(ctx, newGrant("g1", alice, "db-admin", start), c))(t)
	_, err := s.CreateGrant(ctx, newGrant("g1", bob, "other", start), c)
	wantErr(t, err, state.ErrExists, "creating a grant with an existing ID")

	bad := map[string]func(*model.Grant){
		"no principal": func(g *model.Grant) { g.Principal = model.Principal{} },
		"no role":      func(g *model.Grant) { g.Role = "" },
		"bad kind":     func(g *model.Grant) { g.Kind = "forever" },
		"bad status":   func(g *model.Grant) { g.Status = "maybe" },
		"bad ID":       func(g *model.Grant) { g.ID = "has space" },
		"bad window":   func(g *model.Grant) { g.Starts = start; g.Expires = start.Add(-time.Minute) },
	}
	for name, mutate := range bad {
		g := newGrant("", alice, "db-admin", start)
		mutate(&g)
		_, err := s.CreateGrant(ctx, g, c)
		wantErr(t, err, state.ErrInvalid, "creating a grant with "+name)
	}
	_, err = s.CreateGrant(ctx, newGrant("", alice, "db-admin", start), state.Change{Action: "request"})
	wantErr(t, err, state.ErrInvalid, "creating a grant without an actor")

	immutable := map[string]func(*model.Grant){
		"principal":    func(g *model.Grant) { g.Principal = bob },
		"role":         func(g *model.Grant) { g.Role = "root" },
		"kind":         func(g *model.Grant) { g.Kind = model.KindTemporary },
		"policy":       func(g *model.Grant) { g.Policy = "other" },
		"requested_at": func(g *model.Grant) { g.RequestedAt = g.RequestedAt.Add(time.Hour) },
	}
	for name, mutate := range immutable {
		u := g
		mutate(&u)
		_, err := s.UpdateGrant(ctx, u, state.Change{Actor: "x", Action: "edit"})
		wantErr(t, err, state.ErrInvalid, "changing the "+name+" of a grant")
	}
	ghost := newGrant("ghost", alice, "db-admin", start)
	ghost.Version = 1
	_, err = s.UpdateGrant(ctx, ghost, state.Change{Actor: "x", Action: "edit"})
	wantErr(t, err, state.ErrNotFound, "updating an unknown grant")

	// None of the refused writes left a trace.
	if got := must(s.GetGrant(ctx, "g1"))(t); got.Version != 1 {
		t.Fatalf("refused updates changed the grant: now %s", describe(got))
	}
	if n := len(must(s.ListGrants(ctx, state.GrantFilter{}))(t)); n != 1 {
		t.Fatalf("refused creates stored grants: %d grants, want 1", n)
	}
}

func testOptimisticConcurrency(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	g := must(s.CreateGrant(ctx, newGrant("g1", alice, "db-admin", start), state.Change{Actor: "a", Action: "request"}))(t)

	first, second := g, g
	first.Status = model.StatusApproved
	second.Status = model.StatusDenied
	second.Reason = "no"
	if _, err := s.UpdateGrant(ctx, first, state.Change{Actor: "bob", Action: "approve"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateGrant(ctx, second, state.Change{Actor: "carol", Action: "deny"})
	wantErr(t, err, state.ErrConflict, "updating from a version that is no longer current")

	got := must(s.GetGrant(ctx, "g1"))(t)
	if got.Status != model.StatusApproved || got.Version != 2 {
		t.Fatalf("after the conflict: %s, want g1 v2 approved", describe(got))
	}
	if n := len(must(s.GrantHistory(ctx, "g1"))(t)); n != 2 {
		t.Fatalf("the refused update was recorded: %d history events, want 2", n)
	}
}

// testConcurrentUpdates has goroutines read-modify-write one grant with
// retry on conflict: every increment must survive.
func testConcurrentUpdates(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	must(s.CreateGrant(ctx, newGrant("g1", alice, "db-admin", start), state.Change{Actor: "a", Action: "request"}))(t)

	const workers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for {
					g, err := s.GetGrant(ctx, "g1")
					if err != nil {
						errs <- err
						return
					}
					g.Renewals++
					_, err = s.UpdateGrant(ctx, g, state.Change{Actor: "w", Action: "extend"})
					if errors.Is(err, state.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := must(s.GetGrant(ctx, "g1"))(t)
	if got.Renewals != workers*each || got.Version != workers*each+1 {
		t.Fatalf("after %d concurrent increments: renewals %d version %d, want %d and %d", workers*each, got.Renewals, got.Version, workers*each, workers*each+1)
	}
}

func testListFilters(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	c := state.Change{Actor: "a", Action: "request"}
	at := start.Add(time.Hour)

	mk := func(id string, p model.Principal, role string, requested time.Duration, status model.GrantStatus, starts, expires time.Time) {
		t.Helper()
		g := newGrant(id, p, role, start.Add(requested))
		g.Status, g.Starts, g.Expires = status, starts, expires
		must(s.CreateGrant(ctx, g, c))(t)
	}
	// Created out of request order, to check the ordering.
	mk("g3", alice, "db-admin", 3*time.Minute, model.StatusActive, at, at.Add(time.Hour))                                // active at `at` (starts inclusive)
	mk("g1", alice, "db-read", 1*time.Minute, model.StatusApproved, at.Add(-time.Hour), at)                              // ended at `at` (expires exclusive)
	mk("g2", bob, "db-admin", 2*time.Minute, model.StatusActive, at.Add(-time.Minute), at.Add(time.Minute))              // active at `at`
	mk("g4", bob, "db-admin", 4*time.Minute, model.StatusRevoked, at.Add(-time.Minute), at.Add(time.Minute))             // window open but revoked
	mk("g5", carol, "db-read", 2*time.Minute, model.StatusPending, time.Time{}, time.Time{})                             // same request time as g2: ID breaks the tie
	mk("g0", model.MustPrincipal("user:Alice@Example.COM"), "db-admin", 0, model.StatusDenied, time.Time{}, time.Time{}) // alice, differently spelled

	clock.Advance(time.Minute)
	later := clock.Now()
	g5 := must(s.GetGrant(ctx, "g5"))(t)
	g5.Status = model.StatusApproved
	must(s.UpdateGrant(ctx, g5, state.Change{Actor: "bob", Action: "approve"}))(t)

	ids := func(f state.GrantFilter) []string {
		t.Helper()
		var out []string
		for _, g := range must(s.ListGrants(ctx, f))(t) {
			out = append(out, g.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    state.GrantFilter
		want []string
	}{
		{"all, by request time then ID", state.GrantFilter{}, []string{"g0", "g1", "g2", "g5", "g3", "g4"}},
		{"status", state.GrantFilter{Status: []model.GrantStatus{model.StatusActive, model.StatusRevoked}}, []string{"g2", "g3", "g4"}},
		{"principal, case-insensitive", state.GrantFilter{Principal: model.MustPrincipal("user:ALICE@example.com")}, []string{"g0", "g1", "g3"}},
		{"role", state.GrantFilter{Role: "db-read"}, []string{"g1", "g5"}},
		{"active at", state.GrantFilter{ActiveAt: at}, []string{"g2", "g3"}},
		{"active just before", state.GrantFilter{ActiveAt: at.Add(-time.Microsecond)}, []string{"g1", "g2"}},
		{"updated since", state.GrantFilter{UpdatedSince: later}, []string{"g5"}},
		{"combined", state.GrantFilter{Role: "db-admin", Principal: bob, Status: []model.GrantStatus{model.StatusActive}}, []string{"g2"}},
		{"limit", state.GrantFilter{Limit: 2}, []string{"g0", "g1"}},
		{"nothing", state.GrantFilter{Role: "none"}, nil},
	} {
		if d := cmp.Diff(tc.want, ids(tc.f)); d != "" {
			t.Errorf("ListGrants %s (-want +got):\n%s", tc.name, d)
		}
	}
	// Listed grants carry their approvals like GetGrant does.
	g3 := must(s.GetGrant(ctx, "g3"))(t)
	g3.Approvals = []model.Approval{{Approver: carol, Approve: true}}
	g3 = must(s.UpdateGrant(ctx, g3, state.Change{Actor: "carol", Action: "approve"}))(t)
	list := must(s.ListGrants(ctx, state.GrantFilter{Role: "db-admin", Principal: alice, Status: []model.GrantStatus{model.StatusActive}}))(t)
	if len(list) != 1 {
		t.Fatalf("listing g3: got %d grants", len(list))
	}
	if d := cmp.Diff(g3, list[0]); d != "" {
		t.Errorf("listed grant differs from GetGrant (-get +list):\n%s", d)
	}
}

func testApprovals(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	g := must(s.CreateGrant(ctx, newGrant("g1", alice, "db-admin", start), state.Change{Actor: "a", Action: "request"}))(t)

	// Bob approves; the quorum of two is not met yet.
	clock.Advance(time.Second)
	g.Approvals = append(g.Approvals, model.Approval{Approver: bob, Approve: true, Comment: "lgtm"})
	g = must(s.UpdateGrant(ctx, g, state.Change{Actor: bob.String(), Action: "approve"}))(t)
	if len(g.Approvals) != 1 || !g.Approvals[0].At.Equal(norm(clock.Now())) {
		t.Fatalf("approval without a time: got %+v, want it stamped %v", g.Approvals, norm(clock.Now()))
	}

	// Bob again, even spelled differently, with another decision: refused.
	dup := g
	dup.Approvals = append(append([]model.Approval(nil), g.Approvals...),
		model.Approval{Approver: model.MustPrincipal("user:BOB@example.com"), Approve: false, Comment: "changed my mind"})
	_, err := s.UpdateGrant(ctx, dup, state.Change{Actor: bob.String(), Action: "deny"})
	wantErr(t, err, state.ErrExists, "a second decision by the same approver")
	rewrite := g
	rewrite.Approvals = []model.Approval{{Approver: bob, At: g.Approvals[0].At, Approve: false}}
	_, err = s.UpdateGrant(ctx, rewrite, state.Change{Actor: bob.String(), Action: "deny"})
	wantErr(t, err, state.ErrExists, "rewriting a stored approval")

	// Dropping a stored approval is refused.
	dropped := g
	dropped.Approvals = nil
	_, err = s.UpdateGrant(ctx, dropped, state.Change{Actor: "x", Action: "edit"})
	wantErr(t, err, state.ErrInvalid, "dropping an approval")

	// Carol's approval meets the quorum: appended atomically with the status change.
	g.Approvals = append(g.Approvals, model.Approval{Approver: carol, At: clock.Now(), Approve: true})
	g.Status = model.StatusApproved
	g = must(s.UpdateGrant(ctx, g, state.Change{Actor: carol.String(), Action: "approve"}))(t)

	// Round-tripping the stored approvals unchanged is fine.
	g.Reason = "quorum met"
	g = must(s.UpdateGrant(ctx, g, state.Change{Actor: "elevate", Action: "note"}))(t)

	got := must(s.GetGrant(ctx, "g1"))(t)
	if d := cmp.Diff(g, got); d != "" {
		t.Fatalf("stored grant (-want +got):\n%s", d)
	}
	var approvers []string
	for _, a := range got.Approvals {
		approvers = append(approvers, a.Approver.String())
	}
	if d := cmp.Diff([]string{bob.String(), carol.String()}, approvers); d != "" {
		t.Fatalf("approvals in decision order (-want +got):\n%s", d)
	}
	if got.Version != 4 {
		t.Fatalf("refused approvals bumped the version: %s", describe(got))
	}

	twice := newGrant("g2", alice, "db-admin", start)
	twice.Approvals = []model.Approval{{Approver: bob, Approve: true}, {Approver: bob, Approve: true}}
	_, err = s.CreateGrant(ctx, twice, state.Change{Actor: "a", Action: "request"})
	wantErr(t, err, state.ErrExists, "creating a grant with two approvals by one approver")
}

// testRequesterGroups: a grant's requester groups come back as recorded, a
// recorded empty list stays distinct from "not recorded", and no update
// can change them.
func testRequesterGroups(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	c := state.Change{Actor: alice.String(), Action: "request"}
	eng, sre := model.MustPrincipal("group:eng@example.com"), model.MustPrincipal("group:sre@example.com")

	withGroups := newGrant("with", alice, "db-admin", start)
	withGroups.RequesterGroups = []model.Principal{eng, sre}
	sameGroups := newGrant("same", bob, "db-admin", start.Add(time.Second))
	sameGroups.RequesterGroups = []model.Principal{eng, sre}
	none := newGrant("none", bob, "db-admin", start.Add(2*time.Second))
	none.RequesterGroups = []model.Principal{}
	legacy := newGrant("legacy", carol, "db-admin", start.Add(3*time.Second))

	created := map[string]model.Grant{}
	for _, g := range []model.Grant{withGroups, sameGroups, none, legacy} {
		created[g.ID] = must(s.CreateGrant(ctx, g, c))(t)
	}
	// The caller's list is the caller's: changing it later changes nothing stored.
	withGroups.RequesterGroups[0] = model.MustPrincipal("group:mallory@example.com")

	check := func(doing string, got model.Grant) {
		t.Helper()
		want := created[got.ID]
		switch got.ID {
		case "with", "same":
			if d := cmp.Diff([]model.Principal{eng, sre}, got.RequesterGroups); d != "" {
				t.Errorf("%s: grant %s requester groups (-want +got):\n%s", doing, got.ID, d)
			}
		case "none":
			if got.RequesterGroups == nil || len(got.RequesterGroups) != 0 {
				t.Errorf("%s: grant none has requester groups %#v, want recorded and empty", doing, got.RequesterGroups)
			}
		case "legacy":
			if got.RequesterGroups != nil {
				t.Errorf("%s: grant legacy has requester groups %#v, want not recorded (nil)", doing, got.RequesterGroups)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: grant %s differs from what CreateGrant returned (-created +got):\n%s", doing, got.ID, d)
		}
	}
	for id, g := range created {
		check("CreateGrant", g)
		check("GetGrant", must(s.GetGrant(ctx, id))(t))
	}
	list := must(s.ListGrants(ctx, state.GrantFilter{}))(t)
	if len(list) != len(created) {
		t.Fatalf("ListGrants: %d grants, want %d", len(list), len(created))
	}
	for _, g := range list {
		check("ListGrants", g)
	}

	// Updates keep the recorded groups; changing, dropping or adding them
	// is refused.
	clock.Advance(time.Minute)
	for id := range created {
		g := must(s.GetGrant(ctx, id))(t)
		for name, mutate := range map[string]func(*model.Grant){
			"change": func(g *model.Grant) { g.RequesterGroups = []model.Principal{sre} },
			"drop":   func(g *model.Grant) { g.RequesterGroups = nil },
			"empty":  func(g *model.Grant) { g.RequesterGroups = []model.Principal{} },
			"add":    func(g *model.Grant) { g.RequesterGroups = append(slices.Clone(g.RequesterGroups), carol) },
		} {
			u := g
			mutate(&u)
			if sameRecord(u.RequesterGroups, g.RequesterGroups) {
				continue // "empty" of a recorded empty list is no change
			}
			_, err := s.UpdateGrant(ctx, u, state.Change{Actor: "x", Action: "edit"})
			wantErr(t, err, state.ErrInvalid, name+" the requester groups of grant "+id)
		}
		g.Status = model.StatusApproved
		g.Approvals = append(g.Approvals, model.Approval{Approver: model.MustPrincipal("user:dave@example.com"), Approve: true})
		g = must(s.UpdateGrant(ctx, g, state.Change{Actor: "user:dave@example.com", Action: "approve"}))(t)
		want := created[id]
		if d := cmp.Diff(want.RequesterGroups, g.RequesterGroups); d != "" || (want.RequesterGroups == nil) != (g.RequesterGroups == nil) {
			t.Errorf("grant %s after approval: requester groups %#v, want %#v", id, g.RequesterGroups, want.RequesterGroups)
		}
		created[id] = g
		check("GetGrant after approval", must(s.GetGrant(ctx, id))(t))
	}

	// History snapshots keep them too, "not recorded" included.
	for id, g := range created {
		hist := must(s.GrantHistory(ctx, id))(t)
		if len(hist) != 2 {
			t.Fatalf("grant %s: %d history events, want 2 (the refused edits left no trace)", id, len(hist))
		}
		for _, ev := range hist {
			if !sameRecord(g.RequesterGroups, ev.Grant.RequesterGroups) {
				t.Errorf("grant %s history version %d: requester groups %#v, want %#v", id, ev.Version, ev.Grant.RequesterGroups, g.RequesterGroups)
			}
		}
	}

	bad := newGrant("bad", alice, "db-admin", start)
	bad.RequesterGroups = []model.Principal{eng, {}}
	_, err := s.CreateGrant(ctx, bad, c)
	wantErr(t, err, state.ErrInvalid, "creating a grant with an empty requester group")
}

// sameRecord reports whether two requester group records are the same,
// telling "not recorded" (nil) from "recorded, none".
func sameRecord(a, b []model.Principal) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}
