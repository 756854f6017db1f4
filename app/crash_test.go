package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// crashLagBound is how long after a restart the bindings of grants that
// expired while the daemon was down may remain. The restarted daemon takes
// its lease back at once (same holder) and its first pass removes them,
// typically within about a second under this test's load (two clients,
// some 15 requests a second). With four times the load the first pass
// grows to 3 to 5s: its grant and binding-record writes queue behind the
// API's for the one SQLite writer.
const crashLagBound = 5 * time.Second

// ackedGrant is a grant the API confirmed to a client: it must survive any
// crash.
type ackedGrant struct {
	id       string
	expires  time.Time // zero while pending
	approved bool      // an approval was acknowledged
}

// load is a stream of requests and approvals against whichever daemon is
// up, remembering what the API acknowledged.
type load struct {
	mu       sync.Mutex
	acked    map[string]*ackedGrant
	sent     int
	failures int
}

func (l *load) ack(g grantView, approved bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.acked[g.ID]
	if a == nil {
		a = &ackedGrant{id: g.ID}
		l.acked[g.ID] = a
	}
	if g.Expires != nil {
		a.expires = *g.Expires
	}
	a.approved = a.approved || approved
}

func (l *load) snapshot() []ackedGrant {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ackedGrant, 0, len(l.acked))
	for _, a := range l.acked {
		out = append(out, *a)
	}
	return out
}

// run sends requests until stop closes: self-service sandbox grants of 2
// to 5 seconds, and prod requests that a manager approves.
func (l *load) run(base string, rng *rand.Rand, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		// At least 2s: a 1s grant can round (start up, expiry down, to
		// whole seconds) to an empty cloud-side window, which the cloud
		// refuses; that edge is the engine's, not a crash's.
		dur := fmt.Sprintf("%ds", 2+rng.IntN(4))
		var g grantView
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		if rng.IntN(10) < 7 {
			st, err := tryAPI(base, engToken, "POST", "/v1/requests", map[string]string{"role": "sandbox", "duration": dur, "justification": "crash test"}, &g)
			if err == nil && st == http.StatusCreated {
				l.ack(g, false)
			} else {
				l.fail()
			}
		} else {
			st, err := tryAPI(base, engToken, "POST", "/v1/requests", map[string]string{"role": "prod", "duration": dur, "justification": "crash test"}, &g)
			if err != nil || st != http.StatusCreated {
				l.fail()
			} else {
				l.ack(g, false)
				var a grantView
				st, err := tryAPI(base, mgrToken, "POST", "/v1/grants/"+g.ID+"/approve", map[string]string{"comment": "ok"}, &a)
				if err == nil && st == http.StatusOK {
					l.ack(a, true)
				} else {
					l.fail()
				}
			}
		}
		time.Sleep(time.Duration(40+rng.IntN(80)) * time.Millisecond)
	}
}

func (l *load) fail() {
	l.mu.Lock()
	l.failures++
	l.mu.Unlock()
}

