package gcp_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/gcp"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/state"
)

const breakGlass = "bg-1@example.com"

func (e *env) auditSource(t testing.TB, configure ...func(*gcp.AuditConfig)) *gcp.AuditSource {
	t.Helper()
	cfg := gcp.AuditConfig{
		ClientOptions: gcpemu.ClientOptions(e.addr),
		Parents:       []string{prod.Scope},
		Self:          []string{gcpemu.DefaultPrincipal},
		Clock:         e.clock.Now,
		Settle:        -1,
		MinInterval:   -1,
	}
	for _, f := range configure {
		f(&cfg)
	}
	s, err := gcp.NewAuditSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func signIn(e *env, who string, failed bool) {
	e.emu.InjectAudit(gcpemu.AuditRecord{
		Parent: prod.Scope, ServiceName: "login.googleapis.com", MethodName: "google.login.LoginService.loginSuccess",
		Principal: who, CallerIP: "198.51.100.7", Failed: failed,
	})
}

func TestAuditEventsAreNormalised(t *testing.T) {
	e := newEnv(t)
	var triggered []model.ScopeKey
	src := e.auditSource(t, func(c *gcp.AuditConfig) {
		c.OnPolicyChange = func(s model.ScopeKey) { triggered = append(triggered, s) }
	})
	signIn(e, breakGlass, false)
	e.clock.Advance(time.Second)
	signIn(e, breakGlass, true)
	e.clock.Advance(time.Second)
	mustApply(t, e.prov, prod, create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour)))) // elevate's own write
	e.clock.Advance(time.Second)
	if err := (outOfBand{e.emu}).AddUnmanaged(model.Binding{Target: target(prod, viewer), Principal: bob}); err != nil {
		t.Fatal(err)
	}

	evs, cursor, err := src.Read(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if cursor == "" {
		t.Error("no cursor after reading events")
	}
	var logins, sets []providers.AuditEvent
	for _, ev := range evs {
		if ev.Cloud != model.CloudGCP || ev.ID == "" || ev.Time.IsZero() || len(ev.Raw) == 0 {
			t.Errorf("event lacks basics: %+v", ev)
		}
		switch ev.Category {
		case providers.AuditSignIn:
			logins = append(logins, ev)
		case providers.AuditIAMChange:
			sets = append(sets, ev)
		}
	}
	if len(logins) != 2 {
		t.Fatalf("%d sign-ins, want 2: %+v", len(logins), evs)
	}
	ok := logins[0]
	if ok.Actor.String() != "gcp:user:"+breakGlass || ok.ActorID != breakGlass || !ok.Success || ok.SourceIP != "198.51.100.7" ||
		ok.Action != "google.login.LoginService.loginSuccess" || !ok.Time.Equal(t0) || ok.Scope != prod {
		t.Errorf("sign-in %+v", ok)
	}
	if logins[1].Success || logins[1].Attrs["error"] == "" {
		t.Errorf("a failed sign-in reads as %+v", logins[1])
	}
	if len(sets) != 2 {
		t.Fatalf("%d policy changes, want 2", len(sets))
	}
	mine, theirs := sets[0], sets[1]
	if mine.Actor.String() != "gcp:serviceAccount:"+gcpemu.DefaultPrincipal || mine.Attrs["reconcile"] != "" {
		t.Errorf("elevate's own write: %+v", mine)
	}
	if theirs.ActorID != "someone-else@example.com" || theirs.Attrs["reconcile"] != "true" ||
		!strings.Contains(theirs.Attrs["binding_deltas"], "ADD roles/viewer user:bob@example.com") || theirs.Attrs["log"] != "activity" {
		t.Errorf("someone else's write: %+v", theirs)
	}
	if scope, ok := gcp.PolicyChangeScope(theirs); !ok || scope != prod {
		t.Errorf("PolicyChangeScope = %v %v", scope, ok)
	}
	if !slices.Equal(triggered, []model.ScopeKey{prod}) {
		t.Errorf("reconciles triggered for %v, want only %s", triggered, prod)
	}
	// Nothing new: no events, the same cursor.
	again, next, err := src.Read(context.Background(), cursor, 100)
	if err != nil || len(again) != 0 || next != cursor {
		t.Errorf("second read: %d events, cursor %q (was %q), %v", len(again), next, cursor, err)
	}
}

// TestAuditCursorSurvivesRestarts reads in small pages, with a new source
// (a restarted daemon) for every page and the cursor kept in the store,
// while new entries keep arriving, many at the same timestamp: the pages
// together are exactly the entries, once each.
func TestAuditCursorSurvivesRestarts(t *testing.T) {
	e := newEnv(t)
	st, err := state.Open(context.Background(), "mem:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	burst := func(n int) {
		for i := range n {
			signIn(e, fmt.Sprintf("user%d@example.com", i), false) // same instant
		}
		e.clock.Advance(time.Millisecond)
	}
	// An entry older than the 24 hours entries.list searches by default.
	e.emu.InjectAudit(gcpemu.AuditRecord{Parent: prod.Scope, Time: t0.Add(-72 * time.Hour), ServiceName: "login.googleapis.com",
		MethodName: "google.login.LoginService.loginSuccess", Principal: breakGlass})
	burst(9)
	burst(1)

	var paged []string
	for round := 0; ; round++ {
		if round == 3 || round == 6 {
			burst(11) // new entries while reading
		}
		cur, err := st.GetCursor(ctx, "gcp")
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			t.Fatal(err)
		}
		src := e.auditSource(t) // a fresh process
		evs, next, err := src.Read(ctx, cur.Value, 4)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if next != cur.Value {
				t.Errorf("an empty read moved the cursor")
			}
			if round > 6 {
				break
			}
			continue
		}
		if len(evs) > 4 {
			t.Fatalf("read %d events with limit 4", len(evs))
		}
		for _, ev := range evs {
			paged = append(paged, ev.ID)
		}
		if err := st.SetCursor(ctx, "gcp", next); err != nil {
			t.Fatal(err)
		}
	}
	all, _, err := e.auditSource(t).Read(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ev := range all {
		if ev.Category == providers.AuditSignIn {
			want = append(want, ev.ID)
		}
	}
	var got []string
	seen := make(map[string]bool)
	for _, id := range paged {
		if seen[id] {
			t.Errorf("entry %s read twice", id)
		}
		seen[id] = true
		if slices.Contains(want, id) {
			got = append(got, id)
		}
	}
	if len(want) != 33 || !slices.Equal(got, want) {
		t.Errorf("paged reads saw %d sign-ins, the full read %d:\npaged %v\nfull  %v", len(got), len(want), got, want)
	}
	if c := e.emu.Counters(); c.ListWithoutTimestamp != 0 {
		t.Errorf("%d entries.list calls without a timestamp bound", c.ListWithoutTimestamp)
	}
}

