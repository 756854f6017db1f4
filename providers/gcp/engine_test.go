package gcp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// policyHCL grants roles/cloudsql.admin on the given projects just in time.
func policyHCL(projects ...string) string {
	s := `role "db-admin" {` + "\n"
	for _, p := range projects {
		s += fmt.Sprintf("  gcp {\n    resource = %q\n    role     = %q\n  }\n", p, sqlAdm)
	}
	return s + `}

jit "db" {
  roles         = ["db-admin"]
  requesters    = ["group:eng@example.com"]
  max_duration  = "8h"
  justification = false
}
`
}

// engineRig is the real reconcile engine on a memory store driving the
// GCP provider against the emulator, all on one fake clock.
type engineRig struct {
	t      testing.TB
	env    *env
	store  state.Store
	set    *policies.Set
	prov   providers.Provider
	engine *reconcile.Engine
	cancel context.CancelFunc
	done   chan error
	lagMu  sync.Mutex
	lags   []time.Duration
}

func newEngineRig(t testing.TB, e *env, hcl string) *engineRig {
	t.Helper()
	st, err := state.Open(context.Background(), "mem:", state.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	set, diags := policies.LoadSources([]string{"policy.hcl"}, map[string][]byte{"policy.hcl": []byte(hcl)})
	if diags.HasErrors() {
		t.Fatalf("loading policies: %v", diags)
	}
	r := &engineRig{t: t, env: e, store: st, set: set}
	// The daemon's decorators: retries of transient failures.
	r.prov = providers.WithRetry(e.prov, providers.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond})
	r.engine = r.newEngine()
	return r
}

func (r *engineRig) newEngine() *reconcile.Engine {
	eng, err := reconcile.NewEngine(reconcile.Options{
		Store:     r.store,
		Providers: map[model.Cloud]providers.Provider{model.CloudGCP: r.prov},
		Policies:  func() *policies.Set { return r.set },
		Clock:     r.env.clock,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Holder:    "test",
		// A lease that outlives the clock's jumps.
		LeaseTTL: 1000 * time.Hour,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return eng
}

func (r *engineRig) start() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	eng := r.engine
	go func() { r.done <- eng.Run(ctx) }()
	r.t.Cleanup(r.stop)
	eventually(r.t, "the engine has run its first pass", func() bool { return eng.Status().Passes > 0 })
}

func (r *engineRig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			r.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return after its context ended")
	}
}

// approved stores an approved grant of db-admin for p over [starts, expires).
func (r *engineRig) approved(id string, p model.Principal, starts, expires time.Time) {
	r.t.Helper()
	r.approvedRole(id, p, "db-admin", starts, expires)
}

// approvedRole stores an approved grant of role for p over [starts, expires).
func (r *engineRig) approvedRole(id string, p model.Principal, role string, starts, expires time.Time) {
	r.t.Helper()
	_, err := r.store.CreateGrant(context.Background(), model.Grant{
		ID: id, Kind: model.KindJIT, Principal: p, Role: role, Policy: "db", Status: model.StatusApproved,
		Duration: expires.Sub(starts), Starts: starts, Expires: expires, Justification: "test",
	}, state.Change{Actor: p.String(), Action: "request"})
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *engineRig) status(id string) model.GrantStatus {
	g, err := r.store.GetGrant(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return g.Status
}

// eventually polls cond for up to 30 s of real time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// owners returns the grant IDs of elevate's bindings in scope, sorted.
func (e *env) owners(scope model.ScopeKey) []string {
	var out []string
	for _, b := range e.bindingsOf(scope) {
		if owner, ok := cutTitle(b); ok {
			out = append(out, owner)
		}
	}
	sort.Strings(out)
	return out
}

func TestNativeExpiryWithTheDaemonStopped(t *testing.T) {
	e := newEnv(t)
	r := newEngineRig(t, e, policyHCL(prod.Scope))
	r.approved("g1", alice, t0.Add(-time.Minute), t0.Add(10*time.Minute))
	r.start()
	eventually(t, "the grant is bound", func() bool { return slices.Equal(e.owners(prod), []string{"g1"}) })
	if !e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, e.clock.Now()) {
		t.Fatal("the grant gives no access")
	}
	eventually(t, "the grant is active", func() bool { return r.status("g1") == model.StatusActive })

	r.stop() // the daemon is down
	e.clock.Advance(11 * time.Minute)
	if e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, e.clock.Now()) {
		t.Fatal("access outlived the grant's expiry with the daemon stopped: expiry is not native")
	}
	if !slices.Equal(e.owners(prod), []string{"g1"}) {
		t.Fatalf("the binding went without the daemon: %v", e.owners(prod))
	}

	r.engine = r.newEngine() // the daemon comes back
	r.start()
	eventually(t, "the next pass removes the binding", func() bool { return len(e.owners(prod)) == 0 })
	eventually(t, "the grant is expired", func() bool { return r.status("g1") == model.StatusExpired })
}