// TestCrashRecovery kills the real daemon with SIGKILL at 22 random
// moments while requests, approvals and expiries stream through it, and
// restarts it each time on the same SQLite file against a memory emulator
// that plays the cloud (it outlives the daemon). It then checks: the
// bindings of grants that expired while the daemon was down are gone
// within crashLagBound of every restart; in the end no binding exists
// without a live grant and every grant past its expiry is expired; no
// acknowledged grant or approval is lost; the audit chain verifies.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped with -short")
	}
	t.Parallel()
	started := time.Now()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))

	dir := t.TempDir()
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP, model.CloudAWS}, false)
	es := httptest.NewServer(emu)
	defer es.Close()
	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"ELEVATE_POLICIES=" + writeTestPolicies(t, dir),
		"ELEVATE_STATE=sqlite:" + filepath.Join(dir, "elevate.db"),
		"ELEVATE_STATIC_TOKENS=" + testStaticTokens(),
		"ELEVATE_MEMORY_CLOUDS=gcp,aws",
		"ELEVATE_MEMORY_ENDPOINT=" + es.URL,
		"ELEVATE_LEASE_TTL=2s",
		"ELEVATE_LISTEN=" + addr,
		"ELEVATE_LOG_LEVEL=info",
	}

	ld := &load{acked: map[string]*ackedGrant{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		r := rand.New(rand.NewPCG(seed+uint64(i)+1, 7))
		wg.Go(func() { ld.run(base, r, stop) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	const kills = 22
	var maxLag time.Duration
	var store state.Store
	defer func() {
		if store != nil {
			store.Close()
		}
	}()
	for i := range kills {
		d := startElevate(t, dir, env, "serve")
		d.url = base
		if rng.IntN(4) == 0 {
			// Kill during start-up: migrations, policy load, lease campaign.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			d.kill9()
			continue
		}
		d.waitHTTP(t, "/healthz", http.StatusOK, 20*time.Second)
		restarted := time.Now()
		lag := waitExpiredRemoved(t, emu, ld, restarted, crashLagBound, d)
		maxLag = max(maxLag, lag)
		if store == nil {
			var err error
			if store, err = state.Open(context.Background(), "sqlite:"+filepath.Join(dir, "elevate.db")); err != nil {
				t.Fatal(err)
			}
		}
		checkBindingsHaveGrants(t, emu, store, crashLagBound)
		time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond)
		d.kill9()
		if i%5 == 0 {
			t.Logf("kill %d/%d: %d grants acknowledged, %d bindings in the cloud", i+1, kills, len(ld.snapshot()), len(emu.all()))
		}
	}

	// The last restart: let the stream run a little, stop it, and let
	// every grant expire.
	d := startElevate(t, dir, env, "serve")
	d.url = base
	d.waitHTTP(t, "/readyz", http.StatusOK, 20*time.Second)
	maxLag = max(maxLag, waitExpiredRemoved(t, emu, ld, time.Now(), crashLagBound, d))
	time.Sleep(500 * time.Millisecond)
	stopLoad()

	// Every acknowledged grant and approval is in the store.
	ctx := context.Background()
	acked := ld.snapshot()
	if len(acked) < 20 {
		t.Fatalf("only %d grants were acknowledged: the load did not get through", len(acked))
	}
	for _, a := range acked {
		g, err := store.GetGrant(ctx, a.id)
		if err != nil {
			t.Errorf("acknowledged grant %s is lost: %v", a.id, err)
			continue
		}
		if a.approved && !hasApproval(g, "user:mgr@example.com") {
			t.Errorf("acknowledged approval of grant %s is lost: approvals %+v", a.id, g.Approvals)
		}
	}
	// Wait out the last expiry (of every stored grant, including those
	// whose creation the client never heard about) plus the lag bound.
	stored, err := store.ListGrants(ctx, state.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var lastExpiry time.Time
	for _, g := range stored {
		if g.Expires.After(lastExpiry) {
			lastExpiry = g.Expires
		}
	}
	time.Sleep(time.Until(lastExpiry.Add(crashLagBound)))
	stored, err = store.ListGrants(ctx, state.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range stored {
		if g.Status.Live() && time.Since(g.Expires) > crashLagBound {
			t.Errorf("grant %s is %s %s after its expiry", g.ID, g.Status, time.Since(g.Expires).Round(time.Millisecond))
		}
	}
	checkBindingsHaveGrants(t, emu, store, crashLagBound)
	if n := len(emu.all()); n != 0 {
		t.Errorf("%d bindings remain after every grant expired", n)
	}

	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t, 10*time.Second); code != 0 {
		t.Errorf("final SIGTERM: exit %d\n%s", code, d.stderr)
	}
	out, errOut, code := runElevate(t, dir, []string{"ELEVATE_STATE=sqlite:" + filepath.Join(dir, "elevate.db")}, "audit", "verify")
	if code != 0 {
		t.Errorf("audit chain after %d crashes: exit %d\n%s%s", kills, code, out, errOut)
	}
	ld.mu.Lock()
	sent, failures := ld.sent, ld.failures
	ld.mu.Unlock()
	t.Logf("%d SIGKILLs; %d requests sent, %d failed while the daemon was down, %d grants acknowledged, %d stored; "+
		"longest removal after a restart of bindings that expired while down: %s; %s; test took %s",
		kills, sent, failures, len(acked), len(stored), maxLag.Round(time.Millisecond), out[:len(out)-1], time.Since(started).Round(time.Second))
}

// checkBindingsHaveGrants checks that every binding in the cloud belongs
// to a stored grant that is live, or ended less than bound ago (its
// removal may be under way).
func checkBindingsHaveGrants(t *testing.T, emu *memoryEmulator, store state.Store, bound time.Duration) {
	t.Helper()
	for _, b := range emu.all() {
		g, err := store.GetGrant(context.Background(), b.Owner)
		switch {
		case err != nil:
			t.Errorf("binding %s for %s has no stored grant (owner %q): %v", b.Target, b.Principal, b.Owner, err)
		case g.Status.Live() && time.Since(g.Expires) <= bound:
		case g.Status.Terminal() && time.Since(g.Updated) <= bound:
		default:
			t.Errorf("binding %s for %s belongs to grant %s, which is %s (expires %s, updated %s)",
				b.Target, b.Principal, g.ID, g.Status, g.Expires.Format(time.RFC3339Nano), g.Updated.Format(time.RFC3339Nano))
		}
	}
}

func hasApproval(g model.Grant, approver string) bool {
	for _, a := range g.Approvals {
		if a.Approver.String() == approver && a.Approve {
			return true
		}
	}
	return false
}

// waitExpiredRemoved waits until the cloud holds no binding of an
// acknowledged grant that expired before restarted, failing the test if
// that takes longer than bound after restarted. It returns how long it
// took.
func waitExpiredRemoved(t *testing.T, emu *memoryEmulator, ld *load, restarted time.Time, bound time.Duration, d *proc) time.Duration {
	t.Helper()
	expired := map[string]bool{}
	for _, a := range ld.snapshot() {
		if !a.expires.IsZero() && a.expires.Before(restarted) {
			expired[a.id] = true
		}
	}
	for {
		var stale []model.Binding
		for _, b := range emu.all() {
			if expired[b.Owner] {
				stale = append(stale, b)
			}
		}
		if len(stale) == 0 {
			return time.Since(restarted)
		}
		if time.Since(restarted) > bound {
			t.Fatalf("%d bindings of grants that expired before the restart remain %s after it; the first: %+v\ndaemon log (without request lines):\n%s",
				len(stale), bound, stale[0], daemonLogTail(d.stderr.String(), 60))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// daemonLogTail returns the last n lines of a daemon log that are not
// request log lines.
func daemonLogTail(log string, n int) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `"msg":"http request"`) {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}
