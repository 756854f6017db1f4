package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
)

var (
	devTokenRe      = regexp.MustCompile(`export ELEVATE_TOKEN=(\S+)`)
	approverTokenRe = regexp.MustCompile(`ELEVATE_TOKEN=(\S+) \S.* approve ID`)
	devStateRe      = regexp.MustCompile(`state\s+(\S+elevate\.db)`)
	devGCPRe        = regexp.MustCompile(`the GCP emulator at (127\.0\.0\.1:\d+)`)
)

// devGCPBinding reads projects/acme-staging's allow policy from the dev
// GCP emulator over gRPC, as any Google Cloud SDK client would, and returns
// the binding of grant id, or nil.
func devGCPBinding(t *testing.T, addr, id string) (*iampb.Policy, *iampb.Binding) {
	t.Helper()
	ctx := context.Background()
	c, err := resourcemanager.NewProjectsClient(ctx, gcpemu.ClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pol, err := c.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: "projects/acme-staging",
		Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: 3}})
	if err != nil {
		t.Fatalf("reading the dev GCP emulator: %v", err)
	}
	return pol, elevateBinding(pol, id)
}

// startDev runs elevate dev on the example policies in dir and returns it
// with the banner it printed.
func startDev(t *testing.T, dir string) (*proc, string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	d := startElevate(t, dir, nil, "dev", "--listen", addr, "--policies", filepath.Join(root, "examples", "policies"))
	d.url = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.stdout.String(), "Press Ctrl-C to stop.") {
		if d.exited() || time.Now().After(deadline) {
			t.Fatalf("elevate dev did not print its banner\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, d.stdout.String()
}

// TestDevMode is the newcomer's tour through the real binary: elevate dev
// prints tokens and commands; a self-service request becomes active and
// expires; a request that needs approval is approved with the second
// token; Ctrl-C stops dev mode and removes its temporary store.
func TestDevMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, banner := startDev(t, dir)
	for _, want := range []string{"export ELEVATE_ADDR=" + d.url, "request staging-operator --for 2m", "grants --active", "in-memory emulator", "the GCP emulator at"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	devTok := devTokenRe.FindStringSubmatch(banner)
	apprTok := approverTokenRe.FindStringSubmatch(banner)
	statePath := devStateRe.FindStringSubmatch(banner)
	gcpAddr := devGCPRe.FindStringSubmatch(banner)
	if devTok == nil || apprTok == nil || statePath == nil || gcpAddr == nil {
		t.Fatalf("banner lacks the tokens or the state path:\n%s", banner)
	}
	dev, appr := clientEnv(d, devTok[1]), clientEnv(d, apprTok[1])

	out, errOut, code := runElevate(t, dir, dev, "request", "staging-operator", "--for", "3s", "--reason", "trying elevate", "--wait")
	if code != 0 || !strings.Contains(out, "is active") {
		t.Fatalf("request --wait: exit %d\n%s%s\ndaemon:\n%s", code, out, errOut, d.stderr)
	}
	id := grantIDFrom(t, out)
	// The GCP target is a conditional binding in the emulator.
	if pol, b := devGCPBinding(t, gcpAddr[1], id); b == nil || pol.GetVersion() != 3 || b.GetRole() != "roles/container.developer" ||
		!slices.Equal(b.GetMembers(), []string{"user:dev@example.com"}) {
		t.Errorf("the GCP emulator's policy of projects/acme-staging (version %d) has binding %v, want roles/container.developer for user:dev@example.com titled elevate:%s",
			pol.GetVersion(), b, id)
	}
	out, _, _ = runElevate(t, dir, dev, "grants", "--active")
	if !strings.Contains(out, id) {
		t.Errorf("grants --active does not list %s:\n%s", id, out)
	}
	waitGrantStatus(t, d.url, devTok[1], id, "expired", 8*time.Second)
	if _, b := devGCPBinding(t, gcpAddr[1], id); b != nil {
		t.Errorf("the expired grant's binding is still in the GCP emulator: %v", b)
	}

	out, errOut, code = runElevate(t, dir, dev, "request", "prod-db-admin", "--for", "45m", "--reason", "slow queries", "--ticket", "CHG-812")
	if code != 0 || !strings.Contains(out, "pending approval") {
		t.Fatalf("request needing approval: exit %d\n%s%s", code, out, errOut)
	}
	pid := grantIDFrom(t, out)
	if out, errOut, code := runElevate(t, dir, appr, "approve", pid); code != 0 {
		t.Fatalf("approve with the approver token: exit %d\n%s%s", code, out, errOut)
	}
	waitGrantStatus(t, d.url, devTok[1], pid, "active", 10*time.Second)

	d.signal(t, syscall.SIGINT)
	if code := d.exitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, d.stderr)
	}
	if _, err := os.Stat(filepath.Dir(statePath[1])); !os.IsNotExist(err) {
		t.Errorf("the temporary store %s is still there after dev mode stopped (%v)", statePath[1], err)
	}
}