// oobWriter keeps adding and removing its own binding through its own
// read-modify-writes, as another tool would.
type oobWriter struct {
	resource    string // default prod
	member      string
	conditional bool
	present     bool // what its last successful write left
	writes      int
	conflicts   int
	errs        int
}

func (w *oobWriter) title() string { return "oob " + w.member }

func (w *oobWriter) edit(p *iampb.Policy, add bool) {
	if w.conditional {
		p.Bindings = slices.DeleteFunc(p.Bindings, func(b *iampb.Binding) bool { return b.GetCondition().GetTitle() == w.title() })
		if add {
			p.Bindings = append(p.Bindings, &iampb.Binding{Role: sqlAdm, Members: []string{w.member}, Condition: &expr.Expr{
				Title: w.title(), Expression: `request.time < timestamp("2030-01-01T00:00:00Z")`,
			}})
		}
		return
	}
	var holder *iampb.Binding
	for _, b := range p.Bindings {
		if b.Role == viewer && b.Condition == nil {
			holder = b
		}
	}
	switch {
	case add && holder == nil:
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: viewer, Members: []string{w.member}})
	case add:
		holder.Members = append(holder.Members, w.member)
	case holder != nil:
		holder.Members = slices.DeleteFunc(holder.Members, func(m string) bool { return m == w.member })
	}
}

// holds reports whether p carries the writer's binding.
func (w *oobWriter) holds(p *iampb.Policy) bool {
	for _, b := range p.GetBindings() {
		if w.conditional && b.GetCondition().GetTitle() == w.title() && slices.Contains(b.Members, w.member) {
			return true
		}
		if !w.conditional && b.Role == viewer && b.Condition == nil && slices.Contains(b.Members, w.member) {
			return true
		}
	}
	return false
}

func (w *oobWriter) run(stop *atomic.Bool, c *resourcemanager.ProjectsClient, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	// Calls are never cancelled half way: a write the server applied but
	// whose answer was lost would leave the writer unsure of its state.
	ctx := context.Background()
	resource := w.resource
	if resource == "" {
		resource = prod.Scope
	}
	for !stop.Load() {
		add := !w.present
		var attempt time.Duration
		for {
			began := time.Now()
			p, err := c.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: resource, Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: 3}})
			if err != nil {
				w.errs++
				break
			}
			w.edit(p, add)
			p.Version = 3
			_, err = c.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: resource, Policy: p})
			attempt = time.Since(began)
			if status.Code(err) == codes.Aborted {
				w.conflicts++
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond) // jittered, like any well-behaved client
				continue
			}
			if err != nil {
				w.errs++
				break
			}
			w.present = add
			w.writes++
			break
		}
		// Pause in proportion to what one read-modify-write costs, so that
		// the twenty writers keep the policy about half busy on any machine
		// (a loaded CI runner, the race detector) instead of starving every
		// other writer, elevate included.
		pause := min(max(20*time.Millisecond, 20*attempt), 500*time.Millisecond)
		time.Sleep(pause/2 + time.Duration(rng.Int64N(int64(pause))))
	}
}

