package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/elevatehq/elevate/policies"
)

func TestSnippetCarets(t *testing.T) {
	tests := []struct {
		name         string
		text         string
		start, end   int
		line, carets string
	}{
		{"ascii", "  bogus = 1", 2, 7, "  bogus = 1", "  ^^^^^"},
		{"leading tab", "\tbogus = 1", 1, 6, "    bogus = 1", "    ^^^^^"},
		{"tab inside the line", "a\tb", 2, 3, "a   b", "    ^"},
		{"tab under the range", "a\tb", 1, 3, "a   b", " ^^^^"},
		{"two-byte characters before", `x = "héllo" y`, 12, 13, `x = "héllo" y`, "           ^"},
		{"two-byte characters under", `x = "héllo"`, 5, 11, `x = "héllo"`, "     ^^^^^"},
		{"wide characters", `x = "世界" y`, 5, 11, `x = "世界" y`, "     ^^^^"},
		{"after wide characters", `"世界" y`, 9, 10, `"世界" y`, "       ^"},
		{"combining mark", "e\u0301x = 1", 3, 4, "e\u0301x = 1", " ^"},
		{"empty range at line end", "abc", 3, 3, "abc", "   ^"},
		{"empty range", "abc", 1, 1, "abc", " ^"},
		{"control character made visible", "a\x1b[31mb", 0, 1, "a?[31mb", "^"},
		{"invalid UTF-8", "a\xffb", 1, 2, "a?b", " ^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, carets := snippet([]byte(tt.text), tt.start, tt.end)
			if line != tt.line || carets != tt.carets {
				t.Errorf("snippet(%q, %d, %d) =\n%q\n%q\nwant\n%q\n%q", tt.text, tt.start, tt.end, line, carets, tt.line, tt.carets)
			}
		})
	}
}

func TestClippedSnippet(t *testing.T) {
	long := strings.Repeat("a", 300) + "TARGET" + strings.Repeat("世", 300)
	start := strings.Index(long, "TARGET")
	line, carets := clippedSnippet([]byte(long), start, start+len("TARGET"))
	if !strings.HasPrefix(line, "…") || !strings.HasSuffix(line, "…") || len(line) > 2*maxSnippetBytes {
		t.Errorf("line not clipped around the range: %q", line)
	}
	if !utf8.ValidString(line) {
		t.Errorf("clipping split a character: %q", line)
	}
	col := strings.Index(carets, "^")
	if got := string([]rune(line)[col : col+6]); got != "TARGET" || !strings.HasSuffix(carets, "^^^^^^") {
		t.Errorf("carets %q under %q", carets, got)
	}
	short := "  bogus = 1"
	if l, c := clippedSnippet([]byte(short), 2, 7); l != short || c != "  ^^^^^" {
		t.Errorf("a short line should not be clipped: %q %q", l, c)
	}
}

// rangeOf returns the range of the first occurrence of needle in src, the
// way HCL reports it (line, grapheme column, byte offset).
func rangeOf(t *testing.T, file, src, needle string) hcl.Range {
	t.Helper()
	i := strings.Index(src, needle)
	if i < 0 {
		t.Fatalf("%q not in source", needle)
	}
	pos := func(off int) hcl.Pos {
		before := src[:off]
		ls := strings.LastIndexByte(before, '\n') + 1
		return hcl.Pos{Line: strings.Count(before, "\n") + 1, Column: len([]rune(src[ls:off])) + 1, Byte: off}
	}
	return hcl.Range{Filename: file, Start: pos(i), End: pos(i + len(needle))}
}

