package reconcile_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/reconcile"
)

const (
	benchGrants = 100_000
	benchScopes = 1_000
)

// benchWorld builds 100,000 active grants over 1,000 GCP projects (one role
// per project, 100 grantees each) and what a cloud would show for them:
// 94% present, 3% missing, 3% with a tampered expiry, plus 5,000 bindings of
// expired grants, 1,000 of unknown grants, 2,000 standing assignments of
// governed roles (half of them to remove) and 10,000 unmanaged bindings the
// plan must leave alone.
func benchWorld(b *testing.B) (*policies.Set, []*model.Grant, reconcile.Plan) {
	b.Helper()
	var src strings.Builder
	names := make([]string, benchScopes)
	for i := range benchScopes {
		names[i] = fmt.Sprintf("%q", fmt.Sprintf("role-%04d", i))
		standing := "report"
		if i%2 == 1 {
			standing = "remove"
		}
		fmt.Fprintf(&src, "role \"role-%04d\" {\n  standing = %q\n  gcp {\n    resource = \"projects/p-%04d\"\n    role     = \"roles/cloudsql.admin\"\n  }\n}\n", i, standing, i)
	}
	fmt.Fprintf(&src, "jit \"all\" {\n  roles = [%s]\n  requesters = [\"group:sre@example.com\"]\n  max_duration = \"8h\"\n}\n", strings.Join(names, ", "))
	set := loadSet(b, src.String())

	target := func(i int) model.Target {
		return model.Target{Cloud: model.CloudGCP, Scope: fmt.Sprintf("projects/p-%04d", i%benchScopes), Role: "roles/cloudsql.admin"}
	}
	principal := func(i int) model.Principal {
		return model.Principal{Kind: model.KindUser, Value: fmt.Sprintf("u%06d@example.com", i)}
	}
	grants := make([]*model.Grant, 0, benchGrants+5_000)
	var observed []model.Binding
	for i := range benchGrants {
		g := &model.Grant{
			ID: fmt.Sprintf("g-%06d", i), Kind: model.KindJIT, Principal: principal(i),
			Role: fmt.Sprintf("role-%04d", i%benchScopes), Status: model.StatusActive,
			Starts: now.Add(-time.Duration(i%240) * time.Minute), Expires: now.Add(time.Duration(1+i%240) * time.Minute),
		}
		grants = append(grants, g)
		bnd := bound(g, target(i))
		switch i % 100 {
		case 0, 1, 2: // missing
		case 3, 4, 5:
			bnd.Expires = bnd.Expires.Add(30 * 24 * time.Hour)
			observed = append(observed, bnd)
		default:
			observed = append(observed, bnd)
		}
	}
	for i := range 5_000 {
		g := &model.Grant{
			ID: fmt.Sprintf("g-exp-%06d", i), Principal: principal(i), Role: fmt.Sprintf("role-%04d", i%benchScopes),
			Status: model.StatusExpired, Starts: now.Add(-3 * time.Hour), Expires: now.Add(-time.Hour),
		}
		grants = append(grants, g)
		observed = append(observed, bound(g, target(i)))
	}
	for i := range 1_000 {
		observed = append(observed, model.Binding{Target: target(i), Principal: principal(i), Owner: fmt.Sprintf("g-lost-%d", i), Expires: now.Add(time.Hour)})
	}
	for i := range 2_000 {
		observed = append(observed, model.Binding{Target: target(i), Principal: principal(200_000 + i)})
	}
	for i := range 10_000 {
		other := target(i)
		other.Role = "roles/viewer"
		observed = append(observed, model.Binding{Target: other, Principal: principal(300_000 + i)})
	}
	desired := reconcile.Desired(set, grants, now)
	return set, grants, reconcile.Plan{
		Desired: desired, Observed: observed, Governed: reconcile.GovernedTargets(set),
		Grants: grantsByID(grants...), Now: now,
	}
}

// BenchmarkPlan measures Plan.Compute on the world above.
func BenchmarkPlan(b *testing.B) {
	_, _, p := benchWorld(b)
	c := p.Compute()
	if len(p.Desired) != benchGrants || len(c.Create) != 3_000 || len(c.Replace) != 3_000 ||
		len(c.Delete) != 5_000+1_000+1_000 || len(c.Findings) != 2_000 {
		b.Fatalf("unexpected plan: %d desired, %d create, %d replace, %d delete, %d findings",
			len(p.Desired), len(c.Create), len(c.Replace), len(c.Delete), len(c.Findings))
	}
	b.ReportAllocs()
	m := startMeter()
	for b.Loop() {
		p.Compute()
	}
	m.report(b)
}

// BenchmarkDesired measures computing the 100,000 desired bindings.
func BenchmarkDesired(b *testing.B) {
	set, grants, _ := benchWorld(b)
	b.ReportAllocs()
	m := startMeter()
	for b.Loop() {
		reconcile.Desired(set, grants, now)
	}
	m.report(b)
}

// meter reports wall and CPU milliseconds per operation. On a busy machine
// the wall figure includes waiting for a core; cpu-ms/op (user + system,
// garbage collection included) is the work itself.
type meter struct {
	wall time.Time
	cpu  time.Duration
}

func startMeter() meter {
	cpu, _ := cpuTime()
	return meter{wall: time.Now(), cpu: cpu}
}

func (m meter) report(b *testing.B) {
	wall := time.Since(m.wall)
	b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "ms/op")
	if cpu, ok := cpuTime(); ok {
		b.ReportMetric(float64((cpu-m.cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}