// TestPlanAndReportMode runs against a memory emulator in this process,
// playing a cloud that outlives the daemon: elevate plan reports drift
// without changing anything, a daemon in report mode changes nothing
// either, and one in enforce mode repairs the drift.
func TestPlanAndReportMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP, model.CloudAWS}, false)
	es := httptest.NewServer(emu)
	defer es.Close()

	sandbox := model.Target{Cloud: model.CloudGCP, Scope: "projects/sandbox", Role: "roles/logging.viewer"}
	prod := model.Target{Cloud: model.CloudGCP, Scope: "projects/prod", Role: "roles/monitoring.viewer"}
	ghost := model.Binding{Target: sandbox, Principal: model.MustPrincipal("user:ghost@example.com"), Owner: "ghost-grant",
		Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	if err := emu.providers[model.CloudGCP].Put(ghost); err != nil {
		t.Fatal(err)
	}
	if err := emu.providers[model.CloudGCP].AddUnmanaged(model.Binding{Target: prod, Principal: model.MustPrincipal("user:standing@example.com")}); err != nil {
		t.Fatal(err)
	}
	writeTestPolicies(t, dir)
	cfg := filepath.Join(dir, "elevate.hcl")
	src := `policies = "policies"
state    = "sqlite:elevate.db"
memory {
  clouds   = ["gcp", "aws"]
  endpoint = "` + es.URL + `"
}
reconcile {
  lease_ttl = "3s"
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runElevate(t, dir, nil, "plan", "--config", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"- ", "gcp:projects/sandbox:roles/logging.viewer", "ghost-grant", "unknown-grant", "! ", "user:standing@example.com", "standing", "Plan: 0 to create, 0 to replace, 1 to delete; 1 finding."} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if _, _, code := runElevate(t, dir, nil, "plan", "--config", cfg, "--exit-code"); code != 1 {
		t.Errorf("plan --exit-code with drift: exit %d, want 1", code)
	}
	out, _, _ = runElevate(t, dir, nil, "plan", "--config", cfg, "--format", "json")
	var changes model.Changes
	if err := json.Unmarshal([]byte(out), &changes); err != nil || len(changes.Delete) != 1 || len(changes.Findings) != 1 {
		t.Errorf("plan --format json: %v %+v", err, changes)
	}
	if got := len(emu.all()); got != 2 {
		t.Fatalf("plan changed the cloud: %d bindings, want the 2 it had", got)
	}

	// Report mode: plans, writes nothing.
	env := []string{"ELEVATE_STATIC_TOKENS=" + testStaticTokens(), "ELEVATE_MODE=report"}
	addr := freeAddr(t)
	d := startElevate(t, dir, append(env, "ELEVATE_LISTEN="+addr), "serve", "--config", cfg)
	d.url = "http://" + addr
	d.waitHTTP(t, "/readyz", http.StatusOK, 20*time.Second)
	var g grantView
	if st := apiCall(t, d.url, engToken, "POST", "/v1/requests", map[string]string{"role": "sandbox", "duration": "10m", "justification": "report mode"}, &g); st != http.StatusCreated {
		t.Fatalf("request: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	var detail grantDetail
	apiCall(t, d.url, engToken, "GET", "/v1/grants/"+g.ID, nil, &detail)
	if detail.Grant.Status != "approved" {
		t.Errorf("in report mode the grant became %q, want it left approved", detail.Grant.Status)
	}
	if got := emu.all(); len(got) != 2 {
		t.Errorf("report mode changed the cloud: %v", got)
	}
	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, d.stderr)
	}

	// Enforce mode repairs: the ghost goes, the grant's bindings come.
	d = startElevate(t, dir, append(env[:1], "ELEVATE_LISTEN="+addr), "serve", "--config", cfg)
	d.url = "http://" + addr
	d.waitHTTP(t, "/healthz", http.StatusOK, 20*time.Second)
	waitGrantStatus(t, d.url, engToken, g.ID, "active", 10*time.Second)
	var owners []string
	for _, b := range emu.all() {
		owners = append(owners, b.Owner)
		if b.Owner == "ghost-grant" {
			t.Errorf("enforce mode left the binding of an unknown grant: %+v", b)
		}
	}
	want := []string{"", g.ID, g.ID} // the standing one (reported, not removed) and the grant's two targets
	if strings.Join(sortedCopy(owners), ",") != strings.Join(sortedCopy(want), ",") {
		t.Errorf("bindings after enforce: owners %q, want %q", owners, want)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
