package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/state"
)

// elevateBinding returns the binding of policy whose condition title marks
// grant id, or nil.
func elevateBinding(p *iampb.Policy, id string) *iampb.Binding {
	if p == nil {
		return nil
	}
	for _, b := range p.GetBindings() {
		if b.GetCondition().GetTitle() == "elevate:"+id {
			return b
		}
	}
	return nil
}

func hasRole(p *iampb.Policy, role, member string) bool {
	for _, b := range p.GetBindings() {
		if b.GetRole() == role && slices.Contains(b.GetMembers(), member) {
			return true
		}
	}
	return false
}

// TestServeGCPEmulator runs the real daemon with a gcp block pointing at a
// GCP emulator in this process: a requested role becomes a conditional
// binding (policy version 3) titled with the grant ID; an out-of-band
// SetIamPolicy that removes it is read from the audit logs and triggers a
// pass that puts it back within seconds (the resync interval is ten
// minutes); the binding goes at expiry; a binding elevate does not own is
// kept throughout; and the audit source's cursor is in the store.
func TestServeGCPEmulator(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	emu := gcpemu.New(gcpemu.Options{Clock: time.Now, Seed: 7, ReadQuotaPerMinute: -1})
	sandbox := emu.CreateProject("sandbox")
	emu.CreateProject("prod")
	addr, stop, err := emu.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if err := emu.ModifyPolicy(sandbox, "terraform@acme.example", func(p *iampb.Policy) {
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: "roles/storage.admin", Members: []string{"group:storage@example.com"}})
	}); err != nil {
		t.Fatal(err)
	}

	polDir := writeTestPolicies(t, dir)
	if err := os.WriteFile(filepath.Join(polDir, "breakglass.hcl"), []byte(gcpBreakglassPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	pager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(pager.Close)
	cfgPath := filepath.Join(dir, "elevate.hcl")
	src := `policies = "policies"
state    = "sqlite:elevate.db"

gcp {
  endpoint     = "` + addr + `"
  insecure     = true
  parents      = ["projects/sandbox", "projects/prod"]
  self         = ["` + gcpemu.DefaultPrincipal + `"]
  audit_poll   = "1s"
  audit_settle = "0s"
}

memory {
  clouds = ["aws"]
}

reconcile {
  resync_interval = "10m"
  lease_ttl       = "3s"
}
`
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, dir, "ELEVATE_CONFIG="+cfgPath, "ELEVATE_STATIC_TOKENS="+testStaticTokens(), "GCP_E2E_PAGER_URL="+pager.URL)
	// A break-glass account signs in: the audit source feeds the detector.
	signIn := emu.InjectAudit(gcpemu.AuditRecord{Parent: sandbox, ServiceName: "login.googleapis.com",
		MethodName: "google.login.LoginService.loginSuccess", Principal: "breakglass-1@example.com", CallerIP: "203.0.113.9"})
	// Its incident shows the audit source has read past terraform's
	// change, made while elevate managed nothing in the project: whether a
	// scope is managed is judged when its change is read.
	seenSignIn := time.Now().Add(15 * time.Second)
	for {
		var incs struct {
			Incidents []json.RawMessage `json:"incidents"`
		}
		apiCall(t, d.url, devToken, "GET", "/v1/incidents", nil, &incs)
		if len(incs.Incidents) > 0 {
			break
		}
		if time.Now().After(seenSignIn) {
			t.Fatalf("the break-glass sign-in never made an incident\ndaemon:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	stdout, stderr, code := runElevate(t, dir, clientEnv(d, devToken),
		"request", "sandbox", "--for", "12s", "--reason", "gcp e2e", "--wait", "--format", "json")
	if code != 0 {
		t.Fatalf("request --wait exit %d\n%s%s\ndaemon:\n%s", code, stdout, stderr, d.stderr)
	}
	var g grantView
	if err := json.Unmarshal([]byte(stdout), &g); err != nil || g.Expires == nil {
		t.Fatalf("request output %q: %v", stdout, err)
	}
	pol := emu.Policy(sandbox)
	b := elevateBinding(pol, g.ID)
	if b == nil {
		t.Fatalf("no binding titled elevate:%s in the emulator's policy of %s: %v", g.ID, sandbox, pol)
	}
	if pol.GetVersion() != 3 || b.GetRole() != "roles/logging.viewer" || !slices.Equal(b.GetMembers(), []string{"user:dev@example.com"}) ||
		!strings.Contains(b.GetCondition().GetExpression(), "request.time <") {
		t.Errorf("policy version %d, binding %v: want version 3 and roles/logging.viewer for user:dev@example.com until the expiry", pol.GetVersion(), b)
	}

	// Someone removes elevate's binding in the console.
	tamperedAt := time.Now()
	if err := emu.ModifyPolicy(sandbox, "mallory@example.com", func(p *iampb.Policy) {
		p.Bindings = slices.DeleteFunc(p.Bindings, func(x *iampb.Binding) bool { return x.GetCondition().GetTitle() == "elevate:"+g.ID })
	}); err != nil {
		t.Fatal(err)
	}
	if elevateBinding(emu.Policy(sandbox), g.ID) != nil {
		t.Fatal("the out-of-band change did not remove the binding")
	}
	deadline := tamperedAt.Add(6 * time.Second)
	for elevateBinding(emu.Policy(sandbox), g.ID) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the binding was not restored within 6s of the out-of-band change\ndaemon:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	restored := time.Since(tamperedAt)
	t.Logf("out-of-band removal repaired in %s", restored.Round(time.Millisecond))
	if !time.Now().Before(*g.Expires) {
		t.Fatalf("restored only after the grant's expiry; the expiry pass may have done it")
	}
	if !strings.Contains(d.stderr.String(), "allow policy changed outside elevate") || !strings.Contains(d.stderr.String(), sandbox) {
		t.Errorf("the daemon did not log the audit-triggered pass of %s:\n%s", sandbox, d.stderr)
	}

	waitGrantStatus(t, d.url, devToken, g.ID, "expired", time.Until(*g.Expires)+5*time.Second)
	// Only mallory's change triggered a pass: not elevate's own writes
	// (self), not terraform's change of a scope elevate did not manage yet.
	if n := strings.Count(d.stderr.String(), "allow policy changed outside elevate"); n != 1 {
		t.Errorf("%d audit-triggered passes, want 1 (the out-of-band change)\n%s", n, d.stderr)
	}
	pol = emu.Policy(sandbox)
	if b := elevateBinding(pol, g.ID); b != nil {
		t.Errorf("the binding is still there after expiry: %v", b)
	}
	if !hasRole(pol, "roles/storage.admin", "group:storage@example.com") {
		t.Errorf("the binding elevate does not own was lost: %v", pol)
	}
	if n := emu.Counters().V1WriteAttempts; n != 0 {
		t.Errorf("%d version 1 writes touched conditions", n)
	}
	var incs struct {
		Incidents []struct {
			Account    string `json:"account"`
			EventCount int    `json:"event_count"`
			Events     []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"incidents"`
	}
	apiCall(t, d.url, devToken, "GET", "/v1/incidents", nil, &incs)
	if len(incs.Incidents) != 1 || incs.Incidents[0].Account != "gcp:user:breakglass-1@example.com" || incs.Incidents[0].EventCount != 1 {
		t.Errorf("incidents = %+v, want one of gcp:user:breakglass-1@example.com with one event (%s)", incs.Incidents, signIn.GetInsertId())
	}

	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, d.stderr)
	}
	store, err := state.Open(context.Background(), "sqlite:"+filepath.Join(dir, "elevate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cur, err := store.GetCursor(context.Background(), "audit-source/"+gcpAuditSourceName)
	if err != nil {
		t.Fatalf("the GCP audit source's cursor is not in the store: %v", err)
	}
	var pos struct {
		T time.Time `json:"t"`
	}
	if err := json.Unmarshal([]byte(cur.Value), &pos); err != nil || pos.T.Before(tamperedAt) {
		t.Errorf("cursor %q (%v): want a position at or after the out-of-band change at %s", cur.Value, err, tamperedAt.UTC())
	}
}

// gcpBreakglassPolicies adds a break-glass account that signs in to GCP.
const gcpBreakglassPolicies = `
break_glass "gcp-outage" {
  description   = "Identity provider down: the GCP emergency account"
  reasons       = ["identity-provider-outage"]
  accounts      = ["gcp:user:breakglass-1@example.com"]
  review_within = "24h"
  notify        = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "GCP_E2E_PAGER_URL"
}
`

// TestManagedScopes: a scope is managed when the store has a binding
// elevate made there or a live grant targets it, and only then.
func TestManagedScopes(t *testing.T) {
	ctx := context.Background()
	store, err := state.Open(ctx, "mem:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	set, diags := policies.LoadSources([]string{"p.hcl"}, map[string][]byte{"p.hcl": []byte(testPolicies)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := &managedScopes{store: store, policies: func() *policies.Set { return set }, now: func() time.Time { return now },
		log: slog.New(slog.DiscardHandler)}
	sandbox := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/sandbox"}
	prod := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/prod"}
	other := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/other"}
	for _, s := range []model.ScopeKey{sandbox, prod, other} {
		if m.Managed(s) {
			t.Errorf("%s is managed with no grants and no bindings", s)
		}
	}
	// A grant that ended does not make its scope managed.
	if _, err := store.CreateGrant(ctx, model.Grant{Kind: model.KindJIT, Principal: model.MustPrincipal("user:a@example.com"), Role: "prod",
		Policy: "prod-approved", Status: model.StatusExpired, Duration: time.Hour, RequestedAt: now.Add(-2 * time.Hour),
		Starts: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}, state.Change{Actor: "test", Action: "request"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateGrant(ctx, model.Grant{Kind: model.KindJIT, Principal: model.MustPrincipal("user:a@example.com"), Role: "sandbox",
		Policy: "sandbox-self", Status: model.StatusActive, Duration: time.Hour, RequestedAt: now.Add(-time.Minute),
		Starts: now.Add(-time.Minute), Expires: now.Add(time.Hour)}, state.Change{Actor: "test", Action: "request"}); err != nil {
		t.Fatal(err)
	}
	if !m.Managed(sandbox) || m.Managed(prod) {
		t.Errorf("with a live sandbox grant and an expired prod grant: sandbox %v, prod %v; want true, false", m.Managed(sandbox), m.Managed(prod))
	}
	if err := store.PutBinding(ctx, state.BindingRecord{State: state.BindingApplied, Binding: model.Binding{
		Target:    model.Target{Cloud: model.CloudGCP, Scope: other.Scope, Role: "roles/viewer"},
		Principal: model.MustPrincipal("user:a@example.com"), Owner: "g1", Expires: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if !m.Managed(other) {
		t.Errorf("%s holds a binding elevate made but is not managed", other)
	}
}

// TestGCPScopes lists the GCP resources of a policy set for dev mode's
// audit source.
func TestGCPScopes(t *testing.T) {
	set, diags := policies.LoadSources([]string{"p.hcl"}, map[string][]byte{"p.hcl": []byte(testPolicies)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := gcpScopes(set), []string{"projects/prod", "projects/sandbox"}; !slices.Equal(got, want) {
		t.Errorf("gcpScopes = %v, want %v", got, want)
	}
}
