package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// eventuallyAdvancing moves the fake clock on by step between looks, so
// backoff timers fire.
func (r *rig) eventuallyAdvancing(what string, step time.Duration, cond func() bool) {
	r.t.Helper()
	eventually(r.t, what, func() bool {
		if cond() {
			return true
		}
		r.clock.Advance(step)
		time.Sleep(time.Millisecond)
		return false
	})
}

// TestFaultsDoNotStallOtherScopes: one AWS account refuses every call for
// good, the Azure scope fails half its calls and a third of its changes
// and is slow; the healthy scopes converge at once, the failing one is
// reported once, and the flaky one converges through retries.
func TestFaultsDoNotStallOtherScopes(t *testing.T) {
	r := newRig(t, engineHCL)
	denied := errors.New("AccessDenied: elevate may not read account 111111111111")
	r.aws.FailScope(acct1, denied)
	r.azure.SetFaults(memory.Faults{ErrorRate: 0.5, ChangeErrorRate: 0.3, Latency: 20 * time.Millisecond})
	gDB := r.approved("g-db", alice, "db-admin", now, now.Add(8*time.Hour)) // alpha + the failing account
	gBeta := r.approved("g-beta", bob, "viewer", now, now.Add(8*time.Hour))
	gOps := r.approved("g-ops", bob, "ops", now, now.Add(8*time.Hour))
	gRG := r.approved("g-rg", carol, "reader", now, now.Add(8*time.Hour))
	r.start()

	eventually(t, "the healthy scopes' grants are active", func() bool {
		return r.hasStatus(gBeta.ID, model.StatusActive)() && r.hasStatus(gOps.ID, model.StatusActive)()
	})
	eventually(t, "g-db's GCP binding exists", func() bool { return len(owned(r.gcp, alpha, gDB.ID)) == 1 })

	r.eventuallyAdvancing("the flaky Azure scope converges", 2*time.Second, r.hasStatus(gRG.ID, model.StatusActive))
	if bs := owned(r.azure, rg, gRG.ID); len(bs) != 1 || bs[0].Target != rgRead {
		t.Errorf("azure bindings: %+v", bs)
	}

	// The grant with a target in the failing account stays approved: its
	// bindings are not all confirmed.
	if got := r.grant(gDB.ID); got.Status != model.StatusApproved {
		t.Errorf("g-db is %s with one scope unreadable", got.Status)
	}
	eventually(t, "the alert is delivered", func() bool { return len(r.alertsOf(reconcile.AlertPermanentFailure)) > 0 })
	alerts := r.alertsOf(reconcile.AlertPermanentFailure)
	if len(alerts) != 1 || alerts[0].Scope != acct1 || !strings.Contains(alerts[0].Message, "AccessDenied") {
		t.Errorf("permanent-failure alerts: %+v; want one for %s", alerts, acct1)
	}
	st := r.engine.Status()
	if !strings.Contains(st.ScopeErrors[acct1.String()], "AccessDenied") {
		t.Errorf("scope errors: %v", st.ScopeErrors)
	}
	if _, ok := st.ScopeErrors[rg.String()]; ok {
		t.Errorf("the converged Azure scope still has an error: %v", st.ScopeErrors)
	}

	// The account is fixed: the next retry converges it.
	r.aws.FailScope(acct1, nil)
	r.eventuallyAdvancing("g-db is active once the account is readable", 30*time.Second, r.hasStatus(gDB.ID, model.StatusActive))

	// Expiry through the same faults: every grant ends, the flaky one too.
	r.azure.SetFaults(memory.Faults{ErrorRate: 0.5, Latency: 5 * time.Millisecond})
	r.clock.Advance(8 * time.Hour)
	r.eventuallyAdvancing("every grant has expired", 2*time.Second, func() bool {
		for _, id := range []string{gDB.ID, gBeta.ID, gOps.ID, gRG.ID} {
			if !r.hasStatus(id, model.StatusExpired)() {
				return false
			}
		}
		return true
	})
	if n := len(r.azure.Bindings(rg)); n != 0 {
		t.Errorf("%d azure bindings left", n)
	}
}

// opsHCL has one AWS scope and one GCP scope.
const opsHCL = `
role "ops" {
  aws {
    account   = "222222222222"
    role_name = "ops"
  }
}

role "viewer" {
  gcp {
    resource = "projects/beta"
    role     = "roles/viewer"
  }
}

jit "db" {
  roles         = ["ops", "viewer"]
  requesters    = ["user:alice@example.com", "user:bob@example.com"]
  max_duration  = "8h"
  justification = false
}
`

