package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// genPolicySet writes a synthetic policy set of roles, jit and temporary
// blocks spread over files, shaped like a large organisation's: every role
// has a GCP, an AWS and an Azure target, every jit policy has approval with
// auto_approve, and every temporary block names a role and a principal.
func genPolicySet(tb testing.TB, dir string, roles, jits, temps, files int) {
	tb.Helper()
	bufs := make([]strings.Builder, files)
	for i := 0; i < roles; i++ {
		b := &bufs[i%files]
		fmt.Fprintf(b, `role "role-%d" {
  description = "Generated role %d"
  privileged  = %t
  gcp {
    resource = "projects/proj-%d"
    role     = "roles/logging.viewer"
  }
  aws {
    account   = "%012d"
    role_name = "role-%d"
  }
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-%012d"
    role_definition = "Reader"
  }
}

`, i, i, i%10 == 0, i%1000, 100000000000+i%500, i, i%200)
	}
	for i := 0; i < jits; i++ {
		b := &bufs[i%files]
		fmt.Fprintf(b, `jit "jit-%d" {
  roles            = ["role-%d", "role-%d"]
  requesters       = ["group:team-%d@example.com", "user:u%d@example.com"]
  max_duration     = "1h"
  default_duration = "30m"
  ticket_pattern   = "^(INC|CHG)-[0-9]+$"
  max_renewals     = 1
  approval {
    approvers     = ["group:leads-%d@example.com"]
    min_approvals = 1
    auto_approve  = request.duration <= 900 && contains(requester.groups, "group:oncall@example.com")
  }
}

`, i, (2*i)%roles, (2*i+1)%roles, i%300, i, i%50)
	}
	for i := 0; i < temps; i++ {
		b := &bufs[i%files]
		fmt.Fprintf(b, `temporary "temp-%d" {
  role          = "role-%d"
  principals    = ["user:contractor-%d@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "Migration CHG-%d"
  approved_by   = ["user:cto@example.com"]
}

`, i, (7*i)%roles, i, i)
	}
	for i := range bufs {
		name := filepath.Join(dir, fmt.Sprintf("team-%03d", i/10), fmt.Sprintf("policies-%03d.hcl", i))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(bufs[i].String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// largeSet is the benchmark shape: 10,000 roles, 5,000 jit and 1,000
// temporary blocks across 100 files.
func largeSet(b *testing.B) string {
	dir := b.TempDir()
	genPolicySet(b, dir, 10000, 5000, 1000, 100)
	return dir
}

// BenchmarkValidate measures load + decode + every lint rule.
func BenchmarkValidate(b *testing.B) {
	dir := largeSet(b)
	b.ResetTimer()
	for b.Loop() {
		set, diags := Validate(dir)
		if diags.HasErrors() {
			b.Fatalf("generated set has errors: %v", diags[0])
		}
		if len(set.Roles) != 10000 || len(set.JIT) != 5000 || len(set.Temporary) != 1000 {
			b.Fatalf("decoded %d roles, %d jit, %d temporary", len(set.Roles), len(set.JIT), len(set.Temporary))
		}
	}
}

// BenchmarkParseOnly is the floor: reading and hclparse-ing the same files.
func BenchmarkParseOnly(b *testing.B) {
	dir := largeSet(b)
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	b.ResetTimer()
	for b.Loop() {
		p := hclparse.NewParser()
		for _, f := range files {
			if _, d := p.ParseHCLFile(f); d.HasErrors() {
				b.Fatal(d)
			}
		}
	}
}

// BenchmarkValidateScaling validates sets of growing size: time per block
// must stay flat (no rule may be quadratic in the number of blocks).
func BenchmarkValidateScaling(b *testing.B) {
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("x%d", k), func(b *testing.B) {
			dir := b.TempDir()
			genPolicySet(b, dir, 2500*k, 1250*k, 250*k, 25*k)
			blocks := float64(4000 * k)
			b.ResetTimer()
			for b.Loop() {
				Validate(dir)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/blocks, "ns/block")
		})
	}
}

// TestGeneratedSetIsClean keeps the benchmark honest: the generated set must
// validate without errors, so the benchmark measures a full pass.
func TestGeneratedSetIsClean(t *testing.T) {
	dir := t.TempDir()
	genPolicySet(t, dir, 200, 100, 20, 4)
	set, diags := Validate(dir)
	if diags.HasErrors() {
		t.Fatalf("generated set has errors: %v", diags)
	}
	if len(set.Roles) != 200 || len(set.JIT) != 100 || len(set.Temporary) != 20 || len(set.Files) != 4 {
		t.Fatalf("decoded %d roles, %d jit, %d temporary from %d files", len(set.Roles), len(set.JIT), len(set.Temporary), len(set.Files))
	}
}
