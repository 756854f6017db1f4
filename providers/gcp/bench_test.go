package gcp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/state"
)

// fleetHCL declares one role per project (db-pNNN on projects/pNNN) and a
// jit policy granting them all.
func fleetHCL(projects int) string {
	var b strings.Builder
	var roles []string
	for i := range projects {
		fmt.Fprintf(&b, "role %q {\n  gcp {\n    resource = %q\n    role     = %q\n  }\n}\n\n", fleetRole(i), fleetProject(i).Scope, sqlAdm)
		roles = append(roles, fmt.Sprintf("%q", fleetRole(i)))
	}
	fmt.Fprintf(&b, "jit \"db\" {\n  roles         = [%s]\n  requesters    = [\"group:eng@example.com\"]\n  max_duration  = \"8h\"\n  justification = false\n}\n", strings.Join(roles, ", "))
	return b.String()
}

func fleetRole(i int) string            { return fmt.Sprintf("db-p%03d", i) }
func fleetProject(i int) model.ScopeKey { return project(fmt.Sprintf("p%03d", i)) }
func fleetGrant(p, g int) string        { return fmt.Sprintf("g-p%03d-%03d", p, g) }
func fleetMember(g int) model.Principal {
	return model.MustPrincipal(fmt.Sprintf("user:u%03d@example.com", g))
}

// fleet is the engine over the emulator with perProject grants of
// db-pNNN in each of projects projects, all bound.
func fleet(b *testing.B, projects, perProject int, expires time.Time) (*env, *engineRig) {
	b.Helper()
	e := newEnv(b)
	for i := range projects {
		e.emu.CreateProject(fleetProject(i).Scope[len("projects/"):])
	}
	r := newEngineRig(b, e, fleetHCL(projects))
	for p := range projects {
		for g := range perProject {
			r.approvedRole(fleetGrant(p, g), fleetMember(g), fleetRole(p), t0.Add(-time.Minute), expires)
		}
	}
	start := time.Now()
	r.start()
	deadline := time.Now().Add(2 * time.Minute)
	for bound := 0; bound < projects; {
		bound = 0
		for i := range projects {
			if len(e.owners(fleetProject(i))) == perProject {
				bound++
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d projects bound after 2m; engine status %+v", bound, projects, r.engine.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("setup: %d grants in %d projects bound in %s", projects*perProject, projects, time.Since(start))
	return e, r
}

// fullPass triggers a full pass and waits for it to finish.
func fullPass(b *testing.B, r *engineRig) {
	b.Helper()
	before := r.engine.Status().Passes
	r.engine.Trigger()
	eventually(b, "a full pass ran", func() bool {
		st := r.engine.Status()
		return st.Passes > before && st.LastKind == "full"
	})
}

// BenchmarkFullResync: 10,000 grants across 100 projects, a full pass
// with nothing to change. Goal: one GetIamPolicy per project, no write.
func BenchmarkFullResync(b *testing.B) {
	const projects, perProject = 100, 100
	e, r := fleet(b, projects, perProject, t0.Add(4*time.Hour))
	fullPass(b, r) // settle: the first pass after binding confirms activation
	e.emu.ResetCounters()
	b.ResetTimer()
	for b.Loop() {
		fullPass(b, r)
	}
	b.StopTimer()
	c := e.emu.Counters()
	reads, writes := 0, 0
	for k, n := range c.Calls {
		switch k.Method {
		case gcpemu.MethodGetIamPolicy:
			reads += n
		case gcpemu.MethodSetIamPolicy:
			writes += n
		}
	}
	b.ReportMetric(float64(reads)/float64(b.N), "reads/pass")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/pass")

	// One grant revoked in each of 10 projects: writes only there.
	e.emu.ResetCounters()
	for p := range 10 {
		g, err := r.store.GetGrant(context.Background(), fleetGrant(p, 0))
		if err != nil {
			b.Fatal(err)
		}
		g.Status = model.StatusRevoked
		if _, err := r.store.UpdateGrant(context.Background(), g, state.Change{Actor: "user:lead@example.com", Action: "revoke"}); err != nil {
			b.Fatal(err)
		}
	}
	fullPass(b, r)
	c = e.emu.Counters()
	reads, writes = 0, 0
	for k, n := range c.Calls {
		switch k.Method {
		case gcpemu.MethodGetIamPolicy:
			reads += n
		case gcpemu.MethodSetIamPolicy:
			writes += n
		}
	}
	b.ReportMetric(float64(reads), "reads/pass-with-10-revokes")
	b.ReportMetric(float64(writes), "writes/pass-with-10-revokes")
}

// BenchmarkExpiryStorm: 5,000 grants in 50 projects expire in the same
// second. Reports elevate's SetIamPolicy calls (goal: 50 plus conflict
// retries), its writes that lost to a concurrent change and were repeated
// whole, and the p50/p99 wall-clock lag from the expiry to the write that
// confirmed each grant's removal.
func BenchmarkExpiryStorm(b *testing.B) {
	b.Run("quiet", func(b *testing.B) { expiryStorm(b, 0) })
	// Ten projects are edited out of band throughout by three writers
	// each: elevate's writes there lose to those edits now and then and are
	// repeated whole.
	b.Run("contended", func(b *testing.B) { expiryStorm(b, 30) })
}

func expiryStorm(b *testing.B, contended int) {
	const projects, perProject = 50, 100
	var writes, retried int
	var lags []time.Duration
	for b.Loop() {
		b.StopTimer()
		expiry := t0.Add(time.Hour)
		e, r := fleet(b, projects, perProject, expiry)
		fullPass(b, r)
		confirmed := make(map[string]time.Time)
		var mu sync.Mutex
		e.wire.mu.Lock()
		e.wire.afterSet = func(req *iampb.SetIamPolicyRequest, err error) {
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := confirmed[req.Resource]; !ok && !slices.ContainsFunc(req.Policy.Bindings, func(x *iampb.Binding) bool { _, ok := cutTitle(x); return ok }) {
				confirmed[req.Resource] = time.Now()
			}
		}
		e.wire.mu.Unlock()
		var stop atomic.Bool
		var wg sync.WaitGroup
		if contended > 0 {
			client, err := resourcemanager.NewProjectsClient(context.Background(), gcpemu.ClientOptions(e.addr)...)
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			for i := range contended {
				w := &oobWriter{resource: fleetProject(i % 10).Scope, member: fmt.Sprintf("user:oob%02d@example.com", i)}
				wg.Go(func() { w.run(&stop, client, uint64(i)) })
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.emu.ResetCounters()
		before := e.prov.Stats()
		b.StartTimer()

		start := time.Now()
		e.clock.Advance(expiry.Sub(e.clock.Now()))
		eventually(b, "every expired binding is gone", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(confirmed) == projects
		})

		b.StopTimer()
		stop.Store(true)
		wg.Wait()
		after := e.prov.Stats()
		writes += int(after.Writes - before.Writes)
		retried += int(after.Conflicts - before.Conflicts)
		for _, at := range confirmed {
			for range perProject {
				lags = append(lags, at.Sub(start))
			}
		}
		r.stop()
		b.StartTimer()
	}
	slices.Sort(lags)
	b.ReportMetric(float64(writes)/float64(b.N), "writes/storm")
	b.ReportMetric(float64(retried)/float64(b.N), "conflicts/storm")
	b.ReportMetric(lags[len(lags)/2].Seconds()*1000, "p50-lag-ms")
	b.ReportMetric(lags[len(lags)*99/100].Seconds()*1000, "p99-lag-ms")
}
