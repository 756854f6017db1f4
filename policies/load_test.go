package policies

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTree creates files (path relative to dir -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// assertPositions checks that every diagnostic about a file names it and
// has a line, as SARIF output and editors require.
func assertPositions(t *testing.T, diags Diagnostics) {
	t.Helper()
	for _, d := range diags {
		if d.Range.Filename != "" && d.Range.Start.Line < 1 {
			t.Errorf("diagnostic about %s has no line: %v", d.Range.Filename, d)
		}
		if d.Rule == "" || d.Summary == "" {
			t.Errorf("diagnostic without rule or summary: %#v", d)
		}
	}
}

// only returns the single diagnostic of rule, failing otherwise.
func only(t *testing.T, diags Diagnostics, rule string) Diagnostic {
	t.Helper()
	var found []Diagnostic
	for _, d := range diags {
		if d.Rule == rule {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s diagnostic, got %v (all: %v)", rule, found, diags)
	}
	return found[0]
}

func TestLoadRejectsNonUTF8(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "latin1.hcl")
	src := []byte("role \"db\" {\n  description = \"caf\xe9\"\n}\n")
	if err := os.WriteFile(name, src, 0o644); err != nil {
		t.Fatal(err)
	}
	set, diags := Validate(dir)
	assertPositions(t, diags)
	d := only(t, diags, RuleSyntax)
	if d.Range.Filename != name || d.Range.Start.Line != 2 || d.Range.Start.Column != 21 {
		t.Errorf("want the invalid byte at %s:2,21, got %v", name, d)
	}
	if !strings.Contains(d.Detail, "UTF-8") {
		t.Errorf("detail should say to re-save as UTF-8: %q", d.Detail)
	}
	if len(set.Roles) != 0 || len(set.Files) != 1 {
		t.Errorf("a file that is not UTF-8 must not be decoded: %d roles, files %v", len(set.Roles), set.Files)
	}
}

func TestLoadBrokenSymlink(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.hcl": "role \"db\" {}\n"})
	link := filepath.Join(dir, "x.hcl")
	if err := os.Symlink(filepath.Join(dir, "missing-target.hcl"), link); err != nil {
		t.Fatal(err)
	}
	set, diags := Validate(dir)
	assertPositions(t, diags)
	d := only(t, diags, RuleIO)
	if d.Range.Filename != link || d.Range.Start.Line != 1 {
		t.Errorf("want an I/O error at %s:1, got %v", link, d)
	}
	if !diags.HasIOErrors() {
		t.Error("HasIOErrors must report the unreadable file (the CLI exits 2)")
	}
	if len(set.Roles) != 1 || set.Roles[0].Name != "db" {
		t.Errorf("the readable file must still load, got roles %v", set.Roles)
	}
}

func TestLoadDirectoryWithoutPolicies(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"README.md":        "# policies\n",
		"notes/todo.txt":   "write policies\n",
		".git/config.hcl":  "role \"hidden\" {}\n", // dot directories are skipped
		"drafts/.next.hcl": "role \"hidden\" {}\n", // and dot files
	})
	set, diags := Validate(dir)
	assertPositions(t, diags)
	d := only(t, diags, RuleIO)
	if !strings.Contains(d.Detail, dir) {
		t.Errorf("detail should name the directory searched: %q", d.Detail)
	}
	if len(diags) != 1 || len(set.Files) != 0 {
		t.Errorf("want only the io diagnostic and no files, got %v, files %v", diags, set.Files)
	}
}

func TestLoadMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, diags := Validate(missing)
	assertPositions(t, diags)
	d := only(t, diags, RuleIO)
	if d.Range.Filename != missing || d.Range.Start.Line != 1 {
		t.Errorf("want an I/O error at %s:1, got %v", missing, d)
	}
}

func TestLoadFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	// A file exactly at the limit is read. Its last byte is not UTF-8, so it
	// is rejected cheaply as a syntax error without parsing 10 MiB of HCL:
	// a syntax error rather than an io one proves it was read.
	atLimit := append(bytes.Repeat([]byte("#"), MaxFileSize-1), 0xff)
	over := append(bytes.Repeat([]byte("#"), MaxFileSize), '\n')
	small := filepath.Join(dir, "a-at-limit.hcl")
	big := filepath.Join(dir, "b-over-limit.hcl")
	for name, src := range map[string][]byte{small: atLimit, big: over} {
		if err := os.WriteFile(name, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, diags := Load(dir)
	assertPositions(t, diags)
	d := only(t, diags, RuleIO)
	if d.Range.Filename != big || !strings.Contains(d.Detail, "split it") {
		t.Errorf("want an I/O error for %s telling to split it, got %v", big, d)
	}
	if d := only(t, diags, RuleSyntax); d.Range.Filename != small || d.Range.Start.Line != 1 || d.Range.Start.Column != MaxFileSize {
		t.Errorf("the file at the limit must be read (and fail on its last byte), got %v", d)
	}
}

func TestLoadNestedDirectoriesInLexicalOrder(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"b.hcl":        "role \"b\" {}\n",
		"a/z.hcl":      "role \"a-z\" {}\n",
		"a/b/c.hcl":    "role \"a-b-c\" {}\n",
		"a-x.hcl":      "role \"a-x\" {}\n",
		"c/a.hcl":      "role \"c-a\" {\n  description = \"second declaration\"\n}\nrole \"b\" {}\n",
		"c/readme.txt": "not a policy",
	})
	set, diags := Validate(dir)
	assertPositions(t, diags)
	var want []string
	for _, f := range []string{"a-x.hcl", "a/b/c.hcl", "a/z.hcl", "b.hcl", "c/a.hcl"} {
		want = append(want, filepath.Join(dir, filepath.FromSlash(f)))
	}
	if diff := cmp.Diff(want, set.Files); diff != "" {
		t.Errorf("load order (-want +got):\n%s", diff)
	}
	var roles []string
	for _, r := range set.Roles {
		roles = append(roles, r.Name)
	}
	if diff := cmp.Diff([]string{"a-x", "a-b-c", "a-z", "b", "c-a", "b"}, roles); diff != "" {
		t.Errorf("roles in load order (-want +got):\n%s", diff)
	}
	// The first declaration in load order wins; the later one is reported.
	d := only(t, diags, RuleDuplicateName)
	if d.Range.Filename != want[4] || d.Range.Start.Line != 4 || !strings.Contains(d.Detail, want[3]+":1") {
		t.Errorf("want duplicate-name at %s:4 pointing at %s:1, got %v", want[4], want[3], d)
	}
	if set.Role("b").DeclRange.Filename != want[3] {
		t.Errorf("Role(\"b\") must be the first declaration")
	}
}

func TestLoadExplicitPathsKeepOrderAndDeduplicate(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"z.hcl":     "role \"z\" {}\n",
		"sub/a.hcl": "role \"a\" {}\n",
	})
	z := filepath.Join(dir, "z.hcl")
	set, diags := Load(z, dir)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics: %v", diags)
	}
	want := []string{z, filepath.Join(dir, "sub", "a.hcl")}
	if diff := cmp.Diff(want, set.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}
