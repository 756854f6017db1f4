package policies

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "aligns and indents",
			in:   "role \"r\" {\ndescription=\"x\"\n\t\tprivileged = true\n}\n",
			want: "role \"r\" {\n  description = \"x\"\n  privileged  = true\n}\n",
		},
		{
			name: "trailing whitespace in comments and after tokens",
			in:   "# top   \nrole \"r\" {   \n  description = \"x\"  # why\t\n}\n",
			want: "# top\nrole \"r\" {\n  description = \"x\" # why\n}\n",
		},
		{
			name: "blank lines squeezed, leading and trailing dropped",
			in:   "\n\n\nrole \"a\" {\n}\n\n\n\nrole \"b\" {\n\n\n  privileged = true\n}\n\n\n",
			want: "role \"a\" {\n}\n\nrole \"b\" {\n\n  privileged = true\n}\n",
		},
		{
			name: "adds the final newline",
			in:   "role \"r\" {\n}",
			want: "role \"r\" {\n}\n",
		},
		{
			name: "CRLF becomes LF",
			in:   "role \"r\" {\r\n  privileged = true\r\n}\r\n",
			want: "role \"r\" {\n  privileged = true\n}\n",
		},
		{
			name: "heredoc body kept byte for byte",
			in:   "role \"r\" {\ndescription = <<EOT\n  two  \n\n\n\n\ttab \nEOT\n}\n",
			want: "role \"r\" {\n  description = <<EOT\n  two  \n\n\n\n\ttab \nEOT\n}\n",
		},
		{
			name: "indented heredoc body kept",
			in:   "role \"r\" {\n  description = <<-EOT\n      a   \n\n\n      b\n    EOT\n}\n",
			want: "role \"r\" {\n  description = <<-EOT\n      a   \n\n\n      b\n    EOT\n}\n",
		},
		{
			name: "empty file stays empty",
			in:   "",
			want: "",
		},
		{
			name: "whitespace-only file becomes empty",
			in:   " \n\t\n\n",
			want: "",
		},
		{
			name: "multi-line list",
			in:   "jit \"j\" {\nrequesters = [\n\"user:a@example.com\",   \n      \"user:b@example.com\",\n]\n}\n",
			want: "jit \"j\" {\n  requesters = [\n    \"user:a@example.com\",\n    \"user:b@example.com\",\n  ]\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Format([]byte(tt.in), "p.hcl")
			if err != nil {
				t.Fatalf("Format: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Format:\n got %q\nwant %q", got, tt.want)
			}
			again, err := Format(got, "p.hcl")
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Format is not idempotent: %q -> %q (%v)", got, again, err)
			}
		})
	}
}

func TestFormatRefusesSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, in, wantPos string
	}{
		{"unclosed block", "role \"r\" {\n  privileged = true\n", "bad.hcl:1:10"},
		{"unterminated string", "role \"r\" {\n  description = \"oops\n}\n", "bad.hcl:2:22"},
		{"missing equals", "role \"r\" {\n  privileged true\n}\n", "bad.hcl:2:18"},
		{"invalid UTF-8", "role \"r\" {\n  description = \"\xff\"\n}\n", "bad.hcl:2:18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Format([]byte(tt.in), "bad.hcl")
			if err == nil {
				t.Fatalf("Format accepted broken input and returned %q", out)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v, want *FormatError", err, err)
			}
			if len(fe.Diagnostics) == 0 || fe.Diagnostics[0].Rule != RuleSyntax {
				t.Fatalf("diagnostics %v, want a syntax diagnostic", fe.Diagnostics)
			}
			if !strings.HasPrefix(err.Error(), tt.wantPos+": ") {
				t.Errorf("error %q does not start with %q", err, tt.wantPos)
			}
		})
	}
}

// TestFormatIdempotentOnRealFiles formats every policy the project ships.
func TestFormatIdempotentOnRealFiles(t *testing.T) {
	var files []string
	for _, dir := range []string{"testdata", filepath.Join("..", "examples")} {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		found, diags := PolicyFiles(dir)
		if len(diags) > 0 {
			t.Fatalf("listing %s: %v", dir, diags)
		}
		files = append(files, found...)
	}
	if len(files) == 0 {
		t.Skip("no policy files in testdata or examples yet")
	}
	formatted := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		once, err := Format(src, f)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				continue // a fixture with a deliberate syntax error
			}
			t.Fatalf("%s: %v", f, err)
		}
		formatted++
		twice, err := Format(once, f)
		if err != nil {
			t.Fatalf("%s: formatting the formatted file: %v", f, err)
		}
		if !bytes.Equal(once, twice) {
			t.Errorf("%s: Format is not idempotent:\nonce:\n%s\ntwice:\n%s", f, once, twice)
		}
		assertSameTokens(t, f, src, once)
	}
	if formatted == 0 {
		t.Fatal("no policy file could be formatted")
	}
}

