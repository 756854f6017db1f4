package reconcile_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// TestLifecycle follows one grant from request to removal: approved → the
// cloud gets its bindings, one write per scope → active; the clock reaches
// its expiry → the scheduler wakes at that instant → bindings removed →
// expired, with the lag recorded.
func TestLifecycle(t *testing.T) {
	r := newRig(t, engineHCL)
	ctx := t.Context()
	g, err := r.store.CreateGrant(ctx, model.Grant{
		ID: "g-life", Kind: model.KindJIT, Principal: alice, Role: "db-admin", Policy: "db",
		Status: model.StatusPending, Duration: 30 * time.Minute, Justification: "INC-1",
	}, state.Change{Actor: alice.String(), Action: "request"})
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	if n := len(r.gcp.Bindings(alpha)); n != 0 {
		t.Fatalf("a pending grant got %d bindings", n)
	}

	// The API approves it and triggers a pass.
	starts, expires := now, now.Add(30*time.Minute)
	r.update(g.ID, state.Change{Actor: "user:lead@example.com", Action: "approve"}, func(g *model.Grant) {
		g.Status, g.Starts, g.Expires = model.StatusApproved, starts, expires
		g.Approvals = append(g.Approvals, model.Approval{Approver: model.MustPrincipal("user:lead@example.com"), Approve: true})
	})
	r.engine.Trigger()
	eventually(t, "the grant is active", r.hasStatus(g.ID, model.StatusActive))

	want := []model.Binding{{Target: alphaDB, Principal: alice, Owner: g.ID, NotBefore: starts, Expires: expires, Native: true, Raw: "elevate:g-life"}}
	if diff := cmp.Diff(want, owned(r.gcp, alpha, g.ID)); diff != "" {
		t.Errorf("GCP bindings (-want +got):\n%s", diff)
	}
	if got := owned(r.aws, acct1, g.ID); len(got) != 1 || got[0].Target != acctDB {
		t.Errorf("AWS bindings: %+v", got)
	}
	if r.gcp.Writes(alpha) != 1 || r.aws.Writes(acct1) != 1 {
		t.Errorf("writes: gcp %d, aws %d; want one batch per scope", r.gcp.Writes(alpha), r.aws.Writes(acct1))
	}
	recs := r.records(alpha)
	if len(recs) != 1 || recs[0].State != state.BindingApplied || recs[0].Binding.Owner != g.ID {
		t.Errorf("binding records of %s: %+v", alpha, recs)
	}
	if got := r.grant(g.ID); !got.Starts.Equal(starts) || !got.Expires.Equal(expires) {
		t.Errorf("activation changed the window: %s–%s", got.Starts, got.Expires)
	}
	if n := len(r.audit("binding.create")); n != 2 {
		t.Errorf("%d binding.create audit entries, want 2", n)
	}
	eventually(t, "the active gauge reports the grant", func() bool {
		v, ok := r.gauge(reconcile.MetricGrantsActive)
		return ok && v == 1
	})

	// A minute before the expiry nothing happens.
	passes := r.passes()
	r.clock.Advance(29 * time.Minute)
	eventually(t, "a pass has run", func() bool { return r.passes() > passes })
	if got := r.grant(g.ID); got.Status != model.StatusActive || len(owned(r.gcp, alpha, g.ID)) != 1 {
		t.Fatalf("before expiry: status %s, %d bindings", got.Status, len(owned(r.gcp, alpha, g.ID)))
	}

	// At the expiry the scheduler wakes by itself, without a trigger.
	r.clock.Advance(time.Minute)
	eventually(t, "the grant is expired", r.hasStatus(g.ID, model.StatusExpired))
	if n := len(r.gcp.Bindings(alpha)) + len(r.aws.Bindings(acct1)); n != 0 {
		t.Errorf("%d bindings left after expiry", n)
	}
	if recs := r.records(alpha); len(recs) != 0 {
		t.Errorf("binding records left after expiry: %+v", recs)
	}
	if r.gcp.Writes(alpha) != 2 || r.aws.Writes(acct1) != 2 {
		t.Errorf("writes after expiry: gcp %d, aws %d; want 2 each", r.gcp.Writes(alpha), r.aws.Writes(acct1))
	}
	dels := r.audit("binding.delete")
	if len(dels) != 2 || dels[0].Actor != reconcile.ActorReconcile || dels[0].Subject != "grant/g-life" {
		t.Fatalf("binding.delete audit entries: %+v", dels)
	}
	var data struct{ Reason string }
	if err := json.Unmarshal(dels[0].Data, &data); err != nil || data.Reason != string(model.ReasonExpired) {
		t.Errorf("delete audit data %s: reason %q", dels[0].Data, data.Reason)
	}
	wantHist := []string{
		"user:alice@example.com request pending",
		"user:lead@example.com approve approved",
		"elevate:reconcile activate active",
		"elevate:reconcile expire expired",
	}
	if diff := cmp.Diff(wantHist, r.history(g.ID)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	pts := r.histogram(reconcile.MetricExpiryLag)
	if len(pts) != 1 || pts[0].Count != 1 || pts[0].Sum != 0 {
		t.Errorf("lag histogram: %+v; want one observation of 0s (the fake clock stood still)", pts)
	}
	if pts := r.histogram(reconcile.MetricReconcileDuration); len(pts) == 0 {
		t.Error("no reconcile duration recorded")
	}
	if st := r.engine.Status(); !st.Leader || st.LeaderHolder != "test-replica" || len(st.ScopeErrors) != 0 {
		t.Errorf("status: %+v", st)
	}
}

// TestFutureStart: a grant approved for a later start gets nothing until
// then; the scheduler wakes at the start.
func TestFutureStart(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-later", bob, "viewer", now.Add(time.Hour), now.Add(2*time.Hour))
	r.start()
	if n := len(r.gcp.Bindings(beta)); n != 0 {
		t.Fatalf("%d bindings before the start", n)
	}
	r.clock.Advance(time.Hour)
	eventually(t, "the grant is active at its start", r.hasStatus(g.ID, model.StatusActive))
	if got := owned(r.gcp, beta, g.ID); len(got) != 1 || !got[0].NotBefore.Equal(now.Add(time.Hour)) {
		t.Errorf("bindings: %+v", got)
	}
}

func TestRevoke(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-rev", alice, "db-admin", now, now.Add(time.Hour))
	r.start()
	eventually(t, "active", r.hasStatus(g.ID, model.StatusActive))

	r.update(g.ID, state.Change{Actor: alice.String(), Action: "revoke"}, func(g *model.Grant) {
		g.Status, g.Reason = model.StatusRevoked, "done early"
	})
	r.engine.Trigger()
	eventually(t, "the bindings are removed", func() bool {
		return len(owned(r.gcp, alpha, g.ID))+len(owned(r.aws, acct1, g.ID)) == 0
	})
	eventually(t, "the records are removed", func() bool { return len(r.records(alpha))+len(r.records(acct1)) == 0 })
	if got := r.grant(g.ID); got.Status != model.StatusRevoked || got.Version != 3 {
		t.Errorf("grant after revoke: %s v%d; the engine must not touch a revoked grant", got.Status, got.Version)
	}
	var data struct{ Reason string }
	dels := r.audit("binding.delete")
	if len(dels) != 2 || json.Unmarshal(dels[0].Data, &data) != nil || data.Reason != string(model.ReasonRevoked) {
		t.Errorf("delete audit: %+v", dels)
	}
}

// TestRevokeOnAnotherReplica: a revocation made through another replica's
// API (no Trigger here) is found by the leader's poll.
func TestRevokeOnAnotherReplica(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-rev2", bob, "viewer", now, now.Add(time.Hour))
	r.start()
	eventually(t, "active", r.hasStatus(g.ID, model.StatusActive))
	r.update(g.ID, state.Change{Actor: "user:admin@example.com", Action: "revoke"}, func(g *model.Grant) { g.Status = model.StatusRevoked })
	time.Sleep(20 * time.Millisecond)
	if len(owned(r.gcp, beta, g.ID)) != 1 {
		t.Fatal("removed before the poll: something else triggered the pass")
	}
	r.clock.Advance(reconcile.DefaultPollInterval)
	eventually(t, "the poll finds the revocation", func() bool { return len(owned(r.gcp, beta, g.ID)) == 0 })
}

func TestTamperedBindingReplaced(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-tamper", alice, "viewer", now, now.Add(time.Hour))
	r.start()
	eventually(t, "active", r.hasStatus(g.ID, model.StatusActive))
	b := owned(r.gcp, beta, g.ID)[0]
	if err := r.gcp.TamperExpiry(b, now.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	r.engine.Trigger(beta)
	eventually(t, "the expiry is restored", func() bool {
		bs := owned(r.gcp, beta, g.ID)
		return len(bs) == 1 && bs[0].Expires.Equal(now.Add(time.Hour))
	})
	eventually(t, "the replace is recorded", func() bool { return len(r.audit("binding.replace")) > 0 })
	reps := r.audit("binding.replace")
	var data struct{ Reason string }
	if len(reps) != 1 || json.Unmarshal(reps[0].Data, &data) != nil || data.Reason != string(model.ReasonTampered) {
		t.Errorf("replace audit: %+v", reps)
	}
	eventually(t, "the record carries the restored expiry", func() bool {
		recs := r.records(beta)
		return len(recs) == 1 && recs[0].Binding.Expires.Equal(now.Add(time.Hour))
	})
}

// TestUnknownAndUnmanaged: a managed binding whose grant does not exist is
// deleted; unmanaged bindings are never touched, except standing access of
// a role that says standing = "remove", and standing access of a governed
// role is reported once.
func TestUnknownAndUnmanaged(t *testing.T) {
	r := newRig(t, engineHCL)
	forged := model.Binding{Target: betaV, Principal: dave, Owner: "g-nobody", Expires: now.Add(time.Hour)}
	bounded := model.Binding{Target: betaV, Principal: carol, Expires: now.Add(time.Hour)}
	standing := model.Binding{Target: alphaDB, Principal: carol}   // governed, report
	ungoverned := model.Binding{Target: betaAud, Principal: carol} // no jit names auditor
	removable := model.Binding{Target: betaOwn, Principal: dave}   // governed, remove
	for _, b := range []model.Binding{forged, bounded, standing, ungoverned, removable} {
		if err := r.gcp.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	r.start()
	eventually(t, "the forged and removable bindings are gone", func() bool {
		return !slices.ContainsFunc(r.gcp.Bindings(beta), func(b model.Binding) bool {
			return b.Owner == "g-nobody" || b.Target == betaOwn
		})
	})
	for _, b := range []model.Binding{bounded, ungoverned} {
		if !slices.ContainsFunc(r.gcp.Bindings(beta), func(x model.Binding) bool { return x.Key() == b.Key() }) {
			t.Errorf("unmanaged %s of %s was touched", b.Target, b.Principal)
		}
	}
	if len(r.gcp.Bindings(alpha)) != 1 {
		t.Errorf("standing access on a report role was touched: %+v", r.gcp.Bindings(alpha))
	}
	// More passes raise no second alert for the same finding.
	p := r.passes()
	r.engine.Trigger()
	eventually(t, "another pass", func() bool { return r.passes() > p+0 })
	r.engine.Trigger()
	eventually(t, "another pass", func() bool { return r.passes() > p+1 })
	eventually(t, "two standing alerts are delivered", func() bool { return len(r.alertsOf(reconcile.AlertStanding)) >= 2 })
	time.Sleep(20 * time.Millisecond) // a duplicate would be delivered by now
	standingAlerts := r.alertsOf(reconcile.AlertStanding)
	var keys []string
	for _, a := range standingAlerts {
		keys = append(keys, a.Binding.Target.Role+" "+a.Binding.Principal.String())
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"roles/cloudsql.admin user:carol@example.com", "roles/owner user:dave@example.com"}, keys); diff != "" {
		t.Errorf("standing alerts (-want +got):\n%s", diff)
	}
	eventually(t, "both deletes are audited", func() bool { return len(r.audit("binding.delete")) >= 2 })
	if len(r.audit("binding.delete")) != 2 {
		t.Errorf("binding.delete audit entries: %d, want 2", len(r.audit("binding.delete")))
	}
}

// TestRestartRepairs: the cloud holds bindings the store forgot, and the
// store holds records of bindings the cloud lost; a new leader converges.
func TestRestartRepairs(t *testing.T) {
	r := newRig(t, engineHCL)
	g := r.approved("g-restart", alice, "viewer", now, now.Add(time.Hour))
	// Half-done pass: the binding exists, the grant is still approved and
	// no record was written; a stale record names a binding that is gone.
	if err := r.gcp.Put(model.Binding{Target: betaV, Principal: alice, Owner: g.ID, NotBefore: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stale := model.Binding{Target: betaV, Principal: bob, Owner: "g-gone", Expires: now.Add(time.Hour)}
	if err := r.store.PutBinding(t.Context(), state.BindingRecord{Binding: stale}); err != nil {
		t.Fatal(err)
	}
	r.start()
	eventually(t, "active", r.hasStatus(g.ID, model.StatusActive))
	if r.gcp.Writes(beta) != 0 {
		t.Errorf("%d writes: the binding was already right", r.gcp.Writes(beta))
	}
	eventually(t, "records match the cloud", func() bool {
		recs := r.records(beta)
		return len(recs) == 1 && recs[0].Binding.Owner == g.ID
	})
}

func TestReportModeWritesNothing(t *testing.T) {
	r := newRig(t, engineHCL+temporaryHCL(now.Add(7*24*time.Hour)), func(o *reconcile.Options) { o.Mode = reconcile.ModeReport })
	g := r.approved("g-report", alice, "db-admin", now, now.Add(time.Hour))
	if err := r.gcp.Put(model.Binding{Target: betaV, Principal: dave, Owner: "g-nobody", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := r.gcp.Put(model.Binding{Target: alphaDB, Principal: carol}); err != nil {
		t.Fatal(err)
	}
	auditBefore, _ := r.store.ListAudit(t.Context(), state.AuditFilter{})
	r.start()
	r.engine.PolicyChanged()
	r.clock.Advance(time.Hour) // past the grant's expiry, a poll and a retry
	eventually(t, "a pass at the expiry", func() bool { return r.passes() >= 2 })
	r.engine.Trigger()
	eventually(t, "a triggered pass", func() bool { return r.passes() >= 3 })

	for _, s := range []model.ScopeKey{alpha, beta, acct1, acct2, rg} {
		if w := r.gcp.Writes(s) + r.aws.Writes(s) + r.azure.Writes(s); w != 0 {
			t.Errorf("%d writes to %s in report mode", w, s)
		}
	}
	if got := r.grant(g.ID); got.Version != 1 || got.Status != model.StatusApproved {
		t.Errorf("grant changed in report mode: %s v%d", got.Status, got.Version)
	}
	if recs, _ := r.store.ListBindings(t.Context(), state.BindingFilter{}); len(recs) != 0 {
		t.Errorf("binding records written in report mode: %+v", recs)
	}
	all, _ := r.store.ListGrants(t.Context(), state.GrantFilter{})
	if len(all) != 1 {
		t.Errorf("%d grants: report mode declared temporary grants", len(all))
	}
	if auditAfter, _ := r.store.ListAudit(t.Context(), state.AuditFilter{}); len(auditAfter) != len(auditBefore) {
		t.Errorf("audit log grew from %d to %d entries in report mode", len(auditBefore), len(auditAfter))
	}
	eventually(t, "the standing alert is delivered", func() bool { return len(r.alertsOf(reconcile.AlertStanding)) > 0 })
	if len(r.alertsOf(reconcile.AlertStanding)) != 1 {
		t.Errorf("standing alerts: %+v", r.alertsOf(reconcile.AlertStanding))
	}
	// The first pass (before the hour passed) planned the grant's
	// bindings, the temporary grant's and the forged binding's deletion.
	plan, err := r.engine.PlanNow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete) != 1 || plan.Delete[0].Old.Owner != "g-nobody" {
		t.Errorf("plan deletes: %+v", plan.Delete)
	}
	if len(plan.Create) != 2 || !strings.HasPrefix(plan.Create[0].New.Owner, "tmp-") || !strings.HasPrefix(plan.Create[1].New.Owner, "tmp-") {
		t.Errorf("plan creates (the jit grant has expired, the temporary block's two principals are declared): %+v", plan.Create)
	}
	if len(plan.Findings) != 1 {
		t.Errorf("plan findings: %+v", plan.Findings)
	}
}

func TestPlanNowWritesNothing(t *testing.T) {
	r := newRig(t, engineHCL)
	r.approved("g-plan", alice, "db-admin", now, now.Add(time.Hour))
	plan, err := r.engine.PlanNow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, c := range plan.Create {
		owners = append(owners, c.New.Target.String()+" "+c.New.Owner)
	}
	want := []string{"aws:111111111111:db-admin g-plan", "gcp:projects/alpha:roles/cloudsql.admin g-plan"}
	slices.Sort(owners)
	if diff := cmp.Diff(want, owners); diff != "" {
		t.Errorf("planned creates (-want +got):\n%s", diff)
	}
	if r.gcp.Writes(alpha)+r.aws.Writes(acct1) != 0 || r.grant("g-plan").Version != 1 {
		t.Error("PlanNow wrote")
	}
	if r.engine.IsLeader() {
		t.Error("PlanNow took the lease")
	}
}

func TestNoPolicySetNoPass(t *testing.T) {
	r := newRig(t, engineHCL)
	r.approved("g-x", alice, "viewer", now, now.Add(time.Hour))
	if err := r.gcp.Put(model.Binding{Target: betaV, Principal: dave, Owner: "g-y", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r.set.Store(nil)
	r.start()
	if st := r.engine.Status(); !strings.Contains(st.LastError, "no policy set") {
		t.Errorf("status without policies: %+v", st)
	}
	if r.gcp.Writes(beta) != 0 {
		t.Error("the engine wrote without a policy set")
	}
	r.set.Store(loadSet(t, engineHCL))
	r.engine.PolicyChanged()
	eventually(t, "the pass runs once policies load", r.hasStatus("g-x", model.StatusActive))
}

func TestNewEngineValidates(t *testing.T) {
	_, err := reconcile.NewEngine(reconcile.Options{Mode: "dry"})
	for _, want := range []string{"Store is required", "Policies is required", `mode "dry"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewEngine error %v, want it to mention %q", err, want)
		}
	}
}
