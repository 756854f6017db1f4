package reconcile

import (
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// A grant whose window shrinks to nothing when rounded to whole seconds
// (starts 10:00:01.3, expires 10:00:01.9) must not yield a binding: the
// cloud would refuse it, and the refusal used to hold up the scope.
func TestDesiredSkipsSubSecondWindows(t *testing.T) {
	set, diags := policies.LoadSources([]string{"r.hcl"}, map[string][]byte{"r.hcl": []byte(`
role "r" {
  gcp {
    resource = "projects/p"
    role     = "roles/viewer"
  }
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	base := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	mk := func(id string, start, end time.Duration) *model.Grant {
		return &model.Grant{ID: id, Role: "r", Status: model.StatusActive, Principal: model.MustPrincipal("user:a@example.com"),
			Starts: base.Add(start), Expires: base.Add(end)}
	}
	grants := []*model.Grant{
		mk("short", 300*time.Millisecond, 900*time.Millisecond), // rounds to [10:00:02, 10:00:01)
		mk("ok", 300*time.Millisecond, 2900*time.Millisecond),   // rounds to [10:00:02, 10:00:03)
	}
	got := Desired(set, grants, base.Add(500*time.Millisecond))
	if len(got) != 1 || got[0].Owner != "ok" {
		t.Fatalf("want only the grant with a whole second left, got %+v", got)
	}
	if !got[0].NotBefore.Before(got[0].Expires) {
		t.Fatalf("empty window: %+v", got[0])
	}
}
