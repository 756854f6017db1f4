package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// serveEnv is the environment of a daemon on SQLite in dir with the test
// policies, tokens and the in-process memory provider for gcp and aws.
func serveEnv(t testing.TB, dir string) []string {
	return []string{
		"ELEVATE_POLICIES=" + writeTestPolicies(t, dir),
		"ELEVATE_STATE=sqlite:" + filepath.Join(dir, "elevate.db"),
		"ELEVATE_STATIC_TOKENS=" + testStaticTokens(),
		"ELEVATE_MEMORY_CLOUDS=gcp,aws",
		"ELEVATE_LEASE_TTL=3s",
	}
}

func clientEnv(p *proc, token string) []string {
	return []string{"ELEVATE_ADDR=" + p.url, "ELEVATE_TOKEN=" + token}
}

// TestServeRequestActiveExpired runs the real daemon: a self-service
// request becomes active, expires on time, shows in the metrics, and
// SIGTERM shuts the daemon down cleanly, releasing the lease.
func TestServeRequestActiveExpired(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startServe(t, dir, serveEnv(t, dir)...)
	d.waitHTTP(t, "/readyz", http.StatusOK, 10*time.Second)

	start := time.Now()
	stdout, stderr, code := runElevate(t, dir, clientEnv(d, devToken),
		"request", "sandbox", "--for", "3s", "--reason", "e2e test", "--wait", "--format", "json")
	if code != 0 {
		t.Fatalf("request --wait exit %d\nstdout:\n%s\nstderr:\n%s\ndaemon:\n%s", code, stdout, stderr, d.stderr)
	}
	var g grantView
	if err := json.Unmarshal([]byte(stdout), &g); err != nil {
		t.Fatalf("request --format json output: %v\n%s", err, stdout)
	}
	if g.Status != "active" || g.Expires == nil {
		t.Fatalf("after --wait the grant is %q (expires %v), want active", g.Status, g.Expires)
	}
	t.Logf("request to active through the CLI: %s", time.Since(start).Round(time.Millisecond))

	// Expired within the lag bound: the engine wakes at the expiry.
	const lagBound = 3 * time.Second
	waitGrantStatus(t, d.url, devToken, g.ID, "expired", time.Until(*g.Expires)+lagBound)
	var detail grantDetail
	apiCall(t, d.url, devToken, "GET", "/v1/grants/"+g.ID, nil, &detail)
	var actions []string
	for _, h := range detail.History {
		actions = append(actions, h.Actor+" "+h.Action)
	}
	for _, want := range []string{"user:dev@example.com request", reconcile.ActorReconcile + " activate", reconcile.ActorReconcile + " expire"} {
		if !strings.Contains(strings.Join(actions, "\n"), want) {
			t.Errorf("history %q lacks %q", actions, want)
		}
	}

	if v, ok := metricValue(t, d.url, `elevate_expiry_lag_seconds_count{kind="jit"}`); !ok || v < 1 {
		t.Errorf("elevate_expiry_lag_seconds_count = %v (present %v), want >= 1", v, ok)
	}
	if v, ok := metricValue(t, d.url, "elevate_leader"); !ok || v != 1 {
		t.Errorf("elevate_leader = %v (present %v), want 1", v, ok)
	}
	if v, ok := metricValue(t, d.url, `elevate_provider_calls_total{cloud="gcp",op="apply",result="ok"}`); !ok || v < 2 {
		t.Errorf("gcp apply calls = %v (present %v), want >= 2 (create and delete)", v, ok)
	}
	metrics := metricsText(t, d.url)
	for _, name := range []string{"elevate_grants_active", "elevate_expiry_overdue_seconds", "elevate_reconcile_duration_seconds_count", "go_goroutines"} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0\nstderr:\n%s", code, d.stderr)
	}
	if !strings.Contains(d.stderr.String(), "elevate stopped") {
		t.Errorf("the log does not say the daemon stopped:\n%s", d.stderr)
	}
	// The lease was given up, so another replica could take over at once.
	store, err := state.Open(context.Background(), "sqlite:"+filepath.Join(dir, "elevate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l, err := store.GetLease(context.Background(), reconcile.LeaseName)
	if err != nil {
		t.Fatal(err)
	}
	if l.Holder != "" {
		t.Errorf("after shutdown the lease is held by %q, want released", l.Holder)
	}

	// The audit chain of everything above verifies; a tampered entry is found.
	env := []string{"ELEVATE_STATE=sqlite:" + filepath.Join(dir, "elevate.db")}
	out, errOut, code := runElevate(t, dir, env, "audit", "verify")
	if code != 0 || !strings.Contains(out, "Audit log verified") {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "elevate.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Someone with write access to the database file drops the guard
	// trigger and rewrites history.
	for _, q := range []string{`DROP TRIGGER audit_events_append_only_u`, `UPDATE audit_events SET actor = 'user:mallory@example.com' WHERE seq = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	out, errOut, code = runElevate(t, dir, env, "audit", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN at entry #2") {
		t.Errorf("audit verify of a tampered log: exit %d, want 1 and the broken entry\n%s%s", code, out, errOut)
	}
	out, _, code = runElevate(t, dir, env, "audit", "verify", "--format", "json")
	var res state.VerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.OK || res.BrokenSeq != 2 {
		t.Errorf("audit verify --format json: exit %d, %+v, %v", code, res, err)
	}
}

var grantIDRe = regexp.MustCompile(`Grant (\S+):`)

func grantIDFrom(t testing.TB, out string) string {
	t.Helper()
	m := grantIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no grant ID in output:\n%s", out)
	}
	return m[1]
}

// TestClientCommands drives every client command against a real daemon.
func TestClientCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startServe(t, dir, serveEnv(t, dir)...)
	dev, mgr, eng := clientEnv(d, devToken), clientEnv(d, mgrToken), clientEnv(d, engToken)
	run := func(env []string, wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runElevate(t, dir, env, args...)
		if code != wantCode {
			t.Fatalf("elevate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out, errOut
	}

	// A request that needs approval.
	out, _ := run(dev, 0, "request", "prod", "--for", "30m", "--reason", "look at the orders", "--ticket", "INC-1")
	if !strings.Contains(out, "pending approval") || !strings.Contains(out, "group:managers@example.com") {
		t.Errorf("request output lacks the pending decision and approvers:\n%s", out)
	}
	prodID := grantIDFrom(t, out)

	_, errOut := run(dev, 1, "approve", prodID)
	if !strings.Contains(errOut, "self-approval") && !strings.Contains(errOut, "not-approver") {
		t.Errorf("self-approval refusal lacks its code:\n%s", errOut)
	}
	out, _ = run(mgr, 0, "approve", prodID, "--comment", "ok for the incident")
	if !strings.Contains(out, "Approved grant "+prodID) || !strings.Contains(out, "now approved") {
		t.Errorf("approve output:\n%s", out)
	}
	waitGrantStatus(t, d.url, devToken, prodID, "active", 10*time.Second)

	out, _ = run(dev, 0, "status", prodID)
	for _, want := range []string{"Grant", prodID, "Status         active", "Groups         group:eng@example.com (at request time)", "user:mgr@example.com approved", "ok for the incident", "History", "activate", "pending → approved"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	out, _ = run(dev, 0, "status", prodID, "--format", "json")
	var detail grantDetail
	if err := json.Unmarshal([]byte(out), &detail); err != nil || detail.Grant.ID != prodID || len(detail.History) < 3 ||
		!slices.Equal(detail.Grant.RequesterGroups, []string{"group:eng@example.com"}) {
		t.Errorf("status --format json: %v, %+v", err, detail)
	}

	// Self-service, extended, then revoked.
	out, _ = run(eng, 0, "request", "sandbox", "--for", "10m", "--reason", "debugging")
	if !strings.Contains(out, "is approved, self-service") {
		t.Errorf("self-service request output:\n%s", out)
	}
	sbID := grantIDFrom(t, out)
	before := waitGrantStatus(t, d.url, engToken, sbID, "active", 10*time.Second)
	out, _ = run(eng, 0, "extend", sbID, "--by", "5m", "--reason", "still debugging")
	if !strings.Contains(out, "Extended grant "+sbID) {
		t.Errorf("extend output:\n%s", out)
	}
	var after grantDetail
	apiCall(t, d.url, engToken, "GET", "/v1/grants/"+sbID, nil, &after)
	if got := after.Grant.Expires.Sub(*before.Expires); got != 5*time.Minute || after.Grant.Renewals != 1 {
		t.Errorf("extend moved expiry by %s with %d renewals, want 5m and 1", got, after.Grant.Renewals)
	}
	_, errOut = run(eng, 1, "extend", prodID, "--by", "5m")
	if !strings.Contains(errOut, "(") {
		t.Errorf("refused extend lacks a reason code:\n%s", errOut)
	}

	out, _ = run(dev, 0, "grants", "--active")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(out, sbID) || !strings.Contains(out, prodID) {
		t.Errorf("grants --active: want a header and the two active grants:\n%s", out)
	} else if col := strings.Index(lines[0], "STATUS"); col < 0 || strings.Index(lines[1], "active") != col || strings.Index(lines[2], "active") != col {
		t.Errorf("grants --active columns are not aligned:\n%s", out)
	}
	out, _ = run(eng, 0, "grants", "--mine", "--format", "json")
	var list grantList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, g := range list.Grants {
		if g.Principal != "user:eng@example.com" {
			t.Errorf("grants --mine for eng lists %s's grant %s", g.Principal, g.ID)
		}
	}
	if len(list.Grants) != 1 {
		t.Errorf("grants --mine for eng: %d grants, want 1", len(list.Grants))
	}

	out, _ = run(eng, 0, "revoke", sbID, "--reason", "done")
	if !strings.Contains(out, "now revoked") {
		t.Errorf("revoke output:\n%s", out)
	}

	// Denied by an approver, and by the policies.
	out, _ = run(eng, 0, "request", "prod", "--for", "15m", "--reason", "curious")
	denyID := grantIDFrom(t, out)
	run(mgr, 2, "deny", denyID)
	out, _ = run(mgr, 0, "deny", denyID, "--reason", "not without an incident")
	if !strings.Contains(out, "now denied") {
		t.Errorf("deny output:\n%s", out)
	}
	out, _ = run(dev, 1, "request", "no-such-role", "--reason", "typo")
	if !strings.Contains(out, "was denied") || !strings.Contains(out, "unknown-role") {
		t.Errorf("denied request output:\n%s", out)
	}
	out, _ = run(dev, 1, "request", "no-such-role", "--reason", "typo", "--wait")
	if !strings.Contains(out, "was denied") {
		t.Errorf("denied request with --wait:\n%s", out)
	}

	// Errors that are the caller's to fix exit 2 and say what to check.
	_, errOut = run([]string{"ELEVATE_ADDR=http://" + freeAddr(t), "ELEVATE_TOKEN=" + devToken}, 2, "grants")
	if !strings.Contains(errOut, "Check ELEVATE_ADDR") {
		t.Errorf("connection error does not point at ELEVATE_ADDR:\n%s", errOut)
	}
	_, errOut = run(clientEnv(d, "elv_wrong"), 2, "grants")
	if !strings.Contains(errOut, "ELEVATE_TOKEN") {
		t.Errorf("refused token does not point at ELEVATE_TOKEN:\n%s", errOut)
	}
	_, errOut = run([]string{"ELEVATE_ADDR=" + d.url, "ELEVATE_TOKEN="}, 2, "grants")
	if !strings.Contains(errOut, "ELEVATE_TOKEN is not set") {
		t.Errorf("missing token:\n%s", errOut)
	}
	run(dev, 1, "status", "no-such-grant")
	run(dev, 2, "request", "sandbox", "--for", "1.5h")
	run(dev, 2, "grants", "--status", "bogus")
	// --help never touches the network.
	run([]string{"ELEVATE_ADDR=http://" + freeAddr(t)}, 0, "request", "--help")
}

// TestServeBadConfig: configuration errors exit 2 and name the position.
func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "elevate.hcl")
	if err := os.WriteFile(cfg, []byte("listen = \"127.0.0.1:0\"\nmode   = \"fast\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runElevate(t, dir, []string{"ELEVATE_STATIC_TOKENS=" + testStaticTokens()}, "serve", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "Invalid mode") || !strings.Contains(errOut, "elevate.hcl line 2") {
		t.Errorf("bad config: exit %d, want 2 with the position\n%s", code, errOut)
	}
	_, errOut, code = runElevate(t, dir, nil, "serve", "--config", filepath.Join(dir, "missing.hcl"))
	if code != 2 || !strings.Contains(errOut, "--config") {
		t.Errorf("missing config: exit %d\n%s", code, errOut)
	}
	// No authentication configured at all.
	if err := os.WriteFile(cfg, []byte("listen = \"127.0.0.1:0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runElevate(t, dir, nil, "serve", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "No authentication configured") {
		t.Errorf("no auth: exit %d\n%s", code, errOut)
	}
}

// TestServeRefusesBrokenPolicies: the daemon does not start on a policy
// set with errors, and shows them like validate.
func TestServeRefusesBrokenPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := serveEnv(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "policies", "broken.hcl"), []byte("jit \"x\" {\n  roles = [\"nope\"]\n  colour = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runElevate(t, dir, append(env, "ELEVATE_LISTEN="+freeAddr(t)), "serve")
	if code != 2 || !strings.Contains(errOut, "broken.hcl line 3") || !strings.Contains(errOut, "does not start on a broken policy set") {
		t.Errorf("broken policies: exit %d, want 2 with diagnostics\n%s", code, errOut)
	}
}

// TestPolicyHotReload: a broken edit keeps the last good set and shows the
// diagnostics in the API; a good edit is taken without a restart.
func TestPolicyHotReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startServe(t, dir, serveEnv(t, dir)...)
	type policyView struct {
		Roles      int `json:"roles"`
		LastReload struct {
			OK          bool              `json:"ok"`
			Diagnostics []json.RawMessage `json:"diagnostics"`
		} `json:"last_reload"`
	}
	waitPolicies := func(cond func(policyView) bool) policyView {
		t.Helper()
		var v policyView
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			v = policyView{}
			apiCall(t, d.url, devToken, "GET", "/v1/policies", nil, &v)
			if cond(v) {
				return v
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("policies never reached the expected state; last %+v\nstderr:\n%s", v, d.stderr)
		return v
	}
	waitPolicies(func(v policyView) bool { return v.Roles == 2 && v.LastReload.OK })

	extra := filepath.Join(dir, "policies", "extra.hcl")
	if err := os.WriteFile(extra, []byte("role \"db\" {\n  gcp {\n    resource = \"projects/db\"\n    role = 42\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := waitPolicies(func(v policyView) bool { return !v.LastReload.OK })
	if v.Roles != 2 || len(v.LastReload.Diagnostics) == 0 {
		t.Errorf("after a broken edit: %d roles, %d diagnostics; want the last good 2 roles and the errors", v.Roles, len(v.LastReload.Diagnostics))
	}
	d.waitHTTP(t, "/readyz", http.StatusOK, 5*time.Second)
	if !strings.Contains(d.stderr.String(), "keeping the last good policy set") {
		t.Errorf("the failed reload was not logged:\n%s", d.stderr)
	}

	good := "role \"db\" {\n  gcp {\n    resource = \"projects/db\"\n    role     = \"roles/cloudsql.viewer\"\n  }\n}\n\n" +
		"jit \"db-self\" {\n  description = \"db\"\n  roles = [\"db\"]\n  requesters = [\"group:eng@example.com\"]\n  max_duration = \"1h\"\n}\n"
	if err := os.WriteFile(extra, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	waitPolicies(func(v policyView) bool { return v.LastReload.OK && v.Roles == 3 })
	out, errOut, code := runElevate(t, dir, clientEnv(d, engToken), "request", "db", "--for", "5m", "--reason", "new role", "--wait")
	if code != 0 || !strings.Contains(out, "is active") {
		t.Errorf("requesting the reloaded role: exit %d\n%s%s", code, out, errOut)
	}

	d.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.stderr.String(), `"cause":"SIGHUP"`) {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload the policies:\n%s", d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