func TestLocate(t *testing.T) {
	src := "role \"r\" {\n  description = \"世界\"\n  privileged = [\n    true,\n  ]\n}\n"
	sources := map[string][]byte{"p.hcl": []byte(src)}

	t.Run("single line after wide characters", func(t *testing.T) {
		d := policies.Diagnostic{Range: rangeOf(t, "p.hcl", src, `"世界"`)}
		loc := newLocator(sources).locate(d)
		if loc.line != 2 || loc.col != 17 || loc.endLine != 2 || loc.endCol != 21 {
			t.Errorf("got %d:%d-%d:%d, want 2:17-2:21", loc.line, loc.col, loc.endLine, loc.endCol)
		}
		if got := string(loc.text[loc.startOff:loc.endOff]); got != `"世界"` {
			t.Errorf("underlined %q", got)
		}
	})
	t.Run("multi-line range underlines to the end of its first line", func(t *testing.T) {
		d := policies.Diagnostic{Range: rangeOf(t, "p.hcl", src, "[\n    true,\n  ]")}
		loc := newLocator(sources).locate(d)
		if loc.line != 3 || loc.endLine != 5 || loc.endCol != 4 {
			t.Errorf("got %d-%d:%d, want 3-5:4", loc.line, loc.endLine, loc.endCol)
		}
		if string(loc.text) != "  privileged = [" || loc.endOff != len(loc.text) {
			t.Errorf("text %q endOff %d", loc.text, loc.endOff)
		}
		_, carets := snippet(loc.text, loc.startOff, loc.endOff)
		if carets != "               ^" {
			t.Errorf("carets %q", carets)
		}
	})
	t.Run("byte offsets that disagree with the line fall back to line and column", func(t *testing.T) {
		d := policies.Diagnostic{Range: hcl.Range{Filename: "p.hcl",
			Start: hcl.Pos{Line: 4, Column: 5}, End: hcl.Pos{Line: 4, Column: 9}}}
		loc := newLocator(sources).locate(d)
		if string(loc.text) != "    true," || loc.startOff != 4 || loc.col != 5 {
			t.Errorf("text %q startOff %d col %d", loc.text, loc.startOff, loc.col)
		}
		if loc.endOff != loc.startOff || loc.endLine != 4 || loc.endCol != 5 {
			t.Errorf("an unusable end should collapse to the start, got off %d %d:%d", loc.endOff, loc.endLine, loc.endCol)
		}
	})
	t.Run("line past the end of the file", func(t *testing.T) {
		d := policies.Diagnostic{Range: hcl.Range{Filename: "p.hcl", Start: hcl.Pos{Line: 40, Column: 2}, End: hcl.Pos{Line: 40, Column: 3}}}
		loc := newLocator(sources).locate(d)
		if loc.text != nil || loc.line != 40 || loc.col != 2 {
			t.Errorf("got text %q at %d:%d", loc.text, loc.line, loc.col)
		}
	})
	t.Run("set-level diagnostic", func(t *testing.T) {
		loc := newLocator(sources).locate(policies.Diagnostic{})
		if loc.file != "" || loc.line != 0 || loc.text != nil {
			t.Errorf("got %+v", loc)
		}
	})
	t.Run("file without source keeps HCL's position", func(t *testing.T) {
		d := policies.Diagnostic{Range: hcl.Range{Filename: "gone.hcl", Start: hcl.Pos{Line: 3, Column: 7}, End: hcl.Pos{Line: 3, Column: 9}}}
		loc := newLocator(sources).locate(d)
		if loc.line != 3 || loc.col != 7 || loc.endCol != 9 || loc.text != nil {
			t.Errorf("got %+v", loc)
		}
	})
}

// loadValidation decodes in-memory files and adds extra diagnostics, the way
// policies.Validate would report them.
func loadValidation(t *testing.T, files map[string]string, extra ...policies.Diagnostic) *validation {
	t.Helper()
	var names []string
	sources := map[string][]byte{}
	for name, src := range files {
		names = append(names, name)
		sources[name] = []byte(src)
	}
	slices.Sort(names)
	set, diags := policies.LoadSources(names, sources)
	diags = append(diags, extra...)
	diags.Sort()
	return &validation{set: set, diags: diags}
}

const brokenRole = "role \"x\" {\n  description = \"x\"\n  bogus = 1\n}\n"

