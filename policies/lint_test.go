package policies

// Fixture tests.
//
// testdata/lint/ holds one or more policy files per design rule and
// testdata/errors/ holds bad input for the loader. Each file is validated on
// its own (Validate: load, decode, lint) and every diagnostic it produces
// must be announced by a comment at the end of the line where the
// diagnostic's range starts:
//
//	max_duration = "7d"   # WARNING: jit-duration-too-long
//	roles        = ["x"]  # ERROR: unknown-reference; WARNING: privileged-without-approval
//
// that is "#" followed by one or more "SEVERITY: rule" items separated by
// ";", where SEVERITY is ERROR or WARNING. Lines without such a comment must
// produce no diagnostic. The test compares the sets of (line, severity,
// rule) and fails with a cmp.Diff ("-want +got").
//
// Names in testdata/lint/: the text before the first "." is a rule ID. In
// RULE.hcl (or RULE.VARIANT.hcl) the rule must fire at least once; in
// RULE.ok.hcl (or RULE.ok.VARIANT.hcl), the near miss, it must not fire at
// all. Every rule of LintRules has both kinds of file.
//
// Files in testdata/errors/ must announce at least one syntax or schema error.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/elevatehq/elevate/model"
)

// expectation is one announced (or produced) diagnostic.
type expectation struct {
	Line     int
	Severity Severity
	Rule     string
}

var (
	expectCommentRE = regexp.MustCompile(`#\s*((?:ERROR|WARNING):\s*[a-z0-9-]+(?:\s*;\s*(?:ERROR|WARNING):\s*[a-z0-9-]+)*)\s*$`)
	expectItemRE    = regexp.MustCompile(`(ERROR|WARNING):\s*([a-z0-9-]+)`)
)

// parseExpectations reads the inline expectations of a fixture.
func parseExpectations(src []byte) []expectation {
	var out []expectation
	for i, line := range strings.Split(string(src), "\n") {
		m := expectCommentRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, item := range expectItemRE.FindAllStringSubmatch(m[1], -1) {
			out = append(out, expectation{Line: i + 1, Severity: Severity(strings.ToLower(item[1])), Rule: item[2]})
		}
	}
	return sortedUnique(out)
}

func sortedUnique(es []expectation) []expectation {
	slices.SortFunc(es, func(a, b expectation) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(string(a.Severity)+a.Rule, string(b.Severity)+b.Rule)
	})
	return slices.Compact(es)
}

// checkFixture validates one file and compares its diagnostics with the
// inline expectations. It returns the expectations for further checks.
func checkFixture(t *testing.T, path string) []expectation {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := parseExpectations(src)
	_, diags := Validate(path)
	var got []expectation
	for _, d := range diags {
		if d.Range.Filename != path || d.Range.Start.Line < 1 {
			t.Errorf("diagnostic without a position in %s: %v", path, d)
			continue
		}
		if d.Summary == "" || strings.ContainsRune(d.Summary, '\n') {
			t.Errorf("summary must be one non-empty line: %q", d.Summary)
		}
		if d.Rule != RuleSyntax && d.Rule != RuleSchema && d.Detail == "" {
			t.Errorf("lint diagnostic without a detail saying what to do: %v", d)
		}
		got = append(got, expectation{Line: d.Range.Start.Line, Severity: d.Severity, Rule: d.Rule})
	}
	got = sortedUnique(got)
	if diff := cmp.Diff(want, got); diff != "" {
		var all strings.Builder
		for _, d := range diags {
			fmt.Fprintf(&all, "\n\t%v", d)
		}
		t.Errorf("%s: diagnostics differ from the inline expectations (-want +got):\n%s\nall diagnostics:%s", path, diff, all.String())
	}
	return want
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	return files
}

