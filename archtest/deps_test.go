package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/elevatehq/elevate"

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 3 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// allowed maps a package (by path relative to the module, prefix match on
// whole path elements) to the project packages it may import. The leaf
// model package may import nothing of the project.
var allowed = []struct {
	pkg  string
	deps []string
}{
	{"model", nil},
	{"policies", []string{"model"}},
	{"state", []string{"model", "state"}},
	{"providers", []string{"model", "providers"}},
	{"reconcile", []string{"model", "policies", "providers", "state", "reconcile"}},
	{"breakglass", []string{"model", "policies", "providers", "state", "breakglass"}},
	{"server", []string{"model", "policies", "providers", "state", "reconcile", "breakglass", "server"}},
	{"archtest", nil},
}

var cloudSDKs = []string{"github.com/aws/aws-sdk-go-v2", "cloud.google.com/go", "github.com/Azure/azure-sdk-for-go", "google.golang.org/api"}

func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestDependencyDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if imp == module+"/app" && rel != "cmd/elevate" {
				t.Errorf("%s imports app: only cmd/elevate may import the composition root", rel)
			}
			if within(rel, "policies") || within(rel, "reconcile") || within(rel, "state") || within(rel, "model") {
				for _, sdk := range cloudSDKs {
					if within(imp, sdk) {
						t.Errorf("%s imports cloud SDK %s: only providers/ may", rel, imp)
					}
				}
			}
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			for _, rule := range allowed {
				if !within(rel, rule.pkg) {
					continue
				}
				ok := false
				for _, a := range rule.deps {
					if within(dep, a) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s, which ARCHITECTURE.md's dependency direction forbids (allowed: %v)", rel, dep, rule.deps)
				}
			}
		}
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment: say what it is for", p.ImportPath)
		}
	}
}
