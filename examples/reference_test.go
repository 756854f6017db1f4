package examples_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/elevatehq/elevate/policies"
)

const referenceDoc = "../docs/policy-reference.md"

// snippet is one ```hcl block of the policy reference.
type snippet struct {
	line    int    // where the block starts in the document
	section string // the nearest "### " heading above it
	inLint  bool   // under "## Lint rules"
	src     string
}

// referenceSnippets extracts every ```hcl block of the policy reference.
func referenceSnippets(t *testing.T) []snippet {
	t.Helper()
	src, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("reading the policy reference: %v", err)
	}
	var out []snippet
	var cur *snippet
	section, inLint := "", false
	for i, line := range strings.Split(string(src), "\n") {
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.src += line + "\n"
		case line == "```hcl":
			cur = &snippet{line: i + 1, section: section, inLint: inLint}
		case strings.HasPrefix(line, "## "):
			inLint = line == "## Lint rules"
			section = ""
		case strings.HasPrefix(line, "### "):
			section = strings.TrimPrefix(line, "### ")
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d hcl snippets in %s", len(out), referenceDoc)
	}
	return out
}

var firstWord = regexp.MustCompile(`(?m)^\s*([a-z_]+)`)

// wrap turns a fragment into a whole file: nested blocks get a parent, and
// lone attributes are skipped (ok false) unless they are an auto_approve.
func wrap(s snippet) (string, bool) {
	body := s.src
	// Drop leading comment lines to find the first real token.
	var rest []string
	for _, l := range strings.Split(body, "\n") {
		if len(rest) == 0 && (strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "") {
			continue
		}
		rest = append(rest, l)
	}
	m := firstWord.FindStringSubmatch(strings.Join(rest, "\n"))
	if m == nil {
		return "", false
	}
	const jitHead = "jit \"wrapper\" {\n  roles = [\"support-role\"]\n  requesters = [\"group:wrapper@acme.example\"]\n  max_duration = \"1h\"\n"
	switch m[1] {
	case "settings", "role", "jit", "temporary", "break_glass", "notifier", "test":
		return body, true
	case "gcp", "aws", "azure":
		return "role \"wrapper\" {\n" + body + "}\n", true
	case "approval":
		return jitHead + body + "}\n", true
	case "auto_approve":
		// Several alternative assignments in one snippet: one jit each.
		var b strings.Builder
		for i, a := range strings.Split(body, "\n\n") {
			fmt.Fprintf(&b, "jit \"wrapper-%d\" {\n  roles = [\"support-role\"]\n  requesters = [\"group:wrapper@acme.example\"]\n  max_duration = \"1h\"\n  approval {\n    approvers = [\"group:approvers@acme.example\"]\n%s\n  }\n}\n", i, a)
		}
		return b.String(), true
	}
	return "", false
}

// support declares what the reference's snippets refer to, so a snippet
// about one rule does not trip unknown-reference.
const support = `
role "support-role" {}
role "prod-db-admin" { privileged = true }
role "prod-readonly" { privileged = true }
role "prod-admin" { privileged = true }
role "staging-operator" {}
role "db-admin" {}
role "reporting-reader" {}
role "prod-db-migrator" {}
role "org-emergency-admin" {}
notifier "security-pager" {
  type    = "webhook"
  url_env = "SUPPORT_URL"
}
notifier "security-slack" {
  type    = "slack"
  url_env = "SUPPORT_SLACK_URL"
}
`

// load decodes a snippet (wrapped) next to the support declarations; the
// support file must not itself declare what the snippet declares.
func loadSnippet(src string) (*policies.Set, policies.Diagnostics) {
	names := []string{"snippet.hcl"}
	files := map[string][]byte{"snippet.hcl": []byte(src)}
	// Leave out support roles and notifiers the snippet declares itself.
	var sup strings.Builder
	for _, block := range splitTopLevel(support) {
		if header := strings.SplitN(block, "{", 2)[0]; strings.Contains(src, strings.TrimSpace(header)+" {") {
			continue
		}
		sup.WriteString(block)
	}
	names = append(names, "support.hcl")
	files["support.hcl"] = []byte(sup.String())
	set, diags := policies.LoadSources(names, files)
	return set, append(diags, policies.Lint(set)...)
}

// splitTopLevel splits the support text into its top-level blocks.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				out = append(out, s[start:i+1]+"\n")
				start = i + 1
			}
		}
	}
	return out
}

// TestReferenceSnippetsDecode keeps the policy reference's examples valid
// language: none may have a syntax or schema error.
func TestReferenceSnippetsDecode(t *testing.T) {
	checked := 0
	for _, s := range referenceSnippets(t) {
		src, ok := wrap(s)
		if !ok {
			continue
		}
		checked++
		_, diags := loadSnippet(src)
		for _, d := range diags {
			if d.Rule == policies.RuleSyntax || d.Rule == policies.RuleSchema {
				t.Errorf("%s:%d (%s): %s", referenceDoc, s.line, s.section, d.Error())
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d snippets", checked)
	}
}

// TestReferenceLintExamplesFire checks that the example under each lint
// rule's heading really makes validate report that rule, and that every
// rule has such an example.
func TestReferenceLintExamplesFire(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range referenceSnippets(t) {
		if !s.inLint || s.section == "" {
			continue
		}
		rule := s.section
		covered[rule] = true
		_, diags := loadSnippet(s.src)
		fired := false
		for _, d := range diags {
			if d.Rule == policies.RuleSyntax || d.Rule == policies.RuleSchema {
				t.Errorf("%s:%d (%s): %s", referenceDoc, s.line, rule, d.Error())
			}
			fired = fired || d.Rule == rule
		}
		if !fired {
			t.Errorf("%s:%d: the example for %s does not fire it; got %v", referenceDoc, s.line, rule, diags)
		}
	}
	for _, r := range policies.LintRules {
		if !covered[r.Rule] {
			t.Errorf("%s has no example under a \"### %s\" heading", referenceDoc, r.Rule)
		}
	}
}