// TestPermanentRefusalFailsGrant: the cloud refuses a grant's binding for
// good: the binding record is marked failed with the reason, the grant
// fails, an alert goes out, and other scopes carry on.
func TestPermanentRefusalFailsGrant(t *testing.T) {
	r := newRig(t, opsHCL) // one AWS scope, so the refused call is its write
	refused := errors.New("ValidationError: role ops does not exist in account 222222222222")
	g := r.approved("g-refused", bob, "ops", now, now.Add(time.Hour))
	other := r.approved("g-fine", alice, "viewer", now, now.Add(time.Hour))
	r.aws.FailNext(nil, refused) // the read succeeds, the write is refused
	r.start()
	eventually(t, "the grant failed", r.hasStatus(g.ID, model.StatusFailed))
	eventually(t, "the other grant is active", r.hasStatus(other.ID, model.StatusActive))

	got := r.grant(g.ID)
	if !strings.Contains(got.Reason, "ValidationError") {
		t.Errorf("failure reason %q", got.Reason)
	}
	if h := r.history(g.ID); h[len(h)-1] != "elevate:reconcile fail failed" {
		t.Errorf("history %v", h)
	}
	recs := r.records(acct2)
	if len(recs) != 1 || recs[0].State != state.BindingFailed || !strings.Contains(recs[0].Detail, "ValidationError") || recs[0].Binding.Owner != g.ID {
		t.Errorf("binding records: %+v", recs)
	}
	eventually(t, "the alert is delivered", func() bool { return len(r.alertsOf(reconcile.AlertPermanentFailure)) > 0 })
	alerts := r.alertsOf(reconcile.AlertPermanentFailure)
	if len(alerts) != 1 || alerts[0].Grant != g.ID || alerts[0].Binding == nil || alerts[0].Binding.Target != acctOps {
		t.Errorf("alerts: %+v", alerts)
	}
	if fails := r.audit("binding.create.failed"); len(fails) != 1 {
		t.Errorf("binding.create.failed audit entries: %d", len(fails))
	}
	// Later passes keep the failed record (it says why) and write nothing.
	writes := r.aws.Writes(acct2)
	r.clock.Advance(reconcile.DefaultResyncInterval)
	p := r.passes()
	eventually(t, "a full pass", func() bool { return r.passes() > p })
	if r.aws.Writes(acct2) != writes || len(r.records(acct2)) != 1 {
		t.Errorf("after another pass: %d writes (was %d), records %+v", r.aws.Writes(acct2), writes, r.records(acct2))
	}
}

// viewerHCL has a single scope.
const viewerHCL = `
role "viewer" {
  gcp {
    resource = "projects/beta"
    role     = "roles/viewer"
  }
}

jit "db" {
  roles         = ["viewer"]
  requesters    = ["user:bob@example.com"]
  max_duration  = "8h"
  justification = false
}
`

// TestThrottlingHonoursRetryAfter: a scope throttled with Retry-After is
// not retried before the cloud asked.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	r := newRig(t, viewerHCL) // one GCP scope, so the throttled call is its read
	g := r.approved("g-throttled", bob, "viewer", now, now.Add(time.Hour))
	r.gcp.FailNext(providers.Throttled(memory.ErrThrottled, 40*time.Second))
	r.start()
	reads := r.gcp.Reads(beta)
	r.clock.Advance(39 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if got := r.grant(g.ID).Status; got != model.StatusApproved {
		t.Fatalf("grant %s before the Retry-After ran out", got)
	}
	if r.gcp.Reads(beta) != reads {
		t.Errorf("the throttled scope was read again before its Retry-After")
	}
	r.clock.Advance(time.Second)
	eventually(t, "active after the Retry-After", r.hasStatus(g.ID, model.StatusActive))
}

// TestOverdueAlert: a grant whose removal keeps failing is reported once
// it is OverdueAfter past its expiry, and the overdue gauge grows.
func TestOverdueAlert(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-stuck", bob, "viewer", now, now.Add(time.Hour))
	r.start()
	eventually(t, "active", r.hasStatus(g.ID, model.StatusActive))
	r.gcp.FailScope(beta, providers.Transient(memory.ErrUnavailable))
	r.clock.Advance(time.Hour)
	r.eventuallyAdvancing("an overdue alert", 10*time.Second, func() bool { return len(r.alertsOf(reconcile.AlertExpiryOverdue)) > 0 })
	if a := r.alertsOf(reconcile.AlertExpiryOverdue); len(a) != 1 || a[0].Grant != g.ID {
		t.Errorf("overdue alerts: %+v", a)
	}
	if v, ok := r.gauge(reconcile.MetricExpiryOverdue); !ok || v < 60 {
		t.Errorf("overdue gauge %v (reported %v), want at least 60s", v, ok)
	}
	if st := r.engine.Status(); st.Overdue != 1 {
		t.Errorf("status overdue %d", st.Overdue)
	}
	if len(r.histogram(reconcile.MetricExpiryLag)) != 0 {
		t.Error("lag recorded before removal was confirmed")
	}
	r.gcp.FailScope(beta, nil)
	r.eventuallyAdvancing("expired once the cloud recovers", 10*time.Second, r.hasStatus(g.ID, model.StatusExpired))
	pts := r.histogram(reconcile.MetricExpiryLag)
	if len(pts) != 1 || pts[0].Count != 1 || pts[0].Sum < 60 {
		t.Errorf("lag histogram %+v: want one observation of over a minute", pts)
	}
}

