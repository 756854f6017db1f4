package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/reconcile/reconciletest"
	"github.com/elevatehq/elevate/state"
)

// fakeClock is a reconcile.Clock the test moves by hand.
type fakeClock = reconciletest.FakeClock

func newFakeClock(t time.Time) *fakeClock { return reconciletest.NewFakeClock(t) }

// eventually polls cond for up to 10 s of real time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// engineHCL is the policy set of the engine tests: roles over GCP
// projects, an AWS account and an Azure resource group, all served by
// memory providers.
const engineHCL = `
role "db-admin" {
  gcp {
    resource = "projects/alpha"
    role     = "roles/cloudsql.admin"
  }
  aws {
    account   = "111111111111"
    role_name = "db-admin"
  }
}

role "viewer" {
  gcp {
    resource = "projects/beta"
    role     = "roles/viewer"
  }
}

role "owner" {
  standing = "remove"
  gcp {
    resource = "projects/beta"
    role     = "roles/owner"
  }
}

role "auditor" {
  gcp {
    resource = "projects/beta"
    role     = "roles/iam.securityReviewer"
  }
}

role "reader" {
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    role_definition = "Reader"
  }
}

role "ops" {
  aws {
    account   = "222222222222"
    role_name = "ops"
  }
}

jit "db" {
  roles         = ["db-admin", "viewer", "owner", "reader", "ops"]
  requesters    = ["user:alice@example.com", "user:bob@example.com", "group:sre@example.com"]
  max_duration  = "8h"
  justification = false
}
`

var (
	alpha   = model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/alpha"}
	beta    = model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/beta"}
	acct1   = model.ScopeKey{Cloud: model.CloudAWS, Scope: "111111111111"}
	acct2   = model.ScopeKey{Cloud: model.CloudAWS, Scope: "222222222222"}
	rg      = model.ScopeKey{Cloud: model.CloudAzure, Scope: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"}
	alphaDB = model.Target{Cloud: model.CloudGCP, Scope: "projects/alpha", Role: "roles/cloudsql.admin"}
	acctDB  = model.Target{Cloud: model.CloudAWS, Scope: "111111111111", Role: "db-admin"}
	betaV   = model.Target{Cloud: model.CloudGCP, Scope: "projects/beta", Role: "roles/viewer"}
	betaOwn = model.Target{Cloud: model.CloudGCP, Scope: "projects/beta", Role: "roles/owner"}
	betaAud = model.Target{Cloud: model.CloudGCP, Scope: "projects/beta", Role: "roles/iam.securityReviewer"}
	rgRead  = model.Target{Cloud: model.CloudAzure, Scope: rg.Scope, Role: "Reader", PIM: true}
	acctOps = model.Target{Cloud: model.CloudAWS, Scope: "222222222222", Role: "ops"}
	dave    = model.MustPrincipal("user:dave@example.com")
)

// rig is one engine over a memory store and memory providers for GCP, AWS
// and Azure, on a fake clock.
type rig struct {
	t      *testing.T
	clock  *fakeClock
	store  state.Store
	gcp    *memory.Provider
	aws    *memory.Provider
	azure  *memory.Provider
	set    atomic.Pointer[policies.Set]
	engine *reconcile.Engine
	reader *sdkmetric.ManualReader

	alertMu sync.Mutex
	alerts  []reconcile.Alert

	cancel context.CancelFunc
	done   chan error
}

type rigOption func(*reconcile.Options)

func newRig(t *testing.T, hcl string, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, clock: newFakeClock(now)}
	st, err := state.Open(t.Context(), "mem:", state.WithClock(r.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.store = st
	mk := func(c model.Cloud) *memory.Provider {
		return memory.New(memory.Options{Cloud: c, Clock: r.clock.Now, Seed: 7})
	}
	r.gcp, r.aws, r.azure = mk(model.CloudGCP), mk(model.CloudAWS), mk(model.CloudAzure)
	r.set.Store(loadSet(t, hcl))
	r.reader = sdkmetric.NewManualReader()
	o := reconcile.Options{
		Store: st,
		Providers: map[model.Cloud]providers.Provider{
			model.CloudGCP: r.gcp, model.CloudAWS: r.aws, model.CloudAzure: r.azure,
		},
		Policies:      r.set.Load,
		Clock:         r.clock,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Holder:        "test-replica",
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader)),
		Alert: func(_ context.Context, a reconcile.Alert) {
			r.alertMu.Lock()
			r.alerts = append(r.alerts, a)
			r.alertMu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := reconcile.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = e
	return r
}

// start runs the engine until the test ends and waits for its first pass.
func (r *rig) start() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.engine.Run(ctx) }()
	r.t.Cleanup(r.stop)
	eventually(r.t, "the engine has run its first pass", func() bool { return r.engine.Status().Passes > 0 })
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return after its context ended")
	}
}