func TestLintFixtures(t *testing.T) {
	severity := map[string]Severity{}
	for _, r := range LintRules {
		severity[r.Rule] = r.Severity
	}
	fires, nearMiss := map[string]bool{}, map[string]bool{}
	for _, path := range fixtures(t, filepath.Join("testdata", "lint")) {
		parts := strings.Split(filepath.Base(path), ".")
		rule, ok := parts[0], len(parts) > 2 && parts[1] == "ok"
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, known := severity[rule]; !known {
				t.Fatalf("fixture %s is not named after a rule of LintRules", path)
			}
			want := checkFixture(t, path)
			fired := false
			for _, e := range want {
				if e.Rule == rule {
					fired = true
				}
				if sev, isLint := severity[e.Rule]; isLint && sev != e.Severity {
					t.Errorf("%s: rule %s is a %s, not a %s", path, e.Rule, sev, e.Severity)
				}
			}
			switch {
			case ok && fired:
				t.Errorf("%s is a near miss but expects %s", path, rule)
			case !ok && !fired:
				t.Errorf("%s expects no %s diagnostic; name it %s.ok.hcl if it is a near miss", path, rule, rule)
			}
		})
		if ok {
			nearMiss[rule] = true
		} else {
			fires[rule] = true
		}
	}
	for _, r := range LintRules {
		if !fires[r.Rule] || !nearMiss[r.Rule] {
			t.Errorf("rule %s needs testdata/lint/%s.hcl (fires) and %s.ok.hcl (near miss)", r.Rule, r.Rule, r.Rule)
		}
	}
}

func TestLoaderErrorFixtures(t *testing.T) {
	for _, path := range fixtures(t, filepath.Join("testdata", "errors")) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := checkFixture(t, path)
			if !slices.ContainsFunc(want, func(e expectation) bool { return e.Rule == RuleSyntax || e.Rule == RuleSchema }) {
				t.Errorf("%s announces no syntax or schema error", path)
			}
		})
	}
}