// refusingProvider is a real memory provider whose cloud refuses, for good,
// to create any binding for one principal and to delete one standing
// binding: a per-change refusal, the others in the batch succeed.
type refusingProvider struct {
	*memory.Provider
	create model.Principal
	delete model.Principal
}

func (p *refusingProvider) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	var pass []model.Change
	var idx []int
	out := make([]providers.Result, len(changes))
	for i, c := range changes {
		switch {
		case c.Old == nil && c.New != nil && c.New.Principal == p.create:
			out[i] = providers.Result{Change: c, Err: errors.New("PERMISSION_DENIED: the organization policy forbids this member")}
		case c.New == nil && c.Old != nil && c.Old.Principal == p.delete:
			out[i] = providers.Result{Change: c, Err: errors.New("PERMISSION_DENIED: this binding is locked")}
		default:
			pass = append(pass, c)
			idx = append(idx, i)
			continue
		}
	}
	if len(pass) > 0 {
		res, err := p.Provider.Apply(ctx, scope, pass)
		if err != nil {
			return nil, err
		}
		for j, r := range res {
			out[idx[j]] = r
		}
	}
	return out, nil
}

// TestPermanentChangeRefusalDoesNotBackOffScope: in one scope the cloud
// keeps refusing a create and a standing binding's removal for good; they
// are alerted and the refused grant fails, but the scope does not back
// off: an expiring grant there whose first removal attempt hits a
// transient error is still removed within the transient retry (about a
// second of the fake clock), however many passes were refused before.
func TestPermanentChangeRefusalDoesNotBackOffScope(t *testing.T) {
	var rp *refusingProvider
	r := newRig(t, engineHCL, func(o *reconcile.Options) {
		rp = &refusingProvider{Provider: o.Providers[model.CloudGCP].(*memory.Provider), create: alice, delete: dave}
		o.Providers[model.CloudGCP] = rp
	})
	// A standing owner binding the policy says to remove, which the cloud
	// refuses to delete on every pass.
	if err := r.gcp.Put(model.Binding{Target: betaOwn, Principal: dave}); err != nil {
		t.Fatal(err)
	}
	refused := r.approved("g-refused", alice, "viewer", now, now.Add(8*time.Hour))
	expiring := r.approved("g-expiring", bob, "viewer", now, now.Add(10*time.Minute))
	r.start()
	eventually(t, "the refused grant failed", r.hasStatus(refused.ID, model.StatusFailed))
	eventually(t, "the other grant is active", r.hasStatus(expiring.ID, model.StatusActive))
	if got := r.grant(refused.ID).Reason; !strings.Contains(got, "PERMISSION_DENIED") {
		t.Errorf("failure reason %q", got)
	}
	// Several more passes over the scope, each refused the standing
	// removal (with a backoff per refusal it would now be minutes).
	for range 8 {
		p := r.passes()
		r.engine.Trigger(beta)
		eventually(t, "a pass", func() bool { return r.passes() > p })
	}
	eventually(t, "the alerts are delivered", func() bool { return len(r.alertsOf(reconcile.AlertPermanentFailure)) >= 2 })
	if n := len(r.alertsOf(reconcile.AlertPermanentFailure)); n != 2 {
		t.Errorf("%d permanent-failure alerts, want 2 (each raised once)", n)
	}

	// The expiry: the first read of the scope fails transiently.
	r.gcp.FailNext(providers.Transient(memory.ErrUnavailable))
	p := r.passes()
	r.clock.Advance(10 * time.Minute)
	eventually(t, "the expiry pass", func() bool { return r.passes() > p })
	// Usually the injected failure hits the expiry pass and the removal is
	// retried after a short backoff; when a concurrent pass consumed it, the
	// expiry pass removed the binding at once. Either way it must be gone
	// within a second of the expiry, not after a scope backoff of minutes.
	if len(owned(r.gcp, beta, expiring.ID)) == 1 {
		r.clock.Advance(time.Second)
	}
	eventually(t, "the expired binding removed within a second of retry", func() bool {
		return len(owned(r.gcp, beta, expiring.ID)) == 0
	})
	eventually(t, "the grant expired", r.hasStatus(expiring.ID, model.StatusExpired))
	if bs := r.gcp.Bindings(beta); len(bs) != 1 || bs[0].Principal != dave {
		t.Errorf("bindings left in beta: %+v", bs)
	}
}
