package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

const ttl = 10 * time.Second

func testLeases(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	t0 := start

	_, err := s.GetLease(ctx, "leader")
	wantErr(t, err, state.ErrNotFound, "reading a lease never acquired")
	_, err = s.TryAcquireLease(ctx, "leader", "", ttl, t0)
	wantErr(t, err, state.ErrInvalid, "acquiring without a holder")
	_, err = s.TryAcquireLease(ctx, "leader", "a", 0, t0)
	wantErr(t, err, state.ErrInvalid, "acquiring with no TTL")

	a := must(s.TryAcquireLease(ctx, "leader", "a", ttl, t0))(t)
	wantA := state.Lease{Name: "leader", Holder: "a", Token: 1, Acquired: norm(t0), Expires: norm(t0.Add(ttl))}
	if d := cmp.Diff(wantA, a); d != "" {
		t.Fatalf("first acquisition (-want +got):\n%s", d)
	}
	if !a.ValidAt(t0) || a.ValidAt(t0.Add(ttl)) {
		t.Fatalf("lease %+v: valid at acquisition %v, at expiry %v", a, a.ValidAt(t0), a.ValidAt(t0.Add(ttl)))
	}

	// The holder acquiring again renews, keeping the token.
	a2 := must(s.TryAcquireLease(ctx, "leader", "a", ttl, t0.Add(2*time.Second)))(t)
	if a2.Token != 1 || !a2.Expires.Equal(norm(t0.Add(12*time.Second))) || !a2.Acquired.Equal(norm(t0)) {
		t.Fatalf("re-acquisition by the holder: %+v, want token 1 until t0+12s, acquired t0", a2)
	}

	// Another holder is refused while the lease is live, and told who has it.
	held, err := s.TryAcquireLease(ctx, "leader", "b", ttl, t0.Add(5*time.Second))
	wantErr(t, err, state.ErrLeaseHeld, "acquiring a live lease held by another")
	if held.Holder != "a" || held.Token != 1 {
		t.Fatalf("ErrLeaseHeld came with %+v, want the current lease held by a", held)
	}

	a = must(s.RenewLease(ctx, a, ttl, t0.Add(6*time.Second)))(t)
	if a.Token != 1 || !a.Expires.Equal(norm(t0.Add(16*time.Second))) {
		t.Fatalf("renewal: %+v, want token 1 until t0+16s", a)
	}
	_, err = s.TryAcquireLease(ctx, "leader", "b", ttl, t0.Add(16*time.Second-time.Microsecond))
	wantErr(t, err, state.ErrLeaseHeld, "acquiring just before the renewed expiry")

	// At expiry another holder takes over with a greater token.
	bl := must(s.TryAcquireLease(ctx, "leader", "b", ttl, t0.Add(16*time.Second)))(t)
	if bl.Holder != "b" || bl.Token <= a.Token {
		t.Fatalf("takeover after expiry: %+v, want holder b with a token above %d", bl, a.Token)
	}
	_, err = s.RenewLease(ctx, a, ttl, t0.Add(17*time.Second))
	wantErr(t, err, state.ErrLeaseLost, "renewing a lease taken over")
	err = s.ReleaseLease(ctx, a)
	wantErr(t, err, state.ErrLeaseLost, "releasing a lease taken over")
	if got := must(s.GetLease(ctx, "leader"))(t); got != bl {
		t.Fatalf("GetLease = %+v, want %+v", got, bl)
	}

	// An expired lease nobody took over can still be renewed by its holder.
	bl = must(s.RenewLease(ctx, bl, ttl, t0.Add(time.Minute)))(t)
	if bl.Token != 2 || !bl.Expires.Equal(norm(t0.Add(time.Minute+ttl))) {
		t.Fatalf("late renewal: %+v", bl)
	}

	// Release frees the lease at once; the next holder gets a new token,
	// even the one that released it.
	if err := s.ReleaseLease(ctx, bl); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetLease(ctx, "leader"))(t); got.Holder != "" || got.ValidAt(t0.Add(time.Minute)) {
		t.Fatalf("after release: %+v, want no holder", got)
	}
	_, err = s.RenewLease(ctx, bl, ttl, t0.Add(time.Minute))
	wantErr(t, err, state.ErrLeaseLost, "renewing a released lease")
	b2 := must(s.TryAcquireLease(ctx, "leader", "b", ttl, t0.Add(time.Minute)))(t)
	if b2.Token != 3 {
		t.Fatalf("acquisition after release: token %d, want 3", b2.Token)
	}

	// Leases are independent by name.
	other := must(s.TryAcquireLease(ctx, "watcher", "a", ttl, t0.Add(time.Minute)))(t)
	if other.Token != 1 {
		t.Fatalf("a second lease: token %d, want 1", other.Token)
	}
}

