package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// End-to-end tests of `elevate test` and `elevate explain`: the real binary
// against policy directories written for each test.

// evalPolicySet is a small valid policy set: self-service for bob, approval
// (auto for short on-call requests) for the SRE group, and a break-glass
// account.
const evalPolicySet = `
role "db" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.viewer"
  }
}

jit "db-self" {
  roles            = ["db"]
  requesters       = ["user:bob@example.com"]
  max_duration     = "1h"
  default_duration = "30m"
}

jit "db-oncall" {
  roles          = ["db"]
  requesters     = ["group:sre@example.com"]
  max_duration   = "4h"
  ticket_pattern = "^INC-[0-9]+$"
  approval {
    approvers     = ["group:sre-leads@example.com", "user:dave@example.com"]
    min_approvals = 2
    auto_approve  = request.duration <= 900 && contains(requester.groups, "group:oncall@example.com")
  }
}

role "org-admin" {
  gcp {
    resource = "organizations/123456789"
    role     = "roles/resourcemanager.organizationAdmin"
  }
}

break_glass "idp-outage" {
  accounts          = ["user:breakglass-1@example.com"]
  roles             = ["org-admin"]
  session_recording = true
  review_within     = "24h"
  notify            = ["security-pager"]
}

notifier "security-pager" {
  type    = "webhook"
  url_env = "SECURITY_WEBHOOK_URL"
}
`

const passingTests = `
test "bob self-service" {
  request {
    requester     = "user:bob@example.com"
    role          = "db"
    justification = "INC-1 slow queries"
  }
  expect        = "allowed"
  expect_policy = "db-self"
}

test "on call short request auto-approved" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com", "group:oncall@example.com"]
    role          = "db"
    duration      = "15m"
    justification = "INC-42"
    ticket        = "INC-42"
  }
  expect        = "allowed"
  expect_policy = "db-oncall"
}

test "outsider denied" {
  request {
    requester = "user:eve@example.com"
    role      = "db"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}
`

const failingTests = `
test "too long still allowed" {
  request {
    requester     = "user:bob@example.com"
    role          = "db"
    duration      = "2h"
    justification = "x"
  }
  expect = "allowed"
}

test "wrong reason" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    justification = "x"
  }
  expect         = "denied"
  expect_reasons = ["duration-exceeds-max"]
}
`

// writePolicies writes files (name -> content) into a fresh directory.
func writePolicies(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCLITestAllPass(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet, "tests/db_test.hcl": passingTests})
	stdout, stderr, code := runElevate(t, dir, nil, "test")
	want := "PASS  bob self-service\n" +
		"PASS  on call short request auto-approved\n" +
		"PASS  outsider denied\n" +
		"3 passed, 0 failed\n"
	if stdout != want || code != ExitOK {
		t.Errorf("elevate test: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}
}

func TestCLITestFailures(t *testing.T) {
	dir := writePolicies(t, map[string]string{"a.hcl": evalPolicySet, "b.hcl": passingTests + failingTests})
	stdout, stderr, code := runElevate(t, t.TempDir(), nil, "test", dir)
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("want 5 test lines and a summary, got:\n%s", stdout)
	}
	for i, prefix := range []string{
		"PASS  bob self-service",
		"PASS  on call short request auto-approved",
		"PASS  outsider denied",
		`FAIL  too long still allowed: expected allowed, got denied by "db-self" (duration-exceeds-max: requested 2h is longer than the max_duration of "db-self" (1h)`,
		`FAIL  wrong reason: expected reason duration-exceeds-max, got ticket-invalid: "db-oncall" requires a ticket matching ^INC-[0-9]+$`,
	} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], prefix)
		}
	}
	if lines[5] != "3 passed, 2 failed" {
		t.Errorf("summary = %q, want %q", lines[5], "3 passed, 2 failed")
	}
}

func TestCLITestNoTests(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	stdout, stderr, code := runElevate(t, dir, nil, "test", ".")
	if stdout != "0 passed, 0 failed\n" || code != ExitOK {
		t.Errorf("exit %d, stdout %q; want 0 and %q", code, stdout, "0 passed, 0 failed\n")
	}
	if !strings.Contains(stderr, "no test blocks found") {
		t.Errorf("stderr should note that there are no tests: %q", stderr)
	}
}