func TestParseExpectations(t *testing.T) {
	src := "a = 1\nb = \"#x\"   # ERROR: unknown-reference; WARNING: jit-duration-too-long\nc = 2 # not an expectation\n  # WARNING: self-approval\n"
	want := []expectation{
		{2, SeverityError, "unknown-reference"},
		{2, SeverityWarning, "jit-duration-too-long"},
		{4, SeverityWarning, "self-approval"},
	}
	if diff := cmp.Diff(want, parseExpectations([]byte(src))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// lintSources loads in-memory files in order and lints them.
func lintSources(t *testing.T, files ...string) (*Set, Diagnostics) {
	t.Helper()
	var names []string
	srcs := map[string][]byte{}
	for i, f := range files {
		name := fmt.Sprintf("f%d.hcl", i+1)
		names = append(names, name)
		srcs[name] = []byte(f)
	}
	set, diags := LoadSources(names, srcs)
	if diags.HasErrors() {
		t.Fatalf("fixture does not load: %v", diags)
	}
	return set, Lint(set)
}

func TestDuplicateNameAcrossFiles(t *testing.T) {
	_, diags := lintSources(t,
		"role \"db\" {}\n",
		"\n\nrole \"db\" {}\n")
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	d := diags[0]
	if d.Rule != RuleDuplicateName || d.Range.Filename != "f2.hcl" || d.Range.Start.Line != 3 {
		t.Errorf("want duplicate-name at f2.hcl:3, got %v", d)
	}
	if !strings.Contains(d.Detail, "f1.hcl:1") {
		t.Errorf("detail must point at the first declaration f1.hcl:1: %q", d.Detail)
	}
}

func TestLintIsOrderIndependent(t *testing.T) {
	a := `role "admin" {
  privileged = true
}
jit "ops" {
  roles        = ["admin", "missing"]
  requesters   = ["user:alice@example.com"]
  max_duration = "12h"
  max_renewals = 5
}
`
	b := `temporary "t1" {
  role          = "admin"
  principals    = ["user:bob@example.com"]
  starts        = "2026-01-01T00:00:00Z"
  expires       = "2026-01-10T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}
temporary "t2" {
  role          = "admin"
  principals    = ["user:bob@example.com"]
  starts        = "2026-01-10T00:00:00Z"
  expires       = "2026-01-20T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}
`
	_, d1 := lintSources(t, a, b)
	_, d2 := lintSources(t, a, b)
	if len(d1) == 0 {
		t.Fatal("want findings")
	}
	if diff := cmp.Diff(d1, d2); diff != "" {
		t.Errorf("lint is not deterministic (-first +second):\n%s", diff)
	}
	for i := 1; i < len(d1); i++ {
		if d1[i-1].Range.Start.Line > d1[i].Range.Start.Line && d1[i-1].Range.Filename == d1[i].Range.Filename {
			t.Errorf("diagnostics are not sorted: %v before %v", d1[i-1], d1[i])
		}
	}
}

func mustExpr(t *testing.T, src string) hcl.Expression {
	t.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "x.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return e
}

func TestBoundsDuration(t *testing.T) {
	for src, want := range map[string]bool{
		`request.duration <= 900`:                                   true,
		`request["duration"] <= 900`:                                true,
		`contains(requester.groups, "g") && request.duration < 600`: true,
		`min(request.duration, 1) == 1`:                             true,
		`true`:                                                      false,
		`contains(requester.groups, "group:oncall@example.com")`:    false,
		`request.renewal`:                                           false,
		`request.ticket != ""`:                                      false,
	} {
		if got := boundsDuration(mustExpr(t, src)); got != want {
			t.Errorf("boundsDuration(%s) = %t, want %t", src, got, want)
		}
	}
}

func TestIsAdminTarget(t *testing.T) {
	for _, c := range []struct {
		target model.Target
		want   bool
	}{
		{model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "roles/owner"}, true},
		{model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "roles/editor"}, true},
		{model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "roles/iam.securityAdmin"}, true},
		{model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "roles/iam.securityReviewer"}, false},
		{model.Target{Cloud: model.CloudAWS, Scope: "123456789012", Role: "AdministratorAccess"}, true},
		{model.Target{Cloud: model.CloudAWS, Scope: "123456789012", Role: "OrgAdministratorAccess"}, true},
		{model.Target{Cloud: model.CloudAWS, Scope: "123456789012", Role: "ReadOnlyAccess"}, false},
		{model.Target{Cloud: model.CloudAzure, Scope: "/", Role: "Owner"}, true},
		{model.Target{Cloud: model.CloudAzure, Scope: "/", Role: "user access administrator"}, true},
		{model.Target{Cloud: model.CloudAzure, Scope: "/", Role: "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"}, true},
		{model.Target{Cloud: model.CloudAzure, Scope: "/", Role: "Contributor"}, false},
		{model.Target{Cloud: model.CloudGCP, Scope: "projects/p", Role: "Owner"}, false},
	} {
		if got := isAdminTarget(c.target); got != c.want {
			t.Errorf("isAdminTarget(%v) = %t, want %t", c.target, got, c.want)
		}
	}
}