// testLeaseRace has several replicas try to take a fresh lease at once:
// exactly one wins.
func testLeaseRace(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	const replicas = 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	var errs []error
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := string(rune('a' + i))
			_, err := s.TryAcquireLease(ctx, "leader", holder, ttl, start)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, holder)
			case !errors.Is(err, state.ErrLeaseHeld):
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(winners) != 1 {
		t.Fatalf("%d replicas acquired the lease at once: %v", len(winners), winners)
	}
	if l := must(s.GetLease(ctx, "leader"))(t); l.Holder != winners[0] || l.Token != 1 {
		t.Fatalf("stored lease %+v, want %s with token 1", l, winners[0])
	}
}

// testFencedWrites checks that every kind of leader write is refused under
// a stale token and leaves no trace, while the current leader's writes and
// everyone's reads go through.
func testFencedWrites(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	old := must(s.TryAcquireLease(ctx, "leader", "old", ttl, start))(t)
	g := must(s.CreateGrant(ctx, newGrant("g1", alice, "db-admin", start), state.Change{Actor: "a", Action: "request"}))(t)
	oldView := s.WithFence(old.Fence())
	must(oldView.AppendAudit(ctx, state.AuditEvent{Actor: "old", Action: "leader.write"}))(t)

	cur := must(s.TryAcquireLease(ctx, "leader", "new", ttl, start.Add(ttl)))(t)
	newView := s.WithFence(cur.Fence())
	before := must(s.VerifyAudit(ctx))(t)

	rec := state.BindingRecord{Binding: model.Binding{
		Target: model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "roles/viewer"}, Principal: alice, Owner: "g1"}}
	active := g
	active.Status = model.StatusActive
	writes := map[string]func(st state.Store) error{
		"PutBinding":    func(st state.Store) error { return st.PutBinding(ctx, rec) },
		"DeleteBinding": func(st state.Store) error { return st.DeleteBinding(ctx, rec.Binding) },
		"AppendAudit": func(st state.Store) error {
			_, err := st.AppendAudit(ctx, state.AuditEvent{Actor: "leader", Action: "x", Data: json.RawMessage(`1`)})
			return err
		},
		"UpdateGrant": func(st state.Store) error {
			_, err := st.UpdateGrant(ctx, active, state.Change{Actor: "elevate:reconcile", Action: "activate"})
			return err
		},
		"CreateGrant": func(st state.Store) error {
			_, err := st.CreateGrant(ctx, newGrant("t1", bob, "db-read", start), state.Change{Actor: "elevate:sync", Action: "declare"})
			return err
		},
		"SetCursor": func(st state.Store) error { return st.SetCursor(ctx, "cloudtrail", "pos-1") },
	}
	for name, w := range writes {
		wantErr(t, w(oldView), state.ErrFenced, name+" with a stale token")
		wantErr(t, w(s.WithFence(state.Fence{Lease: "nobody", Holder: "x", Token: 1})), state.ErrFenced, name+" under a lease never acquired")
	}
	// Nothing the stale leader tried is visible.
	if got := must(s.GetGrant(ctx, "g1"))(t); got.Version != 1 {
		t.Fatalf("stale UpdateGrant went through: %s", describe(got))
	}
	if _, err := s.GetGrant(ctx, "t1"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("stale CreateGrant went through: %v", err)
	}
	if n := len(must(s.ListBindings(ctx, state.BindingFilter{}))(t)); n != 0 {
		t.Fatalf("stale PutBinding went through: %d bindings", n)
	}
	if _, err := s.GetCursor(ctx, "cloudtrail"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("stale SetCursor went through: %v", err)
	}
	if after := must(s.VerifyAudit(ctx))(t); after.HeadSeq != before.HeadSeq {
		t.Fatalf("stale writes appended audit entries: head %d, was %d", after.HeadSeq, before.HeadSeq)
	}
	// Reads through a stale view still work.
	if _, err := oldView.GetGrant(ctx, "g1"); err != nil {
		t.Fatalf("reading through a stale view: %v", err)
	}

	// The current leader's writes go through, in an order where each
	// applies.
	for _, name := range []string{"PutBinding", "DeleteBinding", "AppendAudit", "UpdateGrant", "CreateGrant", "SetCursor"} {
		if err := writes[name](newView); err != nil {
			t.Fatalf("%s by the current leader: %v", name, err)
		}
	}
	if got := must(s.GetGrant(ctx, "g1"))(t); got.Status != model.StatusActive {
		t.Fatalf("leader's UpdateGrant: %s", describe(got))
	}

	// Once the leader releases, its own fence is stale too.
	if err := s.ReleaseLease(ctx, cur); err != nil {
		t.Fatal(err)
	}
	wantErr(t, writes["SetCursor"](newView), state.ErrFenced, "writing under a released lease")
}