func TestCLITestPolicyErrors(t *testing.T) {
	broken := evalPolicySet + "\njit \"broken\" {\n  roles        = [\"db\"]\n  requesters   = [\"user:x@example.com\"]\n  max_duration = \"1h\"\n  colour       = \"red\"\n}\n" + passingTests
	dir := writePolicies(t, map[string]string{"policy.hcl": broken})
	stdout, stderr, code := runElevate(t, dir, nil, "test")
	if code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	if stdout != "" {
		t.Errorf("no test should run on a set with errors; stdout:\n%s", stdout)
	}
	for _, want := range []string{"policy.hcl line 52", `colour       = "red"`, "[schema]", "no test was run"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr should show the error with its source and say no test ran; it lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"test: missing path", []string{"test", filepath.Join(dir, "nope")}, "no such file"},
		{"test: two paths", []string{"test", dir, dir}, "accepts at most 1 arg"},
		{"test: empty dir", []string{"test", t.TempDir()}, "No policy files found"},
		{"explain: bad requester", []string{"explain", "--role", "db", "--requester", "bob", dir}, "write user:EMAIL"},
		{"explain: group as requester", []string{"explain", "--role", "db", "--requester", "group:sre@example.com", dir}, "pass groups with --group"},
		{"explain: user as group", []string{"explain", "--role", "db", "--requester", "user:bob@example.com", "--group", "user:x@example.com", dir}, "expected a group such as group:"},
		{"explain: bad duration", []string{"explain", "--role", "db", "--requester", "user:bob@example.com", "--duration", "90", dir}, "has no unit (use s, m, h or d)"},
		{"explain: fractional duration", []string{"explain", "--role", "db", "--requester", "user:bob@example.com", "--duration", "1.5h", dir}, "invalid --duration"},
		{"explain: no role", []string{"explain", "--requester", "user:bob@example.com", dir}, `required flag(s) "role" not set`},
		{"explain: bad format", []string{"explain", "--role", "db", "--requester", "user:bob@example.com", "--format", "yaml", dir}, "use text or json"},
		{"explain: missing path", []string{"explain", "--role", "db", "--requester", "user:bob@example.com", filepath.Join(dir, "nope")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runElevate(t, dir, nil, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q should contain %q", stderr, tt.stderr)
			}
		})
	}
}