// TestConcurrentOutOfBandEdits drives the real engine through 1,000 grants
// on one allow policy while 20 writers keep editing that policy out of
// band. IAM allows 100 conditional bindings per policy, so the grants come
// in 25 overlapping waves of 40 (at most 80 live at once, plus 10 writers'
// conditional bindings); every wave's start and expiry is one reconcile.
func TestConcurrentOutOfBandEdits(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	e := newEnv(t)
	r := newEngineRig(t, e, policyHCL(prod.Scope))
	const grants, wave = 1000, 40
	const step = 10 * time.Minute
	type window struct{ starts, expires time.Time }
	windows := make(map[string]window, grants)
	members := make(map[string]string, grants)
	for i := range grants {
		id := fmt.Sprintf("g%04d", i)
		starts := t0.Add(time.Duration(i/wave) * step)
		windows[id] = window{starts, starts.Add(step + step/2)}
		members[id] = userN(i)
		r.approved(id, model.MustPrincipal(userN(i)), starts, starts.Add(step+step/2))
	}
	liveAt := func(now time.Time) []string {
		var out []string
		for id, w := range windows {
			if !now.Before(w.starts) && now.Before(w.expires) {
				out = append(out, id)
			}
		}
		sort.Strings(out)
		return out
	}

	client, err := resourcemanager.NewProjectsClient(context.Background(), append(gcpemu.ClientOptions(e.addr), gcpemu.WithPrincipal("terraform@acme-prod.iam.gserviceaccount.com"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	writers := make([]*oobWriter, 20)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range writers {
		writers[i] = &oobWriter{member: fmt.Sprintf("user:oob%02d@example.com", i), conditional: i%2 == 0}
		wg.Go(func() { writers[i].run(&stop, client, uint64(i)) })
	}
	defer func() { stop.Store(true); wg.Wait() }()

	r.start()
	waves := (grants + wave - 1) / wave
	var slowest time.Duration
	for s := 0; s <= 2*waves+1; s++ {
		stepStart := time.Now()
		if s > 0 {
			e.clock.Advance(step / 2)
		}
		want := liveAt(e.clock.Now())
		// The fake clock stands still while the test waits, so a scope
		// that lost every attempt to the writers would wait out its backoff
		// forever; in the daemon, the writers' SetIamPolicy audit entries
		// trigger passes of the scope, as these Trigger calls do.
		polls := 0
		eventually(t, fmt.Sprintf("the policy holds the %d grants live at %s", len(want), e.clock.Now().Format(time.TimeOnly)),
			func() bool {
				if polls++; polls%20 == 0 {
					r.engine.Trigger(prod)
				}
				return slices.Equal(e.owners(prod), want)
			})
		slowest = max(slowest, time.Since(stepStart))
	}
	stop.Store(true)
	wg.Wait()

	// Every grant was bound to its own member and is expired now.
	for _, b := range e.bindingsOf(prod) {
		if _, ok := cutTitle(b); ok {
			t.Errorf("a binding outlived every grant: %v", b)
		}
	}
	eventually(t, "every grant is expired", func() bool {
		r.engine.Trigger(prod) // the clock stands still: no backoff ends by itself
		gs, err := r.store.ListGrants(context.Background(), state.GrantFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.Status != model.StatusExpired {
				return false
			}
		}
		return len(gs) == grants
	})
	// No out-of-band change was lost.
	final := e.emu.Policy(prod.Scope)
	writes, conflicts := 0, 0
	for _, w := range writers {
		if w.errs > 0 {
			t.Errorf("writer %s: %d calls failed", w.member, w.errs)
		}
		if w.holds(final) != w.present {
			t.Errorf("writer %s: its last write left present=%v, the policy says %v", w.member, w.present, w.holds(final))
		}
		writes += w.writes
		conflicts += w.conflicts
	}
	if writes < 2*len(writers) {
		t.Errorf("the writers made only %d edits: the test did not contend", writes)
	}
	st := e.prov.Stats()
	c := e.emu.Counters()
	t.Logf("out of band: %d edits, %d conflicts; elevate: %d reads, %d writes, %d conflicts retried whole, slowest step %s; emulator: %d aborted, %d writes without etag",
		writes, conflicts, st.Reads, st.Writes, st.Conflicts, slowest, c.Aborted, c.SetWithoutEtag)
	if st.Conflicts == 0 {
		t.Error("elevate never lost a write to a concurrent edit: the test did not contend")
	}
}
