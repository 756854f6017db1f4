package examples_test

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/policies"
)

const (
	acmeDir = "policies"
	weakDir = "weak-jit"
)

// TestAcmeValidatesCleanly is the promise the README makes: the example
// organisation validates with no error and no warning (so `elevate validate
// --strict examples/policies` exits 0).
func TestAcmeValidatesCleanly(t *testing.T) {
	set, diags := policies.Validate(acmeDir)
	for _, d := range diags {
		t.Errorf("%s", d.Error())
	}
	if len(set.Files) < 5 {
		t.Fatalf("loaded %d files from %s; the example set has disappeared", len(set.Files), acmeDir)
	}
}

// TestAcmeHasTheDesignCardShape pins what the example is meant to show, so a
// later edit cannot quietly drop a cloud, the JIT/break-glass split or the
// audit requirements while still validating.
func TestAcmeHasTheDesignCardShape(t *testing.T) {
	set, diags := policies.Load(acmeDir)
	if diags.HasErrors() {
		t.Fatalf("loading %s: %v", acmeDir, diags)
	}

	// Every target kind of every cloud appears at least once.
	kinds := map[string]bool{}
	for _, r := range set.Roles {
		if len(r.GCP) > 0 {
			kinds["gcp"] = true
		}
		for _, a := range r.AWS {
			if a.IdentityCenter() {
				kinds["aws-identity-center"] = true
			} else {
				kinds["aws-assume-role"] = true
			}
		}
		for _, z := range r.Azure {
			if z.PIM {
				kinds["azure-pim"] = true
			} else {
				kinds["azure-plain"] = true
			}
		}
	}
	for _, k := range []string{"gcp", "aws-assume-role", "aws-identity-center", "azure-pim", "azure-plain"} {
		if !kinds[k] {
			t.Errorf("no role has a %s target", k)
		}
	}

	// JIT: at most 60 minutes, manager or system approval, full audit.
	for _, name := range []string{"prod-readonly-admin", "db-troubleshooting"} {
		j := set.JITPolicy(name)
		if j == nil {
			t.Errorf("jit %q is missing", name)
			continue
		}
		if j.MaxDuration <= 0 || j.MaxDuration > 60*time.Minute {
			t.Errorf("jit %q: max_duration %s, want at most 60m", name, j.MaxDuration)
		}
		if !j.Justification || j.TicketPattern == nil {
			t.Errorf("jit %q: want justification = true and a ticket_pattern (full audit)", name)
		}
		if j.Approval == nil || len(j.Approval.Approvers) == 0 || j.Approval.AutoApprove == nil {
			t.Errorf("jit %q: want an approval block with approvers (manager) and auto_approve (system)", name)
		}
	}

	// Break-glass: both reasons, named accounts in every cloud, recording,
	// review, alerts, a use limit, and nothing shared with the JIT path.
	if len(set.BreakGlass) == 0 {
		t.Fatal("no break_glass block")
	}
	reasons := map[string]bool{}
	clouds := map[string]bool{}
	for _, bg := range set.BreakGlass {
		for _, r := range bg.Reasons {
			reasons[r] = true
		}
		for _, a := range bg.Accounts {
			if a.IsGroupLike() || a.IsServiceAccount() {
				t.Errorf("break_glass %q: account %s is not a named individual account", bg.Name, a)
			}
			clouds[string(a.Kind)] = true
		}
		if !bg.SessionRecording || bg.ReviewWithin <= 0 || len(bg.Notify) == 0 || bg.MaxUses == 0 {
			t.Errorf("break_glass %q: want session_recording, review_within, notify and max_uses", bg.Name)
		}
		for _, r := range bg.Roles {
			if len(set.JITForRole(r.Name)) > 0 {
				t.Errorf("break_glass %q: role %q is also reachable just in time", bg.Name, r.Name)
			}
		}
	}
	for _, r := range []string{"identity-provider-outage", "incident-severity-critical"} {
		if !reasons[r] {
			t.Errorf("no break_glass block lists reason %q", r)
		}
	}
	for _, c := range []string{"aws", "gcp", "azure"} {
		if !clouds[c] {
			t.Errorf("no break-glass account for %s", c)
		}
	}
}

