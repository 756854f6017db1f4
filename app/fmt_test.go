package app

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	a := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	b := "one\n2\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n"
	want := `--- a/p.hcl
+++ b/p.hcl
@@ -1,5 +1,5 @@
 one
-two
+2
 three
 four
 five
@@ -8,3 +8,4 @@
 eight
 nine
 ten
+eleven
`
	if got := unifiedDiff("a/p.hcl", "b/p.hcl", []byte(a), []byte(b)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := unifiedDiff("a", "b", []byte(a), []byte(a)); got != "" {
		t.Errorf("equal inputs gave a diff:\n%s", got)
	}
}

func TestUnifiedDiffMissingFinalNewline(t *testing.T) {
	got := unifiedDiff("a/x", "b/x", []byte("role {\n}"), []byte("role {\n}\n"))
	want := "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n role {\n-}\n\\ No newline at end of file\n+}\n"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	got = unifiedDiff("a/x", "b/x", nil, []byte("x\n"))
	if want := "--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+x\n"; got != want {
		t.Errorf("from empty: got %q, want %q", got, want)
	}
}

// TestDiffProperties diffs random texts over a small alphabet: the edit
// script must rebuild both sides, be as short as the longest common
// subsequence allows, and the unified diff must patch a into b.
func TestDiffProperties(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 1))
		a, b := randomLines(r), randomLines(r)
		ops := diffLines(a, b)
		var gotA, gotB []string
		edits := 0
		for _, op := range ops {
			if op.kind != '+' {
				gotA = append(gotA, op.line)
			}
			if op.kind != '-' {
				gotB = append(gotB, op.line)
			}
			if op.kind != ' ' {
				edits++
			}
		}
		if strings.Join(gotA, "") != strings.Join(a, "") || strings.Join(gotB, "") != strings.Join(b, "") {
			t.Fatalf("seed %d: edit script does not rebuild the inputs\na=%q\nb=%q\nops=%v", seed, a, b, ops)
		}
		if want := len(a) + len(b) - 2*lcsLen(a, b); edits != want {
			t.Fatalf("seed %d: %d edits, the shortest script has %d\na=%q\nb=%q", seed, edits, want, a, b)
		}
		d := unifiedDiff("a", "b", []byte(strings.Join(a, "")), []byte(strings.Join(b, "")))
		patched, err := applyUnified(strings.Join(a, ""), d)
		if err != nil || patched != strings.Join(b, "") {
			t.Fatalf("seed %d: patch gave %q (%v), want %q\ndiff:\n%s", seed, patched, err, strings.Join(b, ""), d)
		}
	}
}

func TestDiffFallbackBeyondEditLimit(t *testing.T) {
	var a, b []string
	for i := range maxDiffEdits {
		a = append(a, fmt.Sprintf("a%d\n", i))
		b = append(b, fmt.Sprintf("b%d\n", i))
	}
	b = append(b, a[len(a)-1]) // common suffix
	d := unifiedDiff("a", "b", []byte(strings.Join(a, "")), []byte(strings.Join(b, "")))
	patched, err := applyUnified(strings.Join(a, ""), d)
	if err != nil || patched != strings.Join(b, "") {
		t.Fatalf("fallback diff does not patch: %v", err)
	}
}

func randomLines(r *rand.Rand) []string {
	n := r.IntN(12)
	lines := make([]string, n)
	for i := range lines {
		lines[i] = string(rune('a'+r.IntN(4))) + "\n"
	}
	if n > 0 && r.IntN(4) == 0 {
		lines[n-1] = strings.TrimSuffix(lines[n-1], "\n")
	}
	return lines
}

func lcsLen(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// applyUnified applies a unified diff to text strictly: context and deleted
// lines must match, hunk counts must agree with their bodies.
func applyUnified(text, diff string) (string, error) {
	if diff == "" {
		return text, nil
	}
	src := splitLines([]byte(text))
	lines := strings.SplitAfter(diff, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		return "", fmt.Errorf("no file header")
	}
	var out []string
	pos := 0
	for i := 2; i < len(lines) && lines[i] != ""; {
		var as, ac, bs, bc int
		h := strings.TrimSpace(lines[i])
		if _, err := fmt.Sscanf(h, "@@ -%s +%s @@", new(string), new(string)); err != nil {
			return "", fmt.Errorf("bad hunk header %q", h)
		}
		fields := strings.Fields(h)
		as, ac = parseRange(fields[1][1:])
		bs, bc = parseRange(fields[2][1:])
		start := as - 1
		if ac == 0 {
			start = as
		}
		if start < pos {
			return "", fmt.Errorf("hunk %q overlaps", h)
		}
		out = append(out, src[pos:start]...)
		pos = start
		i++
		gotA, gotB := 0, 0
		for i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "@@") {
			l := lines[i]
			i++
			body := l[1:]
			if i < len(lines) && strings.HasPrefix(lines[i], `\ No newline`) {
				body = strings.TrimSuffix(body, "\n")
				i++
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(src) || src[pos] != body {
					return "", fmt.Errorf("line %d: have %q, diff says %q", pos+1, at(src, pos), body)
				}
				pos++
				gotA++
				if l[0] == ' ' {
					out = append(out, body)
					gotB++
				}
			case '+':
				out = append(out, body)
				gotB++
			default:
				return "", fmt.Errorf("bad line %q", l)
			}
		}
		if gotA != ac || gotB != bc || (bc > 0 && len(out)-bc+1 != bs) {
			return "", fmt.Errorf("hunk %q has %d/%d lines", h, gotA, gotB)
		}
	}
	out = append(out, src[pos:]...)
	return strings.Join(out, ""), nil
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<EOF>"
}