// TestLintPartialSets feeds sets the loader could never produce (nil
// entries, zero settings, missing ranges) to Lint: it must not panic, and
// the rules that can still judge must still fire.
func TestLintPartialSets(t *testing.T) {
	if diags := Lint(nil); diags != nil {
		t.Errorf("Lint(nil) = %v", diags)
	}
	if diags := Lint(&Set{}); len(diags) != 0 {
		t.Errorf("empty set: %v", diags)
	}
	alice := PrincipalRef{Principal: model.MustPrincipal("user:alice@example.com")}
	set := &Set{
		Roles: []*Role{nil, {Block: Block{Name: "r"}, Privileged: true}},
		JIT: []*JIT{nil,
			{Block: Block{Name: "empty"}},
			{Block: Block{Name: "j", Attrs: map[string]hcl.Range{"max_duration": {}}}, Roles: []NameRef{{Name: "r"}}, Requesters: []PrincipalRef{alice},
				MaxDuration: 30 * time.Hour, MaxRenewals: 2,
				Approval: &Approval{Approvers: []PrincipalRef{alice}, Attrs: map[string]hcl.Range{"approvers": {}}}},
		},
		Temporary:  []*Temporary{nil, {Block: Block{Name: "t"}}, {Block: Block{Name: "t2"}, Role: NameRef{Name: "r"}, Principals: []PrincipalRef{alice}, Expires: time.Unix(100, 0)}},
		BreakGlass: []*BreakGlass{nil, {Block: Block{Name: "b"}, Accounts: []PrincipalRef{alice}, Roles: []NameRef{{Name: "r"}}}},
		Notifiers:  []*Notifier{nil},
		Tests:      []*Test{nil, {Block: Block{Name: "x"}}},
	}
	got := map[string]bool{}
	for _, d := range Lint(set) {
		got[d.Rule] = true
	}
	for _, rule := range []string{
		RuleJITMissingMaxDuration, RuleJITDurationTooLong, RuleUnlimitedRenewals, RuleSelfApproval,
		RuleTemporaryMissingExpiry, RuleTemporaryMissingApproval, RuleBreakglassAccountRequestable,
		RuleRoleSharedJITBreakglass, RuleBreakglassMissingReview, RuleBreakglassMissingAlert,
		RuleBreakglassWithoutRecording,
	} {
		if !got[rule] {
			t.Errorf("rule %s did not fire on the hand-built set; got %v", rule, got)
		}
	}
}

// TestLintScalesLinearly runs the rules most prone to pairwise comparison on
// adversarial sets: every temporary overlapping every other, every name
// duplicated, one break-glass account requestable everywhere. A quadratic
// rule would take minutes here; the counts prove each rule really ran.
func TestLintScalesLinearly(t *testing.T) {
	const n = 20000
	bob := PrincipalRef{Principal: model.MustPrincipal("user:bob@example.com")}
	bg := PrincipalRef{Principal: model.MustPrincipal("user:bg@example.com")}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set := &Set{
		Roles:      []*Role{{Block: Block{Name: "r"}}},
		BreakGlass: []*BreakGlass{{Block: Block{Name: "b", Attrs: map[string]hcl.Range{"review_within": {}, "notify": {}}}, Accounts: []PrincipalRef{bg}, SessionRecording: true, Notify: []NameRef{{Name: "n"}}}},
		Notifiers:  []*Notifier{{Block: Block{Name: "n"}}},
	}
	for i := 0; i < n; i++ {
		set.Temporary = append(set.Temporary, &Temporary{
			Block:         Block{Name: "t", Attrs: map[string]hcl.Range{"expires": {}}},
			Role:          NameRef{Name: "r"},
			Principals:    []PrincipalRef{bob},
			Starts:        start.Add(time.Duration(i) * time.Hour),
			Expires:       start.Add(time.Duration(i)*time.Hour + 48*time.Hour),
			Justification: "x",
			ApprovedBy:    []PrincipalRef{bob},
		})
	}
	count := map[string]int{}
	for _, d := range Lint(set) {
		count[d.Rule]++
	}
	want := map[string]int{RuleDuplicateName: n - 1, RuleTemporaryRenewalChain: n - 1}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("diagnostic counts (-want +got):\n%s", diff)
	}
}

// BenchmarkLint measures the rules alone on the large generated set
// (bench_test.go's shape: 10,000 roles, 5,000 jit, 1,000 temporary).
func BenchmarkLint(b *testing.B) {
	dir := b.TempDir()
	genPolicySet(b, dir, 10000, 5000, 1000, 100)
	set, diags := Load(dir)
	if diags.HasErrors() {
		b.Fatal(diags[0])
	}
	b.ResetTimer()
	for b.Loop() {
		Lint(set)
	}
}