// TestAcmePolicyTestsPass runs the example's test blocks exactly as `elevate
// test` does, and checks they exercise every decision and reason code.
func TestAcmePolicyTestsPass(t *testing.T) {
	set, diags := policies.Load(acmeDir)
	if diags.HasErrors() {
		t.Fatalf("loading %s: %v", acmeDir, diags)
	}
	results := policies.RunTests(set)
	if len(results) < 15 {
		t.Errorf("only %d test blocks ran; the example is meant to cover every decision and reason", len(results))
	}
	decisions := map[policies.Decision]bool{}
	reasons := map[policies.ReasonCode]bool{}
	autoApproved := false
	for _, r := range results {
		if !r.Passed {
			t.Errorf("test %q (%s:%d) failed: %s", r.Test.Name, r.Test.DeclRange.Filename, r.Test.DeclRange.Start.Line, r.Failure)
		}
		decisions[r.Result.Decision] = true
		for _, code := range r.Test.ExpectReasons {
			reasons[policies.ReasonCode(code)] = true
		}
		autoApproved = autoApproved || r.Result.AutoApproved
	}
	for _, d := range []policies.Decision{policies.DecisionAllowed, policies.DecisionNeedsApproval, policies.DecisionDenied} {
		if !decisions[d] {
			t.Errorf("no example test ends in %s", d)
		}
	}
	for _, code := range policies.ReasonCodes {
		if code == policies.ReasonInvalidRequest {
			continue // a malformed API request; a test block cannot express one
		}
		if !reasons[code] {
			t.Errorf("no example test expects reason %s", code)
		}
	}
	if !autoApproved {
		t.Error("no example test is auto-approved (the system approval path)")
	}
}

// TestWeakJITReportsEveryListedWeakness keeps examples/weak-jit/README.md
// honest: every rule in its table is reported with the listed severity, and
// nothing validate reports is missing from the table.
func TestWeakJITReportsEveryListedWeakness(t *testing.T) {
	listed := readmeRules(t, weakDir+"/README.md")
	for _, core := range []string{"jit-duration-too-long", "unlimited-renewals", "role-shared-jit-breakglass"} {
		if _, ok := listed[core]; !ok {
			t.Errorf("README.md no longer lists %s, the heart of the weak design", core)
		}
	}

	_, diags := policies.Validate(weakDir)
	reported := map[string]policies.Severity{}
	for _, d := range diags {
		if d.Rule == policies.RuleSyntax || d.Rule == policies.RuleSchema || d.Rule == policies.RuleIO {
			t.Errorf("the weak design must decode cleanly so only design rules fire: %s", d.Error())
		}
		reported[d.Rule] = d.Severity
	}
	for rule, sev := range listed {
		got, ok := reported[rule]
		switch {
		case !ok:
			t.Errorf("README.md lists %s, but validate did not report it", rule)
		case got != sev:
			t.Errorf("README.md lists %s as %s, validate reports it as %s", rule, sev, got)
		}
	}
	for rule := range reported {
		if _, ok := listed[rule]; !ok {
			t.Errorf("validate reports %s, but README.md does not list it: add a row", rule)
		}
	}
	if !diags.HasErrors() {
		t.Error("the weak design validates without errors; `elevate validate` would exit 0")
	}
}

// TestWeakJITTestsPass runs the weak design's test blocks: they pass, which
// demonstrates the weakness (a week of owner, no reason, endless renewals).
func TestWeakJITTestsPass(t *testing.T) {
	set, diags := policies.Load(weakDir)
	if diags.HasErrors() {
		t.Fatalf("loading %s: %v", weakDir, diags)
	}
	results := policies.RunTests(set)
	if len(results) == 0 {
		t.Fatal("no test blocks in the weak design")
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("test %q failed: %s", r.Test.Name, r.Failure)
		}
	}
}

// TestExamplesAreFormatted checks every example file is in `elevate fmt`
// form, so users who copy them start from canonical files.
func TestExamplesAreFormatted(t *testing.T) {
	files, diags := policies.PolicyFiles(acmeDir, weakDir)
	if diags.HasErrors() || len(files) == 0 {
		t.Fatalf("listing example files: %d files, %v", len(files), diags)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := policies.Format(src, f)
		if err != nil {
			t.Errorf("formatting %s: %v", f, err)
			continue
		}
		if !bytes.Equal(got, src) {
			t.Errorf("%s is not canonically formatted: run `elevate fmt %s`", f, f)
		}
	}
}

// readmeRuleRow matches a table row whose second cell is a backquoted rule ID
// and third a severity: "| text | `rule-id` | warning | ... |".
var readmeRuleRow = regexp.MustCompile("^\\|[^|]*\\|\\s*`([a-z0-9-]+)`\\s*\\|\\s*(error|warning)\\s*\\|")

// readmeRules parses the weakness table of a README into rule -> severity.
func readmeRules(t *testing.T, path string) map[string]policies.Severity {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the weakness list: %v", err)
	}
	known := make([]string, 0, len(policies.LintRules))
	for _, r := range policies.LintRules {
		known = append(known, r.Rule)
	}
	out := map[string]policies.Severity{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		m := readmeRuleRow.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if !slices.Contains(known, m[1]) {
			t.Errorf("%s:%d: %s is not a lint rule", path, line, m[1])
		}
		out[m[1]] = policies.Severity(m[2])
	}
	if len(out) == 0 {
		t.Fatalf("%s has no weakness table rows (| weakness | `rule` | severity | where |)", path)
	}
	return out
}