// TestFormatProperties formats generated policies with random layout:
// Format must accept them, be idempotent, keep every non-whitespace token,
// and yield text with no trailing whitespace outside heredocs.
func TestFormatProperties(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 7))
		src := genPolicyFile(r)
		once, err := Format(src, "gen.hcl")
		if err != nil {
			t.Fatalf("seed %d: Format rejected generated input: %v\n%s", seed, err, src)
		}
		twice, err := Format(once, "gen.hcl")
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("seed %d: not idempotent (%v)\ninput:\n%s\nonce:\n%s\ntwice:\n%s", seed, err, src, once, twice)
		}
		assertSameTokens(t, fmt.Sprintf("seed %d", seed), src, once)
		if len(once) > 0 && (!bytes.HasSuffix(once, []byte("\n")) || bytes.HasSuffix(once, []byte("\n\n"))) {
			t.Fatalf("seed %d: output does not end in exactly one newline: %q", seed, once)
		}
		if bytes.Contains(once, []byte("\n\n\n")) && !bytes.Contains(src, []byte("<<")) {
			t.Fatalf("seed %d: more than one blank line in a row:\n%s", seed, once)
		}
	}
}

// assertSameTokens checks that formatting changed only layout: the same
// tokens in the same order, comments compared without trailing whitespace,
// newlines ignored (blank lines may go).
func assertSameTokens(t *testing.T, label string, before, after []byte) {
	t.Helper()
	a, b := significantTokens(before), significantTokens(after)
	if len(a) != len(b) {
		t.Fatalf("%s: %d tokens before formatting, %d after", label, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: token %d changed from %q to %q", label, i, a[i], b[i])
		}
	}
}

func significantTokens(src []byte) []string {
	tokens, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	var out []string
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenNewline, hclsyntax.TokenEOF:
			continue
		case hclsyntax.TokenComment:
			out = append(out, strings.TrimRight(string(tok.Bytes), " \t\r\n"))
		default:
			out = append(out, string(tok.Bytes))
		}
	}
	return out
}

// genPolicyFile writes a syntactically valid HCL file with messy layout:
// random indentation (spaces and tabs), spacing, blank lines, trailing
// whitespace, comments, multi-line lists, nested blocks and heredocs.
func genPolicyFile(r *rand.Rand) []byte {
	var b strings.Builder
	ws := func() string {
		return []string{"", " ", "  ", "\t", " \t "}[r.IntN(5)]
	}
	nl := func() {
		if r.IntN(4) == 0 {
			b.WriteString(ws()) // trailing whitespace
		}
		b.WriteString("\n")
		for range r.IntN(3) {
			if r.IntN(5) == 0 {
				b.WriteString(ws())
			}
			b.WriteString("\n")
		}
	}
	names := []string{"description", "privileged", "max_duration", "roles", "requesters", "a_much_longer_name", "x"}
	var body func(depth int)
	body = func(depth int) {
		for i := range 1 + r.IntN(5) {
			b.WriteString(ws())
			switch r.IntN(7) {
			case 0, 1, 2:
				fmt.Fprintf(&b, "%s_%d%s=%s", names[r.IntN(len(names))], i, ws(), ws()) // unique: HCL rejects redefinitions
				switch r.IntN(4) {
				case 0:
					fmt.Fprintf(&b, "%q", []string{"1h", "héllo 世界", "a, b: c", ""}[r.IntN(4)])
				case 1:
					b.WriteString([]string{"true", "3", "false"}[r.IntN(3)])
				case 2:
					b.WriteString("[")
					for i := range r.IntN(4) {
						if r.IntN(2) == 0 {
							b.WriteString("\n" + ws())
						}
						fmt.Fprintf(&b, "%q,%s", fmt.Sprintf("user:u%d@example.com", i), ws())
					}
					b.WriteString("\n]")
				case 3:
					marker := []string{"<<EOT", "<<-EOT"}[r.IntN(2)]
					b.WriteString(marker + "\n")
					for range r.IntN(4) {
						b.WriteString(ws() + "text" + ws() + "\n")
						if r.IntN(3) == 0 {
							b.WriteString("\n\n")
						}
					}
					b.WriteString(ws() + "EOT\n") // the closing marker ends its line
					continue
				}
				if r.IntN(4) == 0 {
					b.WriteString(ws() + " # note" + ws())
				}
				nl()
			case 3:
				b.WriteString("# a comment" + ws())
				nl()
			case 4, 5:
				if depth >= 2 {
					fmt.Fprintf(&b, "y_%d = 1", i)
					nl()
					continue
				}
				fmt.Fprintf(&b, "%s%s", []string{"gcp", "role \"r\"", "approval", "jit \"j-1\""}[r.IntN(4)], ws())
				b.WriteString("{")
				nl()
				body(depth + 1)
				b.WriteString(ws() + "}")
				nl()
			case 6:
				fmt.Fprintf(&b, "/* block\n   comment %s*/", ws())
				nl()
			}
		}
	}
	if r.IntN(3) == 0 {
		nl()
	}
	body(0)
	// Sometimes no final newline (HCL needs one after a heredoc's marker).
	if trimmed := strings.TrimRight(b.String(), "\n"); r.IntN(3) == 0 && !strings.HasSuffix(trimmed, "EOT") {
		return []byte(trimmed)
	}
	return []byte(b.String())
}

func TestPolicyFilesSkipsDotDirectories(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.hcl", "sub/b.hcl", ".git/c.hcl", "sub/.hidden.hcl", "notes.txt"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, diags := PolicyFiles(dir, filepath.Join(dir, "missing"))
	want := []string{filepath.Join(dir, "a.hcl"), filepath.Join(dir, "sub", "b.hcl")}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Errorf("files %v, want %v", files, want)
	}
	if len(diags) != 1 || diags[0].Rule != RuleIO {
		t.Errorf("diagnostics %v, want one I/O error for the missing path", diags)
	}
}