func parseRange(s string) (start, count int) {
	parts := strings.SplitN(s, ",", 2)
	start, _ = strconv.Atoi(parts[0])
	count = 1
	if len(parts) == 2 {
		count, _ = strconv.Atoi(parts[1])
	}
	return start, count
}

func TestWriteFileKeepMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.hcl")
	if err := os.Symlink("p.hcl", link); err != nil {
		t.Fatal(err)
	}
	if err := writeFileKeepMode(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "new\n" {
		t.Errorf("target holds %q", got)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", info, err)
	}
	if info, _ := os.Stat(p); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

const messyPolicy = "role \"reader\" {\ndescription=\"Read-only\"   \n\tgcp {\n    resource = \"projects/acme\"\n    role = \"roles/viewer\"\n  }\n}\n\n\n"

const tidyPolicy = "role \"reader\" {\n  description = \"Read-only\"\n  gcp {\n    resource = \"projects/acme\"\n    role     = \"roles/viewer\"\n  }\n}\n"

func TestFmtBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"p/messy.hcl":      messyPolicy,
		"p/sub/tidy.hcl":   tidyPolicy,
		"p/.git/skip.hcl":  messyPolicy,
		"p/sub/notes.txt":  messyPolicy,
		"broken/a.hcl":     "role \"x\" {\n  description = \"x\"\n",
		"broken/messy.hcl": messyPolicy,
	})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	messy := filepath.Join(dir, "p", "messy.hcl")
	if err := os.Chmod(messy, 0o640); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	stdout, stderr, code := runElevate(t, dir, nil, "fmt", "--check", "p")
	if code != 1 || stdout != "p/messy.hcl\n" || stderr != "" {
		t.Errorf("--check: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if read("p/messy.hcl") != messyPolicy {
		t.Error("--check changed the file")
	}

	stdout, _, code = runElevate(t, dir, nil, "fmt", "--check", "--diff", "p")
	if code != 1 || !strings.Contains(stdout, "--- a/p/messy.hcl\n+++ b/p/messy.hcl\n@@ ") ||
		!strings.Contains(stdout, "\n-description=\"Read-only\"   \n") || !strings.Contains(stdout, "\n+  description = \"Read-only\"\n") {
		t.Errorf("--check --diff: exit %d\n%s", code, stdout)
	}
	if patched, err := applyUnified(messyPolicy, strings.TrimPrefix(stdout, "p/messy.hcl\n")); err != nil || patched != tidyPolicy {
		t.Errorf("the printed diff does not turn the file into its formatted form: %v\n%q", err, patched)
	}
	if read("p/messy.hcl") != messyPolicy {
		t.Error("--check --diff changed the file")
	}

	stdout, _, code = runElevate(t, dir, nil, "fmt", "p")
	if code != 0 || stdout != "p/messy.hcl\n" {
		t.Errorf("fmt: exit %d stdout %q", code, stdout)
	}
	if got := read("p/messy.hcl"); got != tidyPolicy {
		t.Errorf("fmt wrote:\n%s\nwant:\n%s", got, tidyPolicy)
	}
	if info, _ := os.Stat(messy); info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", info.Mode().Perm())
	}
	if read("p/.git/skip.hcl") != messyPolicy || read("p/sub/notes.txt") != messyPolicy {
		t.Error("fmt touched a file under a dot-directory or a non-.hcl file")
	}

	stdout, _, code = runElevate(t, dir, nil, "fmt", "--check", "p")
	if code != 0 || stdout != "" {
		t.Errorf("--check after fmt: exit %d stdout %q", code, stdout)
	}

	writeFiles(t, dir, map[string]string{"d/x.hcl": messyPolicy})
	stdout, _, code = runElevate(t, filepath.Join(dir, "d"), nil, "fmt", "--diff")
	if code != 0 || !strings.HasPrefix(stdout, "x.hcl\n--- a/x.hcl\n") || read("d/x.hcl") != tidyPolicy {
		t.Errorf("--diff without --check should print and write: exit %d\n%s", code, stdout)
	}

	stdout, stderr, code = runElevate(t, dir, nil, "fmt", "broken")
	if code != 1 || !strings.Contains(stderr, "broken/a.hcl:1:10: Unclosed configuration block") {
		t.Errorf("syntax error: exit %d stderr %q", code, stderr)
	}
	if read("broken/a.hcl") != "role \"x\" {\n  description = \"x\"\n" {
		t.Error("fmt changed a file with a syntax error")
	}
	if stdout != "broken/messy.hcl\n" || read("broken/messy.hcl") != tidyPolicy {
		t.Errorf("a syntax error elsewhere should not stop the other files: stdout %q", stdout)
	}

	for _, args := range [][]string{{"fmt", "missing"}, {"fmt", "empty"}, {"fmt", "--check", "missing", "p"}} {
		_, stderr, code = runElevate(t, dir, nil, args...)
		if code != 2 || !strings.Contains(stderr, "Error: ") {
			t.Errorf("%v: exit %d stderr %q, want 2 with an error", args, code, stderr)
		}
	}
}
