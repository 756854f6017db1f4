package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader and the lint rules: they must
// never panic, and every diagnostic about the file must carry a position.
// Seeds are the policy fixtures and examples in the repository.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/*/*.hcl", "testdata/*.hcl", "../examples/*/*.hcl", "../examples/*/*/*.hcl"} {
		matches, _ := filepath.Glob(glob)
		for _, m := range matches {
			if src, err := os.ReadFile(m); err == nil {
				f.Add(src)
			}
		}
	}
	f.Add([]byte(`role "r" { gcp { resource = "projects/p" role = "roles/viewer" } }`))
	f.Add([]byte("jit \"j\" {\n roles = [\"r\"]\n requesters = [\"user:a@example.com\"]\n max_duration = \"1h\"\n approval {\n approvers = [\"user:b@example.com\"]\n auto_approve = request.duration <= 900\n }\n}\n"))
	f.Add([]byte("\xff\xfe\x00"))
	f.Fuzz(func(t *testing.T, src []byte) {
		set, diags := LoadSources([]string{"fuzz.hcl"}, map[string][]byte{"fuzz.hcl": src})
		diags = append(diags, Lint(set)...)
		for _, d := range diags {
			if d.Range.Filename == "fuzz.hcl" && d.Range.Start.Line < 1 {
				t.Fatalf("diagnostic without a line: %v", d)
			}
			if d.Rule == "" || d.Summary == "" {
				t.Fatalf("diagnostic without rule or summary: %#v", d)
			}
			if strings.ContainsRune(d.Summary, '\n') {
				t.Fatalf("multi-line summary: %q", d.Summary)
			}
		}
	})
}