// passes returns how many passes the engine has run.
func (r *rig) passes() int64 { return r.engine.Status().Passes }

// settle waits until the engine has run a pass that started after this
// call and then runs cond; it triggers passes until cond holds.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	eventually(r.t, what, func() bool {
		if cond() {
			return true
		}
		r.engine.Trigger()
		return false
	})
}

// approved stores an approved just-in-time grant of role for p over
// [starts, expires), as the API does for a self-service request.
func (r *rig) approved(id string, p model.Principal, role string, starts, expires time.Time) model.Grant {
	r.t.Helper()
	g, err := r.store.CreateGrant(r.t.Context(), model.Grant{
		ID: id, Kind: model.KindJIT, Principal: p, Role: role, Policy: "db", Status: model.StatusApproved,
		Duration: expires.Sub(starts), Starts: starts, Expires: expires, Justification: "test",
	}, state.Change{Actor: p.String(), Action: "request"})
	if err != nil {
		r.t.Fatal(err)
	}
	return g
}

func (r *rig) grant(id string) model.Grant {
	r.t.Helper()
	g, err := r.store.GetGrant(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return g
}

func (r *rig) hasStatus(id string, s model.GrantStatus) func() bool {
	return func() bool {
		g, err := r.store.GetGrant(r.t.Context(), id)
		return err == nil && g.Status == s
	}
}

func (r *rig) update(id string, c state.Change, f func(*model.Grant)) model.Grant {
	r.t.Helper()
	for {
		g := r.grant(id)
		f(&g)
		got, err := r.store.UpdateGrant(r.t.Context(), g, c)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		return got
	}
}

// owned returns the bindings in scope owned by grant id.
func owned(p *memory.Provider, scope model.ScopeKey, id string) []model.Binding {
	var out []model.Binding
	for _, b := range p.Bindings(scope) {
		if b.Owner == id {
			out = append(out, b)
		}
	}
	return out
}

func (r *rig) records(scope model.ScopeKey) []state.BindingRecord {
	r.t.Helper()
	recs, err := r.store.ListBindings(r.t.Context(), state.BindingFilter{Scope: scope})
	if err != nil {
		r.t.Fatal(err)
	}
	return recs
}

func (r *rig) audit(action string) []state.AuditEvent {
	r.t.Helper()
	all, err := r.store.ListAudit(r.t.Context(), state.AuditFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []state.AuditEvent
	for _, e := range all {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func (r *rig) alertsOf(kind reconcile.AlertKind) []reconcile.Alert {
	r.alertMu.Lock()
	defer r.alertMu.Unlock()
	var out []reconcile.Alert
	for _, a := range r.alerts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// history returns the actor and action of every version of grant id.
func (r *rig) history(id string) []string {
	r.t.Helper()
	evs, err := r.store.GrantHistory(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s %s %s", e.Actor, e.Action, e.To)
	}
	return out
}

// histogram returns the data points of a histogram metric.
func (r *rig) histogram(name string) []metricdata.HistogramDataPoint[float64] {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
					return h.DataPoints
				}
			}
		}
	}
	return nil
}

func (r *rig) gauge(name string) (float64, bool) {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch g := m.Data.(type) {
			case metricdata.Gauge[int64]:
				if len(g.DataPoints) > 0 {
					return float64(g.DataPoints[0].Value), true
				}
			case metricdata.Gauge[float64]:
				if len(g.DataPoints) > 0 {
					return g.DataPoints[0].Value, true
				}
			}
		}
	}
	return 0, false
}