func TestCLIExplainText(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	tests := []struct {
		name string
		args []string
		want []string // lines that must appear in this order, compared with runs of spaces collapsed
	}{
		{
			name: "needs approval with the policy maximum",
			args: []string{"--requester", "user:alice@example.com", "--group", "group:sre@example.com", "--reason", "INC-42", "--ticket", "INC-42"},
			want: []string{
				"decision  needs_approval",
				"duration  4h",
				"approval  2 of group:sre-leads@example.com, user:dave@example.com (not the requester)",
				"             auto_approve  false",
			},
		},
		{
			name: "denied with every failed check",
			args: []string{"--requester", "user:bob@example.com", "--duration", "2h", "--renewal"},
			want: []string{
				"decision  denied",
				`policy    jit "db-self" at policy.hcl:9`,
				`reasons   duration-exceeds-max: requested 2h is longer than the max_duration of "db-self" (1h); ask for 1h or less`,
				`          justification-missing: "db-self" requires a justification: say why you need the role`,
				`          renewals-exhausted: "db-self" allows no renewals; request the role again instead`,
				`             failed    duration-exceeds-max: requested 2h is longer than the max_duration of "db-self" (1h); ask for 1h or less`,
			},
		},
		{
			name: "break-glass account",
			args: []string{"--requester", "user:Breakglass-1@example.com", "--group", "group:sre@example.com", "--reason", "x", "--ticket", "INC-1", "--duration", "10m"},
			want: []string{
				"decision  denied",
				`policy    break_glass "idp-outage" at policy.hcl:`,
				"reasons   breakglass-account: user:Breakglass-1@example.com is a break-glass account",
				`Policies naming role "db" (overruled: a break-glass account is always denied):`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--role", "db"}, tt.args...)
			stdout, stderr, code := runElevate(t, dir, nil, args...)
			if code != ExitOK {
				t.Fatalf("exit %d, want 0 whatever the decision\nstderr:\n%s", code, stderr)
			}
			lines := strings.Split(stdout, "\n")
			next := 0
			for _, want := range tt.want {
				found := false
				for next < len(lines) {
					line := strings.Join(strings.Fields(lines[next]), " ")
					next++
					if strings.HasPrefix(line, strings.Join(strings.Fields(want), " ")) {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("output lacks (in order) %q\noutput:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestCLIExplainLayout pins the whole text layout of one answer.
func TestCLIExplainLayout(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	stdout, stderr, code := runElevate(t, dir, nil, "explain", "--role", "db", "--requester", "user:alice@example.com",
		"--group", "group:sre@example.com", "--group", "group:oncall@example.com", "--duration", "15m", "--reason", "INC-42", "--ticket", "INC-42")
	want := `request   user:alice@example.com (group:sre@example.com, group:oncall@example.com) asks for role "db" for 15m
decision  allowed (auto-approved)
policy    jit "db-oncall" at policy.hcl:16
duration  15m

Policies naming role "db":
  db-self    policy.hcl:9   denied
             eligible       no: not listed; the policy lists user:bob@example.com
  db-oncall  policy.hcl:16  allowed  <- decides
             eligible       yes: member of group:sre@example.com
             duration       15m
             auto_approve   true
`
	if code != ExitOK || stdout != want {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}
}

func TestCLIExplainUnknownRole(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	stdout, _, code := runElevate(t, dir, nil, "explain", "--role", "dbx", "--requester", "user:bob@example.com")
	if code != ExitOK || !strings.Contains(stdout, `unknown-role: no role "dbx" is defined`) {
		t.Errorf("exit %d, stdout:\n%s", code, stdout)
	}
}

func TestCLIExplainJSON(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet})
	stdout, stderr, code := runElevate(t, dir, nil, "explain", "--format", "json", "--role", "db",
		"--requester", "user:alice@example.com", "--group", "group:sre@example.com", "--reason", "x", "--ticket", "INC-1", "--duration", "1h", dir)
	if code != ExitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var got struct {
		Request struct {
			Requester       string   `json:"requester"`
			Groups          []string `json:"groups"`
			Duration        string   `json:"duration"`
			DurationSeconds int64    `json:"duration_seconds"`
		} `json:"request"`
		Decision          string            `json:"decision"`
		Policy            string            `json:"policy"`
		PolicyKind        string            `json:"policy_kind"`
		Line              int               `json:"line"`
		DurationSeconds   int64             `json:"duration_seconds"`
		Approvers         []string          `json:"approvers"`
		MinApprovals      int               `json:"min_approvals"`
		Reasons           []json.RawMessage `json:"reasons"`
		AutoApproveErrors []json.RawMessage `json:"auto_approve_errors"`
		Trace             []struct {
			Policy      string `json:"policy"`
			Eligible    bool   `json:"eligible"`
			Decision    string `json:"decision"`
			AutoApprove string `json:"auto_approve"`
			Reasons     []struct {
				Code   string `json:"code"`
				Policy string `json:"policy"`
			} `json:"reasons"`
		} `json:"trace"`
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, stdout)
	}
	var gotKeys []string
	for k := range keys {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(gotKeys)
	wantKeys := []string{"approvers", "auto_approve_errors", "auto_approved", "decision", "duration", "duration_seconds",
		"file", "line", "min_approvals", "policy", "policy_kind", "reasons", "request", "trace"}
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("top-level keys = %v, want %v", gotKeys, wantKeys)
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if got.Request.Requester != "user:alice@example.com" || got.Request.Duration != "1h" || got.Request.DurationSeconds != 3600 ||
		len(got.Request.Groups) != 1 {
		t.Errorf("request echoed wrongly: %+v", got.Request)
	}
	if got.Decision != "needs_approval" || got.Policy != "db-oncall" || got.PolicyKind != "jit" || got.Line != 16 ||
		got.DurationSeconds != 3600 || got.MinApprovals != 2 || len(got.Approvers) != 2 {
		t.Errorf("decision fields wrong: %+v", got)
	}
	if got.Reasons == nil || len(got.Reasons) != 0 || got.AutoApproveErrors == nil {
		t.Errorf("empty lists must be [] not null or missing: reasons %v, auto_approve_errors %v", got.Reasons, got.AutoApproveErrors)
	}
	if len(got.Trace) != 2 || got.Trace[0].Policy != "db-self" || got.Trace[0].Eligible ||
		len(got.Trace[0].Reasons) != 1 || got.Trace[0].Reasons[0].Code != "not-eligible" || got.Trace[0].Reasons[0].Policy != "db-self" ||
		got.Trace[1].Decision != "needs_approval" || got.Trace[1].AutoApprove != "false" {
		t.Errorf("trace wrong: %+v", got.Trace)
	}
	// Stable: the same query gives byte-identical output.
	again, _, _ := runElevate(t, dir, nil, "explain", "--format", "json", "--role", "db",
		"--requester", "user:alice@example.com", "--group", "group:sre@example.com", "--reason", "x", "--ticket", "INC-1", "--duration", "1h", dir)
	if again != stdout {
		t.Errorf("explain --format json is not deterministic")
	}
}

func TestCLIExplainPolicyErrors(t *testing.T) {
	dir := writePolicies(t, map[string]string{"policy.hcl": evalPolicySet + "\nrole \"x\" {\n  standing = \"sometimes\"\n}\n"})
	stdout, stderr, code := runElevate(t, dir, nil, "explain", "--role", "db", "--requester", "user:bob@example.com")
	if code != ExitFailed || stdout != "" {
		t.Errorf("exit %d (want 1), stdout %q (want empty)", code, stdout)
	}
	for _, want := range []string{"policy.hcl line 49", `standing = "sometimes"`, "[schema]", "the request was not evaluated"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