func testCursors(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	_, err := s.GetCursor(ctx, "cloudtrail")
	wantErr(t, err, state.ErrNotFound, "reading an unset cursor")
	if err := s.SetCursor(ctx, "cloudtrail", "2026-03-01T11:00:00Z/abc"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := s.SetCursor(ctx, "gcp-audit", "token-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor(ctx, "cloudtrail", "2026-03-01T11:05:00Z/def"); err != nil {
		t.Fatal(err)
	}
	want := state.Cursor{Source: "cloudtrail", Value: "2026-03-01T11:05:00Z/def", Updated: norm(clock.Now())}
	if d := cmp.Diff(want, must(s.GetCursor(ctx, "cloudtrail"))(t)); d != "" {
		t.Fatalf("cursor (-want +got):\n%s", d)
	}
	if got := must(s.GetCursor(ctx, "gcp-audit"))(t); got.Value != "token-1" {
		t.Fatalf("second source's cursor: %+v", got)
	}
	wantErr(t, s.SetCursor(ctx, "", "x"), state.ErrInvalid, "setting a cursor without a source")
}

func testTimeRoundTrip(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	tokyo := time.FixedZone("JST", 9*3600)
	times := []time.Time{
		time.Date(2026, 3, 1, 20, 0, 0, 987654321, tokyo),
		time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), // before the Unix epoch
		time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i, at := range times {
		g := newGrant("", alice, "db-admin", at)
		g.Status = model.StatusActive
		g.NotBefore = at
		g.Starts = at
		g.Expires = at.Add(1500 * time.Microsecond)
		g.Approvals = []model.Approval{{Approver: bob, At: at, Approve: true}}
		c := must(s.CreateGrant(ctx, g, state.Change{Actor: "a", Action: "request"}))(t)
		got := must(s.GetGrant(ctx, c.ID))(t)
		for name, v := range map[string][2]time.Time{
			"requested_at": {got.RequestedAt, at}, "not_before": {got.NotBefore, at}, "starts": {got.Starts, at},
			"expires": {got.Expires, at.Add(1500 * time.Microsecond)}, "approval": {got.Approvals[0].At, at},
		} {
			if !v[0].Equal(norm(v[1])) || v[0].Location() != time.UTC || v[0] != norm(v[1]) {
				t.Errorf("time %d %s: stored %v (%s), want %v in UTC", i, name, v[0], v[0].Location(), norm(v[1]))
			}
		}
		hist := must(s.GrantHistory(ctx, c.ID))(t)
		if !hist[0].Grant.Expires.Equal(norm(g.Expires)) {
			t.Errorf("time %d: history snapshot expires %v, want %v", i, hist[0].Grant.Expires, norm(g.Expires))
		}
		// The window filter compares at microsecond precision.
		if n := len(must(s.ListGrants(ctx, state.GrantFilter{ActiveAt: norm(g.Expires).Add(-time.Microsecond)}))(t)); n < 1 {
			t.Errorf("time %d: grant not active a microsecond before its expiry", i)
		}

		r := state.BindingRecord{Binding: model.Binding{Target: model.Target{Cloud: model.CloudAzure, Scope: "/subscriptions/s", Role: "Reader", PIM: true},
			Principal: alice, Owner: c.ID, NotBefore: at, Expires: at.Add(time.Hour)}}
		if err := s.PutBinding(ctx, r); err != nil {
			t.Fatal(err)
		}
		stored := must(s.ListBindings(ctx, state.BindingFilter{Owner: c.ID}))(t)
		if len(stored) != 1 || stored[0].Binding.NotBefore != norm(at) || stored[0].Binding.Expires != norm(at.Add(time.Hour)) || !stored[0].Binding.Target.PIM {
			t.Errorf("time %d: stored binding %+v, want not_before %v", i, stored, norm(at))
		}

		l := must(s.TryAcquireLease(ctx, "lease-"+c.ID, "h", ttl, at))(t)
		if got := must(s.GetLease(ctx, l.Name))(t); got.Acquired != norm(at) || got.Expires != norm(at.Add(ttl)) {
			t.Errorf("time %d: stored lease %+v, want acquired %v", i, got, norm(at))
		}
	}
	// The unset time stays unset.
	g := must(s.CreateGrant(ctx, newGrant("", alice, "db-admin", start), state.Change{Actor: "a", Action: "request"}))(t)
	if got := must(s.GetGrant(ctx, g.ID))(t); !got.NotBefore.IsZero() || !got.Starts.IsZero() || !got.Expires.IsZero() {
		t.Errorf("unset times read back as %v %v %v", got.NotBefore, got.Starts, got.Expires)
	}
}

func testPingClose(t *testing.T, b Backend) {
	s, _ := open(t, b)
	if err := s.Ping(ctxFor(t)); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctxFor(t)); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}
