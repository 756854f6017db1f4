package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
)

const (
	lagGrants = 10_000
	lagScopes = 20
)

// countingProvider counts Apply calls per scope and per pass (the engine's
// pass counter is bumped at the end of a pass, so calls made during pass k
// see k-1).
type countingProvider struct {
	providers.Provider
	passes func() int64

	mu      sync.Mutex
	applies map[string]int // "pass/scope" -> calls
	changes int
}

func (c *countingProvider) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	c.mu.Lock()
	c.applies[fmt.Sprintf("%d/%s", c.passes(), scope)]++
	c.changes += len(changes)
	c.mu.Unlock()
	return c.Provider.Apply(ctx, scope, changes)
}

func (c *countingProvider) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applies = make(map[string]int)
	c.changes = 0
}

// BenchmarkExpiryLag: 10,000 grants over 20 GCP projects (memory provider,
// real clock) all expire within the same second. It reports the lag from
// each grant's expiry to the cloud's confirmation that its binding is gone
// (what elevate_expiry_lag_seconds records) as p50/p99/max, the time until
// the store shows the grant expired, and the provider writes: per pass, and
// per scope per pass (the goal is one batch per touched scope, not one call
// per grant). Run it with
//
//	go test ./reconcile -run XXX -bench ExpiryLag -benchtime 1x
func BenchmarkExpiryLag(b *testing.B) {
	for _, backend := range []struct {
		name   string
		url    func(b *testing.B) string
		margin time.Duration // setup time before the first expiry
	}{
		{"mem", func(*testing.B) string { return "mem:" }, 5 * time.Second},
		{"sqlite", func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "state.db") }, 90 * time.Second},
		{"postgres", func(b *testing.B) string { return pgtest.Schema(b, "elevate_reconcile") }, 90 * time.Second},
	} {
		b.Run(backend.name, func(b *testing.B) {
			for range b.N {
				expiryStorm(b, backend.url(b), backend.margin)
			}
		})
	}
}