func TestAuditFilterByPrincipal(t *testing.T) {
	e := newEnv(t)
	src := e.auditSource(t, func(c *gcp.AuditConfig) { c.Principals = []string{breakGlass} })
	signIn(e, breakGlass, false)
	signIn(e, "someone@example.com", false)
	if err := (outOfBand{e.emu}).AddUnmanaged(model.Binding{Target: target(prod, viewer), Principal: bob}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.prov.Observe(context.Background(), prod, nil); err != nil { // a data access entry
		t.Fatal(err)
	}
	f := src.Filter(t0, time.Time{})
	if !strings.Contains(f, `logName:"cloudaudit.googleapis.com"`) || !strings.Contains(f, `timestamp>="2026-12-01T10:00:00Z"`) {
		t.Errorf("filter %s", f)
	}
	evs, _, err := src.Read(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.ActorID+" "+string(ev.Category))
	}
	want := []string{breakGlass + " sign-in", "someone-else@example.com iam-change"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestAuditOneCallPerPollAndLag(t *testing.T) {
	e := newEnv(t)
	reader := sdkmetric.NewManualReader()
	src := e.auditSource(t, func(c *gcp.AuditConfig) {
		c.Settle = 30 * time.Second
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		c.Parents = []string{prod.Scope, "organizations/5678"}
	})
	e.emu.CreateOrganization("5678")
	lag := func() (float64, bool) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == gcp.MetricAuditLag && len(g.DataPoints) == 1 {
					return g.DataPoints[0].Value, true
				}
			}
		}
		return 0, false
	}
	if _, ok := lag(); ok {
		t.Error("a lag before the first read")
	}
	signIn(e, breakGlass, false)
	e.emu.InjectAudit(gcpemu.AuditRecord{Parent: "organizations/5678", ServiceName: "login.googleapis.com",
		MethodName: "google.login.LoginService.loginSuccess", Principal: "bg-2@example.com", Time: t0.Add(time.Second)})
	ctx := context.Background()
	// Entries younger than the settle time wait.
	evs, cur, err := src.Read(ctx, "", 100)
	if err != nil || len(evs) != 0 {
		t.Fatalf("read before settling: %d events, %v", len(evs), err)
	}
	if v, ok := lag(); !ok || v != 30 {
		t.Errorf("lag %v %v, want 30s (the settle time)", v, ok)
	}
	e.clock.Advance(40 * time.Second)
	evs, _, err = src.Read(ctx, cur, 1)
	if err != nil || len(evs) != 1 || evs[0].ActorID != breakGlass {
		t.Fatalf("read after settling: %+v, %v", evs, err)
	}
	if v, _ := lag(); v != 40 {
		t.Errorf("lag %v after a full page, want 40s (now minus the last event)", v)
	}
	for _, parent := range []string{prod.Scope, "organizations/5678"} {
		if n := e.emu.Calls(gcpemu.MethodListLogEntries, parent); n != 2 {
			t.Errorf("%d entries.list calls naming %s in two polls, want 2 (one call per poll names every parent)", n, parent)
		}
	}
}

func TestAuditSourceRefusesBadConfigAndCursors(t *testing.T) {
	e := newEnv(t)
	if _, err := gcp.NewAuditSource(gcp.AuditConfig{ClientOptions: gcpemu.ClientOptions(e.addr)}); err == nil || !strings.Contains(err.Error(), "no parents") {
		t.Errorf("no parents: %v", err)
	}
	if _, err := gcp.NewAuditSource(gcp.AuditConfig{ClientOptions: gcpemu.ClientOptions(e.addr), Parents: []string{"acme-prod"}}); err == nil {
		t.Error("a parent that is not a resource name was accepted")
	}
	src := e.auditSource(t)
	if _, _, err := src.Read(context.Background(), "garbage", 10); err == nil || !strings.Contains(err.Error(), "invalid GCP audit cursor") {
		t.Errorf("bad cursor: %v", err)
	}
	if _, _, err := src.Read(context.Background(), "", 0); err == nil {
		t.Error("limit 0 accepted")
	}
	e.emu.SetFaults(gcpemu.Faults{PermissionDenied: map[string]bool{prod.Scope: true}})
	if _, _, err := src.Read(context.Background(), "", 10); err == nil || providers.IsTransient(err) {
		t.Errorf("permission denied: %v, want permanent", err)
	}
	e.emu.SetFaults(gcpemu.Faults{ResourceExhaustedRate: 1, RetryDelay: 20 * time.Second})
	if _, _, err := src.Read(context.Background(), "", 10); providers.RetryAfterOf(err) != 20*time.Second {
		t.Errorf("quota: %v, want transient with Retry-After 20s", err)
	}
}