const cleanPolicy = `role "reader" {
  description = "Read-only"
  gcp {
    resource = "projects/acme"
    role     = "roles/monitoring.viewer"
  }
}

jit "read" {
  roles        = ["reader"]
  requesters   = ["group:eng@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:leads@example.com"]
  }
}
`

var setWarning = policies.Diagnostic{Severity: policies.SeverityWarning, Rule: "breakglass-too-many-accounts",
	Summary: "Too many accounts", Detail: "Six accounts; the cap is five."}

func TestRenderText(t *testing.T) {
	v := loadValidation(t, map[string]string{"p.hcl": brokenRole}, setWarning)
	var buf bytes.Buffer
	if err := renderText(&buf, v, false); err != nil {
		t.Fatal(err)
	}
	want := `Warning: Too many accounts

[breakglass-too-many-accounts] Six accounts; the cap is five.

Error: Unsupported argument

  on p.hcl line 3, in role "x":
   3:   bogus = 1
        ^^^^^

[schema] An argument named "bogus" is not expected here.

1 error, 1 warning.
`
	if buf.String() != want {
		t.Errorf("renderText:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestRenderTextColour(t *testing.T) {
	v := loadValidation(t, map[string]string{"p.hcl": brokenRole})
	var plain, colour bytes.Buffer
	renderText(&plain, v, false)
	renderText(&colour, v, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("colour codes without colour")
	}
	if !strings.Contains(colour.String(), "\x1b[1;31mError:\x1b[0m") {
		t.Errorf("no red Error label in %q", colour.String())
	}
}

func TestRenderTextIODiagnostic(t *testing.T) {
	_, diags := policies.Validate(filepath.Join(t.TempDir(), "missing"))
	var buf bytes.Buffer
	renderText(&buf, &validation{diags: diags}, false)
	if !strings.Contains(buf.String(), "missing:\n") || strings.Contains(buf.String(), "line 1") {
		t.Errorf("an unreadable path should be named without a line:\n%s", buf.String())
	}
}

func TestSummary(t *testing.T) {
	clean := loadValidation(t, map[string]string{"a.hcl": cleanPolicy})
	if got, want := clean.summary(), "Success! The policy set is valid (1 file, 1 role, 1 jit policy)."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	warned := loadValidation(t, map[string]string{"a.hcl": cleanPolicy, "b.hcl": cleanPolicy[:strings.Index(cleanPolicy, "jit")]}, setWarning)
	if got := warned.summary(); !strings.HasPrefix(got, "Success! The policy set is valid, with 1 warning (2 files, 2 roles,") {
		t.Errorf("got %q", got)
	}
	warned.strict = true
	if got, want := warned.summary(), "0 errors, 1 warning. Warnings fail validation with --strict."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	warn := policies.Diagnostic{Severity: policies.SeverityWarning, Rule: "x"}
	errd := policies.Diagnostic{Severity: policies.SeverityError, Rule: "x"}
	io := policies.Diagnostic{Severity: policies.SeverityError, Rule: policies.RuleIO}
	tests := []struct {
		diags  policies.Diagnostics
		strict bool
		want   int
	}{
		{nil, false, ExitOK},
		{nil, true, ExitOK},
		{policies.Diagnostics{warn}, false, ExitOK},
		{policies.Diagnostics{warn}, true, ExitFailed},
		{policies.Diagnostics{errd, warn}, false, ExitFailed},
		{policies.Diagnostics{errd, io}, false, ExitUsage},
		{policies.Diagnostics{io}, true, ExitUsage},
	}
	for i, tt := range tests {
		v := &validation{diags: tt.diags, strict: tt.strict}
		if got := v.exitCode(); got != tt.want {
			t.Errorf("%d: exitCode = %d, want %d", i, got, tt.want)
		}
		if v.valid() != (tt.want == ExitOK) {
			t.Errorf("%d: valid = %v with exit %d", i, v.valid(), tt.want)
		}
	}
}

func TestRenderJSON(t *testing.T) {
	v := loadValidation(t, map[string]string{"dir/p.hcl": brokenRole}, setWarning)
	var buf bytes.Buffer
	if err := renderJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Valid       *bool            `json:"valid"`
		Diagnostics []map[string]any `json:"diagnostics"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got.Valid == nil || *got.Valid {
		t.Errorf("valid = %v, want false", got.Valid)
	}
	if len(got.Diagnostics) != 2 {
		t.Fatalf("%d diagnostics, want 2", len(got.Diagnostics))
	}
	keys := []string{"column", "detail", "end_column", "end_line", "file", "line", "rule", "severity", "summary"}
	for _, d := range got.Diagnostics {
		var have []string
		for k := range d {
			have = append(have, k)
		}
		slices.Sort(have)
		if !slices.Equal(have, keys) {
			t.Errorf("keys %v, want %v", have, keys)
		}
	}
	e := got.Diagnostics[1]
	if e["severity"] != "error" || e["rule"] != "schema" || e["file"] != "dir/p.hcl" || e["line"] != 3.0 || e["column"] != 3.0 || e["end_column"] != 8.0 {
		t.Errorf("schema diagnostic %v", e)
	}
	if w := got.Diagnostics[0]; w["severity"] != "warning" || w["file"] != "" || w["line"] != 0.0 {
		t.Errorf("set-level diagnostic %v", w)
	}

	buf.Reset()
	renderJSON(&buf, loadValidation(t, map[string]string{"a.hcl": cleanPolicy}))
	if !strings.Contains(buf.String(), `"valid": true`) || !strings.Contains(buf.String(), `"diagnostics": []`) {
		t.Errorf("a clean set should give valid true and an empty list:\n%s", buf.String())
	}
}

func TestGitHubEscaping(t *testing.T) {
	in := "100% done\r\nnext: a, b"
	if got, want := escapeGitHubData(in), "100%25 done%0D%0Anext: a, b"; got != want {
		t.Errorf("data: got %q, want %q", got, want)
	}
	if got, want := escapeGitHubProperty(in), "100%25 done%0D%0Anext%3A a%2C b"; got != want {
		t.Errorf("property: got %q, want %q", got, want)
	}
}

func TestRenderGitHub(t *testing.T) {
	name := "dir/a,b:c.hcl"
	d := policies.Diagnostic{Severity: policies.SeverityError, Rule: "schema", Summary: "Bad 100%",
		Detail: "Line one,\nline: two.", Range: rangeOf(t, name, brokenRole, "bogus")}
	multi := policies.Diagnostic{Severity: policies.SeverityWarning, Rule: "jit-duration-too-long", Summary: "Long",
		Range: rangeOf(t, name, brokenRole, "description = \"x\"\n  bogus")}
	v := &validation{set: &policies.Set{Sources: map[string][]byte{name: []byte(brokenRole)}},
		diags: policies.Diagnostics{d, multi, setWarning}}
	var buf bytes.Buffer
	if err := renderGitHub(&buf, v); err != nil {
		t.Fatal(err)
	}
	want := "::error file=dir/a%2Cb%3Ac.hcl,line=3,col=3,endLine=3,endColumn=8,title=schema::Bad 100%25%0ALine one,%0Aline: two.\n" +
		"::warning file=dir/a%2Cb%3Ac.hcl,line=2,col=3,endLine=3,title=jit-duration-too-long::Long\n" +
		"::warning title=breakglass-too-many-accounts::Too many accounts%0ASix accounts; the cap is five.\n" +
		"1 error, 2 warnings.\n"
	if buf.String() != want {
		t.Errorf("renderGitHub:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestRenderSARIF(t *testing.T) {
	wd := t.TempDir()
	abs := filepath.Join(wd, "abs", "q.hcl")
	v := loadValidation(t, map[string]string{
		"dir/p.hcl": brokenRole,
		abs:         "role \"y\" {\n  description = \"unterminated\n}\n",
	}, setWarning, policies.Diagnostic{Severity: policies.SeverityError, Rule: "unknown-reference", Summary: "Unknown role",
		Range: rangeOf(t, "dir/p.hcl", brokenRole, "description = \"x\"\n  bogus")})
	v.wd = wd
	var buf bytes.Buffer
	if err := renderSARIF(&buf, v); err != nil {
		t.Fatal(err)
	}
	log := checkSARIF(t, buf.Bytes())
	run := log["runs"].([]any)[0].(map[string]any)
	results := run["results"].([]any)
	if len(results) != len(v.diags) {
		t.Fatalf("%d results for %d diagnostics", len(results), len(v.diags))
	}
	var uris []string
	var sawSetLevel bool
	for _, r := range results {
		res := r.(map[string]any)
		locs, ok := res["locations"].([]any)
		if !ok {
			sawSetLevel = true
			continue
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		uris = append(uris, pl["artifactLocation"].(map[string]any)["uri"].(string))
	}
	slices.Sort(uris)
	uris = slices.Compact(uris)
	if !slices.Equal(uris, []string{"abs/q.hcl", "dir/p.hcl"}) {
		t.Errorf("uris %v, want relative forward-slash paths", uris)
	}
	if !sawSetLevel {
		t.Error("the set-level diagnostic should be a result without a location")
	}
	rules := run["tool"].(map[string]any)["driver"].(map[string]any)["rules"].([]any)
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	if want := []string{"breakglass-too-many-accounts", "schema", "syntax", "unknown-reference"}; !slices.Equal(ids, want) {
		t.Errorf("rules %v, want %v", ids, want)
	}
}

// checkSARIF decodes a SARIF log and checks the properties SARIF 2.1.0 and
// GitHub code scanning require, failing the test on the first violation.
func checkSARIF(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var log map[string]any
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("SARIF is not JSON: %v\n%s", err, data)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invalid SARIF: "+format+"\n%s", append(args, data)...)
	}
	if s, _ := log["$schema"].(string); !strings.Contains(s, "sarif-2.1.0") {
		fail("$schema %q", log["$schema"])
	}
	if log["version"] != "2.1.0" {
		fail("version %v", log["version"])
	}
	runs, ok := log["runs"].([]any)
	if !ok || len(runs) != 1 {
		fail("want one run, got %v", log["runs"])
	}
	run := runs[0].(map[string]any)
	driver, _ := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver == nil || driver["name"] != "elevate" {
		fail("tool.driver %v", run["tool"])
	}
	if ck := run["columnKind"]; ck != nil && ck != "unicodeCodePoints" && ck != "utf16CodeUnits" {
		fail("columnKind %v", ck)
	}
	rules, _ := driver["rules"].([]any)
	ruleIDs := map[string]int{}
	for i, r := range rules {
		rule := r.(map[string]any)
		id, _ := rule["id"].(string)
		desc, _ := rule["shortDescription"].(map[string]any)
		if id == "" || desc == nil || desc["text"] == "" || desc["text"] == nil {
			fail("rule %d lacks id or shortDescription.text: %v", i, rule)
		}
		if _, dup := ruleIDs[id]; dup {
			fail("rule %q listed twice", id)
		}
		ruleIDs[id] = i
	}
	results, ok := run["results"].([]any)
	if !ok {
		fail("results missing")
	}
	for i, r := range results {
		res := r.(map[string]any)
		id, _ := res["ruleId"].(string)
		idx, known := ruleIDs[id]
		if !known {
			fail("result %d: ruleId %q not among the rules", i, id)
		}
		if ri, ok := res["ruleIndex"].(float64); ok && int(ri) != idx {
			fail("result %d: ruleIndex %v, rule is at %d", i, ri, idx)
		}
		if l := res["level"]; !slices.Contains([]any{"error", "warning", "note", "none"}, l) {
			fail("result %d: level %v", i, l)
		}
		if msg, _ := res["message"].(map[string]any); msg == nil || msg["text"] == "" || msg["text"] == nil {
			fail("result %d: no message.text", i)
		}
		locs, _ := res["locations"].([]any)
		for _, l := range locs {
			pl, _ := l.(map[string]any)["physicalLocation"].(map[string]any)
			al, _ := pl["artifactLocation"].(map[string]any)
			uri, _ := al["uri"].(string)
			if uri == "" || strings.Contains(uri, `\`) || strings.HasPrefix(uri, "/") {
				fail("result %d: artifactLocation.uri %q is not a relative URI", i, uri)
			}
			reg, _ := pl["region"].(map[string]any)
			if reg == nil {
				continue
			}
			num := func(k string) int { f, _ := reg[k].(float64); return int(f) }
			sl, sc, el, ec := num("startLine"), num("startColumn"), num("endLine"), num("endColumn")
			if sl < 1 || sc < 1 || (el != 0 && el < sl) || (ec != 0 && ec < 1) || (el == sl && ec != 0 && ec < sc) {
				fail("result %d: bad region %v", i, reg)
			}
		}
	}
	return log
}

func TestRuleDescriptionsCoverEveryRule(t *testing.T) {
	for _, r := range policies.LintRules {
		if ruleDescriptions[r.Rule] == "" {
			t.Errorf("rule %q has no SARIF description in ruleDescriptions", r.Rule)
		}
	}
	if len(ruleDescriptions) != len(policies.LintRules)+3 {
		t.Errorf("ruleDescriptions has %d entries, want the %d lint rules plus syntax, schema and io",
			len(ruleDescriptions), len(policies.LintRules))
	}
}

func TestSARIFURI(t *testing.T) {
	wd := filepath.FromSlash("/work/repo")
	tests := []struct{ path, want string }{
		{"policies/db.hcl", "policies/db.hcl"},
		{"./policies/../policies/a b.hcl", "policies/a%20b.hcl"},
		{filepath.FromSlash("/work/repo/policies/x.hcl"), "policies/x.hcl"},
		{filepath.FromSlash("/elsewhere/x.hcl"), "file:///elsewhere/x.hcl"},
		{"100%.hcl", "100%25.hcl"},
	}
	for _, tt := range tests {
		if got := sarifURI(tt.path, wd); got != tt.want {
			t.Errorf("sarifURI(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// End-to-end: the real binary on real files.

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidateBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"clean/a.hcl":  cleanPolicy,
		"syntax/a.hcl": "role \"x\" {\n  description = \"oops\n}\n",
		"schema/a.hcl": brokenRole,
	})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dangling"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere.hcl"), filepath.Join(dir, "dangling", "a.hcl")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         string // subdirectory to run in
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{"clean", "", []string{"validate", "clean"}, 0, []string{"Success! The policy set is valid (1 file, 1 role, 1 jit policy)."}, ""},
		{"default path is the working directory", "clean", []string{"validate"}, 0, []string{"Success!"}, ""},
		{"default path reads every subdirectory", "", []string{"validate"}, 2, []string{"dangling/a.hcl", "[syntax]", "[schema]"}, ""},
		{"syntax error", "", []string{"validate", "syntax"}, 1, []string{"Error: ", "[syntax]", "on syntax/a.hcl line 2", "^"}, ""},
		{"schema error", "", []string{"validate", "schema"}, 1, []string{"   3:   bogus = 1\n        ^^^^^\n", "1 error"}, ""},
		{"missing path", "", []string{"validate", "no-such-dir"}, 2, []string{"Cannot read policy path", "no-such-dir"}, ""},
		{"broken symlink", "", []string{"validate", "dangling"}, 2, []string{"Cannot read policy file", "dangling/a.hcl"}, ""},
		{"empty directory", "", []string{"validate", "empty"}, 2, []string{"No policy files found"}, ""},
		{"unknown format", "", []string{"validate", "--format", "xml", "no-such-dir"}, 2, nil, `unknown --format "xml"`},
		{"unknown flag", "", []string{"validate", "--bogus"}, 2, nil, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runElevate(t, filepath.Join(dir, tt.in), []string{"NO_COLOR="}, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if tt.name == "unknown format" && (stdout != "" || strings.Contains(stderr, "no-such-dir")) {
				t.Errorf("an unknown format must be rejected before loading; stdout %q stderr %q", stdout, stderr)
			}
		})
	}
}

func TestValidateBinaryFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"policies/a.hcl": brokenRole, "ok/a.hcl": cleanPolicy})

	stdout, _, code := runElevate(t, dir, nil, "validate", "--format", "json", "policies")
	var out jsonValidation
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != 1 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, stdout)
	}
	if out.Valid || len(out.Diagnostics) != 1 || out.Diagnostics[0].File != "policies/a.hcl" || out.Diagnostics[0].Line != 3 {
		t.Errorf("json: %+v", out)
	}

	stdout, _, code = runElevate(t, dir, nil, "validate", "--format=json", "ok")
	if code != 0 || !strings.Contains(stdout, `"valid": true`) {
		t.Errorf("json clean: exit %d\n%s", code, stdout)
	}

	stdout, _, code = runElevate(t, dir, nil, "validate", "--format", "github", "policies")
	if code != 1 || !strings.HasPrefix(stdout, "::error file=policies/a.hcl,line=3,col=3,endLine=3,endColumn=8,title=schema::Unsupported argument%0A") {
		t.Errorf("github: exit %d\n%s", code, stdout)
	}

	stdout, _, code = runElevate(t, dir, nil, "validate", "--format", "sarif", "policies", "ok")
	if code != 1 {
		t.Errorf("sarif: exit %d", code)
	}
	checkSARIF(t, []byte(stdout))
	if !strings.Contains(stdout, `"uri": "policies/a.hcl"`) {
		t.Errorf("sarif lacks the file URI:\n%s", stdout)
	}

	stdout, _, code = runElevate(t, dir, nil, "validate", "--format", "sarif", "missing")
	if code != 2 {
		t.Errorf("sarif on a missing path: exit %d, want 2", code)
	}
	checkSARIF(t, []byte(stdout))
}

// TestValidateBinaryStrict checks that warnings pass by default and fail with
// --strict. A jit whose max_duration is over the 8h cap draws a warning.
func TestValidateBinaryStrict(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.hcl": strings.Replace(cleanPolicy, `"1h"`, `"12h"`, 1)})
	stdout, _, code := runElevate(t, dir, nil, "validate", "--format", "json", ".")
	var out jsonValidation
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(out.Diagnostics) == 0 {
		t.Skip("policies.Lint reports nothing yet for a 12h jit")
	}
	var rules []string
	for _, d := range out.Diagnostics {
		if d.Severity != "warning" {
			t.Fatalf("want warnings only, got %+v", d)
		}
		rules = append(rules, d.Rule)
	}
	if !slices.Contains(rules, "jit-duration-too-long") {
		t.Errorf("rules %v lack jit-duration-too-long", rules)
	}
	if code != 0 || !out.Valid {
		t.Errorf("warnings only: exit %d valid %v, want 0 true", code, out.Valid)
	}
	stdout, _, code = runElevate(t, dir, nil, "validate", "--strict", "--format", "json", ".")
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if code != 1 || out.Valid {
		t.Errorf("--strict with warnings: exit %d valid %v, want 1 false", code, out.Valid)
	}
	stdout, _, code = runElevate(t, dir, nil, "validate", "--strict", ".")
	if code != 1 || !strings.Contains(stdout, "Warning: ") || !strings.Contains(stdout, "Warnings fail validation with --strict.") {
		t.Errorf("--strict text: exit %d\n%s", code, stdout)
	}
}