// benchLogger discards logs unless ELEVATE_BENCH_LOG is set.
func benchLogger() *slog.Logger {
	if os.Getenv("ELEVATE_BENCH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func expiryStorm(b *testing.B, storeURL string, margin time.Duration) {
	ctx := context.Background()
	st, err := state.Open(ctx, storeURL)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	var src strings.Builder
	roles := make([]string, lagScopes)
	for i := range lagScopes {
		roles[i] = fmt.Sprintf("%q", fmt.Sprintf("role-%02d", i))
		fmt.Fprintf(&src, "role \"role-%02d\" {\n  gcp {\n    resource = \"projects/p-%02d\"\n    role     = \"roles/cloudsql.admin\"\n  }\n}\n", i, i)
	}
	fmt.Fprintf(&src, "jit \"all\" {\n  roles = [%s]\n  requesters = [\"group:sre@example.com\"]\n  max_duration = \"8h\"\n  justification = false\n}\n", strings.Join(roles, ", "))
	set := loadSet(b, src.String())

	// Every grant is active with its binding in place; they expire at
	// first + i×100µs, all within one second.
	start := time.Now()
	first := start.Add(margin).Truncate(time.Second).Add(time.Second)
	cloud := memory.New(memory.Options{Cloud: model.CloudGCP})
	grants := make([]*model.Grant, 0, lagGrants)
	for i := range lagGrants {
		g, err := st.CreateGrant(ctx, model.Grant{
			ID: fmt.Sprintf("g%05d", i), Kind: model.KindJIT, Principal: model.MustPrincipal(fmt.Sprintf("user:u%05d@example.com", i)),
			Role: fmt.Sprintf("role-%02d", i%lagScopes), Policy: "all", Status: model.StatusActive,
			Starts: start, Expires: first.Add(time.Duration(i) * 100 * time.Microsecond), Duration: time.Hour,
		}, state.Change{Actor: "user:bench@example.com", Action: "request"})
		if err != nil {
			b.Fatal(err)
		}
		grants = append(grants, &g)
	}
	for _, d := range reconcile.Desired(set, grants, start.Add(time.Second)) {
		if err := cloud.Put(d); err != nil {
			b.Fatal(err)
		}
	}

	var mu sync.Mutex
	lags := make([]time.Duration, 0, lagGrants)
	settled := make([]time.Duration, 0, lagGrants)
	done := make(chan struct{})
	var engine *reconcile.Engine
	counting := &countingProvider{Provider: cloud, passes: func() int64 { return engine.Status().Passes }}
	counting.reset()
	engine, err = reconcile.NewEngine(reconcile.Options{
		Store: st, Providers: map[model.Cloud]providers.Provider{model.CloudGCP: counting},
		Policies: func() *policies.Set { return set }, Holder: "bench",
		Logger: benchLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	reconcile.SetEndedHook(engine, func(g model.Grant, lag time.Duration) {
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		lags = append(lags, lag)
		settled = append(settled, at.Sub(g.Expires))
		if len(lags) == lagGrants {
			close(done)
		}
	})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go engine.Run(runCtx)
	eventually(b, "the first pass", func() bool { return engine.Status().Passes > 0 })
	if ready := time.Now(); !ready.Before(first) {
		b.Fatalf("setup took until %s past the first expiry; raise the margin", ready.Sub(first))
	}
	counting.reset()
	passesBefore := engine.Status().Passes
	b.Logf("setup took %s; first expiry in %s", time.Since(start).Round(time.Millisecond), time.Until(first).Round(time.Millisecond))

	time.Sleep(time.Until(first))
	b.ResetTimer() // ns/op: from the first expiry until every grant is expired in the store
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d grants ended within 10 minutes", len(lags), lagGrants)
	}
	b.StopTimer()
	passes := engine.Status().Passes - passesBefore

	for _, s := range cloud.Scopes() {
		if n := len(cloud.Bindings(s)); n != 0 {
			b.Errorf("%d bindings left in %s", n, s)
		}
	}
	counting.mu.Lock()
	writes, maxPerScopePass := 0, 0
	passesWithWrites := map[string]bool{}
	for k, n := range counting.applies {
		writes += n
		maxPerScopePass = max(maxPerScopePass, n)
		pass, _, _ := strings.Cut(k, "/")
		passesWithWrites[pass] = true
	}
	changes := counting.changes
	counting.mu.Unlock()

	pct := func(xs []time.Duration, p float64) time.Duration {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	mu.Lock()
	p50, p99, pmax := pct(lags, 0.50), pct(lags, 0.99), pct(lags, 1)
	s50, s99, smax := pct(settled, 0.50), pct(settled, 0.99), pct(settled, 1)
	mu.Unlock()
	b.ReportMetric(p50.Seconds(), "lag-p50-s")
	b.ReportMetric(p99.Seconds(), "lag-p99-s")
	b.ReportMetric(pmax.Seconds(), "lag-max-s")
	b.ReportMetric(s99.Seconds(), "settled-p99-s")
	b.ReportMetric(float64(writes)/float64(max(len(passesWithWrites), 1)), "writes/pass")
	b.ReportMetric(float64(maxPerScopePass), "max-writes/scope/pass")
	b.ReportMetric(float64(changes)/float64(max(writes, 1)), "changes/write")
	b.Logf("%d grants over %d scopes expiring within one second, store %s", lagGrants, lagScopes, strings.SplitN(storeURL, ":", 2)[0])
	b.Logf("lag to confirmed removal: p50 %s, p99 %s, max %s", p50.Round(time.Millisecond), p99.Round(time.Millisecond), pmax.Round(time.Millisecond))
	b.Logf("lag until the store shows expired: p50 %s, p99 %s, max %s", s50.Round(time.Millisecond), s99.Round(time.Millisecond), smax.Round(time.Millisecond))
	b.Logf("%d passes (%d with writes), %d provider writes carrying %d deletes: %.1f writes per pass with writes, at most %d write(s) per scope per pass",
		passes, len(passesWithWrites), writes, changes, float64(writes)/float64(max(len(passesWithWrites), 1)), maxPerScopePass)
	if p99 > time.Second {
		b.Logf("p99 lag %s is over the 1 s goal", p99)
	}
}
