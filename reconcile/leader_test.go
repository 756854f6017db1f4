package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
)

const leaseTTL = time.Second

// replica is one engine of a leadership test, on the real clock, with its
// own connection to the shared store.
type replica struct {
	name   string
	store  state.Store
	engine *reconcile.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

func startReplica(t *testing.T, name, storeURL string, shared state.Store, cloud *memory.Provider, set *policies.Set, crash bool) *replica {
	t.Helper()
	st := shared
	if st == nil {
		var err error
		if st, err = state.Open(t.Context(), storeURL); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	e, err := reconcile.NewEngine(reconcile.Options{
		Store:        st,
		Providers:    map[model.Cloud]providers.Provider{model.CloudGCP: cloud},
		Policies:     func() *policies.Set { return set },
		Holder:       name,
		LeaseTTL:     leaseTTL,
		PollInterval: 50 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if crash {
		reconcile.CrashOnCancel(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, store: st, engine: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

// testLeadership runs two replicas on one store: one leads, the other
// waits; the leader stops (gracefully, or dies holding the lease) and the
// other takes over within the TTL plus a second.
func testLeadership(t *testing.T, storeURL string, shared state.Store) {
	for _, crash := range []bool{false, true} {
		name := "graceful"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			if shared == nil && strings.HasPrefix(storeURL, "sqlite:") {
				storeURL = "sqlite:" + filepath.Join(t.TempDir(), "state.db")
			}
			if strings.HasPrefix(storeURL, "postgres") {
				storeURL = pgtest.Schema(t, "elevate_reconcile")
			}
			cloud := memory.New(memory.Options{Cloud: model.CloudGCP})
			set := loadSet(t, viewerHCL)
			a := startReplica(t, "replica-a", storeURL, shared, cloud, set, crash)
			eventually(t, "replica-a leads", a.engine.IsLeader)
			b := startReplica(t, "replica-b", storeURL, shared, cloud, set, false)
			eventually(t, "replica-b sees replica-a lead", func() bool { return b.engine.Status().LeaderHolder == "replica-a" })

			// The leader does the work, found by its poll; a trigger on the
			// follower does nothing by itself.
			g, err := b.store.CreateGrant(t.Context(), model.Grant{ID: "g-ha-" + name, Kind: model.KindJIT, Principal: bob, Role: "viewer",
				Policy: "db", Status: model.StatusApproved, Duration: time.Hour, Starts: time.Now(), Expires: time.Now().Add(time.Hour)},
				state.Change{Actor: bob.String(), Action: "request"})
			if err != nil {
				t.Fatal(err)
			}
			b.engine.Trigger()
			eventually(t, "the leader activates the grant", func() bool {
				got, err := a.store.GetGrant(t.Context(), g.ID)
				return err == nil && got.Status == model.StatusActive
			})
			time.Sleep(leaseTTL + leaseTTL/2) // the leader renews; the follower stays idle
			if b.engine.IsLeader() || b.engine.Status().Passes != 0 {
				t.Fatalf("the follower leads (%v) or ran %d passes", b.engine.IsLeader(), b.engine.Status().Passes)
			}
			if !a.engine.IsLeader() {
				t.Fatal("the leader lost its lease while renewing it")
			}

			stopped := time.Now()
			a.stop()
			if a.engine.IsLeader() {
				t.Error("the stopped replica still claims to lead")
			}
			eventually(t, "replica-b takes over", b.engine.IsLeader)
			took := time.Since(stopped)
			if took > leaseTTL+time.Second {
				t.Errorf("takeover took %s, want at most TTL+1s = %s", took, leaseTTL+time.Second)
			}
			if !crash && took > leaseTTL {
				t.Errorf("takeover after a graceful stop took %s: the lease was not released", took)
			}
			t.Logf("takeover after %s stop: %s", name, took)

			// The new leader works: a revocation is carried out.
			if _, err := b.store.UpdateGrant(t.Context(), mustGrant(t, b.store, g.ID, func(g *model.Grant) { g.Status = model.StatusRevoked }),
				state.Change{Actor: bob.String(), Action: "revoke"}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the new leader removes the binding", func() bool { return len(owned(cloud, beta, g.ID)) == 0 })
		})
	}
}

func mustGrant(t *testing.T, st state.Store, id string, f func(*model.Grant)) model.Grant {
	t.Helper()
	g, err := st.GetGrant(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	f(&g)
	return g
}

func TestLeadershipSQLite(t *testing.T) {
	t.Parallel()
	testLeadership(t, "sqlite:", nil)
}

func TestLeadershipMem(t *testing.T) {
	t.Parallel()
	st, err := state.Open(t.Context(), "mem:")
	if err != nil {
		t.Fatal(err)
	}
	testLeadership(t, "", st)
}

func TestLeadershipPostgres(t *testing.T) {
	testLeadership(t, pgtest.DSN(t), nil)
}

// TestStaleLeaderIsFenced: another replica takes the lease while the
// leader is in the middle of a pass (between its read and its write). The
// leader's first store write fails with ErrFenced; it stops acting as
// leader at once, records nothing, and campaigns again.
func TestStaleLeaderIsFenced(t *testing.T) {
	testStaleLeader(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"))
}

func TestStaleLeaderIsFencedPostgres(t *testing.T) {
	testStaleLeader(t, pgtest.Schema(t, "elevate_reconcile"))
}

func testStaleLeader(t *testing.T, storeURL string) {
	st, err := state.Open(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const ttl = 10 * time.Second
	var arm atomic.Bool
	var tookOver atomic.Bool
	cloud := memory.New(memory.Options{Cloud: model.CloudGCP, Sleep: func(ctx context.Context, _ time.Duration) error {
		if arm.CompareAndSwap(true, false) {
			// Seen from a later clock, the leader's lease has run out.
			if _, err := st.TryAcquireLease(ctx, reconcile.LeaseName, "intruder", ttl, time.Now().Add(ttl+time.Second)); err != nil {
				t.Errorf("intruder taking the lease: %v", err)
			}
			tookOver.Store(true)
		}
		return nil
	}})
	cloud.SetFaults(memory.Faults{Latency: time.Nanosecond}) // every call goes through Sleep
	set := loadSet(t, viewerHCL)
	e, err := reconcile.NewEngine(reconcile.Options{
		Store: st, Providers: map[model.Cloud]providers.Provider{model.CloudGCP: cloud},
		Policies: func() *policies.Set { return set }, Holder: "leader", LeaseTTL: ttl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the first pass", func() bool { return e.IsLeader() && e.Status().Passes > 0 })

	g, err := st.CreateGrant(t.Context(), model.Grant{ID: "g-fenced", Kind: model.KindJIT, Principal: bob, Role: "viewer", Policy: "db",
		Status: model.StatusApproved, Duration: time.Hour, Starts: time.Now(), Expires: time.Now().Add(time.Hour)},
		state.Change{Actor: bob.String(), Action: "request"})
	if err != nil {
		t.Fatal(err)
	}
	arm.Store(true)
	e.Trigger()
	eventually(t, "the stale leader steps down", func() bool { return tookOver.Load() && !e.IsLeader() })
	eventually(t, "the status names the fenced write", func() bool { return strings.Contains(e.Status().LastError, "fenced") })
	time.Sleep(100 * time.Millisecond)
	if e.IsLeader() {
		t.Fatal("the deposed leader took the lease back from a live holder")
	}
	if lease, err := st.GetLease(t.Context(), reconcile.LeaseName); err != nil || lease.Holder != "intruder" {
		t.Fatalf("lease: %+v, %v", lease, err)
	}
	if got, _ := st.GetGrant(t.Context(), g.ID); got.Status != model.StatusApproved || got.Version != 1 {
		t.Errorf("the deposed leader changed the grant: %s v%d", got.Status, got.Version)
	}
	if recs, _ := st.ListBindings(t.Context(), state.BindingFilter{}); len(recs) != 0 {
		t.Errorf("the deposed leader recorded bindings: %+v", recs)
	}
	evs, _ := st.ListAudit(t.Context(), state.AuditFilter{})
	for _, ev := range evs {
		if ev.Actor == reconcile.ActorReconcile {
			t.Errorf("the deposed leader wrote audit entry %s", ev.Action)
		}
	}
	// Nor did it write to the cloud: the audit entry of its intent, which
	// comes first, was refused.
	if b := owned(cloud, beta, g.ID); len(b) != 0 {
		t.Errorf("the deposed leader wrote to the cloud after losing its lease: %+v", b)
	}
}
